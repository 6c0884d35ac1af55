//! CustomResourceDefinitions: serving the resources a CRD declares (and no longer serving them
//! when it goes), and their OpenAPI v3 documents for `kubectl`'s server-side validation.

use std::sync::Arc;

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    Shared, discovery,
    error::ApiError,
    handler::{defs, find},
    registry::{self, ResourceDef},
    store::now_rfc3339,
    verbs::poisoned,
};

/// The OpenAPI v3 document of one group version, with the CRDs' schemas.
pub(super) fn openapi_doc(shared: &Arc<Shared>, all: &[ResourceDef], group: &str, version: &str) -> Response {
    let crd_schema = |d: &ResourceDef| -> Option<Value> {
        if !d.custom {
            return None;
        }
        let crds = find(shared, "apiextensions.k8s.io", "v1", "customresourcedefinitions").ok()?;
        let crd = shared
            .store
            .lock()
            .ok()?
            .get(&crds, "", &format!("{}.{}", d.plural, d.group))
            .ok()?;
        crd.pointer("/spec/versions")?
            .as_array()?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(d.version.as_str()))?
            .pointer("/schema/openAPIV3Schema")
            .cloned()
    };
    match discovery::openapi_v3_group_version(all, group, version, crd_schema) {
        Some(doc) => Json(doc).into_response(),
        None => ApiError::not_found("openapi", &format!("{group}/{version}")).into_response(),
    }
}

/// Serves the resources `crd` declares and writes its `status` (names accepted, established).
pub(super) fn register_crd(shared: &Arc<Shared>, crd: &Value) -> Result<Value, ApiError> {
    let new_defs = registry::from_crd(crd).map_err(ApiError::invalid)?;
    {
        let mut reg = shared
            .registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        reg.retain(|d| !new_defs.iter().any(|n| n.group == d.group && n.plural == d.plural));
        reg.extend(new_defs);
    }
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut with_status = crd.clone();
    let now = now_rfc3339();
    with_status["status"] = json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_default(),
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| vs.iter().filter_map(|v| v.get("name").cloned()).collect::<Vec<_>>()).unwrap_or_default(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    let def = defs(shared)
        .into_iter()
        .find(|d| d.plural == "customresourcedefinitions")
        .ok_or_else(poisoned)?;
    shared
        .store
        .lock()
        .map_err(|_| poisoned())?
        .update(&def, "", &name, with_status, true)
}

/// Stops serving the resources of a deleted CRD.
pub(super) fn unregister_crd(shared: &Arc<Shared>, crd: &Value) {
    if let Ok(gone) = registry::from_crd(crd)
        && let Ok(mut reg) = shared.registry.write()
    {
        reg.retain(|d| !gone.iter().any(|g| g.group == d.group && g.plural == d.plural));
    }
}
