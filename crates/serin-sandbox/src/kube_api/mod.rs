//! A Kubernetes API emulator: faithful where Serin's code and `kubectl` touch the API server,
//! and able to misbehave on purpose.
//!
//! Emulated: discovery, namespaces, events, configmaps, secrets, serviceaccounts, services,
//! deployments, RBAC objects, leases, and CRDs (applying a CRD serves its resource); GET, LIST
//! (label and field selectors, `limit`/`continue`), WATCH (resume, bookmarks, timeouts, 410),
//! POST, PUT (409 on a stale resourceVersion), PATCH (merge, JSON, apply; strategic merge refused
//! for custom resources and applied as a merge patch for built-ins), DELETE with finalizers,
//! status subresources, `generation`, `Table` output, admission hooks, and faults (in process
//! through [`KubeApi::set_faults`], or over HTTP: `PUT /_sandbox/faults` with a [`Faults`] JSON
//! body, `GET /_sandbox/requests` for the request counters).
//!
//! Not emulated: authentication and RBAC (every request is allowed), admission plugins beyond
//! the in-process hooks, API aggregation, protobuf, OpenAPI schemas (the v3 index only),
//! field-level server-side apply ownership (apply is a merge), schema validation and defaulting
//! of custom resources, and garbage collection by owner references.

mod control;
mod crds;
mod discovery;
mod error;
pub mod faults;
mod handler;
mod patch;
mod protobuf;
pub mod registry;
pub mod schema;
mod selectors;
pub mod store;
mod table;
mod verbs;
mod watch;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, RwLock},
};

use serde_json::Value;
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use faults::{FailRule, Faults};
pub use registry::ResourceDef;

/// The kind of write an admission hook sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// POST, or an apply that creates.
    Create,
    /// PUT or PATCH.
    Update,
}

/// A validating admission callback: `Err(message)` denies the request.
pub type AdmissionHook = Arc<dyn Fn(Operation, &Value, Option<&Value>) -> Result<(), String> + Send + Sync>;

/// An admission hook and the name that appears in its denials.
type NamedHook = (String, AdmissionHook);

/// State shared by the handlers.
pub struct Shared {
    store: Mutex<store::Store>,
    registry: RwLock<Vec<ResourceDef>>,
    admission: RwLock<HashMap<(String, String), Vec<NamedHook>>>,
    faults: Mutex<faults::FaultState>,
    addr: SocketAddr,
}

/// A running emulator; stops when dropped.
pub struct KubeApi {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApi {
    /// Starts on 127.0.0.1 at `port` (0 = a free port), with `default` and `kube-system` namespaces.
    pub async fn start(port: u16) -> std::io::Result<KubeApi> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store::Store::new()),
            registry: RwLock::new(registry::builtins()),
            admission: RwLock::new(HashMap::new()),
            faults: Mutex::new(faults::FaultState::default()),
            addr,
        });
        let api = KubeApi {
            addr,
            shared: shared.clone(),
            task: tokio::spawn(handler::serve(listener, shared)),
        };
        for ns in ["default", "kube-system"] {
            api.create_namespace(ns);
        }
        Ok(api)
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server.
    pub fn client(&self) -> Result<kube::Client, kube::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let uri: http::Uri = self
            .url()
            .parse()
            .map_err(|e: http::uri::InvalidUri| kube::Error::Service(e.into()))?;
        kube::Client::try_from(kube::Config::new(uri))
    }

    /// Creates a namespace (no-op when it exists).
    pub fn create_namespace(&self, name: &str) {
        let def = registry::builtins()
            .into_iter()
            .find(|d| d.plural == "namespaces")
            .expect("namespaces are built in");
        {
            let mut store = self
                .shared
                .store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = store.create(&def, "", serde_json::json!({"metadata": {"name": name}}));
        }
    }

    /// Installs a CRD object (as `kubectl apply` would).
    pub fn install_crd(&self, crd: Value) -> Result<(), ApiError> {
        verbs::create_object(
            &self.shared,
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            crd,
        )
        .map(|_| ())
    }

    /// Registers a validating hook for a resource (`group`, `plural`); `name` appears in denials.
    pub fn add_admission_hook(&self, group: &str, plural: &str, name: &str, hook: AdmissionHook) {
        {
            let mut hooks = self
                .shared
                .admission
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hooks
                .entry((group.to_owned(), plural.to_owned()))
                .or_default()
                .push((name.to_owned(), hook));
        }
    }

    /// Replaces the fault configuration.
    pub fn set_faults(&self, faults: Faults) {
        {
            let mut f = self
                .shared
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f.faults = faults;
        }
    }

    /// Requests so far, by (verb, resource, user agent).
    pub fn request_counts(&self) -> Vec<((String, String, String), u64)> {
        self.shared
            .faults
            .lock()
            .map(|f| f.requests.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().map(|s| s.rv()).unwrap_or(0)
    }
}
