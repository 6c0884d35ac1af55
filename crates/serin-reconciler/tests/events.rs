//! The event recorder against the API emulator: client-go-style aggregation, bounded memory, and
//! no event recorded twice for one status across a restart or failover.

use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::{Api, api::ListParams};
use serin_api::Canary;
use serin_core::{Event, Severity};
use serin_reconciler::events::{EventRecorder, REMEMBERED, Recorded};
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

    // Fill the memory with other events: "first" is forgotten. Its name (a hash of the Canary,
    // the message and the status) finds it again, and it is counted (client-go would start a
    // new object).
    for i in 0..REMEMBERED {
        recorder.record(&canary, &normal(&format!("other {i}"))).await;
    }
    assert_eq!(recorder.record(&canary, &normal("first")).await, Recorded::Written);
    assert_eq!(stored(&events, "first").await, [3]);
    let last = format!("other {}", REMEMBERED - 1);
    recorder.record(&canary, &normal(&last)).await;
    assert_eq!(stored(&events, &last).await, [2], "a recent one is still aggregated");
}

#[tokio::test]
async fn a_successor_does_not_record_again_what_its_predecessor_recorded_for_the_same_status() {
    let api = KubeApi::start(0).await.expect("start");
    api.create_namespace("test");
    let client = api.client().expect("client");
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "test");
    let at = |decided: &str| {
        let mut c = canary();
        c.status = Some(
            serde_json::from_value(serde_json::json!({
                "phase": "Progressing",
                "lastDecision": {"summary": "analysis passed; 10% of traffic", "at": decided},
            }))
            .expect("status"),
        );
        c
    };
    let before_step = at("2026-12-02T10:00:00Z");
    // The predecessor set the traffic and recorded the step's event, and was killed before
    // writing the status: its successor redoes the step from the same status.
    let predecessor = EventRecorder::new(client.clone(), "serin");
    assert_eq!(
        predecessor
            .record(&before_step, &normal("Advance podinfo.test canary weight 20"))
            .await,
        Recorded::Written
    );
    let successor = EventRecorder::new(client.clone(), "serin");
    assert_eq!(
        successor
            .record(&before_step, &normal("Advance podinfo.test canary weight 20"))
            .await,
        Recorded::AlreadyThere
    );
    assert_eq!(
        stored(&events, "Advance podinfo.test canary weight 20").await,
        [1],
        "not recorded twice"
    );

    // The same message after a later status change is a repeat: counted.
    let later = at("2026-12-02T10:01:00Z");
    assert_eq!(
        successor
            .record(&later, &normal("Advance podinfo.test canary weight 20"))
            .await,
        Recorded::Written
    );
    assert_eq!(stored(&events, "Advance podinfo.test canary weight 20").await, [2]);
    // And a fresh recorder after that change creates it anew (as client-go would after a
    // restart), rather than taking it for the redone step's.
    assert_eq!(
        EventRecorder::new(client, "serin")
            .record(&later, &normal("Advance podinfo.test canary weight 20"))
            .await,
        Recorded::Written
    );
    assert_eq!(stored(&events, "Advance podinfo.test canary weight 20").await, [2, 1]);
}
