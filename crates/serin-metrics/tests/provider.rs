//! The Prometheus provider against a local HTTP server that records what it receives.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Query, State},
    http::HeaderMap,
    routing::get,
};
use serin_core::MetricOutcome;
use serin_metrics::{Auth, MetricsProvider, PrometheusConfig, PrometheusProvider, QueryError, QueryValue, query_all};

/// What one request carried: the query, `Authorization`, `X-Tenant`.
type Received = (String, Option<String>, Option<String>);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

async fn api(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> String {
    let query = q.get("query").cloned().unwrap_or_default();
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.0
        .lock()
        .expect("lock")
        .push((query.clone(), header("authorization"), header("x-tenant")));
    if query == "slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#.to_owned()
}

async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/prefix/api/v1/query", get(api))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/prefix"), seen)
}

#[tokio::test]
async fn sends_collapsed_query_auth_and_headers_without_accumulating_them() {
    let (base, seen) = server().await;
    let mut config = PrometheusConfig::new(&base);
    config.auth = Auth::Bearer("t0ken".into());
    config.headers = vec![("X-Tenant".into(), "team-a".into())];
    serin_metrics::install_crypto_provider();
    let p = PrometheusProvider::new(config).expect("provider");
    assert_eq!(p.query("sum(\n  up\n)").await, Ok(QueryValue::Value(1.0)));
    assert!(p.is_online().await.is_ok());
    let seen = seen.0.lock().expect("lock").clone();
    assert_eq!(
        seen[0],
        ("sum( up )".into(), Some("Bearer t0ken".into()), Some("team-a".into()))
    );
    assert_eq!(seen[1].0, "vector(1)");
    assert_eq!(
        seen[1].1.as_deref(),
        Some("Bearer t0ken"),
        "the header is sent once per query, not accumulated"
    );
}

#[tokio::test]
async fn basic_auth_is_sent() {
    let (base, seen) = server().await;
    let mut config = PrometheusConfig::new(&base);
    config.auth = Auth::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    serin_metrics::install_crypto_provider();
    let p = PrometheusProvider::new(config).expect("provider");
    let _ = p.query("up").await;
    assert_eq!(seen.0.lock().expect("lock")[0].1.as_deref(), Some("Basic dTpw"));
}

#[tokio::test]
async fn queries_time_out_and_run_concurrently() {
    let (base, _) = server().await;
    let mut config = PrometheusConfig::new(&base);
    config.timeout = Duration::from_millis(300);
    serin_metrics::install_crypto_provider();
    let p = PrometheusProvider::new(config).expect("provider");
    assert_eq!(
        p.query("slow").await,
        Err(QueryError::Timeout(Duration::from_millis(300)))
    );
    let started = std::time::Instant::now();
    let outcomes = query_all(&p, &["slow".into(), "slow".into(), "slow".into(), "up".into()]).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "queries ran sequentially: {:?}",
        started.elapsed()
    );
    assert!(matches!(outcomes[0], MetricOutcome::Error(ref e) if e.starts_with("timed out")));
    assert_eq!(outcomes[3], MetricOutcome::Value(1.0));
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    serin_metrics::install_crypto_provider();
    let p = PrometheusProvider::new(PrometheusConfig::new(&base)).expect("provider");
    assert!(matches!(p.query("up").await, Err(QueryError::Transport(_))));
}

#[tokio::test]
async fn the_mock_stands_in_for_prometheus() {
    let mut mock = serin_metrics::MockMetricsProvider::new();
    mock.expect_query().returning(|_| Ok(QueryValue::NaN));
    assert_eq!(mock.query("x").await, Ok(QueryValue::NaN));
}
