//! Event texts: Flagger's wording where the meaning is the same, Serin's own otherwise.
//!
//! Kept in one place so `docs/differences.md` can be checked against them.

use crate::{Phase, Plan};

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
