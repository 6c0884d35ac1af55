//! PATCH bodies: JSON merge patch, JSON patch, server-side apply (as far as kube-rs'
//! `Patch::Apply` needs), and strategic merge (refused for custom resources, as real servers do).

use serde_json::Value;

use super::error::ApiError;

/// Patch types by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json` (applied as a merge patch for built-ins).
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchType {
    /// From the request's content type.
    pub fn from_content_type(content_type: &str, custom: bool) -> Result<Self, ApiError> {
        let base = content_type.split(';').next().unwrap_or_default().trim();
        let accepted = "accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            "application/strategic-merge-patch+json" if custom => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - {accepted}"
            ))),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format ({other:?}) - {accepted}"
            ))),
        }
    }
}

/// Applies a patch body to `target`.
pub fn apply(kind: PatchType, target: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    match kind {
        PatchType::Merge | PatchType::Strategic => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::merge(target, &patch);
            Ok(())
        }
        PatchType::Json => {
            let mut patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            // The API server's JSON patch (evanphx/json-patch) lets `test` with a null value pass
            // on a member that is absent from an existing object, as kube-runtime's finalizer
            // helper relies on; the json-patch crate would fail it.
            patch.0.retain(|op| match op {
                json_patch::PatchOperation::Test(t) => {
                    !(t.value.is_null() && target.pointer(t.path.as_str()).is_none())
                }
                _ => true,
            });
            json_patch::patch(target, &patch).map_err(|e| {
                ApiError::invalid(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })
        }
        PatchType::Apply => {
            let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let applied: Value =
                serde_saphyr::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            json_patch::merge(target, &applied);
            Ok(())
        }
    }
}
