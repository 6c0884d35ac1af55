//! Serin's Kubernetes API types: the Flagger-compatible `Canary` and `MetricTemplate`
//! custom resources (`flagger.app/v1beta1`), their validation, and their conversion into
//! `serin-core` plans and statuses.
//!
//! This crate defines types and checks them; it does not talk to a cluster (no client, no
//! runtime) and does not decide anything about a rollout.
//!
//! # Layout
//! - [`Canary`] / [`CanarySpec`]: every field of Flagger's Canary parses; mesh-only fields are
//!   kept and reported as unsupported.
//! - [`CanaryStatus`]: Flagger's status fields plus Serin's, and the round trip to the engine's
//!   `RolloutStatus`.
//! - [`MetricTemplate`].
//! - [`JudgePolicy`], [`judge_request`], [`judge_settings`]: the opt-in sequential judge
//!   (`judge.serin.dev/mode` annotation and the Serin-owned `judge.serin.dev/v1alpha1` CRD).
//! - [`validate()`]: Canary → `Plan`, with errors naming the field path.
//! - [`canaries_in`]: Canaries from multi-document YAML.
//! - [`requests`]: the request annotations people write (`serin promote`, `abort`, `retry`,
//!   `approve`).
//! - [`crd_documents`]: the CRDs as YAML, for `deploy/crds/`.

mod alert;
mod canary;
mod documents;
mod judge;
pub mod requests;
mod schema;
mod status;
mod template;
mod validate;

pub use alert::{AlertProvider, AlertProviderSpec, CanaryAlert};
pub use canary::{
    Canary, CanaryAnalysis, CanaryMetric, CanarySpec, CanaryThresholdRange, CanaryWebhook, CrossNamespaceRef, TargetRef,
};
pub use documents::{CanaryDocument, YamlError, canaries_in};
pub use judge::{
    JUDGE_MODE_ANNOTATION, JUDGE_POLICY_ANNOTATION, JudgePolicy, JudgePolicySpec, JudgeRequest, judge_request,
    judge_settings,
};
pub use status::{CanaryCondition, CanaryStatus, LastDecision, MetricReading, parse_time, rfc3339, wall_clock_now};
pub use template::{MetricProvider, MetricTemplate, MetricTemplateSpec, SecretRef};
pub use validate::{
    DEFAULT_INTERVAL, DEFAULT_METRIC_WINDOW, DEFAULT_PROGRESS_DEADLINE, DEFAULT_WEBHOOK_TIMEOUT, DurationError,
    InvalidCanary, Problem, Validated, is_http_url, parse_duration, validate, webhook_timeout,
};

/// The CRDs Serin serves, as `(file name, YAML)` pairs for `deploy/crds/`.
pub fn crd_documents() -> Result<Vec<(&'static str, String)>, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    Ok(vec![
        ("canaries.flagger.app.yaml", serde_saphyr::to_string(&Canary::crd())?),
        (
            "metrictemplates.flagger.app.yaml",
            serde_saphyr::to_string(&MetricTemplate::crd())?,
        ),
        (
            "alertproviders.flagger.app.yaml",
            serde_saphyr::to_string(&AlertProvider::crd())?,
        ),
        (
            "judgepolicies.judge.serin.dev.yaml",
            serde_saphyr::to_string(&JudgePolicy::crd())?,
        ),
    ])
}
