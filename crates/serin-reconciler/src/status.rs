//! Status writing: the Canary's status from a decision (Flagger's fields, Serin's conditions and
//! the last decision), written as a minimal merge patch, and the status of an unusable Canary.

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;
use serin_api::{Canary, CanaryStatus, LastDecision, rfc3339};
use serin_core::{Decision, Phase, Plan, Time, schedule::estimated_promotion};

use crate::{Context, Error, reconcile::key};

/// Conditions decided outside the engine: alert delivery and the judge configuration.
#[derive(Default, Clone, Copy)]
pub(crate) struct ExtraConditions<'a> {
    /// `AlertsReady`: (status, reason, message).
    pub(crate) alerts: Option<&'a (&'a str, &'a str, String)>,
    /// Why the judge configuration cannot be used (`JudgeConfigInvalid`).
    pub(crate) judge_problem: Option<&'a str>,
}

pub(crate) async fn write_status(
    canary: &Canary,
    api: &Api<Canary>,
    plan: &Plan,
    decision: &Decision,
    previous: &CanaryStatus,
    now: Time,
    extra: ExtraConditions<'_>,
) -> Result<Option<Canary>, Error> {
    let mut status = previous.clone();
    if let Some((state, reason, message)) = extra.alerts {
        status.set_condition("AlertsReady", state, reason, message, now);
    }
    match extra.judge_problem {
        Some(problem) => status.set_condition("JudgeConfigInvalid", "True", "InvalidJudgeConfig", problem, now),
        None if status.conditions.iter().any(|c| c.type_ == "JudgeConfigInvalid") => status.set_condition(
            "JudgeConfigInvalid",
            "False",
            "Valid",
            "the judge configuration is valid",
            now,
        ),
        None => {}
    }
    status.apply_rollout(&decision.status, &plan.target_kind, now);
    status.observed_generation = canary.metadata.generation;
    let phase = decision.status.phase;
    // A quiet reconcile keeps the decision before it instead of replacing it with "nothing to
    // do": a finished rollout keeps what finished it (the rollback reason, the promotion), and an
    // analysis on schedule keeps its last step (no status write, so no echo, between steps).
    let quiet = decision.actions.is_empty()
        && previous.phase.as_deref() == Some(phase.as_str())
        && (!phase.is_active() || decision.explanation.on_schedule);
    if !quiet || previous.last_decision.is_none() {
        let mut last = LastDecision::from(&decision.explanation);
        // The same decision again keeps its time, so that repeating it writes nothing.
        last.at = match &previous.last_decision {
            Some(before)
                if LastDecision {
                    at: None,
                    ..before.clone()
                } == last =>
            {
                before.at.clone()
            }
            _ => Some(rfc3339(now)),
        };
        status.last_decision = Some(last);
    }
    let summary = status
        .last_decision
        .as_ref()
        .map(|d| d.summary.clone())
        .unwrap_or_default();
    status.estimated_promotion_at = steady_estimate(
        previous.estimated_promotion_at.as_deref(),
        estimated_promotion(plan, &decision.status, now),
        plan.interval,
    );
    let (ready, reason) = match phase {
        Phase::Initialized | Phase::Succeeded => ("True", phase.as_str()),
        Phase::Failed => ("False", "RolloutFailed"),
        _ => ("Unknown", phase.as_str()),
    };
    status.set_condition("Ready", ready, reason, &summary, now);
    let reconciling = if phase.is_active() || matches!(phase, Phase::Waiting | Phase::Initializing) {
        "True"
    } else {
        "False"
    };
    let doing = if quiet {
        summary.as_str()
    } else {
        decision.explanation.summary.as_str()
    };
    status.set_condition("Reconciling", reconciling, phase.as_str(), doing, now);
    status.set_condition("Stalled", "False", "Valid", "the Canary is valid", now);
    if !status.differs_ignoring_timestamps(previous) {
        return Ok(None);
    }
    patch_status(api, canary, previous, &status).await.map(Some)
}

/// The estimated promotion time to record: the previous one while the new estimate is within one
/// interval of it. An estimate made while waiting (for a revision to become Ready, for a late
/// step) moves with the clock; rewriting it on every reconcile would be a status write each
/// time, for a figure that is an estimate to begin with.
fn steady_estimate(previous: Option<&str>, estimate: Option<Time>, interval: std::time::Duration) -> Option<String> {
    let estimate = estimate?;
    match previous.and_then(serin_api::parse_time) {
        Some(before) if before.since(estimate).max(estimate.since(before)) < interval => previous.map(str::to_owned),
        _ => Some(rfc3339(estimate)),
    }
}

/// Writes `status` as a merge patch against `previous`: cleared fields are sent as `null`, so
/// nothing stale survives (a plain merge of the new status would keep them). Returns the Canary
/// as written.
async fn patch_status(
    api: &Api<Canary>,
    canary: &Canary,
    previous: &CanaryStatus,
    status: &CanaryStatus,
) -> Result<Canary, Error> {
    let old = serde_json::to_value(previous).unwrap_or_default();
    let new = serde_json::to_value(status).unwrap_or_default();
    let patch = json!({"status": merge_diff(&old, &new)});
    Ok(api
        .patch_status(&canary.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await?)
}

/// The JSON merge patch that turns `old` into `new`.
pub fn merge_diff(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    match (old, new) {
        (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) if ov.is_object() && v.is_object() => {
                        patch.insert(k.clone(), merge_diff(ov, v));
                    }
                    _ => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), serde_json::Value::Null);
            }
            serde_json::Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// Marks an unusable Canary (invalid, duplicate, missing target): conditions, a Warning event
/// once, nothing routed.
pub(crate) async fn reject(
    canary: &Canary,
    ctx: &Context,
    api: &Api<Canary>,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let previous = canary.status.clone().unwrap_or_default();
    let now = (ctx.clock)();
    let mut status = previous.clone();
    status.observed_generation = canary.metadata.generation;
    status.set_condition("Ready", "False", reason, message, now);
    status.set_condition("Promoted", "False", reason, message, now);
    status.set_condition("Stalled", "True", reason, message, now);
    status.set_condition("Reconciling", "False", reason, message, now);
    if status.differs_ignoring_timestamps(&previous) {
        crate::notify::warn(canary, ctx, message.to_owned()).await;
        let written = patch_status(api, canary, &previous, &status).await?;
        ctx.own_writes.wrote(&written);
    }
    tracing::warn!(canary = %key(canary), %message, "Canary not usable");
    Ok(())
}

/// Marks a Canary whose reconcile keeps being refused (403, 422, …): `Stalled=True` and a Warning
/// once; the rollout's own conditions stay as they were. Failing to write it is only logged (the
/// same refusal may apply to the status).
pub(crate) async fn stalled(canary: &Canary, ctx: &Context, reason: &str, message: &str) {
    let previous = canary.status.clone().unwrap_or_default();
    let now = (ctx.clock)();
    let mut status = previous.clone();
    status.set_condition("Stalled", "True", reason, message, now);
    if !status.differs_ignoring_timestamps(&previous) {
        return;
    }
    crate::notify::warn(canary, ctx, message.to_owned()).await;
    let api: Api<Canary> = Api::namespaced(ctx.client.clone(), &canary.namespace().unwrap_or_default());
    match patch_status(&api, canary, &previous, &status).await {
        Ok(written) => ctx.own_writes.wrote(&written),
        Err(e) => tracing::warn!(canary = %key(canary), error = %e, "cannot record the refusal in status"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::{merge_diff, steady_estimate};

    /// Applies a JSON merge patch (RFC 7386) as the API server does.
    fn apply(mut target: Value, patch: &Value) -> Value {
        json_patch::merge(&mut target, patch);
        target
    }

    #[test]
    fn an_estimate_within_one_interval_of_the_recorded_one_is_not_rewritten() {
        let interval = std::time::Duration::from_secs(60);
        let at = |s: i64| serin_core::Time::from_millis(1_800_000_000_000 + s * 1000);
        let recorded = serin_api::rfc3339(at(0));
        assert_eq!(
            steady_estimate(Some(&recorded), Some(at(59)), interval),
            Some(recorded.clone())
        );
        assert_eq!(
            steady_estimate(Some(&recorded), Some(at(60)), interval),
            Some(serin_api::rfc3339(at(60)))
        );
        assert_eq!(
            steady_estimate(None, Some(at(5)), interval),
            Some(serin_api::rfc3339(at(5)))
        );
        assert_eq!(
            steady_estimate(Some(&recorded), None, interval),
            None,
            "no rollout, no estimate"
        );
        assert_eq!(
            steady_estimate(Some("garbage"), Some(at(5)), interval),
            Some(serin_api::rfc3339(at(5)))
        );
    }

    #[test]
    fn cleared_fields_become_null_and_unchanged_ones_are_left_out() {
        let old = json!({"phase": "Progressing", "canaryWeight": 20, "lastDecision": {"summary": "a", "checks": ["x"]}, "nextStepAt": "t"});
        let new = json!({"phase": "Succeeded", "canaryWeight": 20, "lastDecision": {"summary": "b"}});
        let patch = merge_diff(&old, &new);
        assert_eq!(
            patch,
            json!({"phase": "Succeeded", "lastDecision": {"summary": "b", "checks": null}, "nextStepAt": null})
        );
        assert_eq!(apply(old, &patch), new);
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,3}".prop_map(Value::from),
            prop::collection::vec(any::<u8>().prop_map(Value::from), 0..3).prop_map(Value::from),
        ]
    }

    /// Objects without nulls (a merge patch cannot set a null value).
    fn object() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop::collection::btree_map("[a-d]", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
        })
    }

    proptest! {
        #[test]
        fn the_patch_turns_old_into_new(old in object(), new in object()) {
            let (old, new) = (json!({"status": old}), json!({"status": new}));
            prop_assert_eq!(apply(old.clone(), &merge_diff(&old, &new)), new);
        }
    }
}
