//! New Relic: NRQL through the Insights query API,
//! `GET {address}/v1/accounts/{account}/query?nrql={query} SINCE {interval} seconds ago` with
//! the `X-Query-Key` header; the single result's `result`. Availability: `SELECT * FROM Metric`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{ProviderSettings, http};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

const DEFAULT_ADDRESS: &str = "https://insights-api.newrelic.com";

/// Queries New Relic with NRQL.
#[derive(Debug, Clone)]
pub struct NewRelicProvider {
    client: reqwest::Client,
    endpoint: String,
    query_key: String,
    since_secs: u64,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Result_>,
}

#[derive(Deserialize)]
struct Result_ {
    result: Option<f64>,
}

impl NewRelicProvider {
    /// Reads `newrelic_account_id` and `newrelic_query_key` from the Secret.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let key = |k: &str| {
            settings
                .secret_value(k)
                .map(str::to_owned)
                .ok_or_else(|| ProviderError::Config(format!("newrelic credentials does not contain the key '{k}'")))
        };
        let address = settings.address.clone().unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        http::base_url(&address, "newrelic")?;
        let account = key("newrelic_account_id")?;
        Ok(NewRelicProvider {
            client: http::client(settings.insecure_skip_verify)?,
            endpoint: format!("{}/v1/accounts/{}/query", address.trim_end_matches('/'), account.trim()),
            query_key: key("newrelic_query_key")?,
            since_secs: settings.interval.as_secs(),
            timeout: settings.timeout_or(Duration::from_secs(5)),
        })
    }

    async fn nrql(&self, query: &str) -> Result<Vec<u8>, QueryError> {
        let nrql = format!("{query} SINCE {} seconds ago", self.since_secs);
        let request = self
            .client
            .get(&self.endpoint)
            .header("X-Query-Key", &self.query_key)
            .query(&[("nrql", nrql)]);
        http::send_ok(request, self.timeout).await
    }
}

#[async_trait]
impl MetricsProvider for NewRelicProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let body = self.nrql(query).await?;
        let answer: Answer = http::decode(&body)?;
        Ok(match answer.results.as_slice() {
            [one] => one.result.map_or(QueryValue::NoData, QueryValue::Value),
            // Flagger requires exactly one result.
            _ => QueryValue::NoData,
        })
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        self.nrql("SELECT * FROM Metric").await.map(|_| ())
    }
}
