//! The sequential judge end to end, with real processes and the sandbox's real Prometheus: a
//! canary with +5% of 5xx at 100 req/s is rolled back, a healthy one is promoted Verified, and
//! a revision whose series never appear (a Prometheus that scrapes nothing) raises `NoMetrics`
//! instead of failing checks, then is rolled back at the deadline.

use std::{path::PathBuf, time::Duration};

use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use serin_sandbox::{demo::Observer, prometheus::Prometheus};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn rollout(observer: &mut Observer, client: &kube::Client, tag: &str) -> (String, Vec<String>) {
    serin_sandbox::demo::rollout(observer, client, tag, Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn condition(canary: &Value, type_: &str) -> Option<(String, String)> {
    canary["status"]["conditions"].as_array()?.iter().find_map(|c| {
        (c["type"] == type_).then(|| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
    })
}

async fn merge(client: &kube::Client, patch: Value) {
    serin_sandbox::demo::canaries(client)
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch the Canary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequential_judge_rolls_back_a_regression_verifies_a_healthy_canary_and_reports_no_metrics() {
    let (cluster, client, mut observer) =
        serin_sandbox::demo::seeded_cluster(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root(), true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    // 100 req/s of load (the seed's is 10): what the judge needs to decide in minutes.
    let mut webhooks =
        serin_sandbox::demo::seed_canary(&root(), true).expect("seed")["spec"]["analysis"]["webhooks"].clone();
    webhooks[0]["metadata"]["cmd"] = json!("hey -z 1m -q 50 -c 2 http://podinfo.test");
    merge(&client, json!({"spec": {"analysis": {"webhooks": webhooks}}})).await;

    // A primary with a realistic latency spread, promoted by Flagger's rule.
    let (phase, events) = rollout(&mut observer, &client, "6.5.0").await;
    assert_eq!(phase, "Succeeded", "{events:#?}");

    // The sequential judge, with α = 0.001 so that this test's healthy rollout is not rolled
    // back by chance more than once in a thousand runs.
    let policies: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "test",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("judge.serin.dev", "v1alpha1", "JudgePolicy"),
            "judgepolicies",
        ),
    );
    let policy = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "judge.serin.dev/v1alpha1", "kind": "JudgePolicy",
            "metadata": {"name": name, "namespace": "test"}, "spec": spec,
        }))
        .expect("policy")
    };
    policies
        .create(&PostParams::default(), &policy("strict", json!({"alpha": 0.001})))
        .await
        .expect("create JudgePolicy");
    merge(
        &client,
        json!({"metadata": {"annotations": {"judge.serin.dev/mode": "sequential", "judge.serin.dev/policy": "strict"}}}),
    )
    .await;

    let (phase, events) = rollout(&mut observer, &client, "6.5.1").await;
    assert_eq!(phase, "Failed", "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.contains("advancement 5xx regressed vs primary")),
        "{events:#?}"
    );
    let canary = observer.canary().await.expect("canary");
    assert_eq!(
        condition(&canary, "Verified"),
        Some(("False".into(), "Regressed".into())),
        "{canary:#}"
    );

    let (phase, events) = rollout(&mut observer, &client, "6.5.2").await;
    assert_eq!(phase, "Succeeded", "{events:#?}");
    assert!(
        events.iter().any(|e| e.starts_with("Verified podinfo.test")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("Promoting unverified")),
        "{events:#?}"
    );
    let canary = observer.canary().await.expect("canary");
    assert_eq!(
        condition(&canary, "Verified"),
        Some(("True".into(), "Verified".into())),
        "{canary:#}"
    );
    assert!(
        canary["status"]["judge"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("5xx")),
        "{canary:#}"
    );

    // A metrics server where no series exist: NoMetrics, no failed checks, rollback at the deadline.
    let empty = Prometheus::start(&[]).expect("an empty Prometheus");
    policies
        .create(
            &PostParams::default(),
            &policy("short", json!({"alpha": 0.001, "maxAnalysisDuration": "1m"})),
        )
        .await
        .expect("create JudgePolicy");
    merge(
        &client,
        json!({"metadata": {"annotations": {"judge.serin.dev/policy": "short"}}, "spec": {"metricsServer": empty.url}}),
    )
    .await;
    let (phase, events) = rollout(&mut observer, &client, "6.5.0").await;
    assert_eq!(phase, "Failed", "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.contains("No request series found for either revision")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("no values found")),
        "no data must not be counted as failed checks: {events:#?}"
    );
    let canary = observer.canary().await.expect("canary");
    assert_eq!(
        condition(&canary, "NoMetrics").map(|c| c.0),
        Some("True".into()),
        "{canary:#}"
    );
    drop(cluster);
}
