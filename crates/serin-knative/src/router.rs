//! The `Router` trait: what the reconciler needs from a traffic-shifting backend, in the engine's
//! terms only (a `World` in, traffic splits out), so another backend can implement it without
//! Knative's or Kubernetes' types.

use async_trait::async_trait;
use serin_core::{TrafficSplit, World};

/// Which Service to route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Namespace.
    pub namespace: String,
    /// Knative Service name.
    pub name: String,
    /// Whether traffic targets carry the `primary` / `canary` tags (each tag adds a host name to
    /// the Route, and a certificate under auto-TLS).
    pub tags: bool,
}

impl Target {
    /// A target with the default layout (tagged).
    pub fn new(namespace: &str, name: &str) -> Self {
        Target {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            tags: true,
        }
    }

    /// `{name}.{namespace}`.
    pub fn display(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }
}

/// Errors of a router.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The Service does not exist.
    #[error("Knative Service {0} not found")]
    NotFound(String),
    /// Knative refused the write (admission), with its message; not retried.
    #[error("Knative rejected the traffic of {service}: {message}")]
    Rejected {
        /// The Service.
        service: String,
        /// Knative's message.
        message: String,
    },
    /// Concurrent writes kept conflicting.
    #[error("Knative Service {0} kept changing under us (409 Conflict after retries)")]
    Conflict(String),
    /// The Service or a Revision could not be read as Knative's schema says.
    #[error("Knative Service {service}: {problem}")]
    Malformed {
        /// The Service.
        service: String,
        /// What is wrong.
        problem: String,
    },
    /// The backend's API failed.
    #[error("Kubernetes API error for {service}: {source}")]
    Api {
        /// The Service.
        service: String,
        /// The HTTP status, when the API answered (403, 500, …).
        code: Option<u16>,
        /// The error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl RouterError {
    /// Whether trying again later may help (API trouble that passes, conflicts), as opposed to a
    /// refusal (400, 403, 404, 405, 415, 422; Knative rejecting the traffic) or a missing Service
    /// that needs a change first.
    pub fn is_transient(&self) -> bool {
        match self {
            RouterError::Conflict(_) => true,
            RouterError::Api { code, .. } => !matches!(code, Some(400 | 403 | 404 | 405 | 415 | 422)),
            _ => false,
        }
    }
}

/// Shifts traffic between revisions of one target.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Router: Send + Sync {
    /// Reads the revisions and their readiness.
    async fn observe(&self, target: &Target) -> Result<World, RouterError>;
    /// Takes over routing: `primary` gets 100%.
    async fn initialize(&self, target: &Target, primary: &str) -> Result<(), RouterError>;
    /// Splits traffic.
    async fn set_split(&self, target: &Target, split: &TrafficSplit) -> Result<(), RouterError>;
    /// Makes `revision` the primary with 100%.
    async fn promote(&self, target: &Target, revision: &str) -> Result<(), RouterError>;
    /// Stops managing the target (`revertOnDeletion`): Knative's `latestRevision` gets 100%, or,
    /// with `pin`, that revision keeps 100%.
    async fn release(&self, target: &Target, pin: Option<String>) -> Result<(), RouterError>;
}
