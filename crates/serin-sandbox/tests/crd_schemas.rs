//! The emulator validates custom resources against their CRD schema as the API server does:
//! Serin's generated CRDs and Flagger's own accept every example a Flagger user may have and
//! refuse type mismatches with the same messages.

use std::path::{Path, PathBuf};

use kube::{
    Api, Client,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use serin_sandbox::kube_api::KubeApi;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn documents(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// An emulator with the CRDs of `crd_files` installed and the examples' namespaces.
async fn api_with(crd_files: &[&str]) -> (KubeApi, Client) {
    let api = KubeApi::start(0).await.expect("start");
    for file in crd_files {
        for crd in documents(&root().join(file))
            .into_iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
        {
            api.install_crd(crd).expect("install");
        }
    }
    for ns in ["test", "flagger", "flagger-system"] {
        api.create_namespace(ns);
    }
    let client = api.client().expect("client");
    (api, client)
}

fn api_for(client: &Client, obj: &Value) -> Api<DynamicObject> {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let plural = match kind {
        "Canary" => "canaries".to_owned(),
        other => format!("{}s", other.to_lowercase()),
    };
    let gvk = GroupVersionKind::gvk("flagger.app", "v1beta1", kind);
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("test");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, &plural))
}

/// Creates `obj`; the API's message when it is refused.
async fn create(client: &Client, obj: &Value) -> Result<Value, String> {
    let object: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
    match api_for(client, obj).create(&PostParams::default(), &object).await {
        Ok(created) => Ok(serde_json::to_value(created).expect("json")),
        Err(kube::Error::Api(status)) => Err(format!("{} {}: {}", status.code, status.reason, status.message)),
        Err(e) => panic!("transport: {e}"),
    }
}

fn examples(kinds: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for file in ["canaries.yaml", "metrictemplates.yaml", "alertproviders.yaml"] {
        out.extend(documents(&root().join("testdata/flagger/examples").join(file)));
    }
    for file in ["testdata/seed/podinfo-canary.yaml", "docs/tutorial.md"] {
        let path = root().join(file);
        if file.ends_with(".yaml") {
            out.extend(documents(&path));
        } else {
            out.extend(yaml_blocks(&path));
        }
    }
    out.retain(|d| kinds.contains(&d["kind"].as_str().unwrap_or_default()));
    out
}

/// The `kind: Canary` / `MetricTemplate` / `AlertProvider` YAML blocks of a Markdown file.
fn yaml_blocks(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("markdown");
    let mut out = Vec::new();
    for block in text.split("```yaml").skip(1) {
        let body = block.split("```").next().unwrap_or_default();
        if let Ok(docs) = serde_saphyr::from_multiple::<Value>(body) {
            out.extend(docs.into_iter().filter(|d| d["apiVersion"] == "flagger.app/v1beta1"));
        }
    }
    out
}

const SERIN_CRDS: &[&str] = &[
    "deploy/crds/canaries.flagger.app.yaml",
    "deploy/crds/metrictemplates.flagger.app.yaml",
];
const FLAGGER_CRDS: &[&str] = &["testdata/flagger/crd.yaml"];

#[tokio::test]
async fn every_example_is_accepted_by_serins_crds_and_by_flaggers() {
    for (crds, kinds) in [
        (SERIN_CRDS, &["Canary", "MetricTemplate"][..]),
        (FLAGGER_CRDS, &["Canary", "MetricTemplate", "AlertProvider"][..]),
    ] {
        let (_api, client) = api_with(crds).await;
        let all = examples(kinds);
        assert!(all.len() >= 15, "{} examples", all.len());
        for example in all {
            let name = example.pointer("/metadata/name").cloned().unwrap_or_default();
            if let Err(message) = create(&client, &example).await {
                panic!("{crds:?} refused {name}: {message}");
            }
        }
    }
}

fn seed_canary() -> Value {
    documents(&root().join("testdata/seed/podinfo-canary.yaml")).remove(0)
}

/// (what is wrong, the change to the seed Canary, the API server's message under Serin's CRD).
/// Flagger's CRD gives the same message, except that it types Flagger's integer fields
/// (`threshold`, `stepWeight`, …) as `number` where Serin's says `integer`: Serin's refuses `5.5`
/// at the API server instead of storing an object no controller can decode.
fn mismatches() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "interval as a number",
            json!({"spec": {"analysis": {"interval": 15}}}),
            r#"422 Invalid: Canary.flagger.app "podinfo" is invalid: spec.analysis.interval: Invalid value: "integer": spec.analysis.interval in body must be of type string: "integer""#,
        ),
        (
            "threshold as a word",
            json!({"spec": {"analysis": {"threshold": "five"}}}),
            r#"422 Invalid: Canary.flagger.app "podinfo" is invalid: spec.analysis.threshold: Invalid value: "string": spec.analysis.threshold in body must be of type integer: "string""#,
        ),
        (
            "metrics as a map",
            json!({"spec": {"analysis": {"metrics": {"request-success-rate": {"thresholdRange": {"min": 99}}}}}}),
            r#"422 Invalid: Canary.flagger.app "podinfo" is invalid: spec.analysis.metrics: Invalid value: "object": spec.analysis.metrics in body must be of type array: "object""#,
        ),
        (
            "targetRef missing",
            json!({"spec": {"targetRef": null}}),
            r#"422 Invalid: Canary.flagger.app "podinfo" is invalid: spec.targetRef: Required value"#,
        ),
        (
            "analysis missing",
            json!({"spec": {"analysis": null}}),
            r#"422 Invalid: Canary.flagger.app "podinfo" is invalid: spec.analysis: Required value"#,
        ),
        (
            "skipAnalysis as a string",
            json!({"spec": {"skipAnalysis": "yes"}}),
            r#"422 Invalid: Canary.flagger.app "podinfo" is invalid: spec.skipAnalysis: Invalid value: "string": spec.skipAnalysis in body must be of type boolean: "string""#,
        ),
    ]
}

fn merged(mut base: Value, patch: &Value) -> Value {
    json_merge(&mut base, patch);
    base
}

fn json_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[tokio::test]
async fn type_mismatches_are_refused_with_the_api_servers_message_under_both_crds() {
    for crds in [SERIN_CRDS, FLAGGER_CRDS] {
        let (_api, client) = api_with(crds).await;
        for (what, change, expected) in mismatches() {
            let answer = create(&client, &merged(seed_canary(), &change)).await;
            let expected = if crds == FLAGGER_CRDS {
                expected.replace("must be of type integer", "must be of type number")
            } else {
                expected.to_owned()
            };
            assert_eq!(answer.err(), Some(expected), "{what} under {crds:?}");
        }
    }
}

#[tokio::test]
async fn a_bad_patch_or_status_write_is_refused_and_the_stored_object_stays_readable() {
    let (_api, client) = api_with(SERIN_CRDS).await;
    let seed = seed_canary();
    create(&client, &seed).await.expect("seed accepted");
    let canaries = api_for(&client, &seed);
    let refused = canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"analysis": {"interval": 15}}})),
        )
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 422),
        "{refused:?}"
    );
    let refused = canaries
        .patch_status(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"canaryWeight": "ten"}})),
        )
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 422),
        "{refused:?}"
    );
    // The typed list the controller reads still decodes.
    let typed: Api<serin_api::Canary> = Api::namespaced(client.clone(), "test");
    let list = typed.list(&Default::default()).await.expect("typed list decodes");
    assert_eq!(list.items.len(), 1);
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_defaults_applied() {
    let (_api, client) = api_with(FLAGGER_CRDS).await;
    let created = create(
        &client,
        &merged(
            seed_canary(),
            &json!({"spec": {"notAField": 1, "analysis": {"alsoNot": true}}}),
        ),
    )
    .await
    .expect("accepted");
    assert_eq!(created.pointer("/spec/notAField"), None);
    assert_eq!(created.pointer("/spec/analysis/alsoNot"), None);
    assert_eq!(created.pointer("/spec/analysis/interval"), Some(&json!("15s")));
}
