//! The reconciler's alerting against the API emulator: a step that raises an alert resolves
//! the Canary's AlertProviders, sends through the queue to a local receiver, and records a
//! provider it cannot find as a Warning event and `AlertsReady=False`.

mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State};
use k8s_openapi::api::core::v1::Event;
use kube::{
    Api,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use serin_alerts::DispatcherConfig;
use serin_core::{HookOutcome, Revision, World};
use serin_knative::MockRouter;
use serin_metrics::{MockMetricsProvider, QueryValue};
use serin_reconciler::{Config, Context, alerting::Alerting, reconcile};
use serin_webhook::MockWebhookClient;

#[tokio::test]
async fn an_alert_reaches_its_provider_and_a_missing_provider_is_a_condition_and_an_event() {
    serin_metrics::install_crypto_provider();
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let app = Router::new()
        .fallback(|State(r): State<Arc<Mutex<Vec<Value>>>>, body: Bytes| async move {
            r.lock()
                .expect("r")
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            "ok"
        })
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (api, client, canaries) = support::emulator_with_seed().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let crd = std::fs::read_to_string(root.join("deploy/crds/alertproviders.flagger.app.yaml")).expect("crd");
    api.install_crd(serde_saphyr::from_str(&crd).expect("yaml"))
        .expect("install");
    let providers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "test",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("flagger.app", "v1beta1", "AlertProvider"),
            "alertproviders",
        ),
    );
    let chat: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
        "metadata": {"name": "chat", "namespace": "test"},
        "spec": {"type": "slack", "channel": "deploys", "address": url},
    }))
    .expect("provider");
    providers.create(&PostParams::default(), &chat).await.expect("create");
    canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"analysis": {"alerts": [
                {"name": "team", "providerRef": {"name": "chat"}},
                {"name": "gone", "severity": "info", "providerRef": {"name": "missing"}},
            ]}}})),
        )
        .await
        .expect("subscribe");

    let mut router = MockRouter::new();
    router.expect_observe().returning(|_| {
        Ok(World {
            primary: None,
            latest_created: Some(Revision::ready("podinfo-00001")),
            latest_ready: Some("podinfo-00001".into()),
        })
    });
    router.expect_initialize().returning(|_, _| Ok(()));
    let mut metrics = MockMetricsProvider::new();
    metrics.expect_query().returning(|_| Ok(QueryValue::Value(100.0)));
    metrics.expect_is_online().returning(|| Ok(()));
    let mut webhooks = MockWebhookClient::new();
    webhooks.expect_call().returning(|_| HookOutcome::Passed);
    let config = DispatcherConfig {
        min_interval: Duration::ZERO,
        ..DispatcherConfig::default()
    };
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            Arc::new(router),
            Arc::new(webhooks),
            Arc::new(metrics),
            Config::default(),
        )
        .with_alerting(Alerting::new(config, None).with_cluster_name(Some("eu-1".into()))),
    );
    let canary = canaries.get("podinfo").await.expect("get");
    reconcile(Arc::new(canary), ctx).await.expect("reconcile");

    let status = canaries.get("podinfo").await.expect("get").status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Initialized"));
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == "AlertsReady")
        .expect("AlertsReady");
    assert_eq!(
        (condition.status.as_str(), condition.message.as_deref()),
        ("False", Some("alert provider missing.test error: not found"))
    );
    let events: Api<Event> = Api::namespaced(client, "test");
    let messages: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert!(
        messages.contains(&"alert provider missing.test error: not found".to_owned()),
        "{messages:#?}"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.lock().expect("r").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no alert received");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = received.lock().expect("r")[0].clone();
    assert_eq!(body["channel"], "deploys");
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["text"], "New Service detected, initialization completed.");
    assert_eq!(attachment["author_name"], "podinfo.test");
    assert_eq!(
        attachment["fields"][0],
        json!({"title": "Cluster", "value": "eu-1", "short": false})
    );
    assert_eq!(attachment["fields"][1]["title"], "Target");
}
