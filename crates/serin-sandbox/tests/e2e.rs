//! End to end: every component a real process (API emulator + Knative simulator + router,
//! Prometheus, loadtester, controller), driven like the seed tutorial with `--fast` timings.
//! One test, scenarios in sequence on one sandbox, so that CI's two cores are not shared
//! between sandboxes.

use std::{path::PathBuf, time::Duration};

use kube::{
    Api,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use serin_sandbox::demo::Observer;
use tokio::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn rollout(observer: &mut Observer, client: &kube::Client, tag: &str) -> (String, Vec<String>) {
    serin_sandbox::demo::rollout(observer, client, tag, Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn has(events: &[String], needle: &str) -> bool {
    events.iter().any(|e| e.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_tutorial_scenarios_with_real_processes() {
    let (mut cluster, client, mut observer) =
        serin_sandbox::demo::seeded_cluster(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root(), true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));

    // No traffic at all (before any load test ran): the canary gets no data and is rolled back
    // with the no-data reason.
    let canaries = serin_sandbox::demo::canaries(&client);
    canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"analysis": {"webhooks": null}}})),
        )
        .await
        .expect("drop load test");
    let (phase, events) = rollout(&mut observer, &client, "6.0.7").await;
    assert_eq!(phase, "Failed", "{events:#?}");
    assert!(
        has(
            &events,
            "Halt advancement no values found for request-success-rate: revision podinfo-00002"
        ),
        "{events:#?}"
    );
    let webhooks =
        serin_sandbox::demo::seed_canary(&root(), true).expect("seed")["spec"]["analysis"]["webhooks"].clone();
    canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"analysis": {"webhooks": webhooks}}})),
        )
        .await
        .expect("restore load test");

    // Promotion: weights 10..50, then the analysed revision is primary with 100%.
    let (phase, events) = rollout(&mut observer, &client, "6.0.1").await;
    assert_eq!(phase, "Succeeded", "{events:#?}");
    for w in [10, 20, 30, 40, 50] {
        assert!(
            has(&events, &format!("Advance podinfo.test canary weight {w}")),
            "{events:#?}"
        );
    }
    assert!(
        has(&events, "Promotion completed! Scaling down podinfo.test"),
        "{events:#?}"
    );
    assert_eq!(
        observer.splits.last().map(|s| s.as_slice()),
        Some(&[("podinfo-00003".to_owned(), 100)][..])
    );

    // Rollback on errors (6.0.2 answers 500 to 30% of requests).
    let (phase, events) = rollout(&mut observer, &client, "6.0.2").await;
    assert_eq!(phase, "Failed", "{events:#?}");
    assert!(
        has(&events, "Halt podinfo.test advancement success rate"),
        "{events:#?}"
    );
    assert!(
        has(&events, "Rolling back podinfo.test failed checks threshold reached 5"),
        "{events:#?}"
    );
    assert_eq!(
        observer
            .splits
            .last()
            .and_then(|s| s.first())
            .map(|(r, p)| (r.as_str(), *p)),
        Some(("podinfo-00003", 100))
    );

    // Rollback on latency (6.0.3 adds 800 ms; the bound is 500 ms).
    let (phase, events) = rollout(&mut observer, &client, "6.0.3").await;
    assert_eq!(phase, "Failed", "{events:#?}");
    assert!(
        has(&events, "Halt podinfo.test advancement request duration"),
        "{events:#?}"
    );

    // A revision that fails is rolled back at once, with Knative's reason.
    let (phase, events) = rollout(&mut observer, &client, "6.0.4").await;
    assert_eq!(phase, "Failed", "{events:#?}");
    assert!(
        has(&events, "revision podinfo-00006 failed: ContainerMissing"),
        "{events:#?}"
    );

    // A revision that never becomes Ready is rolled back when progressDeadlineSeconds passes.
    canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"progressDeadlineSeconds": 5}})),
        )
        .await
        .expect("deadline");
    let (phase, events) = rollout(&mut observer, &client, "6.0.5").await;
    assert_eq!(phase, "Failed", "{events:#?}");
    assert!(
        has(
            &events,
            "Rolling back podinfo.test progress deadline exceeded: revision podinfo-00007 not Ready after 5s"
        ),
        "{events:#?}"
    );
    canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"progressDeadlineSeconds": 60}})),
        )
        .await
        .expect("deadline");

    revert_on_deletion_after_a_rollback_keeps_the_primary(&client).await;
    flagger_failed_status_is_adopted_without_analysing_the_rolled_back_revision(&mut cluster, &client).await;
}

fn services(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("serving.knative.dev", "v1", "Service");
    Api::namespaced_with(
        client.clone(),
        "test",
        &ApiResource::from_gvk_with_plural(&gvk, "services"),
    )
}

async fn service(client: &kube::Client) -> Value {
    serde_json::to_value(services(client).get("podinfo").await.expect("get ksvc")).expect("json")
}

/// Polls `probe` every 100 ms until it is true; panics with `what` after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Knative's programmed traffic, once it has caught up with the Service's spec.
async fn programmed(client: &kube::Client) -> Option<Value> {
    let s = service(client).await;
    (s.pointer("/status/observedGeneration") == s.pointer("/metadata/generation"))
        .then(|| s.pointer("/status/traffic").cloned())
        .flatten()
}

async fn canary_events(client: &kube::Client) -> Vec<String> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "test");
    events
        .list(&ListParams::default().fields("involvedObject.kind=Canary,involvedObject.name=podinfo"))
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect()
}

/// After the rollbacks above the latest Ready revision is a rolled-back one (podinfo-00005);
/// deleting the Canary with `revertOnDeletion` keeps 100% on the primary (podinfo-00003).
async fn revert_on_deletion_after_a_rollback_keeps_the_primary(client: &kube::Client) {
    let canaries = serin_sandbox::demo::canaries(client);
    assert_eq!(
        service(client).await.pointer("/status/latestReadyRevisionName"),
        Some(&json!("podinfo-00005"))
    );
    canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"revertOnDeletion": true}})),
        )
        .await
        .expect("revertOnDeletion on");
    eventually("the finalizer", Duration::from_secs(30), || async {
        let c = canaries.get("podinfo").await.expect("get canary");
        c.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"finalizer.flagger.app".to_owned())
    })
    .await;
    canaries
        .delete("podinfo", &DeleteParams::default())
        .await
        .expect("delete canary");
    eventually("the Canary to be gone", Duration::from_secs(30), || async {
        canaries.get_opt("podinfo").await.expect("get canary").is_none()
    })
    .await;
    let s = service(client).await;
    assert_eq!(
        s.pointer("/spec/traffic"),
        Some(&json!([{"revisionName": "podinfo-00003", "percent": 100}])),
        "{s:#}"
    );
    assert_eq!(s.pointer("/metadata/annotations/flagger.app~1primary-revision"), None);
    eventually(
        "Knative to program the pinned primary",
        Duration::from_secs(30),
        || async {
            programmed(client).await.is_some_and(|t| {
                t.as_array().is_some_and(|entries| {
                    entries
                        .iter()
                        .all(|e| (e["revisionName"] == "podinfo-00003" && e["percent"] == 100) || e["percent"] == 0)
                })
            })
        },
    )
    .await;
    let events = canary_events(client).await;
    assert!(has(&events, "Terminating canary podinfo.test"), "{events:#?}");
    assert!(
        has(
            &events,
            "traffic stays pinned to primary revision podinfo-00003 because the latest Ready revision podinfo-00005 is not the primary"
        ),
        "{events:#?}"
    );
}

/// A Canary whose status Flagger wrote after rolling back podinfo-00008 (its hashes, no
/// revision names), with the rolled-back revision still the latest: Serin adopts it and
/// analyses nothing; a newer revision is then rolled out as usual.
async fn flagger_failed_status_is_adopted_without_analysing_the_rolled_back_revision(
    cluster: &mut serin_sandbox::cluster::Cluster,
    client: &kube::Client,
) {
    cluster.kill_controller();
    // The Service as Flagger leaves it: its annotation and traffic layout, a newer revision at 0%.
    services(client)
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"flagger.app/primary-revision": "podinfo-00003"}},
                "spec": {"traffic": [
                    {"latestRevision": true, "percent": 0},
                    {"revisionName": "podinfo-00003", "percent": 100}
                ]}
            })),
        )
        .await
        .expect("Flagger's layout");
    serin_sandbox::demo::set_image(client, "6.0.1").await.expect("image");
    eventually("podinfo-00008 Ready", Duration::from_secs(30), || async {
        service(client).await.pointer("/status/latestReadyRevisionName") == Some(&json!("podinfo-00008"))
    })
    .await;
    let canaries = serin_sandbox::demo::canaries(client);
    let seed = serin_sandbox::demo::seed_canary(&root(), true).expect("seed");
    canaries
        .create(&PostParams::default(), &serde_json::from_value(seed).expect("canary"))
        .await
        .expect("create canary");
    let flagger_status = json!({"status": {
        "phase": "Failed", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
        "lastAppliedSpec": serin_core::flagger::revision_hash("podinfo-00008"),
        "lastPromotedSpec": serin_core::flagger::revision_hash("podinfo-00003"),
        "lastTransitionTime": "2026-11-30T10:00:00Z",
        "conditions": [{"type": "Promoted", "status": "False", "reason": "Failed",
            "message": "Canary analysis failed, Deployment scaled to zero."}]
    }});
    canaries
        .patch_status("podinfo", &PatchParams::default(), &Patch::Merge(flagger_status))
        .await
        .expect("Flagger's status");
    cluster.start_controller().expect("controller");

    eventually("the adoption", Duration::from_secs(30), || async {
        let c = serde_json::to_value(canaries.get("podinfo").await.expect("get")).expect("json");
        c.pointer("/status/canaryRevision") == Some(&json!("podinfo-00008"))
    })
    .await;
    // Three intervals (3 s each) in which nothing may happen.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let c = serde_json::to_value(canaries.get("podinfo").await.expect("get")).expect("json");
    assert_eq!(c.pointer("/status/phase"), Some(&json!("Failed")), "{c:#}");
    assert_eq!(
        c.pointer("/status/primaryRevision"),
        Some(&json!("podinfo-00003")),
        "{c:#}"
    );
    let events = canary_events(client).await;
    assert!(
        has(
            &events,
            "revision podinfo-00008 was rolled back and is not analysed again"
        ),
        "{events:#?}"
    );
    assert!(
        !has(&events, "Starting canary analysis of podinfo-00008"),
        "{events:#?}"
    );
    let traffic = programmed(client).await.expect("programmed");
    let on_00008: i64 = traffic
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["revisionName"] == "podinfo-00008")
        .filter_map(|e| e["percent"].as_i64())
        .sum();
    assert_eq!(on_00008, 0, "{traffic:#}");

    // A newer revision is analysed and promoted as usual. (Not through `rollout`: its split
    // check reads Flagger's layout, still in place, as primary/canary.)
    let mut observer = Observer::new(client.clone(), true);
    serin_sandbox::demo::set_image(client, "6.0.0").await.expect("image");
    eventually("podinfo-00009 analysed", Duration::from_secs(30), || async {
        let c = serde_json::to_value(canaries.get("podinfo").await.expect("get")).expect("json");
        c.pointer("/status/canaryRevision") == Some(&json!("podinfo-00009"))
    })
    .await;
    let phase = observer
        .wait_phase(&["Succeeded", "Failed"], Duration::from_secs(120))
        .await
        .expect("phase");
    assert_eq!(phase, "Succeeded", "{:#?}", observer.events);
    assert!(
        has(&observer.events, "Starting canary analysis of podinfo-00009"),
        "{:#?}",
        observer.events
    );
}
