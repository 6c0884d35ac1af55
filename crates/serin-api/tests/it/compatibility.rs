//! The seed parses into the expected plan; our schema covers Flagger's; committed CRDs are fresh.

use serde_json::Value;
use serin_api::{CanaryDocument, canaries_in, crd_documents, validate};
use serin_core::sim::example_plan;

use crate::{read, root};

#[test]
fn seed_canary_validates_into_the_seed_plan() {
    let docs = canaries_in(&read("testdata/seed/podinfo-canary.yaml")).expect("yaml");
    let [CanaryDocument::Parsed(canary)] = docs.as_slice() else {
        panic!("one canary expected: {docs:?}")
    };
    let validated = validate(canary).expect("seed is valid");
    assert_eq!(validated.plan, example_plan());
    assert!(validated.warnings.is_empty(), "{:?}", validated.warnings);
}

fn schema_properties(schema: &Value, path: &[&str]) -> Vec<String> {
    let mut node = schema;
    for key in path {
        node = &node["properties"][*key];
        if node.get("items").is_some() && node.get("properties").is_none() {
            node = &node["items"];
        }
    }
    let mut keys: Vec<String> = node["properties"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn flagger_canary_schema() -> Value {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&read("testdata/flagger/crd.yaml")).expect("flagger crd");
    docs[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn serin_canary_schema() -> Value {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(serin_api::Canary::crd()).expect("crd json");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn every_flagger_spec_field_exists_in_serins_schema() {
    let (flagger, serin) = (flagger_canary_schema(), serin_canary_schema());
    for path in [
        &["spec"][..],
        &["spec", "analysis"],
        &["spec", "analysis", "metrics"],
        &["spec", "analysis", "webhooks"],
        &["spec", "targetRef"],
    ] {
        let theirs = schema_properties(&flagger, path);
        let ours = schema_properties(&serin, path);
        let missing: Vec<_> = theirs.iter().filter(|k| !ours.contains(k)).collect();
        assert!(!theirs.is_empty(), "no Flagger properties at {path:?}");
        assert!(
            missing.is_empty(),
            "fields of Flagger's {path:?} missing in Serin: {missing:?}"
        );
    }
}

#[test]
fn every_flagger_status_field_exists_in_serins_schema() {
    let theirs = schema_properties(&flagger_canary_schema(), &["status"]);
    let ours = schema_properties(&serin_canary_schema(), &["status"]);
    let wanted = [
        "canaryWeight",
        "conditions",
        "failedChecks",
        "iterations",
        "lastAppliedSpec",
        "lastPromotedSpec",
        "lastTransitionTime",
        "phase",
    ];
    for field in wanted {
        assert!(theirs.contains(&field.to_owned()), "{field} not in Flagger's status");
        assert!(ours.contains(&field.to_owned()), "{field} missing in Serin's status");
    }
}

#[test]
fn printer_columns_match_the_tutorial_table() {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(serin_api::Canary::crd()).expect("crd json");
    let columns: Vec<(String, i64)> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let default_columns: Vec<&str> = columns
        .iter()
        .filter(|(_, p)| *p == 0)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(default_columns, ["Status", "Weight", "LastTransitionTime"]);
    assert_eq!(crd["spec"]["names"]["plural"], "canaries");
    assert_eq!(crd["spec"]["names"]["categories"][0], "all");
}

#[test]
fn committed_crds_are_fresh() {
    for (file, yaml) in crd_documents().expect("crds render") {
        let path = root().join("deploy/crds").join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == yaml,
            "{} is stale: run `cargo xtask crdgen`",
            path.display()
        );
    }
}

#[test]
fn mesh_only_fields_parse_and_are_reported_as_ignored() {
    let text = read("testdata/seed/podinfo-canary.yaml").replace(
        "  progressDeadlineSeconds: 60",
        "  progressDeadlineSeconds: 60\n  service:\n    port: 9898\n    gateways: [public]\n  ingressRef:\n    apiVersion: networking.k8s.io/v1\n    kind: Ingress\n    name: podinfo",
    );
    let docs = canaries_in(&text).expect("yaml");
    let [CanaryDocument::Parsed(canary)] = docs.as_slice() else {
        panic!("{docs:?}")
    };
    let validated = validate(canary).expect("still valid");
    let paths: Vec<_> = validated.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["spec.ingressRef", "spec.service"]);
}
