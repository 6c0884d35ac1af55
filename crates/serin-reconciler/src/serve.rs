//! What a controller process runs beside the reconciler: the admin endpoints (`/metrics`,
//! `/healthz`, `/readyz`), the stop signal (SIGTERM or Ctrl-C, or leadership lost), and leader
//! election before reconciling.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, http::StatusCode, routing::get};
use kube::Client;

use crate::{leader, metrics::ControllerMetrics};

/// The admin endpoints: Prometheus metrics, liveness, and readiness (true once this replica
/// reconciles, i.e. holds the lease when leader election is on).
pub fn admin_router(metrics: Arc<ControllerMetrics>, ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/metrics", get(move || async move { metrics.encode() }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "waiting for leadership")
                }
            }),
        )
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminated => {},
    }
    tracing::info!("shutdown requested");
}

/// With a lease, waits until this replica holds it; returns the future that completes when the
/// controller must stop: on [`shutdown_signal`], or when leadership is lost.
pub async fn stop_signal(client: Client, lease: Option<leader::LeaseConfig>) -> impl Future<Output = ()> + Send {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    if let Some(lease) = lease {
        let lost = leader::acquire(client, lease).await;
        let tx = stop_tx.clone();
        tokio::spawn(async move {
            lost.await;
            tracing::error!("stopping: leadership lost");
            let _ = tx.send(true);
        });
    }
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }
}
