//! Pure builders of the JSON merge patches Serin writes to a Knative Service. Each names the
//! revisions explicitly (`latestRevision: true` only when routing is handed back to Knative), carries the
//! `resourceVersion` it was computed from (so a concurrent write yields 409, not a lost update),
//! and touches only `spec.traffic` and the primary annotation.

use serde_json::{Value, json};
use serin_core::TrafficSplit;

/// The annotation recording the primary revision (Flagger's name, so a Service can move from
/// Flagger to Serin).
pub const PRIMARY_ANNOTATION: &str = "flagger.app/primary-revision";
/// Tag of the primary traffic target (`primary-NAME.NAMESPACE…` URL).
pub const PRIMARY_TAG: &str = "primary";
/// Tag of the canary traffic target.
pub const CANARY_TAG: &str = "canary";

fn guarded(resource_version: &str, annotations: Value, traffic: Value) -> Value {
    json!({
        "metadata": {"resourceVersion": resource_version, "annotations": annotations},
        "spec": {"traffic": traffic},
    })
}

/// One traffic target by revision name, tagged when `tag` is given.
fn entry(revision: &str, percent: u8, tag: Option<&str>) -> Value {
    match tag {
        Some(tag) => json!({"revisionName": revision, "percent": percent, "tag": tag}),
        None => json!({"revisionName": revision, "percent": percent}),
    }
}

/// Takes over routing: `primary` gets 100%.
pub fn initialize(primary: &str, resource_version: &str, tags: bool) -> Value {
    guarded(
        resource_version,
        json!({PRIMARY_ANNOTATION: primary}),
        json!([entry(primary, 100, tags.then_some(PRIMARY_TAG))]),
    )
}

/// Splits traffic between the primary and the canary revision.
pub fn split(split: &TrafficSplit, resource_version: &str, tags: bool) -> Value {
    guarded(
        resource_version,
        json!({PRIMARY_ANNOTATION: split.primary}),
        json!([
            entry(&split.primary, split.primary_weight(), tags.then_some(PRIMARY_TAG)),
            entry(&split.canary, split.canary_weight, tags.then_some(CANARY_TAG)),
        ]),
    )
}

/// Promotes `revision`: it becomes the primary with 100%, in one write.
pub fn promote(revision: &str, resource_version: &str, tags: bool) -> Value {
    guarded(
        resource_version,
        json!({PRIMARY_ANNOTATION: revision}),
        json!([entry(revision, 100, tags.then_some(PRIMARY_TAG))]),
    )
}

/// Stops managing the Service (`revertOnDeletion`): the annotation and Serin's tags go. With
/// `pin: None` routing goes back to Knative (`latestRevision: true`, 100%); with `Some(rev)`,
/// `rev` keeps 100% by name.
pub fn release(pin: Option<&str>, resource_version: &str) -> Value {
    let traffic = match pin {
        None => json!([{"latestRevision": true, "percent": 100}]),
        Some(revision) => json!([{"revisionName": revision, "percent": 100}]),
    };
    guarded(resource_version, json!({PRIMARY_ANNOTATION: null}), traffic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_pins_the_primary_by_name() {
        assert_eq!(
            initialize("podinfo-00001", "42", true),
            json!({
                "metadata": {"resourceVersion": "42", "annotations": {"flagger.app/primary-revision": "podinfo-00001"}},
                "spec": {"traffic": [{"revisionName": "podinfo-00001", "percent": 100, "tag": "primary"}]}
            })
        );
    }

    #[test]
    fn split_names_both_revisions_and_sums_to_100() {
        let s = TrafficSplit {
            primary: "podinfo-00001".into(),
            canary: "podinfo-00002".into(),
            canary_weight: 30,
        };
        assert_eq!(
            split(&s, "7", true),
            json!({
                "metadata": {"resourceVersion": "7", "annotations": {"flagger.app/primary-revision": "podinfo-00001"}},
                "spec": {"traffic": [
                    {"revisionName": "podinfo-00001", "percent": 70, "tag": "primary"},
                    {"revisionName": "podinfo-00002", "percent": 30, "tag": "canary"}
                ]}
            })
        );
    }

    #[test]
    fn promote_moves_annotation_and_traffic_in_one_patch() {
        assert_eq!(
            promote("podinfo-00002", "9", true),
            json!({
                "metadata": {"resourceVersion": "9", "annotations": {"flagger.app/primary-revision": "podinfo-00002"}},
                "spec": {"traffic": [{"revisionName": "podinfo-00002", "percent": 100, "tag": "primary"}]}
            })
        );
    }

    #[test]
    fn without_tags_the_targets_are_named_only() {
        let s = TrafficSplit {
            primary: "podinfo-00001".into(),
            canary: "podinfo-00002".into(),
            canary_weight: 30,
        };
        assert_eq!(
            split(&s, "7", false)["spec"]["traffic"],
            json!([
                {"revisionName": "podinfo-00001", "percent": 70},
                {"revisionName": "podinfo-00002", "percent": 30}
            ])
        );
        assert_eq!(
            promote("podinfo-00002", "9", false)["spec"]["traffic"],
            json!([{"revisionName": "podinfo-00002", "percent": 100}])
        );
    }

    #[test]
    fn release_pins_the_primary_without_tags_and_removes_the_annotation() {
        assert_eq!(
            release(Some("podinfo-00001"), "3"),
            json!({
                "metadata": {"resourceVersion": "3", "annotations": {"flagger.app/primary-revision": null}},
                "spec": {"traffic": [{"revisionName": "podinfo-00001", "percent": 100}]}
            })
        );
    }

    #[test]
    fn release_without_a_pin_restores_latest_revision_and_removes_the_annotation() {
        assert_eq!(
            release(None, "3"),
            json!({
                "metadata": {"resourceVersion": "3", "annotations": {"flagger.app/primary-revision": null}},
                "spec": {"traffic": [{"latestRevision": true, "percent": 100}]}
            })
        );
    }
}
