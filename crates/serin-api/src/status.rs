//! `Canary.status`: Flagger's fields plus Serin's, and the conversion to and from the
//! engine's [`RolloutStatus`].
//!
//! Everything the engine needs to continue after a restart is stored here.

use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serin_core::{Explanation, FlaggerRecord, Phase, RolloutStatus, Time, Verdict, flagger::revision_hash};

/// `Canary.status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// Flagger's phase name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Failed checks in the current (or last) rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<i64>,
    /// Traffic percentage on the canary revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_weight: Option<i64>,
    /// Blue/green iterations passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i64>,
    /// Flagger's hash of the revision under analysis, or of the last one analysed (Flagger's
    /// algorithm, so Flagger reads a status Serin wrote; Serin reads it only to adopt a status
    /// Flagger wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_spec: Option<String>,
    /// Flagger's hash of the last promoted revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promoted_spec: Option<String>,
    /// When phase, weight, failed checks or iterations last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// `Promoted`, `Ready`, `Reconciling` and `Stalled` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<CanaryCondition>,
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The revision serving as primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_revision: Option<String>,
    /// The revision under analysis, or the last one analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<String>,
    /// When the current rollout was detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_started_at: Option<String>,
    /// When the first traffic step happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_started_at: Option<String>,
    /// Since when the canary revision is not Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_unready_since: Option<String>,
    /// When the next analysis step is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step_at: Option<String>,
    /// Estimated promotion time if every check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_promotion_at: Option<String>,
    /// The last decision and its explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<LastDecision>,
    /// Requests of people handled so far (`serin promote|abort|retry|approve` annotations):
    /// annotation → the value handled.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub handled_requests: std::collections::BTreeMap<String, String>,
    /// Gates a person opened for the current rollout (`serin approve`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_gates: Vec<String>,
    /// The sequential judge's state (`judge.serin.dev/mode: sequential` or `shadow`): bounds,
    /// counter snapshot, the per-tick count trace and its `summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_object")]
    pub judge: Option<serde_json::Value>,
    /// The controller shard acting on this Canary (`N/M` of `--shard`, or the `--selector`);
    /// absent when no shard has claimed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// A status condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryCondition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last update (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    /// Last status change (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last decision, as written to status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastDecision {
    /// One sentence.
    pub summary: String,
    /// Every check: `check: observed (bound) verdict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// The metrics' values as numbers, with their bounds (what charts draw).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricReading>,
    /// When this decision was taken (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// One metric's value at a decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricReading {
    /// The metric's name.
    pub name: String,
    /// The value judged (success rates in percent, durations in milliseconds).
    pub value: f64,
    /// The lower bound, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The upper bound, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `%`, `ms` or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Whether the value was within its bounds.
    pub passed: bool,
}

impl From<&Explanation> for LastDecision {
    fn from(e: &Explanation) -> Self {
        LastDecision {
            summary: e.summary.clone(),
            checks: e
                .checks
                .iter()
                .map(|c| format!("{}: {} ({}) {:?}", c.check, c.observed, c.bound, c.verdict))
                .collect(),
            metrics: e
                .checks
                .iter()
                .filter_map(|c| {
                    let m = c.measured.as_ref()?;
                    Some(MetricReading {
                        name: c.check.strip_prefix("metric ").unwrap_or(&c.check).to_owned(),
                        value: m.value,
                        min: m.min,
                        max: m.max,
                        unit: m.unit.clone(),
                        passed: c.verdict == Verdict::Pass,
                    })
                })
                .collect(),
            at: None,
        }
    }
}

/// The wall clock now, as the engine counts time (for the callers that read one: the
/// reconciler's production clock, the CLI's requests, the dashboard).
pub fn wall_clock_now() -> Time {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Time::from_millis(millis)
}

/// Formats an engine time as RFC 3339 (seconds precision, as Kubernetes does).
pub fn rfc3339(time: Time) -> String {
    Timestamp::from_millisecond(time.as_millis())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Parses RFC 3339; `None` for anything else.
pub fn parse_time(text: &str) -> Option<Time> {
    text.parse::<Timestamp>()
        .ok()
        .map(|t| Time::from_millis(t.as_millisecond()))
}

fn clamp_u8(v: Option<i64>) -> u8 {
    u8::try_from(v.unwrap_or(0).clamp(0, 100)).unwrap_or(0)
}

fn clamp_u32(v: Option<i64>) -> u32 {
    u32::try_from(v.unwrap_or(0).max(0)).unwrap_or(u32::MAX)
}

impl CanaryStatus {
    /// The engine's view of this status. Unknown phases read as `Initializing`.
    pub fn to_rollout(&self) -> RolloutStatus {
        let t = |v: &Option<String>| v.as_deref().and_then(parse_time);
        RolloutStatus {
            phase: self.phase.as_deref().and_then(Phase::parse).unwrap_or_default(),
            canary_weight: clamp_u8(self.canary_weight),
            failed_checks: clamp_u32(self.failed_checks),
            iterations: clamp_u32(self.iterations),
            primary_revision: self.primary_revision.clone(),
            canary_revision: self.canary_revision.clone(),
            rollout_started_at: t(&self.rollout_started_at),
            analysis_started_at: t(&self.analysis_started_at),
            canary_unready_since: t(&self.canary_unready_since),
            next_step_at: t(&self.next_step_at),
            last_transition_at: t(&self.last_transition_time),
            flagger: self.flagger_record(),
            handled_requests: self.handled_requests.clone(),
            approved_gates: self
                .approved_gates
                .iter()
                .filter_map(|g| crate::requests::gate_kind(g))
                .collect(),
            // A judge state that does not read (written by another version) starts afresh.
            judge: self.judge.clone().and_then(|v| serde_json::from_value(v).ok()),
        }
    }

    /// Flagger's hashes, when this status was written by Flagger (it has no revision names).
    fn flagger_record(&self) -> FlaggerRecord {
        if self.primary_revision.is_some() || self.canary_revision.is_some() {
            return FlaggerRecord::default();
        }
        let nonempty = |v: &Option<String>| v.clone().filter(|h| !h.is_empty());
        FlaggerRecord {
            last_applied: nonempty(&self.last_applied_spec),
            last_promoted: nonempty(&self.last_promoted_spec),
        }
    }

    /// Writes the engine's status into this one, keeping conditions' transition times when
    /// their status did not change. `target_kind` is used in condition messages.
    pub fn apply_rollout(&mut self, r: &RolloutStatus, target_kind: &str, now: Time) {
        let t = |v: Option<Time>| v.map(rfc3339);
        self.phase = Some(r.phase.as_str().to_owned());
        self.canary_weight = Some(i64::from(r.canary_weight));
        self.failed_checks = Some(i64::from(r.failed_checks));
        self.iterations = Some(i64::from(r.iterations));
        self.primary_revision = r.primary_revision.clone();
        self.canary_revision = r.canary_revision.clone();
        // Before Serin knows any revision (a suspended or waiting Canary not yet adopted),
        // Flagger's hashes stay: they are what keeps a rolled-back revision from being analysed.
        if let Some(applied) = r.canary_revision.as_deref().or(r.primary_revision.as_deref()) {
            self.last_applied_spec = Some(revision_hash(applied));
            self.last_promoted_spec = r.primary_revision.as_deref().map(revision_hash);
        }
        self.rollout_started_at = t(r.rollout_started_at);
        self.analysis_started_at = t(r.analysis_started_at);
        self.canary_unready_since = t(r.canary_unready_since);
        self.next_step_at = t(r.next_step_at);
        self.last_transition_time = t(r.last_transition_at);
        let (status, message) = r.phase.promoted_condition(target_kind);
        self.set_condition("Promoted", status.as_str(), r.phase.as_str(), &message, now);
        self.judge = r.judge.as_ref().and_then(|j| serde_json::to_value(j).ok());
        self.handled_requests = r.handled_requests.clone();
        self.approved_gates = r.approved_gates.iter().map(|g| g.as_str().to_owned()).collect();
        if let Some(judge) = &r.judge {
            self.set_judge_conditions(judge, now);
        }
    }

    /// `Verified`, `NoMetrics` and `MetricsUnavailable`, from the sequential judge's state.
    fn set_judge_conditions(&mut self, judge: &serin_core::JudgeState, now: Time) {
        let (status, reason, message) = match judge.outcome.as_deref() {
            Some("Verified") => ("True", "Verified", "every safety gate passed at max weight"),
            Some("InsufficientTraffic") => (
                "False",
                "InsufficientTraffic",
                "the deadline came before the canary had the traffic to be verified",
            ),
            Some("NotProvenSafe") => (
                "False",
                "NotProvenSafe",
                "the canary was not proven safe by the deadline",
            ),
            Some("Regressed") => ("False", "Regressed", "the canary regressed against the primary"),
            Some("NoMetrics") => ("False", "NoMetrics", "no request series for either revision"),
            _ => ("Unknown", "CollectingEvidence", "the judge is collecting evidence"),
        };
        self.set_condition("Verified", status, reason, message, now);
        let no_series = judge.ticks.is_empty() && judge.empty_readings >= 4;
        let (status, message) = if no_series {
            (
                "True",
                "the counters query found no series for either revision: check the query set and revision labels",
            )
        } else {
            ("False", "request series found")
        };
        self.set_condition(
            "NoMetrics",
            status,
            if no_series { "NoSeries" } else { "SeriesFound" },
            message,
            now,
        );
        let failing = judge.failed_readings >= 4;
        let (status, reason, message) = if failing {
            (
                "True",
                "QueryFailing",
                "the counters could not be read for 4 ticks or more",
            )
        } else {
            ("False", "QueryWorking", "the counters were read")
        };
        self.set_condition("MetricsUnavailable", status, reason, message, now);
    }

    /// Sets a condition, moving `lastTransitionTime` only when the status changes.
    pub fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: &str, now: Time) {
        let stamp = rfc3339(now);
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(stamp.clone());
                }
                if c.status != status || c.reason.as_deref() != Some(reason) || c.message.as_deref() != Some(message) {
                    c.last_update_time = Some(stamp);
                }
                c.status = status.to_owned();
                c.reason = Some(reason.to_owned());
                c.message = Some(message.to_owned());
            }
            None => self.conditions.push(CanaryCondition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                last_update_time: Some(stamp.clone()),
                last_transition_time: Some(stamp),
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
            }),
        }
    }

    /// Whether two statuses differ in anything but timestamps written for bookkeeping
    /// (condition update/transition times); used to skip status writes that change nothing.
    pub fn differs_ignoring_timestamps(&self, other: &CanaryStatus) -> bool {
        let strip = |s: &CanaryStatus| {
            let mut s = s.clone();
            for c in &mut s.conditions {
                c.last_update_time = None;
                c.last_transition_time = None;
            }
            s
        };
        strip(self) != strip(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_status_survives_a_round_trip_through_the_crd_status() {
        let rollout = RolloutStatus {
            phase: Phase::WaitingPromotion,
            canary_weight: 50,
            failed_checks: 2,
            iterations: 0,
            primary_revision: Some("podinfo-00001".into()),
            canary_revision: Some("podinfo-00002".into()),
            rollout_started_at: Some(Time::from_millis(1_700_000_000_000)),
            analysis_started_at: Some(Time::from_millis(1_700_000_001_000)),
            canary_unready_since: None,
            next_step_at: Some(Time::from_millis(1_700_000_016_000)),
            last_transition_at: Some(Time::from_millis(1_700_000_015_000)),
            flagger: FlaggerRecord::default(),
            handled_requests: [("serin.dev/promote".to_owned(), "t1 by alice".to_owned())].into(),
            approved_gates: vec![serin_core::HookKind::ConfirmPromotion],
            judge: Some(serin_core::JudgeState {
                baseline: true,
                snapshot: [("c|n|gw-1".to_owned(), 120)].into(),
                ticks: vec![serin_core::sequential::TickCounts {
                    at: Time::from_millis(1_700_000_015_000),
                    weight: 50,
                    canary: serin_core::sequential::ArmCounts {
                        requests: 120,
                        errors: 1,
                        ..Default::default()
                    },
                    primary: Default::default(),
                }],
                outcome: Some("Verified".into()),
                ..Default::default()
            }),
        };
        let mut status = CanaryStatus::default();
        status.apply_rollout(&rollout, "Service", Time::from_millis(1_700_000_015_000));
        assert_eq!(status.to_rollout(), rollout);
        assert_eq!(status.last_transition_time.as_deref(), Some("2023-11-14T22:13:35Z"));
        assert_eq!(status.conditions[0].status, "Unknown");
        assert_eq!(status.conditions[0].message.as_deref(), Some("Waiting for approval."));
        // Flagger's own hashes (values from Flagger's Go code, testdata/flagger/revision-hashes.tsv).
        assert_eq!(status.last_applied_spec.as_deref(), Some("547d5765b7"));
        assert_eq!(status.last_promoted_spec.as_deref(), Some("5498f4fcd6"));
    }

    #[test]
    fn condition_transition_time_moves_only_when_status_changes() {
        let mut status = CanaryStatus::default();
        status.set_condition("Promoted", "Unknown", "Progressing", "a", Time::from_millis(0));
        status.set_condition(
            "Promoted",
            "Unknown",
            "WaitingPromotion",
            "b",
            Time::from_millis(60_000),
        );
        assert_eq!(
            status.conditions[0].last_transition_time.as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        status.set_condition("Promoted", "True", "Succeeded", "c", Time::from_millis(120_000));
        assert_eq!(
            status.conditions[0].last_transition_time.as_deref(),
            Some("1970-01-01T00:02:00Z")
        );
    }

    #[test]
    fn flaggers_hashes_survive_a_write_before_adoption() {
        let mut status = CanaryStatus {
            phase: Some("Failed".into()),
            last_applied_spec: Some("547d5765b7".into()),
            last_promoted_spec: Some("5498f4fcd6".into()),
            ..CanaryStatus::default()
        };
        let suspended = status.to_rollout();
        status.apply_rollout(&suspended, "Service", Time::from_millis(0));
        assert_eq!(status.last_applied_spec.as_deref(), Some("547d5765b7"));
        assert_eq!(status.to_rollout().flagger, suspended.flagger);
    }

    #[test]
    fn flagger_written_status_reads_without_serin_fields() {
        let status: CanaryStatus = serde_json::from_value(serde_json::json!({
            "phase": "Succeeded", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
            "lastAppliedSpec": "5d8c8f9b4", "lastPromotedSpec": "5d8c8f9b4",
            "lastTransitionTime": "2025-03-16T14:05:07Z",
            "conditions": [{"type": "Promoted", "status": "True", "reason": "Succeeded"}]
        }))
        .expect("Flagger status parses");
        let rollout = status.to_rollout();
        assert_eq!(rollout.phase, Phase::Succeeded);
        assert_eq!(rollout.primary_revision, None);
        assert_eq!(rollout.flagger.last_applied.as_deref(), Some("5d8c8f9b4"));
        assert_eq!(rollout.flagger.last_promoted.as_deref(), Some("5d8c8f9b4"));
    }
}
