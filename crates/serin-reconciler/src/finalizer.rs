//! `revertOnDeletion`: Flagger's finalizer, added while the flag is on and removed when it is
//! switched off, and the release of the target when the Canary is deleted.
//!
//! Finalizers are written with a JSON patch guarded by a `test` of the list it was computed from,
//! so a finalizer another controller adds concurrently is never dropped: the patch fails and the
//! reconcile is retried with a fresh object.

use std::sync::Arc;

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};
use serde_json::{Value, json};
use serin_api::{Canary, validate};
use serin_core::finalize;
use serin_knative::RouterError;

use crate::{Context, Error, reconcile::execute, status::write_status};

/// The finalizer Flagger uses for `revertOnDeletion`.
pub const FINALIZER: &str = "finalizer.flagger.app";

/// Whether the Canary carries Serin's (Flagger's) finalizer.
pub fn has_finalizer(canary: &Canary) -> bool {
    canary.finalizers().iter().any(|f| f == FINALIZER)
}

/// The guarded JSON patch that turns the finalizer list `current` into one with (`add`) or
/// without our finalizer.
pub fn finalizer_patch(current: &[String], add: bool) -> Value {
    let test = if current.is_empty() {
        // The API server lets a null test pass on an absent member.
        json!({"op": "test", "path": "/metadata/finalizers", "value": null})
    } else {
        json!({"op": "test", "path": "/metadata/finalizers", "value": current})
    };
    let wanted: Vec<&str> = current
        .iter()
        .map(String::as_str)
        .filter(|f| *f != FINALIZER)
        .chain(add.then_some(FINALIZER))
        .collect();
    json!([test, {"op": "add", "path": "/metadata/finalizers", "value": wanted}])
}

/// Adds or removes the finalizer.
pub async fn set_finalizer(api: &Api<Canary>, canary: &Canary, add: bool) -> Result<(), Error> {
    let patch: json_patch::Patch = serde_json::from_value(finalizer_patch(canary.finalizers(), add))
        .map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
    api.patch(&canary.name_any(), &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    Ok(())
}

/// A Canary being deleted: with `revertOnDeletion` on, write `Terminating`, release the target
/// (never routing users to a revision that is not the primary), then remove the finalizer. With
/// the flag switched off, only the finalizer goes.
pub async fn finalize_deletion(canary: &Canary, ctx: &Arc<Context>, api: &Api<Canary>) -> Result<Action, Error> {
    if !has_finalizer(canary) {
        return Ok(Action::await_change());
    }
    let revert = canary.spec.revert_on_deletion.unwrap_or(false);
    if revert && let Ok(plan) = validate(canary).map(|v| v.plan) {
        let target = crate::reconcile::target_of(canary, ctx, &plan);
        match ctx.router.observe(&target).await {
            Ok(world) => {
                let now = (ctx.clock)();
                let previous = canary.status.clone().unwrap_or_default();
                let decision = finalize(&plan, &previous.to_rollout(), &world, now);
                write_status(canary, api, &plan, &decision, &previous, now, Default::default()).await?;
                match execute(canary, ctx, &plan, &target, &decision).await {
                    Ok(()) | Err(Error::Router(RouterError::NotFound(_))) => {}
                    Err(e) => return Err(e),
                }
            }
            // The Service is gone: nothing to release.
            Err(RouterError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    set_finalizer(api, canary, false).await?;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_to_an_absent_list_tests_for_null() {
        assert_eq!(
            finalizer_patch(&[], true),
            json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["finalizer.flagger.app"]}
            ])
        );
    }

    #[test]
    fn removing_keeps_other_controllers_finalizers_and_tests_the_list_it_saw() {
        let current = vec!["other.io/keep".to_owned(), FINALIZER.to_owned()];
        assert_eq!(
            finalizer_patch(&current, false),
            json!([
                {"op": "test", "path": "/metadata/finalizers", "value": ["other.io/keep", "finalizer.flagger.app"]},
                {"op": "add", "path": "/metadata/finalizers", "value": ["other.io/keep"]}
            ])
        );
    }
}
