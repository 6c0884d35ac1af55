//! Every event text of the engine: Flagger's wording where the meaning is the same, Serin's own
//! otherwise (`docs/differences.md` lists those). The metric verdicts' texts are in `judge.rs`.

use crate::{Phase, Plan, Readiness, go_duration};

/// Flagger's event for a suspended Canary.
pub(crate) const SUSPENDED: &str = "skipping canary run as object is suspended";

/// Flagger's `Initialization done! {name}.{ns}`.
pub(crate) fn initialized(plan: &Plan) -> String {
    format!("Initialization done! {}", plan.canary_ref())
}

/// Serin's Warning while no revision can be taken over (D11).
pub(crate) fn waiting_for_revision(plan: &Plan, what: &str) -> String {
    format!(
        "Waiting for Knative Service {} to have {what} before taking over routing",
        plan.target_ref()
    )
}

/// Flagger's confirm-rollout Halt.
pub(crate) fn waiting_for_approval(plan: &Plan, hook: &str) -> String {
    format!("Halt {} advancement waiting for approval {hook}", plan.canary_ref())
}

/// Serin's detection event (Flagger: `New revision detected! Scaling up {target}.{ns}`).
pub(crate) fn new_revision(plan: &Plan, revision: &str) -> String {
    format!(
        "New revision detected! Starting canary analysis of {revision} for {}",
        plan.target_ref()
    )
}

/// Flagger's `{Confirm-rollout|Pre-rollout|…} check {hook} passed`.
pub(crate) fn check_passed(label: &str, hook: &str) -> String {
    format!("{label} check {hook} passed")
}

/// Flagger's `Terminating canary {name}.{ns}`.
pub(crate) fn terminating(plan: &Plan) -> String {
    format!("Terminating canary {}", plan.canary_ref())
}

/// Flagger's `Terminated canary {name}.{ns}`.
pub(crate) fn terminated(plan: &Plan) -> String {
    format!("Terminated canary {}", plan.canary_ref())
}

/// Serin's Warning when a deleted Canary leaves 100% pinned on the primary.
pub(crate) fn pinned_on_deletion(plan: &Plan, primary: &str, latest_ready: &str) -> String {
    format!(
        "Canary {} deleted: traffic stays pinned to primary revision {primary} because the latest Ready revision {latest_ready} is not the primary; to follow the latest revision again, run kubectl patch ksvc {} -n {} --type merge -p '{{\"spec\":{{\"traffic\":[{{\"latestRevision\":true,\"percent\":100}}]}}}}'",
        plan.canary_ref(),
        plan.target_name,
        plan.namespace
    )
}

/// Serin's note when it takes over a Canary whose status Flagger wrote.
pub(crate) fn adopted(plan: &Plan, phase: Phase, primary: &str, what: &str) -> String {
    format!(
        "Adopted {} in phase {} from a status Serin did not write (Flagger's): primary revision {primary}; {what}",
        plan.canary_ref(),
        phase.as_str()
    )
}

/// Flagger's restart on a newer revision.
pub(crate) fn restarting(plan: &Plan) -> String {
    format!("New revision detected! Restarting analysis for {}", plan.target_ref())
}

/// Flagger's `skipAnalysis` promotion.
pub(crate) fn skipped(plan: &Plan) -> String {
    format!(
        "Promotion completed! Canary analysis was skipped for {}",
        plan.target_ref()
    )
}

/// Flagger's `Knative Revision {rev}.{ns} is not ready`, with Knative's reason.
pub(crate) fn not_ready(plan: &Plan, revision: &str, readiness: &Readiness) -> String {
    let reason = match readiness {
        Readiness::Ready | Readiness::NotYet { reason: None } => String::new(),
        Readiness::NotYet { reason: Some(r) } | Readiness::Failed { reason: r } => format!(": {r}"),
    };
    format!("Knative Revision {revision}.{} is not ready{reason}", plan.namespace)
}

/// Flagger's first-tick event.
pub(crate) fn starting(plan: &Plan) -> String {
    format!("Starting canary analysis for {}", plan.target_ref())
}

/// Flagger's pre-rollout Halt.
pub(crate) fn pre_rollout_failed(plan: &Plan, hook: &str, detail: &str) -> String {
    format!(
        "Halt {} advancement pre-rollout check {hook} failed {detail}",
        plan.canary_ref()
    )
}

/// Flagger's rollout-hook Halt.
pub(crate) fn external_check_failed(plan: &Plan, hook: &str, detail: &str) -> String {
    format!(
        "Halt {} advancement external check {hook} failed {detail}",
        plan.canary_ref()
    )
}

/// Flagger's `Advance {name}.{ns} canary weight {w}`.
pub(crate) fn advance_weight(plan: &Plan, weight: u8) -> String {
    format!("Advance {} canary weight {weight}", plan.canary_ref())
}

/// Flagger's `Advance {name}.{ns} canary iteration {i}/{n}`.
pub(crate) fn advance_iteration(plan: &Plan, i: u32, of: u32) -> String {
    format!("Advance {} canary iteration {i}/{of}", plan.canary_ref())
}

/// Serin's promotion ramp step (Flagger: `primary weight`).
pub(crate) fn advance_promotion(plan: &Plan, weight: u8) -> String {
    format!("Advance {} promotion weight {weight}", plan.canary_ref())
}

/// Flagger's `Rollback hook {name} not signaling a rollback`.
pub(crate) fn not_signaling_rollback(hook: &str) -> String {
    format!("Rollback hook {hook} not signaling a rollback")
}

/// Flagger's blue/green switch.
pub(crate) const ALL_TO_CANARY: &str = "Routing all traffic to canary";

/// Flagger's promotion routing.
pub(crate) const ALL_TO_PRIMARY: &str = "Routing all traffic to primary";

/// Flagger's confirm-traffic-increase Halt.
pub(crate) fn waiting_for_traffic_increase(plan: &Plan, hook: &str) -> String {
    format!(
        "Halt {} advancement waiting for traffic increase approval {hook}",
        plan.canary_ref()
    )
}

/// Flagger's confirm-promotion Halt.
pub(crate) fn waiting_for_promotion(plan: &Plan, hook: &str) -> String {
    format!(
        "Halt {} advancement waiting for promotion approval {hook}",
        plan.canary_ref()
    )
}

/// Serin's promotion event (Flagger: `Copying {target}.{ns} template spec to {target}-primary.{ns}`).
pub(crate) fn promoting(plan: &Plan, revision: &str) -> String {
    format!("Promoting revision {revision} to primary of {}", plan.target_ref())
}

/// Flagger's `Promotion completed! Scaling down {target}.{ns}`.
pub(crate) fn promoted(plan: &Plan) -> String {
    format!("Promotion completed! Scaling down {}", plan.target_ref())
}

/// Flagger's `Canary failed! Scaling down {name}.{ns}`.
pub(crate) fn failed(plan: &Plan) -> String {
    format!("Canary failed! Scaling down {}", plan.canary_ref())
}

/// Flagger's threshold rollback.
pub(crate) fn rollback_threshold(plan: &Plan, failed_checks: u32) -> String {
    format!(
        "Rolling back {} failed checks threshold reached {failed_checks}",
        plan.canary_ref()
    )
}

/// Flagger's rollback-hook rollback.
pub(crate) fn rollback_manual(plan: &Plan) -> String {
    format!("Rolling back {} manual webhook invoked", plan.canary_ref())
}

/// Serin's rollback of a revision Knative reports failed (D5).
pub(crate) fn rollback_revision_failed(plan: &Plan, revision: &str, reason: &str) -> String {
    format!(
        "Rolling back {} revision {revision} failed: {reason}",
        plan.canary_ref()
    )
}

/// Serin's rollback at the progress deadline (D5).
pub(crate) fn rollback_deadline(plan: &Plan, revision: &str, reason: Option<&str>) -> String {
    format!(
        "Rolling back {} progress deadline exceeded: revision {revision} not Ready after {}{}",
        plan.canary_ref(),
        go_duration(plan.progress_deadline),
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    )
}

/// Serin's rollback asked for by a person (`serin abort`).
pub(crate) fn rollback_requested(plan: &Plan) -> String {
    format!("Rolling back {} abort requested", plan.canary_ref())
}

/// `serin abort`, announced.
pub(crate) fn abort_requested(plan: &Plan, who: &str) -> String {
    format!("Abort of {} requested by {who}", plan.canary_ref())
}

/// `serin retry`, announced.
pub(crate) fn retry_requested(plan: &Plan, revision: &str, who: &str) -> String {
    format!(
        "Retry of {} requested by {who}: analysing revision {revision} again",
        plan.canary_ref()
    )
}

/// `serin promote`, announced.
pub(crate) fn promote_requested(plan: &Plan, full: bool, who: &str) -> String {
    let what = if full { "full promotion" } else { "the next step" };
    format!("{} of {} requested by {who}", capitalized(what), plan.canary_ref())
}

/// `serin approve`, announced.
pub(crate) fn gate_approved(plan: &Plan, gate: &str, who: &str) -> String {
    format!(
        "Gate {gate} of {} approved by {who} for this rollout",
        plan.canary_ref()
    )
}

/// A request that does not apply in this phase.
pub(crate) fn nothing_to(plan: &Plan, action: &str, who: &str, phase: Phase) -> String {
    format!(
        "Nothing to {action} for {} (requested by {who}): phase is {}",
        plan.canary_ref(),
        phase.as_str()
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}
