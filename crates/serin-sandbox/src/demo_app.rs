//! A podinfo-like HTTP service used as revision backends.
//!
//! `/` answers JSON with the version and revision; `/status/{code}` answers that code;
//! `/delay/{seconds}` waits; `/healthz` is 200. A [`Profile`] makes a "bad image": a share of
//! `/` requests answer 500 (deterministically, every n-th, so tests can expect exact ratios),
//! and every request can be slowed down.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::task::JoinHandle;

/// How a revision behaves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Image version shown by `/`.
    pub version: String,
    /// Share of `/` requests answered with 500, 0.0..=1.0.
    pub error_ratio: f64,
    /// Added to every request (the median when `spread` is set).
    pub latency: Duration,
    /// σ of a log-normal spread around `latency` (0: every request waits exactly `latency`).
    pub spread: f64,
}

impl Profile {
    /// The wait of one request.
    fn wait(&self) -> Duration {
        if self.spread <= 0.0 || self.latency.is_zero() {
            return self.latency;
        }
        let factor = rand_distr::LogNormal::new(0.0, self.spread)
            .map(|d| rand_distr::Distribution::sample(&d, &mut rand::rng()))
            .unwrap_or(1.0);
        self.latency.mul_f64(factor.min(50.0))
    }
}

struct AppState {
    revision: String,
    profile: Profile,
    served: AtomicU64,
}

/// A running demo app; stops when dropped.
pub struct DemoApp {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DemoApp {
    /// Starts a backend for `revision` on a free loopback port.
    pub async fn start(revision: &str, profile: Profile) -> std::io::Result<DemoApp> {
        let state = Arc::new(AppState {
            revision: revision.to_owned(),
            profile,
            served: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/", get(index))
            .route("/healthz", get(|| async { "OK" }))
            .route("/status/{code}", get(status))
            .route("/delay/{seconds}", get(delay))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(DemoApp { addr, task })
    }
}

/// Whether the n-th request (from 0) falls in the error share: exactly `ratio` of any prefix,
/// rounded down.
fn fails(n: u64, ratio: f64) -> bool {
    if ratio <= 0.0 {
        return false;
    }
    let before = (n as f64 * ratio).floor();
    let after = ((n + 1) as f64 * ratio).floor();
    after > before
}

async fn index(State(s): State<Arc<AppState>>) -> Response {
    tokio::time::sleep(s.profile.wait()).await;
    let n = s.served.fetch_add(1, Ordering::Relaxed);
    if fails(n, s.profile.error_ratio) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
    }
    Json(serde_json::json!({"hostname": s.revision, "version": s.profile.version, "revision": s.revision}))
        .into_response()
}

async fn status(State(s): State<Arc<AppState>>, Path(code): Path<u16>) -> Response {
    tokio::time::sleep(s.profile.latency).await;
    StatusCode::from_u16(code)
        .unwrap_or(StatusCode::BAD_REQUEST)
        .into_response()
}

async fn delay(State(s): State<Arc<AppState>>, Path(seconds): Path<f64>) -> Response {
    let wait = Duration::from_secs_f64(seconds.clamp(0.0, 60.0)) + s.profile.latency;
    tokio::time::sleep(wait).await;
    Json(serde_json::json!({"delay": seconds})).into_response()
}

#[cfg(test)]
mod tests {
    use super::fails;

    #[test]
    fn error_share_is_exact_over_any_prefix() {
        let failures = (0..100).filter(|n| fails(*n, 0.05)).count();
        assert_eq!(failures, 5);
        assert_eq!((0..20).filter(|n| fails(*n, 0.05)).count(), 1);
        assert_eq!((0..10).filter(|n| fails(*n, 0.0)).count(), 0);
        assert_eq!((0..10).filter(|n| fails(*n, 1.0)).count(), 10);
    }
}
