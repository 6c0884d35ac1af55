//! Conformance of the API emulator, through kube-rs: the semantics Serin's code relies on.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
    discovery::Discovery,
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use serin_sandbox::kube_api::{AdmissionHook, FailRule, Faults, KubeApi};

async fn api_with_crds() -> (KubeApi, Client) {
    let api = KubeApi::start(0).await.expect("start");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in ["deploy/crds/canaries.flagger.app.yaml", "testdata/knative/service.yaml"] {
        let text = std::fs::read_to_string(root.join(file)).expect("crd file");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("yaml");
        for d in docs.into_iter().filter(|d| d["kind"] == "CustomResourceDefinition") {
            api.install_crd(d).expect("install");
        }
    }
    api.create_namespace("test");
    let client = api.client().expect("client");
    (api, client)
}

fn canary_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("flagger.app", "v1beta1", "Canary"), "canaries")
}

fn canary(name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": "test", "labels": {"app": name}},
        "spec": {"provider": "knative", "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}, "analysis": {"interval": "15s", "threshold": 5, "stepWeight": 10}}
    }))
    .expect("canary")
}

#[tokio::test]
async fn discovery_resolves_installed_crds_with_scope_and_short_names() {
    let (_api, client) = api_with_crds().await;
    let discovery = Discovery::new(client).run().await.expect("discovery");
    let (canary, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("flagger.app", "v1beta1", "Canary"))
        .expect("canary served");
    assert_eq!(canary.plural, "canaries");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let (ksvc, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("serving.knative.dev", "v1", "Service"))
        .expect("ksvc served");
    assert_eq!(ksvc.plural, "services");
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"))
            .is_some()
    );
}

#[tokio::test]
async fn create_get_conflicts_and_generate_name() {
    let (_api, client) = api_with_crds().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "test");
    let mut cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).expect("cm");
    let created = cms.create(&PostParams::default(), &cm).await.expect("create");
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some() && meta.resource_version.is_some());
    let err = cms.create(&PostParams::default(), &cm).await.expect_err("duplicate");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );
    // A stale resourceVersion is a 409 Conflict.
    cm.metadata.resource_version = Some("1".into());
    let err = cms.replace("a", &PostParams::default(), &cm).await.expect_err("stale");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
    let missing = cms
        .replace("nope", &PostParams::default(), &cm)
        .await
        .expect_err("missing");
    assert!(
        matches!(missing, kube::Error::Api(ref s) if s.code == 404),
        "{missing:?}"
    );
    let generated: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).expect("cm");
    let made = cms
        .create(&PostParams::default(), &generated)
        .await
        .expect("generateName");
    assert!(made.metadata.name.as_deref().is_some_and(|n| n.starts_with("gen-")));
    let other_ns: Api<ConfigMap> = Api::namespaced(client, "absent");
    let err = other_ns
        .create(&PostParams::default(), &cm)
        .await
        .expect_err("namespace missing");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
}

#[tokio::test]
async fn status_is_isolated_and_generation_tracks_spec_only() {
    let (_api, client) = api_with_crds().await;
    let canaries: Api<DynamicObject> = Api::namespaced_with(client, "test", &canary_resource());
    let mut obj = canary("podinfo");
    obj.data["status"] = json!({"phase": "Succeeded"});
    let created = canaries.create(&PostParams::default(), &obj).await.expect("create");
    assert!(created.data.get("status").is_none(), "status is dropped on create");
    assert_eq!(created.metadata.generation, Some(1));
    let pp = PatchParams::default();
    let with_status = canaries
        .patch("podinfo", &pp, &Patch::Merge(json!({"status": {"phase": "Failed"}})))
        .await
        .expect("patch");
    assert!(
        with_status.data.get("status").is_none(),
        "the main resource ignores status"
    );
    let status = canaries
        .patch_status(
            "podinfo",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Progressing"}, "spec": {"suspend": true}})),
        )
        .await
        .expect("status");
    assert_eq!(status.data["status"]["phase"], "Progressing");
    assert!(status.data["spec"].get("suspend").is_none(), "/status ignores spec");
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "a status write keeps the generation"
    );
    let spec = canaries
        .patch("podinfo", &pp, &Patch::Merge(json!({"spec": {"suspend": true}})))
        .await
        .expect("spec");
    assert_eq!(spec.metadata.generation, Some(2));
    assert_eq!(spec.data["status"]["phase"], "Progressing", "spec writes keep status");
    let labels = canaries
        .patch(
            "podinfo",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("labels");
    assert_eq!(
        labels.metadata.generation,
        Some(2),
        "metadata changes keep the generation"
    );
}

#[tokio::test]
async fn patch_types_apply_and_strategic_merge_refused_for_custom_resources() {
    let (_api, client) = api_with_crds().await;
    let canaries: Api<DynamicObject> = Api::namespaced_with(client.clone(), "test", &canary_resource());
    let ssa = PatchParams::apply("serin-test").force();
    let applied = canaries
        .patch("applied", &ssa, &Patch::Apply(canary("applied")))
        .await
        .expect("apply creates");
    assert_eq!(applied.metadata.name.as_deref(), Some("applied"));
    let mut again = canary("applied");
    again.data["spec"]["analysis"]["stepWeight"] = json!(20);
    let applied = canaries
        .patch("applied", &ssa, &Patch::Apply(again))
        .await
        .expect("apply updates");
    assert_eq!(applied.data["spec"]["analysis"]["stepWeight"], 20);
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/analysis/threshold", "value": 9}]))
            .expect("ops");
    let patched = canaries
        .patch("applied", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    assert_eq!(patched.data["spec"]["analysis"]["threshold"], 9);
    let err = canaries
        .patch(
            "applied",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"suspend": true}})),
        )
        .await
        .expect_err("strategic on a CR");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 415), "{err:?}");
    let cms: Api<ConfigMap> = Api::namespaced(client, "test");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "s"}, "data": {"a": "1"}})).expect("cm");
    cms.create(&PostParams::default(), &cm).await.expect("cm");
    let merged = cms
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"b": "2"}})),
        )
        .await
        .expect("strategic on a built-in");
    assert_eq!(merged.data.map(|d| d.len()), Some(2));
}

/// Lists in pages of `limit`, from a continue token (or from the start):
/// the names in order and each page's resourceVersion.
async fn rest_of_pages(
    api: &Api<DynamicObject>,
    limit: u32,
    mut token: Option<String>,
) -> (Vec<String>, Vec<Option<String>>) {
    let (mut names, mut versions) = (Vec::new(), Vec::new());
    loop {
        let params = match &token {
            Some(t) => ListParams::default().limit(limit).continue_token(t),
            None => ListParams::default().limit(limit),
        };
        let page = api.list(&params).await.expect("page");
        names.extend(page.items.iter().filter_map(|o| o.metadata.name.clone()));
        versions.push(page.metadata.resource_version.clone());
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => token = Some(next),
            None => return (names, versions),
        }
    }
}

/// The emulator with Canaries `a` … `e` in namespace `test`.
async fn api_with_canaries_a_to_e() -> (KubeApi, Api<DynamicObject>) {
    let (api, client) = api_with_crds().await;
    let canaries: Api<DynamicObject> = Api::namespaced_with(client, "test", &canary_resource());
    for name in ["a", "b", "c", "d", "e"] {
        canaries
            .create(&PostParams::default(), &canary(name))
            .await
            .expect("create");
    }
    (api, canaries)
}

#[tokio::test]
async fn selectors_and_pagination() {
    let (_api, canaries) = api_with_canaries_a_to_e().await;
    let by_label = canaries
        .list(&ListParams::default().labels("app in (a, c)"))
        .await
        .expect("labels");
    assert_eq!(by_label.items.len(), 2);
    let not = canaries
        .list(&ListParams::default().labels("app!=a"))
        .await
        .expect("labels");
    assert_eq!(not.items.len(), 4);
    let by_field = canaries
        .list(&ListParams::default().fields("metadata.name=d"))
        .await
        .expect("fields");
    assert_eq!(by_field.items.len(), 1);
    let (names, _) = rest_of_pages(&canaries, 2, None).await;
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
}

/// A list read in pages reports its first page's resourceVersion on every page, as the API
/// server does, so a watch started from it sees a change made while the pages were read (here
/// to an object on the first page). Reporting each page's own version lost such changes for
/// good: a controller's cache kept a Service "without a ready revision" that was long Ready.
#[tokio::test]
async fn a_watch_from_a_paged_list_sees_changes_made_between_the_pages() {
    let (_api, canaries) = api_with_canaries_a_to_e().await;
    let first = canaries.list(&ListParams::default().limit(2)).await.expect("page 1");
    let token = first.metadata.continue_.clone().expect("more pages");
    let patch = json!({"metadata": {"labels": {"changed": "between-pages"}}});
    canaries
        .patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch a");
    let (_, rest) = rest_of_pages(&canaries, 2, Some(token)).await;
    let mut versions = vec![first.metadata.resource_version.clone()];
    versions.extend(rest);
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    let from = versions.last().cloned().flatten().expect("a resourceVersion");
    let stream = canaries
        .watch(&kube::api::WatchParams::default().timeout(2), &from)
        .await
        .expect("watch");
    let mut stream = std::pin::pin!(stream);
    let mut seen = false;
    while let Some(Ok(event)) = stream.next().await {
        if let kube::api::WatchEvent::Modified(o) = event
            && o.metadata.name.as_deref() == Some("a")
            && o.labels().get("changed").map(String::as_str) == Some("between-pages")
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "the change made between the pages was never delivered");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_api, client) = api_with_crds().await;
    let canaries: Api<DynamicObject> = Api::namespaced_with(client, "test", &canary_resource());
    let mut obj = canary("held");
    obj.metadata.finalizers = Some(vec!["finalizer.flagger.app".into()]);
    canaries.create(&PostParams::default(), &obj).await.expect("create");
    canaries.delete("held", &DeleteParams::default()).await.expect("delete");
    let marked = canaries.get("held").await.expect("still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
    canaries
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("remove finalizer");
    let err = canaries.get("held").await.expect_err("gone");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
}

#[tokio::test]
async fn admission_hooks_deny_with_their_message() {
    let (api, client) = api_with_crds().await;
    let hook: AdmissionHook = std::sync::Arc::new(|_, obj, _| {
        if obj.pointer("/spec/analysis/stepWeight") == Some(&json!(99)) {
            Err("stepWeight 99 is not allowed".into())
        } else {
            Ok(())
        }
    });
    api.add_admission_hook("flagger.app", "canaries", "validation.test", hook);
    let canaries: Api<DynamicObject> = Api::namespaced_with(client, "test", &canary_resource());
    let mut obj = canary("denied");
    obj.data["spec"]["analysis"]["stepWeight"] = json!(99);
    let err = canaries.create(&PostParams::default(), &obj).await.expect_err("denied");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400 && s.message == "admission webhook \"validation.test\" denied the request: stepWeight 99 is not allowed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn injected_write_faults_follow_the_ratio_and_requests_are_counted() {
    let (api, client) = api_with_crds().await;
    api.set_faults(Faults {
        writes: Some(FailRule {
            code: 500,
            ratio: 0.3,
            next: 0,
            also: vec![409],
        }),
        ..Faults::default()
    });
    let cms: Api<ConfigMap> = Api::namespaced(client, "test");
    let mut codes = Vec::new();
    for i in 0..20 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm{i}")}})).expect("cm");
        if let Err(kube::Error::Api(s)) = cms.create(&PostParams::default(), &cm).await {
            codes.push(s.code);
        }
    }
    assert_eq!(codes, [500, 409, 500, 409, 500, 409]);
    let creates: u64 = api
        .request_counts()
        .iter()
        .filter(|((verb, res, _), _)| verb == "create" && res == "configmaps")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(creates, 20);
}

#[tokio::test]
async fn watcher_streams_through_410_and_cut_streams_without_losing_events() {
    let (api, client) = api_with_crds().await;
    let canaries: Api<DynamicObject> = Api::namespaced_with(client, "test", &canary_resource());
    api.set_faults(Faults {
        close_watches_after_ms: Some(300),
        gone_watches: 2,
        ..Faults::default()
    });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let sink = seen.clone();
    let config = watcher::Config::default().timeout(1);
    let stream = watcher(canaries.clone(), config).default_backoff().applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(obj) => {
                    if let Some(name) = obj.metadata.name {
                        sink.lock().expect("lock").insert(name);
                    }
                }
                // Injected 410s and cut streams surface as errors; the watcher recovers by itself.
                Err(e) => eprintln!("watch error (expected): {e}"),
            }
        }
    });
    for i in 0..30 {
        canaries
            .create(&PostParams::default(), &canary(&format!("w{i:02}")))
            .await
            .expect("create");
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().expect("lock").len() < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "watcher saw only {:?}",
            seen.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The watcher's relists can deliver every object before its third watch starts (its
    // backoff grows after the injected 410s): wait for the resumed watch itself.
    let watches = || -> u64 {
        api.request_counts()
            .iter()
            .filter(|((verb, res, _), _)| verb == "watch" && res == "canaries.flagger.app")
            .map(|(_, n)| n)
            .sum()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while watches() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    let watches = watches();
    assert!(watches >= 3, "streams were cut and resumed ({watches} watches)");
}

/// Bookmarks may only claim what a watch has delivered: watchers that fall behind (small receive
/// buffers, not read for longer than the 5 s bookmark tick) must still get every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watchers_with_bookmarks_get_every_event() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (api, client) = api_with_crds().await;
    let addr: std::net::SocketAddr = api.url().trim_start_matches("http://").parse().expect("addr");
    let from = api.resource_version();
    let started = tokio::time::Instant::now();
    let mut watchers = Vec::new();
    for _ in 0..8 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let mut stream = socket.connect(addr).await.expect("connect");
        let request = format!(
            "GET /api/v1/namespaces/test/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion={from} HTTP/1.0\r\nHost: {addr}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("request");
        watchers.push(stream);
    }
    let n = 3000;
    let cms: Api<ConfigMap> = Api::namespaced(client, "test");
    let filler = "x".repeat(2048);
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let (cms, filler) = (cms.clone(), filler.clone());
            async move {
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": format!("cm-{i}")}, "data": {"filler": filler}}),
                )
                .expect("cm");
                cms.create(&PostParams::default(), &cm).await.expect("create");
            }
        })
        .await;
    // Let a bookmark tick pass while the watchers are behind.
    tokio::time::sleep_until(started + Duration::from_secs(7)).await;
    let readers = watchers.into_iter().map(|mut stream| async move {
        let mut seen = std::collections::BTreeSet::new();
        let mut text = Vec::new();
        let mut buf = vec![0u8; 65536];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while seen.len() < n {
            let Ok(Ok(read)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await else {
                break;
            };
            if read == 0 {
                break;
            }
            text.extend_from_slice(&buf[..read]);
            while let Some(end) = text.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = text.drain(..=end).collect();
                if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line)
                    && event["type"] == "ADDED"
                    && let Some(name) = event.pointer("/object/metadata/name").and_then(|v| v.as_str())
                {
                    seen.insert(name.to_owned());
                }
            }
        }
        seen.len()
    });
    let counts = futures::future::join_all(readers).await;
    assert!(
        counts.iter().all(|c| *c == n),
        "events seen per watcher: {counts:?} of {n}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_without_a_resource_version_all_apply() {
    let (_api, client) = api_with_crds().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "test");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "shared"}, "data": {}})).expect("cm");
    cms.create(&PostParams::default(), &cm).await.expect("create");
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let cms = cms.clone();
            tokio::spawn(async move {
                cms.patch(
                    "shared",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {format!("k{i}"): "v"}})),
                )
                .await
            })
        })
        .collect();
    for w in writers {
        w.await
            .expect("task")
            .expect("a patch naming no resourceVersion never conflicts");
    }
    let data = cms.get("shared").await.expect("get").data.unwrap_or_default();
    assert_eq!(data.len(), 40, "every patch applied");
    // A patch naming a stale resourceVersion still conflicts.
    let stale = cms
        .patch(
            "shared",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}})),
        )
        .await;
    assert!(
        matches!(stale, Err(kube::Error::Api(ref s)) if s.code == 409),
        "{stale:?}"
    );
}
