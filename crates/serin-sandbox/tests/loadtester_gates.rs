//! The loadtester's ConfigMap gate store, as real processes against the API emulator: gates
//! survive a restart (a new pod), and concurrent opens and closes from two loadtesters sharing
//! the ConfigMap are never lost.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serin_sandbox::{cluster::free_ports, kube_api::KubeApi};

/// A loadtester process, killed on drop.
struct Loadtester {
    child: Child,
    port: u16,
}

impl Drop for Loadtester {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_serin-sandbox"));
    let path = dir.with_file_name("serin-loadtester");
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins`",
        path.display()
    );
    path
}

fn start(kube: &str, port: u16) -> Loadtester {
    let child = Command::new(binary())
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--kube-server",
            kube,
        ])
        .args(["--state-configmap", "loadtester-gates", "--state-namespace", "test"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the loadtester");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the loadtester did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Loadtester { child, port }
}

async fn call(http: &reqwest::Client, port: u16, path: &str, canary: &str) -> u16 {
    http.post(format!("http://127.0.0.1:{port}{path}"))
        .json(&serde_json::json!({"name": canary, "namespace": "test", "phase": "Progressing"}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|e| panic!("{path} for {canary}: {e}"))
}

async fn data(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    api.get("loadtester-gates")
        .await
        .expect("the gate ConfigMap")
        .data
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_in_a_configmap_survive_restarts_and_concurrent_writers() {
    serin_webhook::install_crypto_provider();
    let kube_api = KubeApi::start(0).await.expect("start the emulator");
    kube_api.create_namespace("test");
    let configmaps: Api<ConfigMap> = Api::namespaced(kube_api.client().expect("client"), "test");
    let http = reqwest::Client::new();
    let [first_port, second_port] = free_ports::<2>().expect("ports");

    let first = start(&kube_api.url(), first_port);
    assert_eq!(call(&http, first.port, "/gate/check", "podinfo").await, 403);
    assert_eq!(call(&http, first.port, "/gate/open", "podinfo").await, 202);
    assert_eq!(call(&http, first.port, "/rollback/open", "podinfo").await, 202);
    assert_eq!(call(&http, first.port, "/gate/check", "podinfo").await, 200);
    drop(first);

    // A new process (a new pod) reads the same state.
    let first = start(&kube_api.url(), first_port);
    assert_eq!(call(&http, first.port, "/gate/check", "podinfo").await, 200);
    assert_eq!(call(&http, first.port, "/rollback/check", "podinfo").await, 200);
    assert_eq!(call(&http, first.port, "/gate/close", "podinfo").await, 202);
    assert_eq!(call(&http, first.port, "/gate/check", "podinfo").await, 403);

    // Two loadtesters, 40 gates opened at once, alternating between them: none is lost.
    let second = start(&kube_api.url(), second_port);
    let opens = (0..40).map(|i| {
        let port = if i % 2 == 0 { first.port } else { second.port };
        let http = http.clone();
        async move { call(&http, port, "/gate/open", &format!("app-{i}")).await }
    });
    let codes = futures::future::join_all(opens).await;
    assert!(codes.iter().all(|c| *c == 202), "{codes:?}");
    let gates = data(&configmaps).await;
    for i in 0..40 {
        assert_eq!(
            gates.get(&format!("app-{i}.test")).map(String::as_str),
            Some("true"),
            "app-{i}: {gates:?}"
        );
    }
    // And closed at once, from the other side each time.
    let closes = (0..40).map(|i| {
        let port = if i % 2 == 0 { second.port } else { first.port };
        let http = http.clone();
        async move { call(&http, port, "/gate/close", &format!("app-{i}")).await }
    });
    assert!(futures::future::join_all(closes).await.iter().all(|c| *c == 202));
    let gates = data(&configmaps).await;
    assert!(
        (0..40).all(|i| gates.get(&format!("app-{i}.test")).map(String::as_str) == Some("false")),
        "{gates:?}"
    );
    assert_eq!(gates.get("rollback.podinfo.test").map(String::as_str), Some("true"));
}
