//! `cargo xtask bench scale` (`cargo bench -p serin-sandbox --bench scale -- N[@INTERVAL]...`,
//! interval `5s` unless given, e.g. `10000@15s`): N Canaries,
//! each on its own Knative Service, rolled out at once by the real controller process against
//! the API emulator process (Knative simulator attached, no traffic router), with metrics
//! served by a stub Prometheus in this process. Reports the step lag p50/p99 (actual minus
//! planned step time, from the controller's `serin_step_lag_seconds`), the controller's CPU
//! seconds (in all, and as cores used during the rollout) and peak RSS, and API requests per
//! analysis step per Canary (from the emulator's counters, by verb and resource in the JSON).
//! Writes `target/bench/scale-N.json`. `SERIN_SCALE_CONTROLLER_ARGS` adds controller flags.

use std::{
    io::{Read, Write},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kube::{
    Api,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use serin_sandbox::cluster::{free_port, wait_http};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// A Prometheus stand-in answering every instant query with 100 (passes both built-ins here).
async fn stub_prometheus() -> String {
    let app = axum::Router::new().fallback(|| async {
        (
            [("content-type", "application/json")],
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"100"]}]}}"#,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn resource(group: &str, kind: &str, plural: &str, version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Quantile from a Prometheus text histogram (upper bound of the bucket reaching it).
fn quantile(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets.iter().find(|(_, count)| *count >= q * total).map(|(le, _)| *le)
}

fn proc_stats(pid: u32) -> (f64, u64) {
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

async fn run(n: usize, interval: &str) -> anyhow::Result<Value> {
    let exe_dir = PathBuf::from(env!("CARGO_BIN_EXE_serin-sandbox"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let controller_bin = exe_dir.join("serin-controller");
    anyhow::ensure!(
        controller_bin.is_file(),
        "{} is not built: cargo build --release -p serin-controller",
        controller_bin.display()
    );
    let (api_port, ctl_port) = (free_port()?, free_port()?);
    let logs = std::env::temp_dir().join(format!("serin-scale-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let log = |name: &str| std::fs::File::create(logs.join(name)).map(Stdio::from);
    let _api = Killed(
        Command::new(env!("CARGO_BIN_EXE_serin-sandbox"))
            .args(["kube-api", "--port", &api_port.to_string(), "--knative", "--no-router"])
            .stdout(log("kube-api.log")?)
            .stderr(log("kube-api.err")?)
            .spawn()?,
    );
    let api_addr = format!("127.0.0.1:{api_port}");
    wait_http(&api_addr, "/version", Duration::from_secs(30))?;
    let client = kube::Client::try_from(kube::Config::new(format!("http://{api_addr}").parse::<http::Uri>()?))?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "scale"}}))?,
        )
        .await?;
    let crd_text = std::fs::read_to_string(exe_dir.join("../../deploy/crds/canaries.flagger.app.yaml"))?;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(&PostParams::default(), &serde_saphyr::from_str(&crd_text)?)
        .await?;
    let services: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "scale",
        &resource("serving.knative.dev", "Service", "services", "v1"),
    );
    let canaries: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "scale",
        &resource("flagger.app", "Canary", "canaries", "v1beta1"),
    );
    let prometheus = stub_prometheus().await;
    for i in 0..n {
        let ksvc = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": format!("app-{i}"), "namespace": "scale"},
            "spec": {"template": {"spec": {"containers": [{"image": "example.com/app:1"}]}}}});
        services
            .create(&PostParams::default(), &serde_json::from_value(ksvc)?)
            .await?;
        let canary = json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": format!("app-{i}"), "namespace": "scale"},
            "spec": {"provider": "knative", "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": format!("app-{i}")},
                "analysis": {"interval": interval, "threshold": 3, "maxWeight": 50, "stepWeight": 25,
                    "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}});
        canaries
            .create(&PostParams::default(), &serde_json::from_value(canary)?)
            .await?;
    }
    let controller = Killed(
        Command::new(&controller_bin)
            .args([
                "--kube-server",
                &format!("http://{api_addr}"),
                "--metrics-server",
                &prometheus,
                "--listen",
                &format!("127.0.0.1:{ctl_port}"),
                "--log-level",
                "warn",
            ])
            .args(
                std::env::var("SERIN_SCALE_CONTROLLER_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .stdout(log("controller.log")?)
            .stderr(log("controller.err")?)
            .spawn()?,
    );
    let pid = controller.0.id();
    let phases = |items: &[DynamicObject], phase: &str| {
        items
            .iter()
            .filter(|c| c.data.pointer("/status/phase") == Some(&json!(phase)))
            .count()
    };
    let wait_all = |phase: &'static str, limit: Duration| {
        let canaries = canaries.clone();
        async move {
            let deadline = Instant::now() + limit;
            loop {
                let items = canaries.list(&ListParams::default()).await?.items;
                let done = phases(&items, phase);
                if done == n || Instant::now() > deadline {
                    return anyhow::Ok(done);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let initialized = wait_all("Initialized", Duration::from_secs(300)).await?;
    let (_, rss_after_init_kib) = proc_stats(pid);
    let requests_before = api_requests(&api_addr);
    let (cpu_before_rollout, _) = proc_stats(pid);
    let started = Instant::now();
    let patch =
        json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "example.com/app:2"}]);
    let patch: json_patch::Patch = serde_json::from_value(patch)?;
    for i in 0..n {
        services
            .patch(
                &format!("app-{i}"),
                &PatchParams::default(),
                &Patch::<()>::Json(patch.clone()),
            )
            .await?;
    }
    let succeeded = wait_all("Succeeded", Duration::from_secs(600)).await?;
    let elapsed = started.elapsed();
    // Say why the others did not finish (up to 5).
    let stragglers: Vec<String> = canaries
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|c| c.data.pointer("/status/phase") != Some(&json!("Succeeded")))
        .take(5)
        .map(|c| {
            let name = c.metadata.name.clone().unwrap_or_default();
            let svc = c.data.pointer("/status").cloned().unwrap_or_default();
            format!("{name}: {svc}")
        })
        .collect();
    for s in &stragglers {
        eprintln!("not succeeded: {s}");
    }
    let by_kind: std::collections::BTreeMap<String, f64> = api_requests(&api_addr)
        .into_iter()
        .map(|(k, v)| {
            let before = requests_before.get(&k).copied().unwrap_or(0);
            (k, v.saturating_sub(before) as f64)
        })
        .filter(|(_, v)| *v > 0.0)
        .collect();
    let requests: f64 = by_kind.values().sum();
    let metrics = http_get(&format!("127.0.0.1:{ctl_port}"), "/metrics");
    let (cpu, rss_kib) = proc_stats(pid);
    // Each rollout here: first step at detection, then 2 analysis steps (25%, 50% → promote).
    let steps = (n * 3) as f64;
    Ok(json!({
        "canaries": n,
        "initialized": initialized,
        "succeeded": succeeded,
        "rolloutSeconds": elapsed.as_secs_f64(),
        "stepLagP50Seconds": quantile(&metrics, "serin_step_lag_seconds", 0.5),
        "stepLagP99Seconds": quantile(&metrics, "serin_step_lag_seconds", 0.99),
        "controllerCpuSeconds": cpu,
        "controllerCoresDuringRollout": (cpu - cpu_before_rollout) / elapsed.as_secs_f64(),
        "controllerPeakRssMiB": rss_kib as f64 / 1024.0,
        "controllerPeakRssAfterInitMiB": rss_after_init_kib as f64 / 1024.0,
        "interval": interval,
        "apiRequestsPerStepPerCanary": requests / steps,
        "apiRequestsPerStepPerCanaryByKind": by_kind.iter().map(|(k, v)| (k.clone(), json!(v / steps))).collect::<serde_json::Map<_, _>>(),
        "notSucceeded": stragglers,
    }))
}

/// The controller's requests so far, by "verb resource".
fn api_requests(api_addr: &str) -> std::collections::BTreeMap<String, u64> {
    let body = http_get(api_addr, "/_sandbox/requests");
    let mut counts = std::collections::BTreeMap::new();
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

fn main() {
    let sizes: Vec<(usize, String)> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            let (n, interval) = a.split_once('@').unwrap_or((&a, "5s"));
            Some((n.parse().ok()?, interval.to_owned()))
        })
        .collect();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes = if sizes.is_empty() {
        vec![(1000, "5s".to_owned())]
    } else {
        sizes
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:>9} {:>9} {:>10} {:>10} {:>10} {:>9} {:>7} {:>9} {:>15}",
        "canaries", "interval", "succeeded", "lag p50", "lag p99", "cpu s", "cores", "rss MiB", "API req/step"
    );
    for (n, interval) in sizes {
        match rt.block_on(run(n, &interval)) {
            Ok(r) => {
                let secs = |k: &str| r[k].as_f64().map_or("n/a".into(), |v| format!("<= {v}s"));
                println!(
                    "{:>9} {:>9} {:>10} {:>10} {:>10} {:>9.1} {:>7.2} {:>9.1} {:>15.2}",
                    n,
                    interval,
                    r["succeeded"],
                    secs("stepLagP50Seconds"),
                    secs("stepLagP99Seconds"),
                    r["controllerCpuSeconds"].as_f64().unwrap_or(0.0),
                    r["controllerCoresDuringRollout"].as_f64().unwrap_or(0.0),
                    r["controllerPeakRssMiB"].as_f64().unwrap_or(0.0),
                    r["apiRequestsPerStepPerCanary"].as_f64().unwrap_or(0.0)
                );
                let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
                if std::fs::create_dir_all(&dir).is_ok() {
                    let _ = std::fs::write(dir.join(format!("scale-{n}.json")), format!("{r:#}\n"));
                }
            }
            Err(e) => println!("{n:>9} failed: {e:#}"),
        }
    }
}
