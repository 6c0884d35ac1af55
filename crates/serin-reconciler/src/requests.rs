//! Consuming the request annotations people write (`serin promote`, `abort`, `retry`,
//! `approve`): once the status recording a request as handled is written, the annotation is
//! removed, guarded by its value (a JSON patch `test` then `remove`), so a newer request written
//! meanwhile is never lost. The status alone already keeps a request from being redone; removing
//! it also keeps it from firing again where the status cannot hold it (Flagger's CRD prunes
//! Serin's status fields).

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serin_api::Canary;
use serin_core::RolloutStatus;

/// Removes the annotations of the requests `status` records as handled.
pub(crate) async fn consume(canary: &Canary, api: &Api<Canary>, status: &RolloutStatus) {
    for request in serin_api::requests::operator_requests(canary) {
        if status.handled_requests.get(&request.key) != Some(&request.token) {
            continue;
        }
        let path = format!(
            "/metadata/annotations/{}",
            request.key.replace('~', "~0").replace('/', "~1")
        );
        let patch: Result<json_patch::Patch, _> = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": path, "value": request.token},
            {"op": "remove", "path": path},
        ]));
        let Ok(patch) = patch else { continue };
        match api
            .patch(&canary.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
        {
            Ok(_) => tracing::debug!(canary = %crate::reconcile::key(canary), key = %request.key, "request consumed"),
            // A newer value was written meanwhile (the test failed): it is a new request.
            Err(e) => {
                tracing::debug!(canary = %crate::reconcile::key(canary), key = %request.key, error = %e, "request annotation kept")
            }
        }
    }
}
