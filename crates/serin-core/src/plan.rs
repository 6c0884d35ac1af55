//! The validated rollout plan: what the engine is asked to do for one Canary.
//!
//! A `Plan` is built by `serin-api` from a `Canary` spec (or by an embedder by
//! hand). Everything in it has already been checked, so the engine never has
//! to report a configuration error.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::JudgeSettings;

/// Everything the engine needs to know about one Canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `metadata.name` of the Canary.
    pub canary_name: String,
    /// Namespace of the Canary and its target.
    pub namespace: String,
    /// Name of the Knative Service being rolled out.
    pub target_name: String,
    /// Kind of the target (`Service`), used in condition messages.
    pub target_kind: String,
    /// Time between two analysis steps.
    pub interval: Duration,
    /// Number of failed checks (cumulative per rollout) that triggers a rollback.
    pub threshold: u32,
    /// How traffic moves to the new revision.
    pub strategy: Strategy,
    /// How long the new revision may stay not Ready before the rollout is rolled back.
    pub progress_deadline: Duration,
    /// Promote a new revision at once, without analysis.
    pub skip_analysis: bool,
    /// Do nothing until unsuspended; an analysis in flight freezes where it is.
    pub suspend: bool,
    /// Metric checks run at every analysis step, in spec order.
    pub metrics: Vec<MetricCheck>,
    /// Webhooks, in spec order.
    pub webhooks: Vec<Hook>,
    /// How the built-in metrics are judged: Flagger's rule (the default), or the sequential judge.
    #[serde(default)]
    pub judge: JudgeSettings,
}

impl Plan {
    /// `{target}.{namespace}`, the way Flagger names a target in events.
    pub fn target_ref(&self) -> String {
        format!("{}.{}", self.target_name, self.namespace)
    }

    /// `{name}.{namespace}`, the way Flagger names a Canary in events.
    pub fn canary_ref(&self) -> String {
        format!("{}.{}", self.canary_name, self.namespace)
    }

    /// The highest canary weight before promotion (0 for blue/green).
    pub fn max_weight(&self) -> u8 {
        match &self.strategy {
            Strategy::Canary { weights, .. } => weights.last().copied().unwrap_or(0),
            Strategy::BlueGreen { .. } => 0,
        }
    }

    /// Indices into `webhooks` of the hooks of one kind, in spec order.
    pub fn hooks_of(&self, kind: HookKind) -> Vec<usize> {
        self.webhooks
            .iter()
            .enumerate()
            .filter(|(_, h)| h.kind == kind)
            .map(|(i, _)| i)
            .collect()
    }
}

/// How traffic reaches the new revision during analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Progressive traffic shifting.
    Canary {
        /// The canary weights, strictly increasing, each in 1..=100; the last is the max weight.
        /// `stepWeight: 10, maxWeight: 50` becomes `[10, 20, 30, 40, 50]`.
        weights: Vec<u8>,
        /// `stepWeightPromotion`: ramp the promoted revision to 100% in steps of this size.
        promotion_step: Option<u8>,
    },
    /// Blue/green: the new revision gets no user traffic; `iterations` analysis steps
    /// (reached by load tests through its `canary` tag URL), then promotion.
    BlueGreen {
        /// Number of passing analysis steps before promotion.
        iterations: u32,
    },
}

impl Strategy {
    /// Expands `stepWeight`/`maxWeight` into the list of weights, never exceeding `max`
    /// (Flagger overshoots when `max` is not a multiple of `step`; Serin stops at `max`).
    pub fn linear(step: u8, max: u8) -> Vec<u8> {
        let mut weights = Vec::new();
        if step == 0 || max == 0 {
            return weights;
        }
        let mut w = 0u8;
        while w < max {
            w = w.saturating_add(step).min(max);
            weights.push(w);
        }
        weights
    }
}

/// One metric check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricCheck {
    /// Metric name as written in the Canary.
    pub name: String,
    /// How the value is interpreted and reported.
    pub kind: MetricKind,
    /// Acceptable range (inclusive).
    pub range: ThresholdRange,
    /// The query window (`{{ interval }}`), used in explanations.
    pub window: Duration,
}

/// What a metric measures, which decides units and message wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricKind {
    /// Built-in `request-success-rate`, a percentage.
    SuccessRate,
    /// Built-in `request-duration`, P99 in milliseconds.
    Duration,
    /// An inline query or a MetricTemplate.
    Custom,
}

/// An inclusive range of acceptable values; an unset bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ThresholdRange {
    /// Values below fail.
    pub min: Option<f64>,
    /// Values above fail.
    pub max: Option<f64>,
}

/// One webhook, as far as the engine cares: who it is and when it is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// The hook's name, used in events.
    pub name: String,
    /// When it is called.
    pub kind: HookKind,
}

/// Webhook types of Flagger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HookKind {
    /// Gate before a new revision's rollout starts.
    ConfirmRollout,
    /// Called once before the first traffic step; failure counts as a failed check.
    PreRollout,
    /// Called at every analysis step (load tests); failure counts as a failed check.
    Rollout,
    /// Gate before each weight increase.
    ConfirmTrafficIncrease,
    /// Gate before promotion.
    ConfirmPromotion,
    /// Called after promotion or rollback; outcome only reported.
    PostRollout,
    /// Success triggers a rollback.
    Rollback,
    /// Receives every event; handled by the caller, never by the engine.
    Event,
}

impl HookKind {
    /// The name used in the Canary spec (`confirm-rollout`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::ConfirmRollout => "confirm-rollout",
            HookKind::PreRollout => "pre-rollout",
            HookKind::Rollout => "rollout",
            HookKind::ConfirmTrafficIncrease => "confirm-traffic-increase",
            HookKind::ConfirmPromotion => "confirm-promotion",
            HookKind::PostRollout => "post-rollout",
            HookKind::Rollback => "rollback",
            HookKind::Event => "event",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_weights_stop_at_max_weight() {
        assert_eq!(Strategy::linear(10, 50), vec![10, 20, 30, 40, 50]);
        assert_eq!(Strategy::linear(20, 50), vec![20, 40, 50]);
        assert_eq!(Strategy::linear(100, 100), vec![100]);
        assert_eq!(Strategy::linear(60, 100), vec![60, 100]);
        assert!(Strategy::linear(0, 50).is_empty());
    }
}
