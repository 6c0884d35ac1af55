//! Dynatrace: the metrics query API v2,
//! `GET {address}/api/v2/metrics/query?metricSelector=…&resolution=Inf&from=…&to=…` (ms, a
//! window of ten metric intervals) with `Authorization: Api-Token …`; the first value of the
//! last data entry of the first result, as Flagger reads it. Availability:
//! `GET /api/v2/metrics?pageSize=1`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{ProviderSettings, http};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

/// Queries Dynatrace.
#[derive(Debug, Clone)]
pub struct DynatraceProvider {
    client: reqwest::Client,
    address: String,
    token: String,
    window: Duration,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    result: Vec<Metric>,
}

#[derive(Deserialize)]
struct Metric {
    #[serde(default)]
    data: Vec<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    values: Vec<Option<f64>>,
}

impl DynatraceProvider {
    /// Needs `address` and the Secret's `dynatrace_token`.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let address = settings
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ProviderError::Config("dynatrace endpoint is not set".into()))?;
        http::base_url(&address, "dynatrace")?;
        let token = settings
            .secret_value("dynatrace_token")
            .ok_or_else(|| ProviderError::Config("dynatrace credentials does not contain dynatrace_token".into()))?;
        Ok(DynatraceProvider {
            client: http::client(settings.insecure_skip_verify)?,
            address: address.trim_end_matches('/').to_owned(),
            token: format!("Api-Token {token}"),
            window: settings.interval * 10,
            timeout: settings.timeout_or(Duration::from_secs(5)),
        })
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, QueryError> {
        let request = self
            .client
            .get(format!("{}{path}", self.address))
            .header("Authorization", &self.token)
            .query(query);
        http::send_ok(request, self.timeout).await
    }
}

#[async_trait]
impl MetricsProvider for DynatraceProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let now = http::now_unix().as_millis() as u64;
        let from = now.saturating_sub(self.window.as_millis() as u64);
        let body = self
            .get(
                "/api/v2/metrics/query",
                &[
                    ("metricSelector", query.to_owned()),
                    ("resolution", "Inf".to_owned()),
                    ("from", from.to_string()),
                    ("to", now.to_string()),
                ],
            )
            .await?;
        let answer: Answer = http::decode(&body)?;
        let value = answer
            .result
            .first()
            .and_then(|m| m.data.last())
            .and_then(|d| d.values.first().copied().flatten());
        Ok(value.map_or(QueryValue::NoData, QueryValue::Value))
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        self.get("/api/v2/metrics", &[("pageSize", "1".to_owned())])
            .await
            .map(|_| ())
    }
}
