//! Real traffic through the router, scraped by a real Prometheus, read with Flagger's Kourier
//! queries verbatim through `serin-metrics`.

use std::time::{Duration, Instant};

use serin_core::{MetricKind, MetricOutcome};
use serin_loadtester::{generator, hey};
use serin_metrics::{
    MetricsProvider, PrometheusConfig, PrometheusProvider, QueryContext, QueryError, QuerySet, QueryValue,
    builtin_query, outcome, render,
};
use serin_sandbox::{
    demo_app::{DemoApp, Profile},
    prometheus::Prometheus,
    router::{Backend, TrafficRouter},
};

fn query(kind: MetricKind, revision: &str) -> String {
    let ctx = QueryContext {
        namespace: "test".into(),
        route: revision.into(),
        interval: "1m".into(),
        ..QueryContext::default()
    };
    render(
        "builtin",
        builtin_query(kind, QuerySet::Kourier).expect("built-in"),
        &ctx,
    )
    .expect("renders")
}

/// Polls `q` until `accept` holds or the deadline passes; returns the last value.
async fn poll(p: &PrometheusProvider, q: &str, limit: Duration, accept: impl Fn(f64) -> bool) -> Result<f64, String> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("nothing yet");
    while Instant::now() < deadline {
        match p.query(q).await {
            Ok(QueryValue::Value(v)) if accept(v) => return Ok(v),
            other => last = format!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("{q} never satisfied the condition; last answer {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kourier_queries_read_injected_errors_and_latency_through_real_prometheus() {
    let primary = DemoApp::start(
        "podinfo-00001",
        Profile {
            version: "6.0.0".into(),
            ..Profile::default()
        },
    )
    .await
    .expect("primary");
    let bad = Profile {
        version: "6.0.2".into(),
        error_ratio: 0.05,
        latency: Duration::from_millis(300),
    };
    let canary = DemoApp::start("podinfo-00002", bad).await.expect("canary");
    let router = TrafficRouter::start().await.expect("router");
    let backend = |rev: &str, addr| Backend {
        namespace: "test".into(),
        revision: rev.into(),
        addr,
    };
    router.set_host(
        "podinfo.test",
        vec![
            (backend("podinfo-00001", primary.addr), 90),
            (backend("podinfo-00002", canary.addr), 10),
        ],
    );
    let mut prometheus = Prometheus::start(&[router.admin_addr.to_string()]).unwrap_or_else(|e| panic!("{e}"));
    serin_metrics::install_crypto_provider();
    let provider = PrometheusProvider::new(PrometheusConfig::new(&prometheus.url)).expect("provider");

    // 100 req/s through the 90/10 split (10 req/s on the canary). At the tutorial's 20 req/s the
    // canary sees 2 req/s and a 5% error share needs about 30 s of samples to read 95 ± 1.
    let mut spec = hey::parse_command("hey -z 40s -q 25 -c 4 http://podinfo.test/").expect("spec");
    spec.connect_to = Some(router.addr.to_string());
    let load = tokio::spawn(async move { generator::run(&spec).await });

    let started = Instant::now();
    let rate = poll(
        &provider,
        &query(MetricKind::SuccessRate, "podinfo-00002"),
        Duration::from_secs(40),
        |v| (94.0..=96.0).contains(&v),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("success rate {rate:.2}% after {:?}", started.elapsed());
    let p99 = poll(
        &provider,
        &query(MetricKind::Duration, "podinfo-00002"),
        Duration::from_secs(10),
        |v| v >= 300.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("p99 {p99:.0} ms");
    let primary_rate = provider.query(&query(MetricKind::SuccessRate, "podinfo-00001")).await;
    assert_eq!(
        primary_rate,
        Ok(QueryValue::Value(100.0)),
        "the healthy primary has no errors"
    );

    let idle = provider.query(&query(MetricKind::SuccessRate, "podinfo-00003")).await;
    assert_eq!(idle, Ok(QueryValue::NoData), "a revision without traffic has no data");

    load.abort();
    prometheus.stop();
    let down = provider.query(&query(MetricKind::SuccessRate, "podinfo-00002")).await;
    assert!(matches!(down, Err(QueryError::Transport(_))), "{down:?}");
    assert!(matches!(outcome(down), MetricOutcome::Error(e) if e.starts_with("request failed")));
}
