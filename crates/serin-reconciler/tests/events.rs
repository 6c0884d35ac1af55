//! The event recorder against the API emulator: client-go-style aggregation, bounded memory.

use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::{Api, api::ListParams};
use serin_api::Canary;
use serin_core::{Event, Severity};
use serin_reconciler::events::{EventRecorder, REMEMBERED};
use serin_sandbox::kube_api::KubeApi;

fn canary() -> Canary {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seed/podinfo-canary.yaml"),
    )
    .expect("seed");
    let mut canary: Canary = serde_saphyr::from_str(&text).expect("canary");
    canary.metadata.uid = Some("uid-1".into());
    canary
}

fn normal(message: &str) -> Event {
    Event {
        severity: Severity::Normal,
        message: message.into(),
    }
}

/// (message, count) of every Event object, oldest first.
async fn stored(api: &Api<KubeEvent>, message: &str) -> Vec<i32> {
    let mut list = api.list(&ListParams::default()).await.expect("list").items;
    list.sort_by_key(|e| e.metadata.resource_version.clone().and_then(|v| v.parse::<u64>().ok()));
    list.into_iter()
        .filter(|e| e.message.as_deref() == Some(message))
        .map(|e| e.count.unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn repeats_are_counted_and_only_the_most_recent_events_are_remembered() {
    let api = KubeApi::start(0).await.expect("start");
    api.create_namespace("test");
    let client = api.client().expect("client");
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "test");
    let recorder = EventRecorder::new(client, "serin");
    let canary = canary();

    recorder.record(&canary, &normal("first")).await;
    recorder.record(&canary, &normal("first")).await;
    assert_eq!(stored(&events, "first").await, [2], "a repeat bumps the count");

    // Fill the memory with other events: "first" is forgotten, so it starts a new object.
    for i in 0..REMEMBERED {
        recorder.record(&canary, &normal(&format!("other {i}"))).await;
    }
    recorder.record(&canary, &normal("first")).await;
    assert_eq!(stored(&events, "first").await, [2, 1]);
    let last = format!("other {}", REMEMBERED - 1);
    recorder.record(&canary, &normal(&last)).await;
    assert_eq!(stored(&events, &last).await, [2], "a recent one is still aggregated");
}

#[tokio::test]
async fn a_successor_does_not_record_again_what_its_predecessor_recorded_in_the_unfinished_step() {
    let api = KubeApi::start(0).await.expect("start");
    api.create_namespace("test");
    let client = api.client().expect("client");
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "test");
    let now = jiff::Timestamp::now();
    let at = |seconds: i64| serin_api::rfc3339(serin_core::Time::from_millis(now.as_millisecond() + seconds * 1000));
    // The rollout's last status change is 5 s from now: the predecessor's "earlier step" event
    // (recorded now) came before it, its "unfinished step" event (10 s from now) after it.
    let mut canary = canary();
    canary.status = Some(
        serde_json::from_value(serde_json::json!({
            "phase": "Progressing",
            "lastDecision": {"summary": "analysis passed; 10% of traffic", "at": at(5)},
        }))
        .expect("status"),
    );
    let predecessor = EventRecorder::new(client.clone(), "serin");
    predecessor.record(&canary, &normal("earlier step")).await;
    let unfinished: KubeEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "podinfo.unfinished", "namespace": "test"},
        "involvedObject": {"kind": "Canary", "name": "podinfo", "namespace": "test", "uid": "uid-1"},
        "reason": "Synced", "type": "Normal", "message": "unfinished step", "count": 1,
        "firstTimestamp": at(10), "lastTimestamp": at(10),
    }))
    .expect("event");
    events.create(&Default::default(), &unfinished).await.expect("create");

    let successor = EventRecorder::new(client.clone(), "serin");
    assert_eq!(
        successor.record(&canary, &normal("unfinished step")).await,
        serin_reconciler::events::Recorded::AlreadyThere
    );
    assert_eq!(stored(&events, "unfinished step").await, [1], "not recorded twice");
    successor.record(&canary, &normal("earlier step")).await;
    assert_eq!(
        stored(&events, "earlier step").await,
        [2],
        "aggregated with the predecessor's"
    );

    // With no rollout in flight, nothing is read: a repeat after a restart is a new object, as
    // under client-go.
    let mut settled = canary.clone();
    settled.metadata.uid = Some("uid-2".into());
    if let Some(status) = settled.status.as_mut() {
        status.phase = Some("Succeeded".into());
    }
    EventRecorder::new(client.clone(), "serin")
        .record(&settled, &normal("settled"))
        .await;
    EventRecorder::new(client, "serin")
        .record(&settled, &normal("settled"))
        .await;
    assert_eq!(stored(&events, "settled").await, [1, 1]);
}
