//! `serin check-metrics` as a process, against a real Prometheus scraping Envoy-named series
//! from the sandbox router.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serin_loadtester::{generator, hey};
use serin_sandbox::{
    demo_app::{DemoApp, Profile},
    prometheus::Prometheus,
    router::{Backend, TrafficRouter},
};

fn check(prometheus: &str, revision: &str) -> (i32, String) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args([
            "check-metrics",
            "testdata/seed/podinfo-canary.yaml",
            "--prometheus",
            prometheus,
            "--canary-revision",
            revision,
        ])
        .current_dir(root)
        .output()
        .expect("serin runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_metrics_prints_both_builtins_with_values_and_verdicts() {
    let primary = DemoApp::start("podinfo-00001", Profile::default())
        .await
        .expect("primary");
    let canary = DemoApp::start(
        "podinfo-00002",
        Profile {
            error_ratio: 0.2,
            ..Profile::default()
        },
    )
    .await
    .expect("canary");
    let router = TrafficRouter::start().await.expect("router");
    let backend = |rev: &str, addr| Backend {
        namespace: "test".into(),
        revision: rev.into(),
        addr,
    };
    router.set_host(
        "podinfo.test",
        vec![
            (backend("podinfo-00001", primary.addr), 50),
            (backend("podinfo-00002", canary.addr), 50),
        ],
    );
    let prometheus = Prometheus::start(&[router.admin_addr.to_string()]).unwrap_or_else(|e| panic!("{e}"));
    let mut spec = hey::parse_command("hey -z 30s -q 20 -c 2 http://podinfo.test/").expect("spec");
    spec.connect_to = Some(router.addr.to_string());
    let load = tokio::spawn(async move { generator::run(&spec).await });

    let deadline = Instant::now() + Duration::from_secs(30);
    let (code, stdout) = loop {
        let url = prometheus.url.clone();
        let (code, stdout) = tokio::task::spawn_blocking(move || check(&url, "podinfo-00002"))
            .await
            .expect("join");
        if stdout.contains("request-success-rate: 80.00%") || Instant::now() > deadline {
            break (code, stdout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    load.abort();
    assert!(
        stdout.contains("request-success-rate: 80.00% (bound >= 99%) Fail"),
        "{stdout}"
    );
    assert!(stdout.contains("request-duration (P99): "), "{stdout}");
    assert!(stdout.contains("(bound <= 500ms) Pass"), "{stdout}");
    assert!(
        stdout.contains("Halt podinfo.test advancement success rate 80.00% < 99%"),
        "{stdout}"
    );
    assert!(stdout.starts_with("built-in queries: Kourier\n"), "{stdout}");
    assert!(
        stdout.contains("series of podinfo-00002 found by envoy_cluster_name=\"NAMESPACE/REVISION\""),
        "{stdout}"
    );
    assert_eq!(code, 1, "a failing metric exits 1");
}
