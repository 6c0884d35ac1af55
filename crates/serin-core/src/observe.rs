//! What the caller observed and reports to the engine: revisions, metric and webhook outcomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Phase;

/// What the router saw of the target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct World {
    /// The revision recorded as primary (Knative: the `flagger.app/primary-revision` annotation).
    pub primary: Option<Revision>,
    /// The newest revision (Knative: `status.latestCreatedRevisionName`).
    pub latest_created: Option<Revision>,
    /// The newest Ready revision (Knative: `status.latestReadyRevisionName`).
    pub latest_ready: Option<String>,
}

/// A revision and its readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// Revision name, e.g. `podinfo-00002`.
    pub name: String,
    /// Its readiness.
    pub readiness: Readiness,
}

impl Revision {
    /// A Ready revision.
    pub fn ready(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            readiness: Readiness::Ready,
        }
    }
}

/// Readiness of a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Readiness {
    /// Ready=True.
    Ready,
    /// Ready=Unknown (still starting), with Knative's reason if any.
    NotYet {
        /// Knative's reason or message.
        reason: Option<String>,
    },
    /// Ready=False with a terminal reason (image pull failure, crash loop, …).
    Failed {
        /// Knative's reason and message.
        reason: String,
    },
}

/// The outcome of one metric query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetricOutcome {
    /// A value.
    Value(f64),
    /// Several series answered; like Flagger, the value of the last one is used.
    LastOf {
        /// The last series' value.
        value: f64,
        /// How many series answered.
        series: usize,
    },
    /// The query returned no series.
    NoData,
    /// The query returned NaN (typically 0/0: no requests in the window).
    NaN,
    /// The provider failed (transport, HTTP status, bad answer).
    Error(String),
}

impl MetricOutcome {
    /// The value used for judging, if there is one.
    pub fn value(&self) -> Option<f64> {
        match self {
            MetricOutcome::Value(v) | MetricOutcome::LastOf { value: v, .. } => Some(*v),
            _ => None,
        }
    }
}

/// The outcome of one webhook call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookOutcome {
    /// A 2xx answer.
    Passed,
    /// A non-2xx answer.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// No answer within the timeout.
    TimedOut,
    /// Transport or other error.
    Error(String),
}

impl HookOutcome {
    /// Whether the hook said yes.
    pub fn passed(&self) -> bool {
        matches!(self, HookOutcome::Passed)
    }

    /// A short description for events: the status and body, `timed out`, or the error.
    pub fn describe(&self) -> String {
        match self {
            HookOutcome::Passed => "passed".into(),
            HookOutcome::Rejected { status, body } if body.trim().is_empty() => {
                format!("status {status}")
            }
            HookOutcome::Rejected { status, body } => format!("status {status}: {}", body.trim()),
            HookOutcome::TimedOut => "timed out".into(),
            HookOutcome::Error(e) => e.clone(),
        }
    }
}

/// Everything observed for one step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Observation {
    /// The revisions.
    pub world: World,
    /// Metric outcomes by index into `Plan::metrics`.
    pub metrics: BTreeMap<usize, MetricOutcome>,
    /// Webhook outcomes by index into `Plan::webhooks`.
    pub hooks: BTreeMap<usize, HookOutcome>,
    /// The raw request counters of both revisions, for the sequential judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountsOutcome>,
    /// Requests people wrote on the Canary (handled ones included: the status says which).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<crate::OperatorRequest>,
}

impl Observation {
    /// An observation of the revisions only, before any check has run.
    pub fn of(world: World) -> Self {
        Self {
            world,
            ..Self::default()
        }
    }
}

/// Checks the engine needs before it can decide; they may run concurrently.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckRequest {
    /// Indices into `Plan::metrics` to query.
    pub metrics: Vec<usize>,
    /// Indices into `Plan::webhooks` to call.
    pub hooks: Vec<usize>,
    /// The phase to send in webhook payloads.
    pub phase: Phase,
    /// The revision under analysis (the `{{ route }}` of queries).
    pub canary_revision: Option<String>,
    /// The primary revision (the `{{ primary }}` of queries).
    pub primary_revision: Option<String>,
    /// Read the request counters of both revisions (the sequential judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountsRequest>,
}

/// What the sequential judge asks the metrics backend for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CountsRequest {
    /// Also read the primary's latency histogram over the last hour (once per rollout).
    pub calibrate: bool,
}

/// Which revision a counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Arm {
    /// The revision under analysis.
    Canary,
    /// The primary revision.
    Primary,
}

/// What a cumulative counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Counter {
    /// Requests answered (any code).
    Requests,
    /// Requests answered with a 5xx.
    Errors,
    /// Requests timed, by latency bucket: those that took at most `le_micros` (`u64::MAX` is `+Inf`).
    LatencyAtMost {
        /// The bucket's upper bound in microseconds.
        le_micros: u64,
    },
}

/// One cumulative counter series as read from the metrics backend (no `rate()`, no `sum()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterSample {
    /// The series' identity (its label set, or anything stable per series).
    pub series: String,
    /// Whose requests it counts.
    pub arm: Arm,
    /// What it counts.
    pub counter: Counter,
    /// Its cumulative value.
    pub value: f64,
}

/// The primary's latency histogram over the last hour: cumulative counts per bucket bound.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// (upper bound in microseconds, requests at most that slow), bounds ascending; the last may be `+Inf` (`u64::MAX`).
    pub buckets: Vec<(u64, f64)>,
}

/// What the counters query returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CountsOutcome {
    /// The series found for both revisions (possibly none for one of them).
    Read {
        /// Every series read.
        samples: Vec<CounterSample>,
        /// The primary's histogram, when asked for and available.
        calibration: Option<LatencyHistogram>,
    },
    /// The backend failed (transport, status, bad answer).
    Error(String),
}
