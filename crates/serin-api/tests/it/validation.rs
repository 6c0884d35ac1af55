//! Invalid Canaries: every problem named by its field path.

use serin_api::{CanaryDocument, canaries_in, validate};
use serin_core::Strategy;

use crate::read;

/// Applies `edits` (old, new) to the seed Canary and returns the problems, as `path: message`.
fn problems(edits: &[(&str, &str)]) -> Vec<String> {
    let mut text = read("testdata/seed/podinfo-canary.yaml");
    for (old, new) in edits {
        assert!(text.contains(old), "seed has no {old:?}");
        text = text.replacen(old, new, 1);
    }
    let docs = canaries_in(&text).expect("yaml");
    match docs.into_iter().next().expect("one canary") {
        CanaryDocument::Parsed(c) => match validate(&c) {
            Ok(_) => vec![],
            Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        },
        CanaryDocument::Malformed { problem, .. } => vec![problem.to_string()],
    }
}

#[test]
fn wrong_provider_and_target_are_named() {
    let p = problems(&[
        ("provider: knative", "provider: istio"),
        ("kind: Service", "kind: Deployment"),
    ]);
    assert_eq!(
        p,
        [
            "spec.provider: \"istio\" is not supported: Serin routes Knative Services only (provider: knative)",
            "spec.targetRef.kind: \"Deployment\" must be \"Service\" (a Knative Service)",
        ]
    );
}

#[test]
fn weights_must_be_in_range() {
    let p = problems(&[
        ("maxWeight: 50", "maxWeight: 150"),
        ("stepWeight: 10", "stepWeight: 0\n    stepWeights: [10, 5, 200]"),
    ]);
    assert_eq!(
        p,
        [
            "spec.analysis.stepWeights[1]: weights must be strictly increasing",
            "spec.analysis.stepWeights[2]: 200 is not a weight between 1 and 100",
        ]
    );
    let p = problems(&[("maxWeight: 50", "maxWeight: 150")]);
    assert_eq!(p, ["spec.analysis.maxWeight: 150 is not a weight between 1 and 100"]);
}

#[test]
fn durations_must_parse() {
    let p = problems(&[
        ("interval: 15s", "interval: fifteen"),
        ("timeout: 5s", "timeout: 5 parsecs"),
    ]);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("spec.analysis.interval: \"fifteen\" is not a duration like 15s, 1m or 1h30m"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("spec.analysis.webhooks[0].timeout: \"5 parsecs\" is not a duration"),
        "{p:?}"
    );
}

#[test]
fn long_durations_are_accepted() {
    assert!(problems(&[("interval: 15s", "interval: 1h30m")]).is_empty());
}

#[test]
fn threshold_range_min_must_not_exceed_max() {
    let p = problems(&[("min: 99", "min: 99\n        max: 90")]);
    assert_eq!(
        p,
        ["spec.analysis.metrics[0].thresholdRange: min 99 is greater than max 90"]
    );
}

#[test]
fn unsupported_strategies_are_rejected_with_why() {
    let p = problems(&[(
        "stepWeight: 10",
        "stepWeight: 10\n    mirror: true\n    match:\n      - headers:\n          x-canary:\n            exact: insider",
    )]);
    assert_eq!(
        p,
        [
            "spec.analysis.match: A/B testing is not supported for Knative: Knative routes by percentage only, it cannot match headers or cookies",
            "spec.analysis.mirror: traffic mirroring is not supported for Knative: Knative cannot shadow requests",
        ]
    );
    let p = problems(&[(
        "progressDeadlineSeconds: 60",
        "progressDeadlineSeconds: 60\n  autoscalerRef:\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    name: podinfo",
    )]);
    assert_eq!(
        p,
        ["spec.autoscalerRef: can't use an autoscaler with a Knative Service: Knative scales revisions itself"]
    );
}

#[test]
fn unknown_metric_and_webhook_type_are_named() {
    let p = problems(&[
        ("name: request-duration", "name: error-rate"),
        ("- name: load-test", "- name: load-test\n        type: pre-deploy"),
    ]);
    assert_eq!(
        p,
        [
            "spec.analysis.metrics[1]: metric \"error-rate\" is not built in and has neither templateRef nor query",
            "spec.analysis.webhooks[0].type: \"pre-deploy\" is not a webhook type (confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event)",
        ]
    );
}

#[test]
fn wrongly_typed_fields_are_reported_with_their_path_not_a_crash() {
    let p = problems(&[("maxWeight: 50", "maxWeight: fifty")]);
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("spec.analysis.maxWeight: invalid type"), "{p:?}");
}

#[test]
fn step_weights_and_blue_green_convert() {
    let text = read("testdata/seed/podinfo-canary.yaml").replace("stepWeight: 10", "stepWeights: [1, 5, 25, 80]");
    let docs = canaries_in(&text).expect("yaml");
    let CanaryDocument::Parsed(c) = &docs[0] else { panic!() };
    let v = validate(c).expect("valid");
    assert_eq!(
        v.plan.strategy,
        Strategy::Canary {
            weights: vec![1, 5, 25, 80],
            promotion_step: None
        }
    );
    assert_eq!(
        v.warnings.len(),
        1,
        "maxWeight ignored with stepWeights: {:?}",
        v.warnings
    );

    let text = read("testdata/seed/podinfo-canary.yaml")
        .replace("    maxWeight: 50\n", "")
        .replace("stepWeight: 10", "iterations: 4");
    let docs = canaries_in(&text).expect("yaml");
    let CanaryDocument::Parsed(c) = &docs[0] else { panic!() };
    assert_eq!(
        validate(c).expect("valid").plan.strategy,
        Strategy::BlueGreen { iterations: 4 }
    );
}

#[test]
fn non_canary_documents_are_skipped_and_bad_yaml_is_an_error() {
    let text = format!(
        "{}\n---\n{}",
        read("testdata/seed/podinfo-ksvc.yaml"),
        read("testdata/seed/podinfo-canary.yaml")
    );
    assert_eq!(canaries_in(&text).expect("yaml").len(), 1);
    assert!(canaries_in("key: [unclosed").is_err());
}

#[test]
fn a_builtin_metric_name_with_a_template_is_refused_with_what_flagger_would_do() {
    let p = problems(&[(
        "    - name: request-success-rate\n",
        "    - name: request-success-rate\n      templateRef:\n        name: error-rate\n",
    )]);
    assert_eq!(
        p,
        [
            "spec.analysis.metrics[0].name: \"request-success-rate\" is a built-in metric: with templateRef Flagger runs both the built-in query and yours against the same bounds; name this metric differently to run only yours, or remove templateRef to run the built-in"
        ]
    );
}

#[test]
fn an_unusable_metrics_server_is_a_warning_naming_the_consequence() {
    let text = read("testdata/seed/podinfo-canary.yaml").replacen(
        "provider: knative",
        "provider: knative\n  metricsServer: prometheus:9090",
        1,
    );
    let Some(CanaryDocument::Parsed(canary)) = canaries_in(&text).expect("yaml").into_iter().next() else {
        panic!("parsed");
    };
    let validated = validate(&canary).expect("valid");
    let warnings: Vec<String> = validated.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "spec.metricsServer: \"prometheus:9090\" is not an http(s) URL: every built-in metric and inline query check will fail"
        ]
    );
    assert!(serin_api::is_http_url("http://prometheus.istio-system:9090"));
    assert!(!serin_api::is_http_url("https://"));
}

#[test]
fn durations_follow_gos_parse_duration_like_flagger() {
    use serin_api::parse_duration;
    use std::time::Duration;
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m3s"), Ok(Duration::from_secs(123)));
    // humantime would take these; Go (and so Flagger) does not.
    for text in ["1day", "15 s", "1min", "5", "", "-1m"] {
        assert!(parse_duration(text).is_err(), "{text:?} must not parse");
    }
}
