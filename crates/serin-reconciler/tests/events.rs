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
