//! Serin's rollout dashboard: a list of Canaries (phase, weight, revisions, ETA, a weight
//! sparkline) and a page per Canary (the rollout timeline, each metric against its bounds,
//! hooks and gates, the judge's evidence, conditions and events), rendered on the server as
//! HTML with inline SVG and kept live by server-sent events driven by watches.
//!
//! What it does not do: it keeps no history beyond what it has seen since it started (plus
//! the weights that the Canary's `Advance` events still tell), runs no JavaScript build, and
//! does not decide anything: actions are the CLI's requests (`serin_api::requests`), written
//! only when the dashboard runs with actions allowed and the form's CSRF token matches.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3100").await?;
//! let options = serin_dashboard::Options {
//!     allow_actions: false,
//!     who: "me".into(),
//!     allowed_hosts: Some(Vec::new()),
//! };
//! serin_dashboard::run(client, None, listener, options).await?;
//! # Ok(()) }
//! ```

pub mod evidence;
pub mod history;
pub mod list;
pub mod pages;
pub mod server;
pub mod store;
pub mod svg;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::{Api, Client};
use serin_api::Canary;

pub use history::History;
pub use server::{Options, router};
pub use store::Store;

/// Why the dashboard stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving HTTP failed.
    #[error("serving the dashboard failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Starts the watches (all namespaces, or `namespace`) feeding a new [`Store`]; they stop when
/// the returned guard is dropped.
pub fn watch(client: &Client, namespace: Option<&str>) -> (Arc<Store>, WatchGuard) {
    let store = Arc::new(Store::default());
    let (canaries, events): (Api<Canary>, Api<KubeEvent>) = match namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let tasks = vec![
        tokio::spawn(store::watch_canaries(canaries, store.clone())),
        tokio::spawn(store::watch_events(events, store.clone())),
    ];
    (store, WatchGuard(tasks))
}

/// Stops the watches when dropped.
pub struct WatchGuard(Vec<tokio::task::JoinHandle<()>>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Serves the dashboard on `listener` until the process ends.
pub async fn run(
    client: Client,
    namespace: Option<&str>,
    listener: tokio::net::TcpListener,
    options: Options,
) -> Result<(), Error> {
    let (store, _watches) = watch(&client, namespace);
    axum::serve(listener, router(store, client, options)).await?;
    Ok(())
}
