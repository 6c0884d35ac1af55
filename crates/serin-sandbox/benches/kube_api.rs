//! `cargo bench -p serin-sandbox`: API emulator throughput, so scale tests know it is not their
//! bottleneck. GET and PATCH requests/s against a baseline of `/version` requests/s on the same
//! client in the same run, a Canary status PATCH (validated against its CRD schema) against the
//! ConfigMap PATCH, and watch fan-out: 10 watchers each receiving 10,000 objects.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use serin_sandbox::kube_api::KubeApi;

async fn rate<F, Fut>(n: usize, concurrency: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let f = f.clone();
            tokio::spawn(async move {
                for i in (w..n).step_by(concurrency) {
                    f(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let api = KubeApi::start(0).await.expect("start");
        let client = api.client().expect("client");
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "bench"}, "data": {"k": "0"}})).expect("cm");
        cms.create(&PostParams::default(), &cm).await.expect("create");
        let n = 4000;
        let c = client.clone();
        let baseline = rate(n, 8, move |_| {
            let c = c.clone();
            async move {
                let _ = c.apiserver_version().await;
            }
        })
        .await;
        let a = cms.clone();
        let gets = rate(n, 8, move |_| {
            let a = a.clone();
            async move {
                let _ = a.get("bench").await;
            }
        })
        .await;
        let a = cms.clone();
        let patches = rate(n, 8, move |i| {
            let a = a.clone();
            async move {
                let _ = a
                    .patch(
                        "bench",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": {"k": i.to_string()}})),
                    )
                    .await;
            }
        })
        .await;
        // A Canary status patch, validated against the CRD schema, as the controller writes one
        // per step: the cost of schema validation against the ConfigMap patch above.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let crd = std::fs::read_to_string(root.join("deploy/crds/canaries.flagger.app.yaml")).expect("crd");
        api.install_crd(serde_saphyr::from_str(&crd).expect("yaml")).expect("install");
        let canaries: Api<kube::api::DynamicObject> = Api::namespaced_with(
            client.clone(),
            "default",
            &kube::core::ApiResource::from_gvk_with_plural(
                &kube::core::GroupVersionKind::gvk("flagger.app", "v1beta1", "Canary"),
                "canaries",
            ),
        );
        let seed = std::fs::read_to_string(root.join("testdata/seed/podinfo-canary.yaml")).expect("seed");
        let mut canary: serde_json::Value = serde_saphyr::from_str(&seed).expect("canary");
        canary["metadata"]["namespace"] = json!("default");
        canaries
            .create(&PostParams::default(), &serde_json::from_value(canary).expect("object"))
            .await
            .expect("create canary");
        let a = canaries.clone();
        let status_patches = rate(n, 8, move |i| {
            let a = a.clone();
            async move {
                let status = json!({"status": {"phase": "Progressing", "canaryWeight": i % 50, "failedChecks": 0,
                    "lastDecision": {"summary": format!("step {i}"), "checks": ["metric request-success-rate: 99.90% (>= 99%) Pass"]}}});
                let _ = a
                    .patch_status("podinfo", &PatchParams::default(), &Patch::Merge(status))
                    .await;
            }
        })
        .await;
        // The validation alone, on the stored Canary, against one status PATCH round trip.
        let stored = serde_json::to_value(canaries.get("podinfo").await.expect("get")).expect("json");
        let crd_value: serde_json::Value = serde_saphyr::from_str(&crd).expect("crd");
        let schema = crd_value
            .pointer("/spec/versions/0/schema/openAPIV3Schema")
            .cloned()
            .expect("schema");
        let rounds = 2000;
        let copies: Vec<serde_json::Value> = (0..rounds).map(|_| stored.clone()).collect();
        let started = Instant::now();
        for mut object in copies {
            assert!(serin_sandbox::kube_api::schema::admit(&schema, &mut object).is_empty());
        }
        let admit = started.elapsed().as_secs_f64() / f64::from(rounds);
        println!("API emulator, {n} requests each, 8 concurrent clients:");
        println!("  GET /version (baseline) {baseline:>9.0} req/s");
        println!(
            "  GET configmap           {gets:>9.0} req/s  ({:.2}x baseline)",
            gets / baseline
        );
        println!(
            "  PATCH configmap         {patches:>9.0} req/s  ({:.2}x baseline)",
            patches / baseline
        );
        println!(
            "  PATCH canary/status     {status_patches:>9.0} req/s  ({:.2}x baseline, {:.2}x the ConfigMap patch: CRD schema validation included)",
            status_patches / baseline,
            status_patches / patches
        );
        println!(
            "  schema validation of the stored Canary: {:.1} µs, {:.1}% of the emulator's time per canary/status PATCH (1/throughput)",
            admit * 1e6,
            admit * status_patches * 100.0
        );

        let objects = 10_000;
        let started = Instant::now();
        let _ = rate(objects, 16, {
            let a = cms.clone();
            move |i| {
                let a = a.clone();
                async move {
                    let cm: ConfigMap =
                        serde_json::from_value(json!({"metadata": {"name": format!("o{i:05}")}})).expect("cm");
                    let _ = a.create(&PostParams::default(), &cm).await;
                }
            }
        })
        .await;
        let created = started.elapsed();
        let started = Instant::now();
        let watchers: Vec<_> = (0..10)
            .map(|_| {
                let a = cms.clone();
                tokio::spawn(async move {
                    use futures::StreamExt;
                    let mut stream =
                        std::pin::pin!(a.watch(&kube::api::WatchParams::default(), "0").await.expect("watch"));
                    let mut seen = 0;
                    while seen < objects {
                        match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
                            Ok(Some(Ok(_))) => seen += 1,
                            _ => break,
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut total = 0;
        for w in watchers {
            total += w.await.unwrap_or(0);
        }
        let fanout = started.elapsed();
        let listed = cms
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        println!(
            "  created {objects} objects in {created:?} ({:.0}/s)",
            objects as f64 / created.as_secs_f64()
        );
        println!(
            "  watch fan-out: 10 watchers received {total} events in {fanout:?} ({:.0} events/s); list holds {listed}",
            total as f64 / fanout.as_secs_f64()
        );
    });
}
