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

/// One request in five fails; `rate()` over a window that cuts the cycle reads close to 80%,
/// not exactly (79.96% in one CI run).
fn reads_one_in_five_failing(success_rate: f64) -> bool {
    (success_rate - 80.0).abs() < 2.0
}

/// The value `serin check-metrics` printed for the request success rate, in percent.
fn success_rate(stdout: &str) -> Option<f64> {
    let after = stdout.split("request-success-rate: ").nth(1)?;
    after.split('%').next()?.parse().ok()
}

fn check(prometheus: &str, revision: &str) -> (i32, String) {
    check_with(prometheus, revision, &[])
}

fn check_with(prometheus: &str, revision: &str, extra: &[&str]) -> (i32, String) {
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
        .args(extra)
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
        let settled = success_rate(&stdout).is_some_and(reads_one_in_five_failing);
        if settled || Instant::now() > deadline {
            break (code, stdout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // With the primary named, the sequential judge's view: the raw counters of both revisions.
    let url = prometheus.url.clone();
    let (_, judged) = tokio::task::spawn_blocking(move || {
        check_with(&url, "podinfo-00002", &["--primary-revision", "podinfo-00001"])
    })
    .await
    .expect("join");
    load.abort();
    assert!(judged.contains("sequential judge (counters, no rate()):"), "{judged}");
    let totals = |revision: &str| -> (f64, f64) {
        let line = judged
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{revision}:")))
            .unwrap_or_else(|| panic!("no line for {revision}: {judged}"));
        let numbers: Vec<f64> = line.split([' ', ',']).filter_map(|w| w.parse().ok()).collect();
        (numbers[1], numbers[2])
    };
    let (requests, errors) = totals("podinfo-00002");
    assert!(requests > 50.0 && (errors / requests - 0.2).abs() < 0.05, "{judged}");
    let (requests, errors) = totals("podinfo-00001");
    assert!(requests > 50.0 && errors == 0.0, "{judged}");
    assert!(judged.contains("bounds from podinfo-00001: mid "), "{judged}");
    let rate = success_rate(&stdout).unwrap_or_else(|| panic!("no success rate: {stdout}"));
    assert!(reads_one_in_five_failing(rate), "{stdout}");
    assert!(
        stdout.contains(&format!("request-success-rate: {rate:.2}% (bound >= 99%) Fail")),
        "{stdout}"
    );
    assert!(stdout.contains("request-duration (P99): "), "{stdout}");
    assert!(stdout.contains("(bound <= 500ms) Pass"), "{stdout}");
    assert!(
        stdout.contains(&format!("Halt podinfo.test advancement success rate {rate:.2}% < 99%")),
        "{stdout}"
    );
    assert!(stdout.starts_with("built-in queries: Kourier\n"), "{stdout}");
    assert!(
        stdout.contains("series of podinfo-00002 found by envoy_cluster_name=\"NAMESPACE/REVISION\""),
        "{stdout}"
    );
    assert_eq!(code, 1, "a failing metric exits 1");
}
