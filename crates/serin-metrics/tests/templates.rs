//! Every MetricTemplate query of the Flagger-shaped examples (one per provider, with Go template
//! comments and trimming) renders, with the Canary's values in place.

use std::collections::BTreeMap;

use serin_metrics::{QueryContext, render};

#[test]
fn every_example_template_renders_with_go_semantics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("testdata/flagger/examples/metrictemplates.yaml")).expect("examples");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("yaml");
    let ctx = QueryContext {
        name: "podinfo".into(),
        namespace: "test".into(),
        target: "podinfo".into(),
        service: "podinfo".into(),
        ingress: "podinfo".into(),
        route: "podinfo-00002".into(),
        primary: "podinfo-00001".into(),
        interval: "1m".into(),
        variables: BTreeMap::new(),
    };
    let mut rendered = 0;
    for doc in &docs {
        let name = doc
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        let query = doc.pointer("/spec/query").and_then(|q| q.as_str()).expect("query");
        let out = render(name, query, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!out.contains("{{") && !out.contains("<no value>"), "{name}: {out}");
        rendered += 1;
    }
    assert_eq!(rendered, 11, "one template per provider");
    let error_rate = render(
        "error-rate",
        docs[0].pointer("/spec/query").and_then(|q| q.as_str()).expect("query"),
        &ctx,
    )
    .expect("renders");
    assert!(
        error_rate.starts_with("100 - sum(rate(http_requests_total{namespace=\"test\""),
        "{error_rate}"
    );
}
