//! What every reconcile shares: clients, ports, settings, metrics.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Duration,
};

use kube::{Client, runtime::reflector::Store};
use serin_api::Canary;
use serin_core::Time;
use serin_knative::{KnativeCacheWriter, Router};
use serin_metrics::{
    MetricsProvider, QuerySet,
    providers::{ProviderSettings, build_provider},
};
use serin_webhook::{EventSink, WebhookClient};

use crate::{events::EventRecorder, metrics::ControllerMetrics};

/// Controller settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Prometheus for built-in metrics and inline queries, unless a Canary sets `metricsServer`.
    pub metrics_server: String,
    /// Built-in query set.
    pub query_set: QuerySet,
    /// Watch one namespace, or all.
    pub namespace: Option<String>,
    /// Reconcile stable Canaries at least this often.
    pub resync: Duration,
    /// Canaries reconciled at once (0: no bound). A reconcile waiting on a slow webhook holds
    /// its slot until the hook's timeout, so this many hanging hooks at once delay the others.
    pub max_concurrent_reconciles: u16,
    /// Name shown as the events' source.
    pub component: String,
    /// Whether traffic targets carry the `primary` / `canary` tags (a Canary's
    /// `serin.dev/traffic-tags` annotation overrides it).
    pub traffic_tags: bool,
    /// The judge of Canaries without the `judge.serin.dev/mode` annotation.
    pub default_judge: serin_core::JudgeMode,
    /// Which Canaries this controller acts on when it is one shard of several.
    pub shard: Option<crate::shard::ShardConfig>,
    /// Where the Leases are (this controller's, and the other shards' it checks).
    pub lease_namespace: String,
    /// How long a Lease is valid without renewal.
    pub lease_duration: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            metrics_server: "http://prometheus:9090".into(),
            query_set: QuerySet::Kourier,
            namespace: None,
            resync: Duration::from_secs(300),
            max_concurrent_reconciles: 256,
            component: "serin".into(),
            traffic_tags: true,
            default_judge: serin_core::JudgeMode::Flagger,
            shard: None,
            lease_namespace: "serin-system".into(),
            lease_duration: Duration::from_secs(15),
        }
    }
}

/// Canaries by the Service they target, so mapping a Service event to its Canaries and finding
/// duplicate owners do not scan every Canary.
#[derive(Default)]
pub struct TargetIndex {
    maps: Mutex<TargetMaps>,
}

/// Both directions, kept together under one lock.
#[derive(Default)]
struct TargetMaps {
    /// `(namespace, Service)` → Canaries.
    by_target: HashMap<(String, String), std::collections::BTreeSet<String>>,
    /// `(namespace, Canary)` → Service.
    target_of: HashMap<(String, String), String>,
}

impl TargetMaps {
    fn remove(&mut self, namespace: &str, canary: &str) {
        let Some(target) = self.target_of.remove(&(namespace.to_owned(), canary.to_owned())) else {
            return;
        };
        let key = (namespace.to_owned(), target);
        if let Some(set) = self.by_target.get_mut(&key) {
            set.remove(canary);
            if set.is_empty() {
                self.by_target.remove(&key);
            }
        }
    }
}

impl TargetIndex {
    /// Records that Canary `namespace/canary` targets Service `target`.
    pub fn record(&self, namespace: &str, canary: &str, target: &str) {
        let Ok(mut maps) = self.maps.lock() else {
            return;
        };
        maps.remove(namespace, canary);
        maps.target_of
            .insert((namespace.to_owned(), canary.to_owned()), target.to_owned());
        maps.by_target
            .entry((namespace.to_owned(), target.to_owned()))
            .or_default()
            .insert(canary.to_owned());
    }

    /// Forgets Canary `namespace/canary` (deleted).
    pub fn forget(&self, namespace: &str, canary: &str) {
        self.maps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(namespace, canary);
    }

    /// The Canaries known to target Service `namespace/target`.
    pub fn canaries(&self, namespace: &str, target: &str) -> Vec<String> {
        self.maps
            .lock()
            .ok()
            .and_then(|m| {
                m.by_target
                    .get(&(namespace.to_owned(), target.to_owned()))
                    .map(|s| s.iter().cloned().collect())
            })
            .unwrap_or_default()
    }
}

/// A clock: the wall clock in production, a virtual one in tests.
pub type Clock = Arc<dyn Fn() -> Time + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(serin_api::wall_clock_now)
}

/// Shared state of the reconciler.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Traffic routing.
    pub router: Arc<dyn Router>,
    /// Webhook calls.
    pub webhooks: Arc<dyn WebhookClient>,
    /// Prometheus for built-in metrics and inline queries.
    pub default_provider: Arc<dyn MetricsProvider>,
    /// Settings.
    pub config: Config,
    /// Kubernetes events.
    pub events: EventRecorder,
    /// Prometheus metrics of the controller.
    pub metrics: Arc<ControllerMetrics>,
    /// Event webhooks (global `--event-webhook` and `type: event` hooks), fire and forget.
    pub event_sink: Option<EventSink>,
    /// `--event-webhook`.
    pub event_webhook: Option<String>,
    /// The time source.
    pub clock: Clock,
    /// The Canary cache (set when the controller starts).
    pub store: OnceLock<Store<Canary>>,
    /// MetricTemplates, AlertProviders and JudgePolicies from watches (started by [`crate::run`]).
    pub config_cache: crate::config_cache::ConfigCache,
    /// Canaries by target Service.
    pub targets: Arc<TargetIndex>,
    /// Alert delivery (`analysis.alerts` and the global notifier); `None`: no alerts are sent.
    pub alerting: Option<crate::alerting::Alerting>,
    /// Our status writes until the Canary cache has them.
    pub own_writes: crate::own_writes::OwnWrites,
    /// Providers (`metricsServer`s and MetricTemplates) by their settings.
    providers: Mutex<HashMap<String, Arc<dyn MetricsProvider>>>,
    knative_cache: Mutex<Option<KnativeCacheWriter>>,
}

impl Context {
    /// A context from its parts.
    pub fn new(
        client: Client,
        router: Arc<dyn Router>,
        webhooks: Arc<dyn WebhookClient>,
        default_provider: Arc<dyn MetricsProvider>,
        config: Config,
    ) -> Self {
        let events = EventRecorder::new(client.clone(), &config.component);
        Context {
            client,
            router,
            webhooks,
            default_provider,
            config,
            events,
            metrics: Arc::new(ControllerMetrics::new()),
            event_sink: None,
            event_webhook: None,
            clock: wall_clock(),
            store: OnceLock::new(),
            own_writes: Default::default(),
            config_cache: crate::config_cache::ConfigCache::default(),
            targets: Arc::new(TargetIndex::default()),
            alerting: None,
            providers: Mutex::new(HashMap::new()),
            knative_cache: Mutex::new(None),
        }
    }

    /// Sends alerts through `alerting`.
    pub fn with_alerting(mut self, alerting: crate::alerting::Alerting) -> Self {
        self.alerting = Some(alerting);
        self
    }

    /// Fills these caches from the controller's Service and Revision watches (give the matching
    /// [`serin_knative::KnativeCache`] to the router). Without it the watches only trigger.
    pub fn with_knative_cache(self, writer: KnativeCacheWriter) -> Self {
        *self.knative_cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(writer);
        self
    }

    /// The cache writers, once, for the controller to feed (`None`: nobody reads a cache).
    pub(crate) fn take_knative_cache(&self) -> Option<KnativeCacheWriter> {
        self.knative_cache.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// The provider (and its HTTP client) of a MetricTemplate's settings, built once and then
    /// reused for as long as the settings (type, address, headers, credentials, TLS, interval)
    /// stay the same.
    pub fn provider_from(&self, settings: &ProviderSettings) -> Result<Arc<dyn MetricsProvider>, String> {
        let key = format!("{}#{}", settings.kind, settings.cache_key());
        let mut cache = self.providers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let provider = build_provider(settings).map_err(|e| e.to_string())?;
        if cache.len() >= 1024 {
            // Settings changed many times over: start afresh rather than grow without bound.
            cache.clear();
        }
        cache.insert(key, provider.clone());
        Ok(provider)
    }

    /// The provider for a Canary's built-in metrics and inline queries: its `metricsServer`, or
    /// the default. An unusable `metricsServer` is an error (each check fails with it, as in
    /// Flagger), never a silent fallback to the default.
    pub fn provider_for(&self, canary: &Canary) -> Result<Arc<dyn MetricsProvider>, String> {
        let Some(address) = canary
            .spec
            .metrics_server
            .as_deref()
            .filter(|a| *a != self.config.metrics_server)
        else {
            return Ok(self.default_provider.clone());
        };
        let mut settings = ProviderSettings::new("prometheus");
        settings.address = Some(address.to_owned());
        self.provider_from(&settings)
            .map_err(|e| format!("Error building Prometheus client for {address} {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::TargetIndex;

    #[test]
    fn the_index_follows_retargeting_and_deletion() {
        let index = TargetIndex::default();
        index.record("test", "a", "podinfo");
        index.record("test", "b", "podinfo");
        index.record("other", "a", "podinfo");
        assert_eq!(index.canaries("test", "podinfo"), ["a", "b"]);
        index.record("test", "b", "backend");
        assert_eq!(index.canaries("test", "podinfo"), ["a"]);
        assert_eq!(index.canaries("test", "backend"), ["b"]);
        index.forget("test", "a");
        index.forget("test", "never-recorded");
        assert!(index.canaries("test", "podinfo").is_empty());
        assert_eq!(index.canaries("other", "podinfo"), ["a"]);
    }
}
