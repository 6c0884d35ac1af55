//! The HTTP API, Flagger's paths and status codes, plus bearer-token auth.

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
};
use serin_webhook::CanaryWebhookPayload;

use crate::{
    gates::GateStore,
    metrics::Metrics,
    tasks::{TaskReply, Tasks},
};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    /// Gates.
    pub gates: Arc<GateStore>,
    /// Tasks.
    pub tasks: Arc<Tasks>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Required bearer token, if any.
    pub token: Option<String>,
}

/// The router: every path accepts any method, as Flagger's does.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", any(|| async { "OK" }))
        .route("/metrics", any(metrics))
        .route("/gate/approve", any(|| async { "OK" }))
        .route("/gate/halt", any(|| async { (StatusCode::FORBIDDEN, "Forbidden") }))
        .route("/gate/check", any(|s, b| check(s, b, "")))
        .route("/gate/open", any(|s, b| set(s, b, "", true)))
        .route("/gate/close", any(|s, b| set(s, b, "", false)))
        .route("/rollback/check", any(|s, b| check(s, b, "rollback.")))
        .route("/rollback/open", any(|s, b| set(s, b, "rollback.", true)))
        .route("/rollback/close", any(|s, b| set(s, b, "rollback.", false)))
        .fallback(any(task))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant time: the comparison does not reveal how much of a guess was right.
    let matches = presented.is_some_and(|p| bool::from(subtle::ConstantTimeEq::ct_eq(p.as_bytes(), token.as_bytes())));
    if matches {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
    }
}

fn payload(body: &Bytes) -> Result<CanaryWebhookPayload, (StatusCode, String)> {
    serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid payload: {e}")))
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.encode(),
    )
        .into_response()
}

async fn check(State(state): State<AppState>, body: Bytes, prefix: &'static str) -> Response {
    let p = match payload(&body) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match state.gates.is_open(&format!("{prefix}{}", p.key())).await {
        Ok(true) => (StatusCode::OK, "Approved").into_response(),
        Ok(false) => (StatusCode::FORBIDDEN, "Forbidden").into_response(),
        // Unknown is not approved: the controller treats a 500 as a closed gate.
        Err(e) => {
            tracing::warn!(error = %e, "gate state unavailable");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

async fn set(State(state): State<AppState>, body: Bytes, prefix: &'static str, open: bool) -> Response {
    let p = match payload(&body) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let key = format!("{prefix}{}", p.key());
    match state.gates.set(&key, open).await {
        Ok(()) => {
            tracing::info!(gate = %key, open, "gate changed");
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn task(State(state): State<AppState>, body: Bytes) -> Response {
    let p = match payload(&body) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match state.tasks.handle(p).await {
        TaskReply::Accepted => StatusCode::ACCEPTED.into_response(),
        TaskReply::Done(body) => (StatusCode::OK, body).into_response(),
        TaskReply::BadRequest(m) => (StatusCode::BAD_REQUEST, m).into_response(),
        TaskReply::Forbidden(m) => (StatusCode::FORBIDDEN, m).into_response(),
        TaskReply::Busy => (StatusCode::TOO_MANY_REQUESTS, "too many background tasks").into_response(),
        TaskReply::Failed(m) => (StatusCode::INTERNAL_SERVER_ERROR, m).into_response(),
    }
}
