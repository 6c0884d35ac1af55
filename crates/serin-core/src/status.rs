//! The rollout's state between two steps: everything the engine needs to continue
//! after a restart lives here, and the caller stores it (in `Canary.status`).

use serde::{Deserialize, Serialize};

use crate::{FlaggerRecord, Time, sequential::JudgeState};

/// Canary phases, with Flagger's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Phase {
    /// New Canary; routing not yet taken over.
    #[default]
    Initializing,
    /// Routing taken over, primary recorded, nothing to roll out.
    Initialized,
    /// A new revision waits for a confirm-rollout gate.
    Waiting,
    /// Analysis running.
    Progressing,
    /// Analysis done at max weight; a confirm-promotion gate is closed (analysis keeps running).
    WaitingPromotion,
    /// The analysed revision is being ramped to 100% (`stepWeightPromotion`).
    Promoting,
    /// Flagger's last step before Succeeded; Serin only reads it from older status.
    Finalising,
    /// The last rollout was promoted.
    Succeeded,
    /// The last rollout was rolled back.
    Failed,
    /// The Canary is being deleted and routing reverted.
    Terminating,
}

impl Phase {
    /// The phase as written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initializing => "Initializing",
            Phase::Initialized => "Initialized",
            Phase::Waiting => "Waiting",
            Phase::Progressing => "Progressing",
            Phase::WaitingPromotion => "WaitingPromotion",
            Phase::Promoting => "Promoting",
            Phase::Finalising => "Finalising",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Terminating => "Terminating",
        }
    }

    /// Parses `status.phase`; the empty string is `Initializing`.
    pub fn parse(s: &str) -> Option<Phase> {
        Some(match s {
            "" | "Initializing" => Phase::Initializing,
            "Initialized" => Phase::Initialized,
            "Waiting" => Phase::Waiting,
            "Progressing" => Phase::Progressing,
            "WaitingPromotion" => Phase::WaitingPromotion,
            "Promoting" => Phase::Promoting,
            "Finalising" => Phase::Finalising,
            "Succeeded" => Phase::Succeeded,
            "Failed" => Phase::Failed,
            "Terminating" => Phase::Terminating,
            _ => return None,
        })
    }

    /// A rollout is in flight (traffic may be split).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Phase::Progressing | Phase::WaitingPromotion | Phase::Promoting | Phase::Finalising
        )
    }

    /// The `Promoted` condition for this phase: (status, message), as Flagger writes it.
    pub fn promoted_condition(self, kind: &str) -> (ConditionStatus, String) {
        use ConditionStatus::{False, True, Unknown};
        match self {
            Phase::Initialized => (True, format!("{kind} initialization completed.")),
            Phase::Waiting | Phase::WaitingPromotion => (Unknown, "Waiting for approval.".into()),
            Phase::Progressing => (Unknown, "New revision detected, progressing canary analysis.".into()),
            Phase::Promoting => (
                Unknown,
                "Canary analysis completed, starting primary rolling update.".into(),
            ),
            Phase::Finalising => (
                Unknown,
                "Canary analysis completed, routing all traffic to primary.".into(),
            ),
            Phase::Succeeded => (
                True,
                "Canary analysis completed successfully, promotion finished.".into(),
            ),
            Phase::Failed => (
                False,
                "Canary analysis failed, traffic routed back to the primary revision.".into(),
            ),
            Phase::Initializing | Phase::Terminating => {
                (Unknown, format!("New {kind} detected, starting initialization."))
            }
        }
    }
}

/// A Kubernetes condition status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

impl ConditionStatus {
    /// The status as written in a condition.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// The engine's memory of one Canary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RolloutStatus {
    /// Current phase.
    pub phase: Phase,
    /// Percentage of traffic on the canary revision, as last written.
    pub canary_weight: u8,
    /// Failed checks in this rollout (cumulative, not consecutive).
    pub failed_checks: u32,
    /// Passed analysis steps (blue/green).
    pub iterations: u32,
    /// The revision serving as primary.
    pub primary_revision: Option<String>,
    /// The revision under analysis, or the last one analysed (promoted or rolled back).
    pub canary_revision: Option<String>,
    /// When the current rollout was detected.
    pub rollout_started_at: Option<Time>,
    /// When the first traffic step (or blue/green load) of this rollout happened.
    pub analysis_started_at: Option<Time>,
    /// Since when the canary revision has been seen not Ready (for the progress deadline).
    pub canary_unready_since: Option<Time>,
    /// When the next analysis step is due.
    pub next_step_at: Option<Time>,
    /// When phase, weight, failed checks or iterations last changed.
    pub last_transition_at: Option<Time>,
    /// Flagger's hashes, when the status was written by Flagger (no revision names in it):
    /// read once, when Serin adopts the Canary, and then dropped.
    #[serde(default, skip_serializing_if = "FlaggerRecord::is_empty")]
    pub flagger: FlaggerRecord,
    /// Requests of people handled so far: where each was written → its value (never reset, so
    /// an old request is never redone).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub handled_requests: std::collections::BTreeMap<String, String>,
    /// Gates a person opened for the current rollout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_gates: Vec<crate::HookKind>,
    /// The sequential judge's state for the current (or last) rollout, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeState>,
}

impl RolloutStatus {
    /// The fields whose change moves `last_transition_at`.
    pub(crate) fn transition_key(&self) -> (Phase, u8, u32, u32) {
        (self.phase, self.canary_weight, self.failed_checks, self.iterations)
    }
}
