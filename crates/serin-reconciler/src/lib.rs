//! The one place where Serin's parts meet: a kube-runtime controller that watches Canaries and
//! the Knative Services and Revisions they target, runs the checks the engine asks for (metrics
//! and webhooks, concurrently), lets `serin-core` decide, executes its actions through the
//! `Router`, and records status, events and metrics.
//!
//! It decides nothing itself: every decision is `serin_core::step`'s. It does not parse flags
//! or set up logging (the `serin-controller` binary does).
//!
//! # Embedding
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use serin_reconciler::{Config, Context};
//! // The controller's watches fill the cache; the router reads it instead of GETting.
//! let (cache, cache_writer) = serin_knative::KnativeCache::new();
//! let router = Arc::new(serin_knative::KnativeRouter::new(client.clone()).with_cache(cache));
//! let webhooks = Arc::new(serin_webhook::HttpWebhookClient::new()?);
//! let prometheus = Arc::new(serin_metrics::PrometheusProvider::new(serin_metrics::PrometheusConfig::new("http://prometheus:9090"))?);
//! let ctx = Context::new(client, router, webhooks, prometheus, Config::default()).with_knative_cache(cache_writer);
//! let ctx = Arc::new(ctx);
//! serin_reconciler::run(ctx, std::future::pending()).await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`run`] (controller.rs): the Controller and its watches.
//! - reconcile.rs: one reconcile (`reconcile`, `error_policy`) and the execution of its actions.
//! - status.rs: the Canary's status from a decision, written as a minimal merge patch.
//! - notify.rs: events, event webhooks and post-rollout hooks.
//! - [`alerting`]: alerts to AlertProviders or the global notifier, through `serin-alerts`' queue.
//! - finalizer.rs: `revertOnDeletion` (the finalizer and the release of the target).
//! - [`serve`]: the admin endpoints, the stop signal and leader election for a controller process.
//! - checks.rs: metric queries, counters and webhook calls for a `CheckRequest`.
//! - requests.rs: request annotations (`serin promote`, …) removed once handled.
//! - judging.rs: the judge annotation and `JudgePolicy` of a Canary (`JudgeConfigInvalid`).
//! - [`config_cache`]: MetricTemplates, AlertProviders and JudgePolicies from watches.
//! - [`Context`], [`Config`]: shared state and settings.
//! - [`events::EventRecorder`], [`metrics::ControllerMetrics`].

pub mod alerting;
mod checks;
pub mod config_cache;
mod context;
mod controller;
pub mod events;
mod finalizer;
mod judging;
pub mod leader;
pub mod metrics;
mod notify;
pub mod own_writes;
mod reconcile;
mod requests;
pub mod serve;
pub mod shard;
mod status;

pub use context::{Clock, Config, Context, wall_clock};
pub use controller::run;
pub use finalizer::FINALIZER;
pub use reconcile::{PERMANENT_ERROR_BACKOFF, TRAFFIC_TAGS_ANNOTATION, error_policy, reconcile};
pub use status::merge_diff;

/// Resource kinds and verbs the controller uses, for RBAC checks: (group, resource, verbs).
pub const PERMISSIONS: &[(&str, &str, &[&str])] = &[
    ("flagger.app", "canaries", &["get", "list", "watch", "patch", "update"]),
    ("flagger.app", "canaries/status", &["get", "patch", "update"]),
    ("flagger.app", "canaries/finalizers", &["update"]),
    ("flagger.app", "metrictemplates", &["get", "list", "watch"]),
    ("flagger.app", "alertproviders", &["get", "list", "watch"]),
    ("judge.serin.dev", "judgepolicies", &["get", "list", "watch"]),
    ("serving.knative.dev", "services", &["get", "list", "watch", "patch"]),
    ("serving.knative.dev", "revisions", &["get", "list", "watch"]),
    ("", "events", &["create", "patch"]),
    ("", "secrets", &["get"]),
    // MetricTemplates of type keptn and externalmetrics.
    ("metrics.keptn.sh", "keptnmetrics", &["get"]),
    ("metrics.keptn.sh", "analyses", &["create", "get", "delete"]),
    ("external.metrics.k8s.io", "*", &["get", "list"]),
    ("coordination.k8s.io", "leases", &["get", "create", "update", "patch"]),
];

/// Errors of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Routing failed.
    #[error(transparent)]
    Router(#[from] serin_knative::RouterError),
}

impl Error {
    /// Whether retrying soon may help: API trouble that passes (409, 429, 5xx, transport), as
    /// opposed to a refusal that needs a change first (400, 403, 404, 405, 415, 422; Knative
    /// refusing the traffic; a Service that cannot be read).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Kube(kube::Error::Api(status)) => !matches!(status.code, 400 | 403 | 404 | 405 | 415 | 422),
            Error::Kube(_) => true,
            Error::Router(e) => e.is_transient(),
        }
    }
}
