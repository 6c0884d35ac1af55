//! The sandbox's own endpoints under `/_sandbox/`: reading and setting faults, how many requests
//! failed by injection, and the request counters (by verb, resource and user agent).

use axum::{
    Json,
    http::Method,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{Shared, error::ApiError};

/// Answers `/_sandbox/...`.
pub fn handle(shared: &Shared, method: &Method, segments: &[&str], body: &[u8]) -> Response {
    match segments {
        ["_sandbox", "faults"] if *method == Method::GET => Json(
            shared
                .faults
                .lock()
                .map(|f| serde_json::to_value(&f.faults).unwrap_or_default())
                .unwrap_or_default(),
        )
        .into_response(),
        ["_sandbox", "faults"] => match serde_json::from_slice::<super::Faults>(body) {
            Ok(faults) => {
                shared
                    .faults
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .faults = faults;
                Json(json!({"ok": true})).into_response()
            }
            Err(e) => ApiError::bad_request(format!("invalid faults: {e}")).into_response(),
        },
        ["_sandbox", "injected"] => Json(json!({
            "injected": shared.faults.lock().map(|f| f.injected()).unwrap_or_default()
        }))
        .into_response(),
        ["_sandbox", "requests"] => {
            let counts: Vec<Value> = shared
                .faults
                .lock()
                .map(|f| {
                    f.requests
                        .iter()
                        .map(|((verb, resource, agent), n)| {
                            json!({"verb": verb, "resource": resource, "userAgent": agent, "count": n})
                        })
                        .collect()
                })
                .unwrap_or_default();
            Json(json!(counts)).into_response()
        }
        _ => ApiError::not_found("sandbox endpoints", &segments.join("/")).into_response(),
    }
}
