//! Amazon CloudWatch: `GetMetricData` (AWS JSON 1.0 protocol, SigV4-signed, service
//! `monitoring`) with the template's query as the `MetricDataQueries` JSON array, over a window
//! of ten metric intervals, at most 20 data points; the first value of the first result (the
//! newest, CloudWatch's default order), as Flagger reads it. `region` is required; `address`
//! replaces the regional endpoint. Availability: an empty request must be refused with 400 (the
//! credentials are accepted), as Flagger checks it.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{
    ProviderSettings,
    aws::{AwsCredentials, CredentialSource, Scope, sign_v4},
    http,
};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

const TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";

/// Queries CloudWatch.
#[derive(Debug)]
pub struct CloudWatchProvider {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    region: String,
    window: Duration,
    timeout: Duration,
    /// `None`: none found in the environment; every query says so.
    source: Option<CredentialSource>,
    /// Credentials fetched from STS, reused until they are about to expire.
    cached: Mutex<Option<AwsCredentials>>,
}

impl CloudWatchProvider {
    /// Needs `region`; credentials come from the environment (see [`CredentialSource::from_env`]) and are
    /// looked for when a query runs, as the SDKs do.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let region = settings.region.clone().unwrap_or_default();
        let source = CredentialSource::from_env(&region, |k| std::env::var(k).ok());
        Self::build(settings, source)
    }

    /// With credentials from `source` instead of the environment.
    pub fn with_credentials(settings: &ProviderSettings, source: CredentialSource) -> Result<Self, ProviderError> {
        Self::build(settings, Some(source))
    }

    fn build(settings: &ProviderSettings, source: Option<CredentialSource>) -> Result<Self, ProviderError> {
        let region = settings
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ProviderError::Config("region not specified".into()))?;
        let address = settings
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| format!("https://monitoring.{region}.amazonaws.com/"));
        Ok(CloudWatchProvider {
            client: http::client(settings.insecure_skip_verify)?,
            endpoint: http::base_url(&address, "cloudwatch")?,
            region,
            window: settings.interval * 10,
            timeout: settings.timeout_or(Duration::from_secs(5)),
            source,
            cached: Mutex::new(None),
        })
    }

    async fn credentials(&self) -> Result<AwsCredentials, QueryError> {
        let soon = SystemTime::now() + Duration::from_secs(300);
        if let Some(c) = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            && c.expires.is_none_or(|e| e > soon)
        {
            return Ok(c);
        }
        let source = self.source.as_ref().ok_or_else(|| {
            QueryError::Transport(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use IRSA (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)".into(),
            )
        })?;
        let fresh = source.fetch(&self.client, self.timeout).await?;
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }

    /// Sends a signed `GetMetricData`; the status and body.
    async fn get_metric_data(&self, input: &Value) -> Result<(u16, Vec<u8>), QueryError> {
        let body = serde_json::to_vec(input).map_err(|e| QueryError::BadAnswer(e.to_string()))?;
        let host = self.endpoint.host_str().unwrap_or_default().to_owned();
        let host = match self.endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("host", host.as_str()),
            ("x-amz-target", TARGET),
        ];
        let credentials = self.credentials().await?;
        let scope = Scope {
            region: &self.region,
            service: "monitoring",
            time: SystemTime::now(),
        };
        let signed = sign_v4("POST", self.endpoint.as_str(), &headers, &body, &credentials, scope)
            .map_err(|e| QueryError::Transport(format!("cannot sign the request: {e}")))?;
        let mut request = self.client.post(self.endpoint.clone()).body(body);
        for (k, v) in headers.iter().filter(|(k, _)| *k != "host") {
            request = request.header(*k, *v);
        }
        for (k, v) in &signed {
            request = request.header(k.as_str(), v.as_str());
        }
        http::send(request, self.timeout).await
    }
}

/// An AWS JSON error's message.
fn aws_error(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            let kind = v
                .get("__type")
                .and_then(Value::as_str)
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
            let message = v
                .get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            match (kind, message) {
                (Some(k), Some(m)) => Some(format!("{k}: {m}")),
                (k, m) => k.or(m),
            }
        })
        .unwrap_or_else(|| http::quote(body))
}

#[async_trait]
impl MetricsProvider for CloudWatchProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let queries: Value =
            serde_json::from_str(query).map_err(|e| QueryError::BadAnswer(format!("error unmarshaling query: {e}")))?;
        if !queries.is_array() {
            return Err(QueryError::BadAnswer(
                "error unmarshaling query: the query must be a JSON array of MetricDataQuery".into(),
            ));
        }
        let end = http::now_unix().as_secs();
        let input = json!({
            "StartTime": end.saturating_sub(self.window.as_secs()),
            "EndTime": end,
            "MaxDatapoints": 20,
            "MetricDataQueries": queries,
        });
        let (status, body) = self.get_metric_data(&input).await?;
        if status != 200 {
            return Err(QueryError::Status {
                status,
                body: format!("error requesting cloudwatch: {}", aws_error(&body)),
            });
        }
        let answer: Value =
            serde_json::from_slice(&body).map_err(|e| QueryError::BadAnswer(format!("{e}: {}", http::quote(&body))))?;
        Ok(
            match answer.pointer("/MetricDataResults/0/Values/0").and_then(Value::as_f64) {
                Some(v) => QueryValue::Value(v),
                None => QueryValue::NoData,
            },
        )
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        let input = json!({"StartTime": 0, "EndTime": 0, "MetricDataQueries": []});
        match self.get_metric_data(&input).await? {
            (200 | 400, _) => Ok(()),
            (status, body) => Err(QueryError::Status {
                status,
                body: format!("unexpected status code: {}", aws_error(&body)),
            }),
        }
    }
}
