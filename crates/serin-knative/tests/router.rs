//! The Knative router against the API emulator and the Knative simulator.

use std::{sync::Arc, time::Duration};

use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use serin_core::{Readiness, TrafficSplit};
use serin_knative::{KnativeRouter, Router, RouterError, Target};
use serin_sandbox::{
    knative::{Behaviour, Fate, SimConfig, Simulator, validation},
    kube_api::{AdmissionHook, FailRule, Faults, KubeApi},
};

struct Env {
    api: KubeApi,
    services: Api<DynamicObject>,
    router: KnativeRouter,
    target: Target,
    _sim: tokio::task::JoinHandle<()>,
}

async fn env(images: Vec<(String, Behaviour)>) -> Env {
    let api = KubeApi::start(0).await.expect("start");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in ["service.yaml", "revision.yaml", "route.yaml", "configuration.yaml"] {
        let text = std::fs::read_to_string(root.join("testdata/knative").join(file)).expect("crd");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("yaml");
        for d in docs.into_iter().filter(|d| d["kind"] == "CustomResourceDefinition") {
            api.install_crd(d).expect("install");
        }
    }
    validation::install(&api);
    api.create_namespace("test");
    let client = api.client().expect("client");
    let config = SimConfig {
        ready_after: Duration::from_millis(50),
        images,
        ..SimConfig::default()
    };
    let sim = tokio::spawn(Simulator::new(client.clone(), config, None).run());
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.knative.dev", "v1", "Service"),
        "services",
    );
    let services: Api<DynamicObject> = Api::namespaced_with(client.clone(), "test", &resource);
    let text = std::fs::read_to_string(root.join("testdata/seed/podinfo-ksvc.yaml")).expect("ksvc");
    let ksvc: DynamicObject = serde_saphyr::from_str(&text).expect("ksvc yaml");
    services
        .create(&PostParams::default(), &ksvc)
        .await
        .expect("create ksvc");
    let router = KnativeRouter::new(client).with_conflict_retries(8, Duration::from_millis(5));
    let target = Target::new("test", "podinfo");
    let env = Env {
        api,
        services,
        router,
        target,
        _sim: sim,
    };
    env.wait("podinfo-00001 Ready", |s| {
        s.pointer("/status/latestReadyRevisionName") == Some(&json!("podinfo-00001"))
    })
    .await;
    env
}

impl Env {
    async fn service(&self) -> Value {
        serde_json::to_value(self.services.get("podinfo").await.expect("get")).expect("json")
    }

    async fn wait(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.service().await;
            if ok(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn set_image(&self, tag: &str) {
        let patch = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("ghcr.io/stefanprodan/podinfo:{tag}")}]);
        let patch: json_patch::Patch = serde_json::from_value(patch).expect("patch");
        self.services
            .patch("podinfo", &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .expect("image");
    }

    /// Routed by us with podinfo-00001 as primary, and podinfo-00002 (6.0.1) Ready.
    async fn routed_with_a_second_revision(&self) {
        self.router
            .initialize(&self.target, "podinfo-00001")
            .await
            .expect("initialize");
        self.set_image("6.0.1").await;
        self.wait("podinfo-00002", |s| {
            s.pointer("/status/latestReadyRevisionName") == Some(&json!("podinfo-00002"))
        })
        .await;
    }

    fn split(&self, canary: &str, weight: u8) -> TrafficSplit {
        TrafficSplit {
            primary: "podinfo-00001".into(),
            canary: canary.into(),
            canary_weight: weight,
        }
    }
}

fn spec_traffic(s: &Value) -> Vec<Value> {
    s.pointer("/spec/traffic")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn never_latest_revision(s: &Value) -> bool {
    spec_traffic(s).iter().all(|t| t.get("latestRevision").is_none())
}

#[tokio::test]
async fn a_whole_rollout_through_knative() {
    let env = env(Vec::new()).await;
    let observed = env.router.observe(&env.target).await.expect("observe");
    assert_eq!(observed.primary, None);
    assert_eq!(
        observed
            .latest_created
            .as_ref()
            .map(|r| (r.name.as_str(), &r.readiness)),
        Some(("podinfo-00001", &Readiness::Ready))
    );

    env.router
        .initialize(&env.target, "podinfo-00001")
        .await
        .expect("initialize");
    let s = env.service().await;
    assert_eq!(
        s.pointer("/metadata/annotations/flagger.app~1primary-revision"),
        Some(&json!("podinfo-00001"))
    );
    assert!(never_latest_revision(&s));

    env.set_image("6.0.1").await;
    env.wait("podinfo-00002 Ready", |s| {
        s.pointer("/status/latestReadyRevisionName") == Some(&json!("podinfo-00002"))
    })
    .await;
    let s = env.service().await;
    assert_eq!(
        s.pointer("/status/traffic/0/revisionName"),
        Some(&json!("podinfo-00001")),
        "a new revision gets no traffic before the engine decides"
    );

    for weight in [10u8, 20, 30, 40, 50] {
        env.router
            .set_split(&env.target, &env.split("podinfo-00002", weight))
            .await
            .expect("split");
        let s = env.service().await;
        assert!(
            never_latest_revision(&s),
            "latestRevision appeared during analysis: {:?}",
            spec_traffic(&s)
        );
        let observed = env.router.observe(&env.target).await.expect("observe");
        assert_eq!(
            observed.latest_created.map(|r| r.name).as_deref(),
            Some(if weight > 30 { "podinfo-00003" } else { "podinfo-00002" })
        );
        if weight == 30 {
            // A third revision mid-step gets no traffic until the engine decides.
            env.set_image("6.0.2").await;
            env.wait("podinfo-00003 Ready", |s| {
                s.pointer("/status/latestReadyRevisionName") == Some(&json!("podinfo-00003"))
            })
            .await;
        }
    }
    let s = env
        .wait("programmed split", |s| {
            s.pointer("/status/traffic/1/percent") == Some(&json!(50))
        })
        .await;
    let revisions: Vec<&str> = s
        .pointer("/status/traffic")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t["revisionName"].as_str())
        .collect();
    assert_eq!(revisions, ["podinfo-00001", "podinfo-00002"]);
    assert_eq!(
        s.pointer("/status/traffic/1/url"),
        Some(&json!("http://canary-podinfo.test.example.com"))
    );

    env.router.promote(&env.target, "podinfo-00002").await.expect("promote");
    let s = env
        .wait("promotion programmed", |s| {
            s.pointer("/status/traffic/0/percent") == Some(&json!(100))
        })
        .await;
    assert_eq!(
        s.pointer("/metadata/annotations/flagger.app~1primary-revision"),
        Some(&json!("podinfo-00002"))
    );
    assert_eq!(
        s.pointer("/status/traffic/0/revisionName"),
        Some(&json!("podinfo-00002"))
    );

    env.router
        .release(&env.target, Some("podinfo-00001".into()))
        .await
        .expect("release pinned");
    let s = env.service().await;
    assert_eq!(
        spec_traffic(&s),
        vec![json!({"revisionName": "podinfo-00001", "percent": 100})]
    );
    assert!(
        s.pointer("/metadata/annotations/flagger.app~1primary-revision")
            .is_none()
    );

    env.router.release(&env.target, None).await.expect("release");
    let s = env.service().await;
    assert_eq!(spec_traffic(&s), vec![json!({"latestRevision": true, "percent": 100})]);
}

#[tokio::test]
async fn conflicts_are_retried_and_the_final_state_is_right() {
    let env = env(Vec::new()).await;
    env.routed_with_a_second_revision().await;
    env.api.set_faults(Faults {
        writes: Some(FailRule {
            code: 409,
            ratio: 0.3,
            next: 0,
            also: Vec::new(),
        }),
        ..Faults::default()
    });
    for weight in [10u8, 20, 30, 40, 50] {
        env.router
            .set_split(&env.target, &env.split("podinfo-00002", weight))
            .await
            .expect("split despite 409s");
    }
    env.api.set_faults(Faults::default());
    let s = env.service().await;
    assert_eq!(
        spec_traffic(&s)[1],
        json!({"revisionName": "podinfo-00002", "percent": 50, "tag": "canary"})
    );
}

#[tokio::test]
async fn knative_refusals_are_errors_with_knatives_message_and_not_retried() {
    let env = env(Vec::new()).await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let hook: AdmissionHook = Arc::new(move |_, obj, _| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if obj.pointer("/spec/traffic/1/percent") == Some(&json!(30)) {
            Err("traffic of 30% is frozen".into())
        } else {
            Ok(())
        }
    });
    env.api
        .add_admission_hook("serving.knative.dev", "services", "policy.example.com", hook);
    env.router
        .initialize(&env.target, "podinfo-00001")
        .await
        .expect("initialize");
    let before = calls.load(std::sync::atomic::Ordering::Relaxed);
    let err = env
        .router
        .set_split(&env.target, &env.split("podinfo-00001x", 30))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, RouterError::Rejected { message, .. } if message.contains("traffic of 30% is frozen")),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::Relaxed) - before,
        1,
        "a refusal is not retried"
    );

    // A split naming a revision that does not exist passes admission; Knative reports it.
    env.router
        .set_split(&env.target, &env.split("podinfo-00099", 10))
        .await
        .expect("accepted");
    env.wait("RoutesReady=False", |s| {
        s.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "RoutesReady" && c["status"] == "False"))
    })
    .await;
    // Knative's refusal is the controller's log line; the observation itself still succeeds.
    let observed = env.router.observe(&env.target).await.expect("observe");
    assert!(observed.primary.is_some(), "{observed:?}");
    // A write that sums to 90 is refused by Knative's own validation.
    let bad = json!({"spec": {"traffic": [{"revisionName": "podinfo-00001", "percent": 90}]}});
    let err = env
        .services
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(bad))
        .await
        .expect_err("sum");
    assert!(err.to_string().contains("Traffic targets sum to 90, want 100"), "{err}");
}

#[tokio::test]
async fn failed_and_missing_things_are_typed_not_panics() {
    let fail = Behaviour {
        fate: Fate::Fail("ContainerMissing".into()),
        ..Behaviour::default()
    };
    let env = env(vec![("podinfo:6.0.9".into(), fail)]).await;
    env.router
        .initialize(&env.target, "podinfo-00001")
        .await
        .expect("initialize");
    env.set_image("6.0.9").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let observed = env.router.observe(&env.target).await.expect("observe");
        if let Some(rev) = observed.latest_created.filter(|r| r.name == "podinfo-00002")
            && matches!(rev.readiness, Readiness::Failed { ref reason } if reason.starts_with("ContainerMissing"))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "podinfo-00002 never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The annotation removed by hand: no primary, no panic.
    env.services
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"flagger.app/primary-revision": null}}})),
        )
        .await
        .expect("remove");
    assert_eq!(env.router.observe(&env.target).await.expect("observe").primary, None);
    // Deleted mid-rollout: a typed error.
    env.services
        .delete("podinfo", &Default::default())
        .await
        .expect("delete");
    let err = env.router.observe(&env.target).await.expect_err("gone");
    assert!(
        matches!(err, RouterError::NotFound(ref s) if s == "podinfo.test"),
        "{err}"
    );
    let err = env
        .router
        .set_split(&env.target, &env.split("podinfo-00002", 10))
        .await
        .expect_err("gone");
    assert!(matches!(err, RouterError::NotFound(_)), "{err}");
}

/// Feeds a cache from watches of the test namespace, as the reconciler does.
fn spawn_reflectors(client: kube::Client, writer: serin_knative::KnativeCacheWriter) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    use serin_knative::cache::{revision_resource, service_resource};
    let services = watcher(
        Api::<serin_knative::CachedService>::namespaced_with(client.clone(), "test", &service_resource()),
        watcher::Config::default(),
    )
    .reflect(writer.services);
    let revisions = watcher(
        Api::<serin_knative::CachedRevision>::namespaced_with(client, "test", &revision_resource()),
        watcher::Config::default(),
    )
    .reflect(writer.revisions);
    tokio::spawn(async move {
        futures::stream::select(services.map(|_| ()), revisions.map(|_| ()))
            .for_each(|()| async {})
            .await;
    })
}

fn reads(api: &KubeApi) -> u64 {
    api.request_counts()
        .iter()
        .filter(|((verb, resource, _), _)| verb == "get" && (resource == "services" || resource == "revisions"))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn a_cached_router_sees_what_a_reading_one_sees_without_reading_and_survives_a_stale_cache() {
    let env = env(Vec::new()).await;
    let client = env.api.client().expect("client");
    let (cache, writer) = serin_knative::KnativeCache::new();
    let cached = KnativeRouter::new(client.clone())
        .with_conflict_retries(8, Duration::from_millis(5))
        .with_cache(cache);
    let reflectors = spawn_reflectors(client, writer);
    env.routed_with_a_second_revision().await;
    // Once the cache has caught up, the two routers agree, and the cached one does not GET.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = env.router.observe(&env.target).await.expect("observe");
        let before = reads(&env.api);
        let seen = cached.observe(&env.target).await.expect("cached observe");
        if seen == fresh {
            assert_eq!(reads(&env.api), before, "the cached router read from the API");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cache never caught up: {seen:?} vs {fresh:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Freeze the cache, then change the Service behind its back: the cached resourceVersion is
    // stale, the guarded write conflicts, and the retry from a fresh GET lands.
    reflectors.abort();
    let _ = reflectors.await;
    env.services
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("label");
    cached
        .set_split(&env.target, &env.split("podinfo-00002", 30))
        .await
        .expect("split over a stale cache");
    let s = env.service().await;
    assert_eq!(
        spec_traffic(&s)[1],
        json!({"revisionName": "podinfo-00002", "percent": 30, "tag": "canary"})
    );
    assert_eq!(
        s.pointer("/metadata/labels/touched"),
        Some(&json!("yes")),
        "the other write was kept"
    );
    // The frozen cache still holds the old spec; the router prefers its own newer write.
    cached.promote(&env.target, "podinfo-00002").await.expect("promote");
    let seen = cached.observe(&env.target).await.expect("observe");
    assert_eq!(
        seen.primary.map(|r| r.name),
        Some("podinfo-00002".to_owned()),
        "our own write is visible before the cache catches up"
    );
}
