//! What the engine asks the caller to do, as values, and why.

use serde::{Deserialize, Serialize};

use crate::{HookKind, Phase, RolloutStatus, Time};

/// One side effect, to be executed in order by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Take over routing: record `primary` and send it 100% of traffic.
    Initialize {
        /// The revision to record as primary.
        primary: String,
    },
    /// Split traffic between two named revisions.
    SetTraffic(TrafficSplit),
    /// Make `revision` the primary and send it 100% of traffic, in one write.
    Promote {
        /// The analysed revision.
        revision: String,
    },
    /// Call every webhook of this kind; their outcome is reported, never waited for by the engine.
    CallHooks {
        /// The hook type.
        kind: HookKind,
        /// The phase to send in the payload.
        phase: Phase,
    },
    /// Stop managing the target (`revertOnDeletion`): forget the primary and drop Serin's tags.
    /// `pin: None` hands routing back to Knative (`latestRevision: true`, 100%); `pin: Some(rev)`
    /// keeps 100% on `rev`, for when the latest Ready revision is not the primary (after a
    /// rollback, or mid-analysis) and following it would route users to an unpromoted revision.
    Release {
        /// The revision that keeps 100% of traffic, if routing is not handed back to Knative.
        pin: Option<String>,
    },
    /// Record a Kubernetes event.
    Event(Event),
    /// Record a metric value (for the `flagger_canary_metric_analysis` gauge).
    RecordMetric {
        /// Metric name.
        name: String,
        /// Value observed.
        value: f64,
    },
}

/// A traffic split between the primary and the canary revision; the two always sum to 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSplit {
    /// The primary revision.
    pub primary: String,
    /// The canary revision.
    pub canary: String,
    /// Percent on the canary, 0..=100; the primary gets the rest.
    pub canary_weight: u8,
}

impl TrafficSplit {
    /// Percent on the primary.
    pub fn primary_weight(&self) -> u8 {
        100u8.saturating_sub(self.canary_weight)
    }
}

/// Event severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    /// A `Normal` event.
    Normal,
    /// A `Warning` event.
    Warning,
}

impl Severity {
    /// The Kubernetes event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "Normal",
            Severity::Warning => "Warning",
        }
    }
}

/// A Kubernetes event; the reason is always `Synced`, as in Flagger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Normal or Warning.
    pub severity: Severity,
    /// The message.
    pub message: String,
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Within bounds, or the hook said yes.
    Pass,
    /// Out of bounds, or the hook said no.
    Fail,
    /// The metric had no data.
    NoData,
    /// The provider or the hook failed.
    Error,
}

/// A metric's value as a number, with the bounds it was held against, for charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The value judged (durations in milliseconds, success rates in percent).
    pub value: f64,
    /// The lower bound, if any.
    pub min: Option<f64>,
    /// The upper bound, if any.
    pub max: Option<f64>,
    /// `%`, `ms` or empty.
    pub unit: String,
}

/// One line of an explanation: what was checked, what was seen, against what, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckVerdict {
    /// `metric request-success-rate`, `webhook load-test (rollout)`, …
    pub check: String,
    /// The observed value, formatted.
    pub observed: String,
    /// The bound it was held against, formatted.
    pub bound: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The value as a number, when the check measured one (metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

/// Why the engine decided what it decided.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Explanation {
    /// One sentence.
    pub summary: String,
    /// Every check that took part.
    pub checks: Vec<CheckVerdict>,
    /// Nothing to report: an analysis on schedule, waiting for its next step. Callers may keep
    /// showing the last decision that did something instead of this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_schedule: bool,
}

/// The engine's answer for one step.
#[must_use]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The new status to store.
    pub status: RolloutStatus,
    /// Side effects, in order.
    pub actions: Vec<Action>,
    /// When to call the engine again, unless something changes before; `None`: only on change.
    pub wake_at: Option<Time>,
    /// Why.
    pub explanation: Explanation,
}

impl Decision {
    /// The events among the actions.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.actions.iter().filter_map(|a| match a {
            Action::Event(e) => Some(e),
            _ => None,
        })
    }
}
