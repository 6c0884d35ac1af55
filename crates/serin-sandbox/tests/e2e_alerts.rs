//! Alerts end to end, every component a real process: an AlertProvider pointing at a receiver in
//! this test, a Canary subscribed at `error` severity. A rollback delivers exactly one message
//! naming the failed metric; a receiver answering 500 twice then 200 still gets it once; a
//! receiver that hangs does not slow the rollout.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, response::IntoResponse};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Default)]
struct Receiver {
    /// Every request's body.
    requests: Mutex<Vec<Value>>,
    /// Bodies answered 200.
    accepted: Mutex<Vec<Value>>,
    /// Statuses to answer first (0: hang).
    answers: Mutex<Vec<u16>>,
}

async fn receive(State(r): State<Arc<Receiver>>, body: Bytes) -> impl IntoResponse {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.requests.lock().expect("requests").push(value.clone());
    let status = {
        let mut answers = r.answers.lock().expect("answers");
        if answers.is_empty() { 200 } else { answers.remove(0) }
    };
    if status == 0 {
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    if status == 200 {
        r.accepted.lock().expect("accepted").push(value);
    }
    axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn wait_for(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn texts(bodies: &[Value]) -> Vec<String> {
    bodies.iter().map(|b| b.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_receiver_once_and_never_slow_a_rollout() {
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let app = Router::new().fallback(receive).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (_cluster, client, mut observer) =
        serin_sandbox::demo::seeded_cluster(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root(), true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    let providers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "test",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("flagger.app", "v1beta1", "AlertProvider"),
            "alertproviders",
        ),
    );
    let provider: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
        "metadata": {"name": "chat", "namespace": "test"},
        "spec": {"type": "slack", "channel": "deploys", "address": url},
    }))
    .expect("provider");
    providers
        .create(&PostParams::default(), &provider)
        .await
        .expect("create AlertProvider");
    let canaries = serin_sandbox::demo::canaries(&client);
    let subscribe = |severity: &str| json!({"spec": {"analysis": {"alerts": [{"name": "chat", "severity": severity, "providerRef": {"name": "chat"}}]}}});
    canaries
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(subscribe("error")))
        .await
        .expect("subscribe");

    // A promotion raises no error alert; its duration is the baseline.
    let started = Instant::now();
    let (phase, events) = serin_sandbox::demo::rollout(&mut observer, &client, "6.0.1", Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let baseline = started.elapsed();
    assert_eq!(phase, "Succeeded", "{events:#?}");
    assert!(
        receiver.requests.lock().expect("r").is_empty(),
        "no error alert on a promotion"
    );

    // A rollback on errors: exactly one message, naming the failed metric.
    let (phase, events) = serin_sandbox::demo::rollout(&mut observer, &client, "6.0.2", Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(phase, "Failed", "{events:#?}");
    wait_for(Duration::from_secs(20), "the rollback alert", || {
        !receiver.accepted.lock().expect("a").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = texts(&receiver.accepted.lock().expect("a"));
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    assert!(
        accepted[0].contains("Failed checks threshold reached"),
        "{}",
        accepted[0]
    );
    assert!(
        accepted[0].contains("success rate"),
        "the failed metric is named: {}",
        accepted[0]
    );
    assert!(accepted[0].contains("podinfo.test"), "{}", accepted[0]);

    // The receiver fails twice, then accepts: still one message, after three requests.
    *receiver.answers.lock().expect("answers") = vec![500, 500];
    let requests_before = receiver.requests.lock().expect("r").len();
    let (phase, events) = serin_sandbox::demo::rollout(&mut observer, &client, "6.0.3", Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(phase, "Failed", "{events:#?}");
    wait_for(Duration::from_secs(30), "the retried alert", || {
        receiver.accepted.lock().expect("a").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.accepted.lock().expect("a").len(), 2);
    assert_eq!(receiver.requests.lock().expect("r").len() - requests_before, 3);

    // A receiver that hangs, subscribed to every alert: the promotion takes no longer.
    *receiver.answers.lock().expect("answers") = vec![0; 50];
    canaries
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(subscribe("info")))
        .await
        .expect("subscribe to everything");
    let started = Instant::now();
    let (phase, events) = serin_sandbox::demo::rollout(&mut observer, &client, "6.0.6", Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(phase, "Succeeded", "{events:#?}");
    let with_hanging = started.elapsed();
    assert!(
        with_hanging < baseline + Duration::from_secs(8),
        "a hanging receiver slowed the rollout: {with_hanging:?} against {baseline:?}"
    );
    assert!(
        receiver.requests.lock().expect("r").len() > requests_before + 3,
        "the info alerts were attempted"
    );
}
