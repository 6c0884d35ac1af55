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
        spread: 0.0,
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

/// A queue-proxy's OpenTelemetry Prometheus endpoint as Knative 1.19+ exports it: the revision
/// and namespace on `target_info` only (`promoted: false`), or on every series (`promoted:
/// true`, as after a collector's resource-to-telemetry conversion). Counters grow with time:
/// 95% of requests 200 and 5% 500, every request between 0.25 s and 0.5 s.
async fn otel_exporter(revision: &'static str, promoted: bool) -> std::net::SocketAddr {
    let started = Instant::now();
    let app = axum::Router::new().route(
        "/stats/prometheus",
        axum::routing::get(move || async move {
            let t = started.elapsed().as_secs_f64() * 10.0;
            let labels = if promoted {
                format!(r#"k8s_namespace_name="test",kn_revision_name="{revision}","#)
            } else {
                String::new()
            };
            let mut text = String::new();
            if !promoted {
                text.push_str(&format!(
                    "# TYPE target_info gauge\ntarget_info{{k8s_namespace_name=\"test\",kn_revision_name=\"{revision}\",service_name=\"queue-proxy\"}} 1\n"
                ));
            }
            text.push_str("# TYPE kn_serving_invocation_duration_seconds histogram\n");
            for (code, share) in [("200", 0.95), ("500", 0.05)] {
                let n = (t * share * 100.0).floor();
                for (le, count) in [("0.25", 0.0), ("0.5", n), ("+Inf", n)] {
                    text.push_str(&format!(
                        "kn_serving_invocation_duration_seconds_bucket{{{labels}http_response_status_code=\"{code}\",le=\"{le}\"}} {count}\n"
                    ));
                }
                text.push_str(&format!(
                    "kn_serving_invocation_duration_seconds_count{{{labels}http_response_status_code=\"{code}\"}} {n}\nkn_serving_invocation_duration_seconds_sum{{{labels}http_response_status_code=\"{code}\"}} {}\n",
                    n * 0.3
                ));
            }
            text
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn queue_proxy_otel_queries_join_target_info_and_read_promoted_labels_through_real_prometheus() {
    let on_target_info = otel_exporter("podinfo-00002", false).await;
    let promoted = otel_exporter("podinfo-00003", true).await;
    let other = otel_exporter("other-00001", false).await;
    let mut prometheus = Prometheus::start(&[on_target_info.to_string(), promoted.to_string(), other.to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    serin_metrics::install_crypto_provider();
    let provider = PrometheusProvider::new(PrometheusConfig::new(&prometheus.url)).expect("provider");
    let otel = |kind, revision: &str| {
        let ctx = QueryContext {
            namespace: "test".into(),
            route: revision.into(),
            interval: "30s".into(),
            ..QueryContext::default()
        };
        render(
            "builtin",
            builtin_query(kind, QuerySet::QueueProxyOtel).expect("built-in"),
            &ctx,
        )
        .expect("renders")
    };
    for revision in ["podinfo-00002", "podinfo-00003"] {
        let rate = poll(
            &provider,
            &otel(MetricKind::SuccessRate, revision),
            Duration::from_secs(40),
            |v| (94.0..=96.0).contains(&v),
        )
        .await
        .unwrap_or_else(|e| panic!("{revision}: {e}"));
        let p99 = poll(
            &provider,
            &otel(MetricKind::Duration, revision),
            Duration::from_secs(20),
            |v| (250.0..=500.0).contains(&v),
        )
        .await
        .unwrap_or_else(|e| panic!("{revision}: {e}"));
        eprintln!("{revision}: success rate {rate:.2}%, p99 {p99:.0} ms");
    }
    let idle = provider.query(&otel(MetricKind::SuccessRate, "podinfo-00009")).await;
    assert_eq!(idle, Ok(QueryValue::NoData), "a revision without series has no data");
    prometheus.stop();
}

/// The Prometheus configuration `deploy/knative/prometheus.yaml` installs.
fn installed_prometheus_config() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/knative/prometheus.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/knative/prometheus.yaml");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("yaml");
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .and_then(|d| d["data"]["prometheus.yml"].as_str())
        .expect("the ConfigMap's prometheus.yml");
    serde_saphyr::from_str(config).expect("prometheus.yml is YAML")
}

#[tokio::test]
async fn the_installed_prometheus_configuration_keeps_what_the_built_in_queries_read() {
    let app = DemoApp::start("podinfo-00002", Profile::default()).await.expect("app");
    let router = TrafficRouter::start().await.expect("router");
    router.set_host(
        "podinfo.test",
        vec![(
            Backend {
                namespace: "test".into(),
                revision: "podinfo-00002".into(),
                addr: app.addr,
            },
            100,
        )],
    );
    // The installed scrape job, pointed at the sandbox's Kourier stand-in instead of discovering
    // pods: its metric relabelling (what it keeps) is what is under test. Pod discovery itself
    // cannot run here (no cluster, and Debian's Prometheus is built without Kubernetes
    // discovery).
    let mut config = installed_prometheus_config();
    config["global"]["scrape_interval"] = "1s".into();
    let job = &mut config["scrape_configs"][0];
    assert_eq!(job["job_name"], "kourier");
    let job = job.as_object_mut().expect("job");
    job.remove("kubernetes_sd_configs");
    job.remove("relabel_configs");
    job.insert(
        "static_configs".into(),
        serde_json::json!([{"targets": [router.admin_addr.to_string()]}]),
    );
    let mut prometheus =
        Prometheus::start_with_config(&serde_json::to_string(&config).expect("json")).unwrap_or_else(|e| panic!("{e}"));
    serin_metrics::install_crypto_provider();
    let provider = PrometheusProvider::new(PrometheusConfig::new(&prometheus.url)).expect("provider");
    let mut spec = hey::parse_command("hey -z 20s -q 10 -c 2 http://podinfo.test/").expect("spec");
    spec.connect_to = Some(router.addr.to_string());
    let load = tokio::spawn(async move { generator::run(&spec).await });
    let rate = poll(
        &provider,
        &query(MetricKind::SuccessRate, "podinfo-00002"),
        Duration::from_secs(20),
        |v| v == 100.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let p99 = poll(
        &provider,
        &query(MetricKind::Duration, "podinfo-00002"),
        Duration::from_secs(10),
        |v| v > 0.0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("through the installed configuration: success rate {rate}%, p99 {p99:.1} ms");
    let dropped = provider.query("count(envoy_cluster_upstream_cx_total)").await;
    assert_eq!(
        dropped,
        Ok(QueryValue::NoData),
        "series the queries do not read are dropped"
    );
    load.abort();
    prometheus.stop();
}
