//! End to end: every component a real process (API emulator + Knative simulator + router,
//! Prometheus, loadtester, controller), driven like the seed tutorial with `--fast` timings.
//! One test, scenarios in sequence on one sandbox, so that CI's two cores are not shared
//! between sandboxes.

use std::{path::PathBuf, time::Duration};

use kube::api::{Patch, PatchParams};
use serde_json::json;
use serin_sandbox::demo::Observer;

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
    let (_cluster, client, mut observer) =
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
}
