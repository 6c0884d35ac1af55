//! The reconciler with a fake `Router`, mockall mocks of `MetricsProvider` and `WebhookClient`, a
//! virtual clock, and the API emulator holding Canaries, status and events.

mod support;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicI64, Ordering},
};

use k8s_openapi::api::core::v1::Event;
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serin_api::Canary;
use serin_core::{HookOutcome, Readiness, Revision, Time, TrafficSplit, World};
use serin_knative::{MockRouter, Router, RouterError, Target};
use serin_metrics::{MockMetricsProvider, QueryValue};
use serin_reconciler::{Config, Context, reconcile};
use serin_sandbox::kube_api::KubeApi;
use serin_webhook::MockWebhookClient;

/// What the mocked router did.
#[derive(Default)]
struct Routed {
    world: World,
    writes: Vec<String>,
}

fn world(primary: Option<&str>, latest: &str) -> World {
    World {
        primary: primary.map(Revision::ready),
        latest_created: Some(Revision::ready(latest)),
        latest_ready: Some(latest.into()),
    }
}

/// A router that remembers what it was told: a small fake, where a mock would need a closure
/// per method sharing the state.
struct FakeRouter(Arc<Mutex<Routed>>);

#[async_trait::async_trait]
impl Router for FakeRouter {
    async fn observe(&self, _: &Target) -> Result<World, RouterError> {
        Ok(self.0.lock().expect("lock").world.clone())
    }

    async fn initialize(&self, _: &Target, primary: &str) -> Result<(), RouterError> {
        let mut st = self.0.lock().expect("lock");
        st.world.primary = Some(Revision::ready(primary));
        st.writes.push(format!("initialize {primary}"));
        Ok(())
    }

    async fn set_split(&self, _: &Target, split: &TrafficSplit) -> Result<(), RouterError> {
        let write = format!("split {} {}%", split.canary, split.canary_weight);
        self.0.lock().expect("lock").writes.push(write);
        Ok(())
    }

    async fn promote(&self, _: &Target, revision: &str) -> Result<(), RouterError> {
        let mut st = self.0.lock().expect("lock");
        st.world.primary = Some(Revision::ready(revision));
        st.writes.push(format!("promote {revision}"));
        Ok(())
    }

    async fn release(&self, _: &Target, pin: Option<String>) -> Result<(), RouterError> {
        let write = format!("release {pin:?}");
        self.0.lock().expect("lock").writes.push(write);
        Ok(())
    }
}

async fn setup(router: impl Router + 'static, clock: Arc<AtomicI64>) -> (KubeApi, Arc<Context>, Api<Canary>) {
    let (api, client, canaries) = support::emulator_with_seed().await;
    let mut metrics = MockMetricsProvider::new();
    metrics.expect_query().returning(|q| {
        Ok(QueryValue::Value(if q.contains("histogram_quantile") {
            12.0
        } else {
            100.0
        }))
    });
    metrics.expect_is_online().returning(|| Ok(()));
    let mut webhooks = MockWebhookClient::new();
    webhooks.expect_call().returning(|_| HookOutcome::Passed);
    let mut ctx = Context::new(
        client.clone(),
        Arc::new(router),
        Arc::new(webhooks),
        Arc::new(metrics),
        Config::default(),
    );
    ctx.clock = Arc::new(move || Time::from_millis(clock.load(Ordering::SeqCst)));
    (api, Arc::new(ctx), canaries)
}

async fn events(api: &KubeApi) -> Vec<String> {
    let client = api.client().expect("client");
    let events: Api<Event> = Api::namespaced(client, "test");
    let mut list = events.list(&ListParams::default()).await.expect("events").items;
    list.sort_by_key(|e| e.metadata.resource_version.clone().and_then(|v| v.parse::<u64>().ok()));
    list.into_iter().filter_map(|e| e.message).collect()
}

#[tokio::test]
async fn seed_rollout_with_mocked_providers_in_virtual_time() {
    let state = Arc::new(Mutex::new(Routed {
        world: world(None, "podinfo-00001"),
        writes: Vec::new(),
    }));
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let (api, ctx, canaries) = setup(FakeRouter(state.clone()), clock.clone()).await;

    let action = reconcile(Arc::new(canaries.get("podinfo").await.expect("get")), ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Config::default().resync),
        "nothing to roll out: back at the resync"
    );
    let status = canaries.get("podinfo").await.expect("get").status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Initialized"));
    assert_eq!(
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Promoted")
            .map(|c| c.status.as_str()),
        Some("True")
    );

    // Once settled, a status that does not change is not rewritten (the second reconcile still
    // updates the explanation from "routing taken over" to "nothing to roll out").
    let _ = reconcile(Arc::new(canaries.get("podinfo").await.expect("get")), ctx.clone())
        .await
        .expect("settle");
    let rv = canaries.get("podinfo").await.expect("get").metadata.resource_version;
    let _ = reconcile(Arc::new(canaries.get("podinfo").await.expect("get")), ctx.clone())
        .await
        .expect("again");
    assert_eq!(
        canaries.get("podinfo").await.expect("get").metadata.resource_version,
        rv,
        "an unchanged status is not written"
    );

    // New revision: steps every 15 s of virtual time until promotion.
    state.lock().expect("lock").world.latest_created = Some(Revision {
        name: "podinfo-00002".into(),
        readiness: Readiness::Ready,
    });
    for _ in 0..10 {
        let canary = canaries.get("podinfo").await.expect("get");
        if canary.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded") {
            break;
        }
        let _ = reconcile(Arc::new(canary), ctx.clone()).await.expect("reconcile");
        // Between steps (our own status write echoing back, a Knative status update), nothing
        // is written and the last step stays the last decision.
        clock.fetch_add(1_000, Ordering::SeqCst);
        let stepped = canaries.get("podinfo").await.expect("get");
        let _ = reconcile(Arc::new(stepped.clone()), ctx.clone())
            .await
            .expect("between steps");
        let after = canaries.get("podinfo").await.expect("get");
        assert_eq!(
            after.metadata.resource_version,
            stepped.metadata.resource_version,
            "a reconcile between steps wrote status: {:?}",
            after.status.and_then(|s| s.last_decision).map(|d| d.summary)
        );
        clock.fetch_add(14_000, Ordering::SeqCst);
    }
    let writes = state.lock().expect("lock").writes.clone();
    assert_eq!(
        writes,
        [
            "initialize podinfo-00001",
            "split podinfo-00002 10%",
            "split podinfo-00002 20%",
            "split podinfo-00002 30%",
            "split podinfo-00002 40%",
            "split podinfo-00002 50%",
            "promote podinfo-00002"
        ]
    );
    let status = canaries.get("podinfo").await.expect("get").status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    assert_eq!(status.primary_revision.as_deref(), Some("podinfo-00002"));
    assert!(status.last_decision.is_some_and(|d| d.summary.contains("promoted")));
    let events = events(&api).await;
    assert_eq!(
        events.first().map(String::as_str),
        Some("all the metrics providers are available!"),
        "Flagger's provider check while initializing: {events:#?}"
    );
    assert!(
        events.contains(&"Promotion completed! Scaling down podinfo.test".to_owned()),
        "{events:#?}"
    );
}

#[tokio::test]
async fn invalid_canaries_get_conditions_and_an_event_and_nothing_is_routed() {
    let router = MockRouter::new(); // any call would panic: no expectations
    let clock = Arc::new(AtomicI64::new(0));
    let (api, ctx, canaries) = setup(router, clock).await;
    let mut canary = canaries.get("podinfo").await.expect("get");
    canary.spec.provider = None;
    let _ = reconcile(Arc::new(canary.clone()), ctx.clone())
        .await
        .expect("reconcile");
    let status = canaries.get("podinfo").await.expect("get").status.expect("status");
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("InvalidSpec"))
    );
    assert!(ready.message.as_deref().is_some_and(|m| m.contains("spec.provider")));
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(stalled.status, "True");
    let events = events(&api).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].starts_with("invalid Canary: spec.provider"));
    // Reconciling again writes no second event.
    let _ = reconcile(
        Arc::new(
            canaries
                .get("podinfo")
                .await
                .map(|mut c| {
                    c.spec.provider = None;
                    c
                })
                .expect("get"),
        ),
        ctx,
    )
    .await
    .expect("again");
    assert_eq!(self::events(&api).await.len(), 1);
}

#[tokio::test]
async fn an_unusable_metrics_server_is_an_error_not_the_default_prometheus() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_api, ctx, canaries) = setup(MockRouter::new(), clock).await;
    let mut canary = canaries.get("podinfo").await.expect("get");
    canary.spec.metrics_server = Some("prometheus:9090".into());
    let error = ctx.provider_for(&canary).err().expect("no fallback");
    assert!(
        error.starts_with("Error building Prometheus client for prometheus:9090"),
        "{error}"
    );
    canary.spec.metrics_server = Some("http://prometheus.other:9090".into());
    assert!(ctx.provider_for(&canary).is_ok());
}

#[tokio::test]
async fn a_refusal_is_recorded_once_and_backed_off_instead_of_retried_every_2s() {
    let mut router = MockRouter::new();
    router.expect_observe().returning(|t| {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "services.serving.knative.dev \"podinfo\" is forbidden: User \"system:serviceaccount:serin-system:serin\" cannot get resource \"services\""
        }))
        .expect("status");
        Err(serin_knative::RouterError::Api {
            service: t.display(),
            code: Some(status.code),
            source: Box::new(kube::Error::Api(Box::new(status))),
        })
    });
    let clock = Arc::new(AtomicI64::new(0));
    let (api, ctx, canaries) = setup(router, clock).await;
    for _ in 0..2 {
        let action = reconcile(Arc::new(canaries.get("podinfo").await.expect("get")), ctx.clone())
            .await
            .expect("a refusal is not a reconcile error");
        assert_eq!(
            action,
            kube::runtime::controller::Action::requeue(serin_reconciler::PERMANENT_ERROR_BACKOFF)
        );
    }
    let status = canaries.get("podinfo").await.expect("get").status.expect("status");
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_deref()),
        ("True", Some("PermanentError"))
    );
    let events = events(&api).await;
    assert_eq!(events.len(), 1, "one Warning for the same refusal: {events:#?}");
    assert!(events[0].contains("is forbidden"), "{events:#?}");
}

#[tokio::test]
async fn a_second_canary_on_the_same_service_is_rejected_and_routes_nothing() {
    let state = Arc::new(Mutex::new(Routed {
        world: world(None, "podinfo-00001"),
        writes: Vec::new(),
    }));
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let (api, ctx, canaries) = setup(FakeRouter(state.clone()), clock).await;
    let first = canaries.get("podinfo").await.expect("get");
    let mut second = first.clone();
    second.metadata = kube::api::ObjectMeta {
        name: Some("podinfo-again".into()),
        namespace: Some("test".into()),
        ..Default::default()
    };
    second.status = None;
    let second = canaries.create(&PostParams::default(), &second).await.expect("create");
    let (reader, mut writer) = kube::runtime::reflector::store::<Canary>();
    for c in [&first, &second] {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(c.clone()));
    }
    assert!(ctx.store.set(reader).is_ok());
    let _ = reconcile(Arc::new(first), ctx.clone()).await.expect("first");
    let writes_before = state.lock().expect("lock").writes.len();
    let _ = reconcile(Arc::new(second), ctx.clone()).await.expect("second");
    assert_eq!(
        state.lock().expect("lock").writes.len(),
        writes_before,
        "nothing routed"
    );
    let status = canaries
        .get("podinfo-again")
        .await
        .expect("get")
        .status
        .expect("status");
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(stalled.reason.as_deref(), Some("DuplicateTarget"));
    let events = events(&api).await;
    assert!(
        events.contains(
            &"Knative Service podinfo.test is already managed by Canary test/podinfo; remove one of them".to_owned()
        ),
        "{events:#?}"
    );
}

#[tokio::test]
async fn metric_template_providers_are_built_once_per_settings() {
    let clock = Arc::new(AtomicI64::new(0));
    let (_api, ctx, _canaries) = setup(MockRouter::new(), clock).await;
    let mut config = serin_metrics::providers::ProviderSettings::new("prometheus");
    config.address = Some("http://prometheus.monitoring:9090".into());
    let first = ctx.provider_from(&config).expect("provider");
    let again = ctx.provider_from(&config).expect("provider");
    assert!(
        Arc::ptr_eq(&first, &again),
        "the same settings reuse the provider and its client"
    );
    let mut other = config;
    other.headers.push(("X-Scope-OrgID".into(), "tenant-b".into()));
    let different = ctx.provider_from(&other).expect("provider");
    assert!(
        !Arc::ptr_eq(&first, &different),
        "other settings get their own provider"
    );
}

#[tokio::test]
async fn a_canary_read_before_our_last_status_write_is_not_decided_again() {
    let state = Arc::new(Mutex::new(Routed {
        world: world(None, "podinfo-00001"),
        writes: Vec::new(),
    }));
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let (api, ctx, canaries) = setup(FakeRouter(state.clone()), clock.clone()).await;
    for _ in 0..2 {
        let _ = reconcile(Arc::new(canaries.get("podinfo").await.expect("get")), ctx.clone())
            .await
            .expect("initialize");
    }
    state.lock().expect("lock").world.latest_created = Some(Revision::ready("podinfo-00002"));
    // The first step, from the Canary as the cache has it.
    let before_step = canaries.get("podinfo").await.expect("get");
    let _ = reconcile(Arc::new(before_step.clone()), ctx.clone())
        .await
        .expect("first step");
    assert_eq!(
        state.lock().expect("lock").writes.last().map(String::as_str),
        Some("split podinfo-00002 10%")
    );
    let advances = |events: &[String]| events.iter().filter(|e| e.starts_with("Advance")).count();
    let advanced = advances(&events(&api).await);
    let written = canaries.get("podinfo").await.expect("get").metadata.resource_version;

    // Our own traffic write triggers the next reconcile before the watch has delivered the status
    // write: the cache still holds the Canary from before the step. Deciding from it would redo
    // the step (another split, another Advance event, another status write).
    clock.fetch_add(500, Ordering::SeqCst);
    let action = reconcile(Arc::new(before_step), ctx.clone()).await.expect("stale");
    let routed = state.lock().expect("lock").writes.clone();
    assert_eq!(routed.len(), 2, "{routed:?}");
    assert_eq!(advances(&events(&api).await), advanced);
    assert_eq!(
        canaries.get("podinfo").await.expect("get").metadata.resource_version,
        written
    );
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(serin_reconciler::own_writes::CACHE_BEHIND_RETRY)
    );

    // Once the cache has the write, the rollout goes on from it: the next step at 20%.
    clock.fetch_add(15_000, Ordering::SeqCst);
    let _ = reconcile(Arc::new(canaries.get("podinfo").await.expect("get")), ctx.clone())
        .await
        .expect("second step");
    assert_eq!(
        state.lock().expect("lock").writes.last().map(String::as_str),
        Some("split podinfo-00002 20%")
    );
}
