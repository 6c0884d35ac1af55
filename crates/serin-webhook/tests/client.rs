//! The webhook client against a real local HTTP server.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::post,
};
use serin_core::HookOutcome;
use serin_webhook::{CanaryWebhookPayload, EventSink, HookCall, HttpWebhookClient, WebhookClient, call_all};

#[derive(Clone, Default)]
struct Hits(Arc<Mutex<HashMap<String, usize>>>);

impl Hits {
    fn hit(&self, key: &str) -> usize {
        let mut map = self.0.lock().expect("lock");
        let n = map.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }

    fn count(&self, key: &str) -> usize {
        self.0.lock().expect("lock").get(key).copied().unwrap_or(0)
    }
}

async fn status(State(hits): State<Hits>, Path(code): Path<u16>) -> (StatusCode, String) {
    hits.hit(&format!("status/{code}"));
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
        format!("answer {code} {}", "x".repeat(2000)),
    )
}

async fn flaky(State(hits): State<Hits>) -> StatusCode {
    if hits.hit("flaky") < 3 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn slow(State(hits): State<Hits>) -> StatusCode {
    hits.hit("slow");
    tokio::time::sleep(Duration::from_secs(5)).await;
    StatusCode::OK
}

async fn echo(State(hits): State<Hits>, body: String) -> StatusCode {
    let payload: CanaryWebhookPayload = serde_json::from_str(&body).unwrap_or_default();
    hits.hit(&format!(
        "echo/{}",
        payload.metadata.get("eventMessage").cloned().unwrap_or_default()
    ));
    StatusCode::OK
}

async fn server() -> (String, Hits) {
    let hits = Hits::default();
    let app = Router::new()
        .route("/status/{code}", post(status))
        .route("/flaky", post(flaky))
        .route("/slow", post(slow))
        .route("/echo", post(echo))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

fn call(url: String, retries: u32) -> HookCall {
    HookCall {
        name: "test".into(),
        url,
        timeout: Duration::from_millis(500),
        retries,
        disable_tls: false,
        payload: CanaryWebhookPayload {
            name: "podinfo".into(),
            namespace: "test".into(),
            ..Default::default()
        },
    }
}

fn client() -> HttpWebhookClient {
    serin_webhook::install_crypto_provider();
    HttpWebhookClient::new()
        .expect("client")
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

#[tokio::test]
async fn any_2xx_passes_including_204() {
    let (base, _) = server().await;
    for code in [200, 201, 202, 204] {
        assert_eq!(
            client().call(&call(format!("{base}/status/{code}"), 0)).await,
            HookOutcome::Passed,
            "{code}"
        );
    }
}

#[tokio::test]
async fn a_4xx_is_rejected_at_once_with_the_first_kib_of_the_body() {
    let (base, hits) = server().await;
    let outcome = client().call(&call(format!("{base}/status/403"), 3)).await;
    let HookOutcome::Rejected { status, body } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(status, 403);
    assert!(body.starts_with("answer 403 "));
    assert_eq!(body.len(), 1024);
    assert_eq!(hits.count("status/403"), 1, "4xx is not retried");
}

#[tokio::test]
async fn a_5xx_is_retried_and_keeps_its_body() {
    let (base, hits) = server().await;
    let outcome = client().call(&call(format!("{base}/status/500"), 2)).await;
    assert!(
        matches!(&outcome, HookOutcome::Rejected { status: 500, body } if body.starts_with("answer 500")),
        "{outcome:?}"
    );
    assert_eq!(hits.count("status/500"), 3, "one attempt plus two retries");
}

#[tokio::test]
async fn retries_recover_from_transient_failures() {
    let (base, hits) = server().await;
    assert_eq!(
        client().call(&call(format!("{base}/flaky"), 3)).await,
        HookOutcome::Passed
    );
    assert_eq!(hits.count("flaky"), 3);
}

#[tokio::test]
async fn a_hanging_hook_times_out_per_attempt() {
    let (base, hits) = server().await;
    let started = std::time::Instant::now();
    assert_eq!(
        client().call(&call(format!("{base}/slow"), 1)).await,
        HookOutcome::TimedOut
    );
    assert_eq!(hits.count("slow"), 2);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "timeouts must cut the 5 s handler short"
    );
}

#[tokio::test]
async fn connection_refused_is_an_error_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    drop(listener);
    let outcome = client().call(&call(url.clone(), 0)).await;
    assert!(
        matches!(&outcome, HookOutcome::Error(e) if e.starts_with(&format!("POST {url} failed"))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn hooks_of_one_step_run_concurrently() {
    let (base, _) = server().await;
    let calls: Vec<HookCall> = (0..4).map(|_| call(format!("{base}/slow"), 0)).collect();
    let started = std::time::Instant::now();
    let outcomes = call_all(&client(), &calls).await;
    assert!(outcomes.iter().all(|o| *o == HookOutcome::TimedOut));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "four 500 ms timeouts ran one after another: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn event_sink_delivers_in_the_background() {
    let (base, hits) = server().await;
    let (sink, _task) = EventSink::spawn(Arc::new(client()), 8);
    let mut c = call(format!("{base}/echo"), 0);
    c.payload = c.payload.event("hello", "Normal", 1);
    assert!(sink.send(c));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while hits.count("echo/hello") == 0 {
        assert!(std::time::Instant::now() < deadline, "event never delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn mock_client_is_usable_by_embedders() {
    let mut mock = serin_webhook::MockWebhookClient::new();
    mock.expect_call().times(1).returning(|_| HookOutcome::Rejected {
        status: 403,
        body: "Forbidden".into(),
    });
    let outcome = mock.call(&call("http://unused/".into(), 0)).await;
    assert_eq!(
        outcome,
        HookOutcome::Rejected {
            status: 403,
            body: "Forbidden".into()
        }
    );
}
