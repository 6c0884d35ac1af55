//! Every event reaches the event webhooks, as in Flagger: invalid-spec events, router errors and
//! the provider check included (they are recorded outside the engine's decision).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;

mod support;
use kube::Api;
use serin_api::Canary;
use serin_core::{HookOutcome, Revision, World};
use serin_knative::{MockRouter, RouterError};
use serin_metrics::{MockMetricsProvider, QueryError};
use serin_reconciler::{Config, Context, reconcile};
use serin_sandbox::kube_api::KubeApi;
use serin_webhook::{EventSink, HookCall, WebhookClient};

/// Records the event messages it is sent.
#[derive(Default)]
struct Recording(Mutex<Vec<(String, String)>>);

#[async_trait]
impl WebhookClient for Recording {
    async fn call(&self, call: &HookCall) -> HookOutcome {
        let message = call.payload.metadata.get("eventMessage").cloned().unwrap_or_default();
        self.0.lock().expect("lock").push((call.url.clone(), message));
        HookOutcome::Passed
    }
}

async fn context(router: MockRouter, sent: Arc<Recording>) -> (KubeApi, Arc<Context>, Api<Canary>) {
    let (api, client, canaries) = support::emulator_with_seed().await;
    let mut ctx = Context::new(
        client.clone(),
        Arc::new(router),
        sent.clone(),
        {
            let mut prometheus = MockMetricsProvider::new();
            prometheus
                .expect_is_online()
                .returning(|| Err(QueryError::Transport("connection refused".into())));
            Arc::new(prometheus)
        },
        Config::default(),
    );
    let (sink, _task) = EventSink::spawn(sent, 16);
    ctx.event_sink = Some(sink);
    ctx.event_webhook = Some("http://events.example/".into());
    (api, Arc::new(ctx), canaries)
}

async fn sent_messages(sent: &Recording, at_least: usize) -> Vec<String> {
    for _ in 0..100 {
        let got: Vec<String> = sent.0.lock().expect("lock").iter().map(|(_, m)| m.clone()).collect();
        if got.len() >= at_least {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sent.0.lock().expect("lock").iter().map(|(_, m)| m.clone()).collect()
}

#[tokio::test]
async fn invalid_spec_events_are_forwarded() {
    let sent = Arc::new(Recording::default());
    let (_api, ctx, canaries) = context(MockRouter::new(), sent.clone()).await;
    let mut canary = canaries.get("podinfo").await.expect("get");
    canary.spec.provider = None;
    let _ = reconcile(Arc::new(canary), ctx).await.expect("reconcile");
    let messages = sent_messages(&sent, 1).await;
    assert!(
        messages.iter().any(|m| m.starts_with("invalid Canary: spec.provider")),
        "{messages:#?}"
    );
    assert_eq!(sent.0.lock().expect("lock")[0].0, "http://events.example/");
}

#[tokio::test]
async fn router_errors_are_forwarded() {
    let mut router = MockRouter::new();
    router.expect_observe().returning(|_| {
        Ok(World {
            primary: None,
            latest_created: Some(Revision::ready("podinfo-00001")),
            latest_ready: Some("podinfo-00001".into()),
        })
    });
    router.expect_initialize().returning(|_, _| {
        Err(RouterError::Rejected {
            service: "podinfo.test".into(),
            message: "traffic percents must sum to 100".into(),
        })
    });
    let sent = Arc::new(Recording::default());
    let (_api, ctx, canaries) = context(router, sent.clone()).await;
    let canary = canaries.get("podinfo").await.expect("get");
    let action = reconcile(Arc::new(canary), ctx).await.expect("a refusal is backed off");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(serin_reconciler::PERMANENT_ERROR_BACKOFF)
    );
    let messages = sent_messages(&sent, 2).await;
    assert!(
        messages
            .iter()
            .any(|m| m == "Error checking metric providers: request failed: connection refused"),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m == "Knative rejected the traffic of podinfo.test: traffic percents must sum to 100"),
        "{messages:#?}"
    );
}
