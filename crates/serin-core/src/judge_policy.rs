//! How a Canary asks to be judged: the mode (Flagger's rule, shadow, sequential) and the
//! parameters of the sequential judge. `serin-api` fills these from the Canary's
//! `judge.serin.dev/mode` annotation and a `JudgePolicy`; the defaults are the design's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The judge mode and its parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JudgeSettings {
    /// Which rule decides.
    pub mode: JudgeMode,
    /// Parameters of the sequential judge (used in `Shadow` and `Sequential`).
    pub policy: JudgePolicy,
}

impl JudgeSettings {
    /// Whether the sequential judge runs (deciding or in the shadow).
    pub fn sequential_runs(&self) -> bool {
        self.mode != JudgeMode::Flagger
    }
}

/// Which rule decides a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum JudgeMode {
    /// Flagger's rule: thresholds on the canary alone, failed checks counted up to `threshold`.
    #[default]
    Flagger,
    /// Flagger's rule decides; the sequential judge runs beside it and reports what it would do.
    Shadow,
    /// The sequential judge decides for the built-in metrics.
    Sequential,
}

impl JudgeMode {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeMode::Flagger => "flagger",
            JudgeMode::Shadow => "shadow",
            JudgeMode::Sequential => "sequential",
        }
    }

    /// Parses the annotation value.
    pub fn parse(text: &str) -> Option<JudgeMode> {
        match text.trim() {
            "flagger" => Some(JudgeMode::Flagger),
            "shadow" => Some(JudgeMode::Shadow),
            "sequential" => Some(JudgeMode::Sequential),
            _ => None,
        }
    }
}

/// What to do when the deadline comes and the canary has not had the traffic to prove itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnInsufficientEvidence {
    /// Promote, marked Unverified (condition `Verified=False`, reason `InsufficientTraffic`).
    #[default]
    Promote,
    /// Hold at the current weight until a person acts.
    Pause,
    /// Roll back.
    Rollback,
}

impl OnInsufficientEvidence {
    /// The `JudgePolicy` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnInsufficientEvidence::Promote => "promote",
            OnInsufficientEvidence::Pause => "pause",
            OnInsufficientEvidence::Rollback => "rollback",
        }
    }

    /// Parses the `JudgePolicy` spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "promote" => Some(Self::Promote),
            "pause" => Some(Self::Pause),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }
}

/// Parameters of the sequential judge (`docs/judgement.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgePolicy {
    /// False-rollback budget per rollout (harm tests reject at `checks / alpha`).
    pub alpha: f64,
    /// False-verification budget per rollout (safety gates pass at `gates / beta`).
    pub beta: f64,
    /// The event-rate ratio canary/primary that is still acceptable (r₀).
    pub tolerance: f64,
    /// The p99 latency increase that is not acceptable, as a fraction (0.15 = +15%).
    pub latency_margin: f64,
    /// From the first step to the deadline.
    pub max_analysis_duration: Duration,
    /// The outcome at the deadline when traffic was too low to decide.
    pub on_insufficient_evidence: OnInsufficientEvidence,
    /// Canary requests a step below max weight needs before the next weight (or 4 intervals).
    pub min_step_requests: u64,
}

impl Default for JudgePolicy {
    fn default() -> Self {
        JudgePolicy {
            alpha: 0.01,
            beta: 0.05,
            tolerance: 1.25,
            latency_margin: 0.15,
            max_analysis_duration: Duration::from_secs(45 * 60),
            on_insufficient_evidence: OnInsufficientEvidence::Promote,
            min_step_requests: 50,
        }
    }
}

impl JudgePolicy {
    /// Why these parameters cannot be used, if they cannot.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            problems.push(format!("alpha must be in (0, 0.5), got {}", self.alpha));
        }
        if !(self.beta > 0.0 && self.beta < 0.5) {
            problems.push(format!("beta must be in (0, 0.5), got {}", self.beta));
        }
        if !(self.tolerance >= 1.0 && self.tolerance <= 2.0) {
            problems.push(format!("tolerance must be in [1, 2], got {}", self.tolerance));
        }
        if !(self.latency_margin > 0.0 && self.latency_margin <= 1.0) {
            problems.push(format!("latencyMargin must be in (0, 1], got {}", self.latency_margin));
        }
        if self.max_analysis_duration < Duration::from_secs(60) {
            problems.push("maxAnalysisDuration must be at least 1m".into());
        }
        problems
    }
}
