//! Datadog: `GET {address}/api/v1/query?query=…&from=…&to=…` with the `DD-API-KEY` and
//! `DD-APPLICATION-KEY` headers, over a window of ten metric intervals; the first point of the
//! first series, as Flagger reads it. Availability: `GET /api/v1/validate`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{ProviderSettings, http};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

const DEFAULT_ADDRESS: &str = "https://api.datadoghq.com";

/// Queries Datadog's metrics API.
#[derive(Debug, Clone)]
pub struct DatadogProvider {
    client: reqwest::Client,
    address: String,
    api_key: String,
    application_key: String,
    window: Duration,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    series: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    pointlist: Vec<Vec<Option<f64>>>,
}

impl DatadogProvider {
    /// Reads `datadog_api_key` and `datadog_application_key` from the Secret.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let key = |k: &str| {
            settings
                .secret_value(k)
                .map(str::to_owned)
                .ok_or_else(|| ProviderError::Config(format!("datadog credentials does not contain {k}")))
        };
        let address = settings.address.clone().unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        http::base_url(&address, "datadog")?;
        Ok(DatadogProvider {
            client: http::client(settings.insecure_skip_verify)?,
            address: address.trim_end_matches('/').to_owned(),
            api_key: key("datadog_api_key")?,
            application_key: key("datadog_application_key")?,
            window: settings.interval * 10,
            timeout: settings.timeout_or(Duration::from_secs(5)),
        })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.address))
            .header("DD-API-KEY", &self.api_key)
            .header("DD-APPLICATION-KEY", &self.application_key)
    }
}

#[async_trait]
impl MetricsProvider for DatadogProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let now = http::now_unix().as_secs();
        let from = now.saturating_sub(self.window.as_secs());
        let request = self.get("/api/v1/query").query(&[
            ("query", query.to_owned()),
            ("from", from.to_string()),
            ("to", now.to_string()),
        ]);
        let body = http::send_ok(request, self.timeout).await?;
        let answer: Answer = http::decode(&body)?;
        let point = answer.series.first().and_then(|s| s.pointlist.first());
        Ok(match point.and_then(|p| p.get(1).copied()) {
            Some(Some(v)) if v.is_nan() => QueryValue::NaN,
            Some(Some(v)) => QueryValue::Value(v),
            // No series, no point, or a null value: no data (Flagger reads a null as 0).
            _ => QueryValue::NoData,
        })
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        http::send_ok(self.get("/api/v1/validate"), self.timeout)
            .await
            .map(|_| ())
    }
}
