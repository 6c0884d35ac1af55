//! Every MetricTemplate provider type Flagger supports, built from one [`ProviderSettings`]
//! (the template's `spec.provider`, its Secret's data and the metric's interval).
//!
//! One module per provider, each with Flagger's endpoints, Secret keys, time window, choice of
//! value and error texts. Where Flagger silently turns "no answer" into 0 (InfluxDB with no
//! rows, a Datadog point whose value is null), Serin reports no data instead: never a passing
//! check from nothing.

mod aws;
mod cloudwatch;
mod datadog;
mod dynatrace;
mod externalmetrics;
mod graphite;
mod http;
mod influxdb;
mod keptn;
mod kube;
mod newrelic;
mod splunk;
mod stackdriver;

use std::{
    collections::BTreeMap,
    fmt,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use crate::{Auth, MetricsProvider, PrometheusConfig, PrometheusProvider, ProviderError};

pub use aws::{AwsCredentials, CredentialSource, Scope, sign_v4};
pub use cloudwatch::CloudWatchProvider;
pub use datadog::DatadogProvider;
pub use dynatrace::DynatraceProvider;
pub use externalmetrics::ExternalMetricsProvider;
pub use graphite::GraphiteProvider;
pub(crate) use http::chain as error_chain;
pub use influxdb::InfluxdbProvider;
pub use keptn::KeptnProvider;
pub use kube::KubeAccess;
pub use newrelic::NewRelicProvider;
pub use splunk::SplunkProvider;
pub use stackdriver::StackdriverProvider;

/// Provider types Flagger knows, in its factory's order; Serin runs every one.
pub const PROVIDER_TYPES: [&str; 11] = [
    "prometheus",
    "datadog",
    "externalmetrics",
    "cloudwatch",
    "newrelic",
    "graphite",
    "stackdriver",
    "influxdb",
    "dynatrace",
    "keptn",
    "splunk",
];

/// Everything a provider is built from.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProviderSettings {
    /// `spec.provider.type`.
    pub kind: String,
    /// `spec.provider.address`.
    pub address: Option<String>,
    /// The data of `spec.provider.secretRef`'s Secret; `None` when the template names none.
    pub secret: Option<BTreeMap<String, String>>,
    /// `spec.provider.headers`, flattened.
    pub headers: Vec<(String, String)>,
    /// `spec.provider.insecureSkipVerify`.
    pub insecure_skip_verify: bool,
    /// `spec.provider.region` (CloudWatch).
    pub region: Option<String>,
    /// The metric's `interval`: the query window of providers that take one.
    pub interval: Duration,
    /// Per-request timeout; `None` for the provider's default (Flagger's: 5 s, InfluxDB 15 s).
    pub timeout: Option<Duration>,
    /// The Kubernetes API for `externalmetrics` and `keptn`; `None`: the pod's own (in-cluster).
    pub kube: Option<KubeAccess>,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secret values never reach a log line.
        let keys: Option<Vec<&String>> = self.secret.as_ref().map(|s| s.keys().collect());
        f.debug_struct("ProviderSettings")
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("secret_keys", &keys)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("region", &self.region)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("kube", &self.kube.as_ref().map(|k| &k.url))
            .finish()
    }
}

impl ProviderSettings {
    /// Settings of a provider type with nothing else set (1 m interval).
    pub fn new(kind: &str) -> Self {
        ProviderSettings {
            kind: kind.to_owned(),
            address: None,
            secret: None,
            headers: Vec::new(),
            insecure_skip_verify: false,
            region: None,
            interval: Duration::from_secs(60),
            timeout: None,
            kube: None,
        }
    }

    /// A key for caching the built provider (the settings' hash, secrets included).
    pub fn cache_key(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }

    /// The Secret's value for `key`, as Flagger reads it (bytes as they are).
    pub(crate) fn secret_value(&self, key: &str) -> Option<&str> {
        self.secret.as_ref().and_then(|s| s.get(key)).map(String::as_str)
    }

    /// The timeout, or the provider's default.
    pub(crate) fn timeout_or(&self, default: Duration) -> Duration {
        self.timeout.unwrap_or(default)
    }
}

/// Builds the provider the settings describe, or says exactly why not (Flagger's texts for
/// missing fields and Secret keys).
pub fn build_provider(settings: &ProviderSettings) -> Result<Arc<dyn MetricsProvider>, ProviderError> {
    Ok(match settings.kind.as_str() {
        "prometheus" => {
            let address = settings
                .address
                .clone()
                .ok_or_else(|| ProviderError::Config("prometheus address is not set".into()))?;
            let mut config = PrometheusConfig::new(&address);
            config.headers = settings.headers.clone();
            config.insecure_skip_verify = settings.insecure_skip_verify;
            if let Some(t) = settings.timeout {
                config.timeout = t;
            }
            if let Some(data) = &settings.secret {
                config.auth = Auth::from_secret(data)?;
            }
            Arc::new(PrometheusProvider::new(config)?)
        }
        "datadog" => Arc::new(DatadogProvider::new(settings)?),
        "newrelic" => Arc::new(NewRelicProvider::new(settings)?),
        "dynatrace" => Arc::new(DynatraceProvider::new(settings)?),
        "graphite" => Arc::new(GraphiteProvider::new(settings)?),
        "influxdb" => Arc::new(InfluxdbProvider::new(settings)?),
        "externalmetrics" => Arc::new(ExternalMetricsProvider::new(settings)?),
        "keptn" => Arc::new(KeptnProvider::new(settings)?),
        "cloudwatch" => Arc::new(CloudWatchProvider::new(settings)?),
        "splunk" => Arc::new(SplunkProvider::new(settings)?),
        "stackdriver" => Arc::new(StackdriverProvider::new(settings)?),
        other => {
            return Err(ProviderError::Config(format!(
                "unknown metrics provider {other:?} (known: {})",
                PROVIDER_TYPES.join(", ")
            )));
        }
    })
}
