//! MetricTemplates and JudgePolicies come from watches: once synced, lookups need no GET, keep
//! answering while every read of the API server fails, and see objects created afterwards.

use std::time::Duration;

use kube::{Api, api::PostParams};
use serin_api::{JudgePolicy, MetricTemplate};
use serin_reconciler::config_cache::ConfigCache;
use serin_sandbox::kube_api::{FailRule, Faults, KubeApi};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_answer_from_the_watches_even_when_reads_fail() {
    let api = KubeApi::start(0).await.expect("emulator");
    for crd in [
        "metrictemplates.flagger.app.yaml",
        "alertproviders.flagger.app.yaml",
        "judgepolicies.judge.serin.dev.yaml",
    ] {
        let text = std::fs::read_to_string(root().join("deploy/crds").join(crd)).expect("crd");
        api.install_crd(serde_saphyr::from_str(&text).expect("yaml"))
            .expect("install");
    }
    api.create_namespace("test");
    let client = api.client().expect("client");
    let template: MetricTemplate = serde_json::from_value(serde_json::json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "errors", "namespace": "test"},
        "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"}, "query": "vector(1)"},
    }))
    .expect("template");
    Api::<MetricTemplate>::namespaced(client.clone(), "test")
        .create(&PostParams::default(), &template)
        .await
        .expect("create template");

    let cache = ConfigCache::default();
    cache.start(&client, None);
    eventually("the template in the store", || {
        cache.cached_metric_template("test", "errors")
    })
    .await;

    // Every GET and LIST now fails; writes and watches still work.
    api.set_faults(Faults {
        reads: Some(FailRule {
            code: 500,
            ratio: 1.0,
            ..FailRule::default()
        }),
        ..Faults::default()
    });
    let found = cache
        .metric_template(&client, "test", "errors")
        .await
        .expect("answered from the watch");
    assert_eq!(found.spec.query, "vector(1)");
    let policy: JudgePolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "judge.serin.dev/v1alpha1", "kind": "JudgePolicy",
        "metadata": {"name": "strict", "namespace": "test"}, "spec": {"alpha": 0.001},
    }))
    .expect("policy");
    Api::<JudgePolicy>::namespaced(client.clone(), "test")
        .create(&PostParams::default(), &policy)
        .await
        .expect("create policy");
    let seen = eventually("the new policy in the store", || {
        cache.cached_judge_policy("test", "strict")
    })
    .await;
    assert_eq!(seen.spec.alpha, Some(0.001));
    assert!(
        cache.judge_policy(&client, "test", "missing").await.is_err(),
        "an object the watch never saw is asked for, and the failing read says so"
    );
}
