//! Many Canaries at once, for the scale benchmark and the shard tests: the API emulator
//! process with the Knative simulator (no traffic router), a stub Prometheus answering 100 to
//! every query, N Services each with its Canary in namespace `scale`, and any number of
//! controller processes, each killable. Process figures (CPU seconds, peak RSS) come from
//! `/proc`, so the controllers' and the emulator's are told apart.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};

use crate::cluster::{Managed, free_port, spawn, wait_http};

/// The namespace of the fleet's Services and Canaries (and the controllers' Leases).
pub const NAMESPACE: &str = "scale";

fn resource(group: &str, kind: &str, plural: &str, version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// A Prometheus stand-in answering every instant query with 100 (passes the success rate),
/// except the provider check `vector(1)` (sent short, so in the URL), which gets 1 as from
/// Prometheus.
async fn stub_prometheus() -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        let provider_check = uri
            .query()
            .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "query" && v == "vector(1)"));
        let value = if provider_check { "1" } else { "100" };
        (
            [("content-type", "application/json")],
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[0,"{value}"]}}]}}}}"#
            ),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// `GET path` on `addr`; the body, or empty.
pub fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// CPU seconds and peak RSS (KiB) of a process.
pub fn proc_stats(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

/// One controller process of the fleet.
pub struct Controller {
    /// Its `--listen` address (`/metrics`).
    pub listen: SocketAddr,
    /// Its process id.
    pub pid: u32,
    process: Option<Managed>,
}

/// The emulator, the stub Prometheus and the controllers.
pub struct Fleet {
    /// `127.0.0.1:PORT` of the API emulator.
    pub api_addr: String,
    /// A client of the emulator.
    pub client: Client,
    /// The stub Prometheus's URL.
    pub prometheus: String,
    /// Where the processes log.
    pub logs: PathBuf,
    /// The emulator's process id.
    pub api_pid: u32,
    controller_bin: PathBuf,
    /// The controllers, in start order.
    pub controllers: Vec<Controller>,
    _api: Managed,
}

impl Fleet {
    /// Starts the emulator (`sandbox_exe kube-api --knative --no-router`) with the Canary CRD
    /// from `root`, and the stub Prometheus; the controller binary is beside `sandbox_exe`.
    pub async fn start(sandbox_exe: &Path, root: &Path) -> anyhow::Result<Fleet> {
        let bin_dir = sandbox_exe.parent().context("the sandbox binary has no directory")?;
        let controller_bin = bin_dir.join("serin-controller");
        anyhow::ensure!(
            controller_bin.is_file(),
            "{} is not built: cargo build -p serin-controller",
            controller_bin.display()
        );
        let logs = std::env::temp_dir().join(format!("serin-fleet-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&logs)?;
        let port = free_port()?;
        let args: Vec<String> = ["kube-api", "--port", &port.to_string(), "--knative", "--no-router"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let api = spawn("kube-api", sandbox_exe, &args, &logs)?;
        let api_addr = format!("127.0.0.1:{port}");
        wait_http(&api_addr, "/version", Duration::from_secs(30))?;
        let client = Client::try_from(kube::Config::new(format!("http://{api_addr}").parse::<http::Uri>()?))?;
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
            )
            .await?;
        let crd_text = std::fs::read_to_string(root.join("deploy/crds/canaries.flagger.app.yaml"))?;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        crds.create(&PostParams::default(), &serde_saphyr::from_str(&crd_text)?)
            .await?;
        Ok(Fleet {
            api_addr,
            client,
            prometheus: stub_prometheus().await?,
            logs,
            api_pid: api.child.id(),
            controller_bin,
            controllers: Vec::new(),
            _api: api,
        })
    }

    /// The Canaries.
    pub fn canaries(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            NAMESPACE,
            &resource("flagger.app", "Canary", "canaries", "v1beta1"),
        )
    }

    fn services(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            NAMESPACE,
            &resource("serving.knative.dev", "Service", "services", "v1"),
        )
    }

    /// Creates `app-0` … `app-{n-1}`: a Service and its Canary each (25% steps to 50%, one
    /// success-rate metric, `interval`).
    pub async fn create(&self, n: usize, interval: &str) -> anyhow::Result<()> {
        for i in 0..n {
            let ksvc = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": format!("app-{i}"), "namespace": NAMESPACE},
                "spec": {"template": {"spec": {"containers": [{"image": "example.com/app:1"}]}}}});
            self.services()
                .create(&PostParams::default(), &serde_json::from_value(ksvc)?)
                .await?;
            let canary = json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": format!("app-{i}"), "namespace": NAMESPACE},
                "spec": {"provider": "knative", "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": format!("app-{i}")},
                    "analysis": {"interval": interval, "threshold": 3, "maxWeight": 50, "stepWeight": 25,
                        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}});
            self.canaries()
                .create(&PostParams::default(), &serde_json::from_value(canary)?)
                .await?;
        }
        Ok(())
    }

    /// Starts a controller with `extra` flags (besides the emulator, the stub Prometheus,
    /// `--listen` and warn-level logs); returns its index.
    pub fn start_controller(&mut self, extra: &[String]) -> anyhow::Result<usize> {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut args = vec![
            "--kube-server".to_owned(),
            format!("http://{}", self.api_addr),
            "--metrics-server".to_owned(),
            self.prometheus.clone(),
            "--listen".to_owned(),
            listen.to_string(),
            "--log-level".to_owned(),
            "warn,serin_reconciler::shard=info".to_owned(),
            "--lease-namespace".to_owned(),
            NAMESPACE.to_owned(),
        ];
        args.extend(extra.iter().cloned());
        let index = self.controllers.len();
        let process = spawn(&format!("controller-{index}"), &self.controller_bin, &args, &self.logs)?;
        let pid = process.child.id();
        wait_http(&listen.to_string(), "/healthz", Duration::from_secs(30))?;
        self.controllers.push(Controller {
            listen,
            pid,
            process: Some(process),
        });
        Ok(index)
    }

    /// Kills controller `index` (SIGKILL).
    pub fn kill_controller(&mut self, index: usize) {
        if let Some(c) = self.controllers.get_mut(index) {
            c.process = None;
        }
    }

    /// Changes every Service's image, spreading the changes evenly over `spread`.
    pub async fn roll_out(&self, n: usize, image: &str, spread: Duration) -> anyhow::Result<()> {
        let patch = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]);
        let patch: json_patch::Patch = serde_json::from_value(patch)?;
        let started = tokio::time::Instant::now();
        for i in 0..n {
            let due = started + spread.mul_f64(i as f64 / n.max(1) as f64);
            tokio::time::sleep_until(due).await;
            self.services()
                .patch(
                    &format!("app-{i}"),
                    &PatchParams::default(),
                    &Patch::<()>::Json(patch.clone()),
                )
                .await?;
        }
        Ok(())
    }

    /// The Canaries now.
    pub async fn list(&self) -> anyhow::Result<Vec<DynamicObject>> {
        Ok(self.canaries().list(&ListParams::default()).await?.items)
    }

    /// Waits until `n` Canaries are in `phase` or `limit` passes; returns how many are. Lists
    /// every second, or every 5 s past 1,000 Canaries (a list of 10,000 is work for the
    /// emulator that the controller's figures should not pay for).
    pub async fn wait_all(&self, n: usize, phase: &str, limit: Duration) -> anyhow::Result<usize> {
        let deadline = tokio::time::Instant::now() + limit;
        let every = if n > 1000 {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1)
        };
        loop {
            let done = self
                .list()
                .await?
                .iter()
                .filter(|c| c.data.pointer("/status/phase") == Some(&json!(phase)))
                .count();
            if done >= n || tokio::time::Instant::now() > deadline {
                return Ok(done);
            }
            tokio::time::sleep(every).await;
        }
    }

    /// The controllers' API requests so far, by `verb resource`.
    pub fn api_requests(&self) -> BTreeMap<String, u64> {
        let body = http_get(&self.api_addr, "/_sandbox/requests");
        let mut counts = BTreeMap::new();
        for r in serde_json::from_str::<Vec<Value>>(&body).unwrap_or_default() {
            if r["userAgent"]
                .as_str()
                .is_some_and(|a| a.starts_with("serin-controller"))
            {
                let key = format!(
                    "{} {}",
                    r["verb"].as_str().unwrap_or("?"),
                    r["resource"].as_str().unwrap_or("?")
                );
                *counts.entry(key).or_default() += r["count"].as_u64().unwrap_or(0);
            }
        }
        counts
    }

    /// Every event of the fleet's namespace: (object name, message, count).
    pub async fn events(&self) -> anyhow::Result<Vec<(String, String, i32)>> {
        let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), NAMESPACE);
        Ok(api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|e| {
                (
                    e.involved_object.name.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                    e.count.unwrap_or(1),
                )
            })
            .collect())
    }
}
