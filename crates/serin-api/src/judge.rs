//! How a Canary opts into the sequential judge without touching Flagger's schema: the
//! `judge.serin.dev/mode` annotation (`flagger`, `shadow`, `sequential`), the optional
//! `judge.serin.dev/policy` annotation naming a `JudgePolicy` in the Canary's namespace, and
//! the Serin-owned `JudgePolicy` CRD (`judge.serin.dev/v1alpha1`) holding the parameters.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serin_core::{JudgeMode, JudgePolicy as CorePolicy, JudgeSettings, OnInsufficientEvidence};

use crate::{Canary, parse_duration};

/// The annotation choosing the judge.
pub const JUDGE_MODE_ANNOTATION: &str = "judge.serin.dev/mode";
/// The annotation naming the `JudgePolicy`.
pub const JUDGE_POLICY_ANNOTATION: &str = "judge.serin.dev/policy";

/// `JudgePolicy.spec`: the sequential judge's parameters; every field is optional and defaults
/// to the value in `docs/judgement.md`.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "judge.serin.dev",
    version = "v1alpha1",
    kind = "JudgePolicy",
    plural = "judgepolicies",
    singular = "judgepolicy",
    namespaced,
    printcolumn = r#"{"name":"Alpha","type":"number","jsonPath":".spec.alpha"}"#,
    printcolumn = r#"{"name":"Deadline","type":"string","jsonPath":".spec.maxAnalysisDuration"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct JudgePolicySpec {
    /// False-rollback budget per rollout (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// False-verification budget per rollout (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Canary/primary event-rate ratio still acceptable (default 1.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// p99 increase that is a regression, as a fraction (default 0.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_margin: Option<f64>,
    /// From the first step to the deadline, a Go duration (default `45m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_analysis_duration: Option<String>,
    /// `promote` (default, marked Unverified), `pause` or `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "on_insufficient")]
    pub on_insufficient_evidence: Option<String>,
    /// Canary requests a step below max weight needs before the next (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_step_requests: Option<u64>,
}

fn on_insufficient(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["promote", "pause", "rollback"] })
}

impl JudgePolicySpec {
    /// The engine's parameters, or what is wrong with these.
    pub fn to_policy(&self) -> Result<CorePolicy, String> {
        let d = CorePolicy::default();
        let max_analysis_duration = match &self.max_analysis_duration {
            Some(text) => parse_duration(text).map_err(|e| format!("maxAnalysisDuration: {e}"))?,
            None => d.max_analysis_duration,
        };
        let on_insufficient_evidence = match &self.on_insufficient_evidence {
            Some(text) => OnInsufficientEvidence::parse(text)
                .ok_or_else(|| format!("onInsufficientEvidence {text:?} is not promote, pause or rollback"))?,
            None => d.on_insufficient_evidence,
        };
        let policy = CorePolicy {
            alpha: self.alpha.unwrap_or(d.alpha),
            beta: self.beta.unwrap_or(d.beta),
            tolerance: self.tolerance.unwrap_or(d.tolerance),
            latency_margin: self.latency_margin.unwrap_or(d.latency_margin),
            max_analysis_duration,
            on_insufficient_evidence,
            min_step_requests: self.min_step_requests.unwrap_or(d.min_step_requests),
        };
        let problems = policy.problems();
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// What a Canary's annotations ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeRequest {
    /// The mode asked for (`None`: the controller's default).
    pub mode: Option<JudgeMode>,
    /// The `JudgePolicy` named.
    pub policy: Option<String>,
}

/// Reads the judge annotations; an unknown mode is an error naming the annotation.
pub fn judge_request(canary: &Canary) -> Result<JudgeRequest, String> {
    let annotations = canary.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(|v| v.trim().to_owned());
    let mode = match get(JUDGE_MODE_ANNOTATION) {
        None => None,
        Some(text) if text.is_empty() => None,
        Some(text) => Some(JudgeMode::parse(&text).ok_or_else(|| {
            format!("annotation {JUDGE_MODE_ANNOTATION}: {text:?} is not flagger, shadow or sequential")
        })?),
    };
    Ok(JudgeRequest {
        mode,
        policy: get(JUDGE_POLICY_ANNOTATION).filter(|p| !p.is_empty()),
    })
}

/// The settings for a request, with its policy (if one was named and found).
pub fn judge_settings(
    request: &JudgeRequest,
    default_mode: JudgeMode,
    policy: Option<&JudgePolicySpec>,
) -> Result<JudgeSettings, String> {
    let policy = match policy {
        Some(spec) => spec
            .to_policy()
            .map_err(|e| format!("JudgePolicy {}: {e}", request.policy.as_deref().unwrap_or("")))?,
        None => CorePolicy::default(),
    };
    Ok(JudgeSettings {
        mode: request.mode.unwrap_or(default_mode),
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(annotations: &[(&str, &str)]) -> Canary {
        let mut c = Canary::new("podinfo", Default::default());
        c.metadata.annotations = Some(annotations.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect());
        c
    }

    #[test]
    fn the_annotation_chooses_the_mode_and_a_wrong_value_is_an_error() {
        let r = judge_request(&canary(&[(JUDGE_MODE_ANNOTATION, "sequential")])).expect("valid");
        assert_eq!(r.mode, Some(JudgeMode::Sequential));
        assert_eq!(judge_request(&canary(&[])).expect("valid").mode, None);
        let e = judge_request(&canary(&[(JUDGE_MODE_ANNOTATION, "bayes")])).expect_err("invalid");
        assert!(e.contains("\"bayes\" is not flagger, shadow or sequential"), "{e}");
    }

    #[test]
    fn a_policy_overrides_the_defaults_and_is_checked() {
        let spec = JudgePolicySpec {
            alpha: Some(0.05),
            max_analysis_duration: Some("20m".into()),
            on_insufficient_evidence: Some("pause".into()),
            ..Default::default()
        };
        let p = spec.to_policy().expect("valid");
        assert_eq!(p.alpha, 0.05);
        assert_eq!(p.max_analysis_duration, std::time::Duration::from_secs(1200));
        assert_eq!(p.on_insufficient_evidence, OnInsufficientEvidence::Pause);
        assert_eq!(p.beta, 0.05);
        let bad = JudgePolicySpec {
            alpha: Some(2.0),
            ..Default::default()
        };
        assert!(bad.to_policy().expect_err("invalid").contains("alpha"));
    }
}
