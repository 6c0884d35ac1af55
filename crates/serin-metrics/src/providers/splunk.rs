//! Splunk Observability (SignalFx): the SignalFlow program runs through the HTTP execute API,
//! `POST {stream}/v2/signalflow/execute?start=…&stop=…&immediate=true` (the program as
//! `text/plain`, `X-SF-Token` from the Secret's `sf_token_key`), over a window of ten metric
//! intervals, and the Server-Sent Events answer is read to its end; the last non-null value,
//! provided every value belongs to one time series (Flagger's rule). `address` is the API
//! address (`https://api.REALM.signalfx.com`); the stream host is derived from it as Flagger
//! derives it. Availability: `GET {api}/v2/metric?limit=1`.
//!
//! Flagger speaks the same computation over a WebSocket; the HTTP form answers with the same
//! messages.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{ProviderSettings, http};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

/// Runs SignalFlow programs.
#[derive(Debug, Clone)]
pub struct SplunkProvider {
    client: reqwest::Client,
    execute: String,
    validate: String,
    token: String,
    window: Duration,
    timeout: Duration,
}

impl SplunkProvider {
    /// Needs `address` and the Secret's `sf_token_key`.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let address = settings
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ProviderError::Config("splunk endpoint is not set".into()))?;
        http::base_url(&address, "splunk")?;
        let token = settings
            .secret_value("sf_token_key")
            .ok_or_else(|| ProviderError::Config("splunk credentials does not contain sf_token_key".into()))?;
        let address = address.trim_end_matches('/');
        Ok(SplunkProvider {
            client: http::client(settings.insecure_skip_verify)?,
            execute: format!("{}/v2/signalflow/execute", address.replacen("api", "stream", 1)),
            validate: format!("{}/v2/metric", address.replacen("stream", "api", 1)),
            token: token.trim().to_owned(),
            window: settings.interval * 10,
            timeout: settings.timeout_or(Duration::from_secs(5)),
        })
    }
}

/// The data points of a SignalFlow Server-Sent Events answer, in order, as (tsId, value), or
/// the error message the computation reported.
fn data_points(stream: &str) -> Result<Vec<(String, f64)>, QueryError> {
    let mut points = Vec::new();
    for event in stream.replace("\r\n", "\n").split("\n\n") {
        let mut kind = "message";
        let mut data = String::new();
        for line in event.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
                data.push('\n');
            }
        }
        if data.is_empty() {
            continue;
        }
        let message: Value = serde_json::from_str(&data)
            .map_err(|e| QueryError::BadAnswer(format!("signalflow {kind} message: {e}")))?;
        match kind {
            "data" => {
                for point in message.get("data").and_then(Value::as_array).into_iter().flatten() {
                    let ts = point.get("tsId").and_then(Value::as_str).unwrap_or_default();
                    if let Some(v) = point.get("value").and_then(Value::as_f64) {
                        points.push((ts.to_owned(), v));
                    }
                }
            }
            "error" => {
                let message = message
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| message.to_string(), str::to_owned);
                return Err(QueryError::BadAnswer(format!("error executing query: {message}")));
            }
            _ => {}
        }
    }
    Ok(points)
}

#[async_trait]
impl MetricsProvider for SplunkProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let now = http::now_unix().as_millis() as u64;
        let start = now.saturating_sub(self.window.as_millis() as u64);
        let request = self
            .client
            .post(&self.execute)
            .query(&[
                ("start", start.to_string()),
                ("stop", now.to_string()),
                ("immediate", "true".to_owned()),
            ])
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .header("X-SF-Token", &self.token)
            .body(query.to_owned());
        let body = http::send_ok(request, self.timeout).await?;
        let points = data_points(&String::from_utf8_lossy(&body))?;
        let mut series: Vec<&str> = points.iter().map(|(ts, _)| ts.as_str()).collect();
        series.sort_unstable();
        series.dedup();
        if series.len() > 1 {
            return Err(QueryError::BadAnswer(format!(
                "invalid response: query returned multiple values ({} time series)",
                series.len()
            )));
        }
        Ok(points.last().map_or(QueryValue::NoData, |(_, v)| QueryValue::Value(*v)))
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        let request = self
            .client
            .get(&self.validate)
            .query(&[("limit", "1")])
            .header("X-SF-Token", &self.token);
        http::send_ok(request, self.timeout).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_messages_are_read_in_order_and_errors_reported() {
        let stream = "event: control-message\ndata: {\"event\":\"STREAM_START\"}\n\nevent: data\ndata: {\"logicalTimestampMs\":1,\n data: \"data\":[{\"tsId\":\"AAA\",\"value\":1.5}]}\n\nevent: data\ndata: {\"data\":[{\"tsId\":\"AAA\",\"value\":null}]}\n\nevent: data\ndata: {\"data\":[{\"tsId\":\"AAA\",\"value\":2}]}\n\nevent: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n";
        assert_eq!(
            data_points(&stream.replace("\n data:", "\ndata:")),
            Ok(vec![("AAA".into(), 1.5), ("AAA".into(), 2.0)])
        );
        let failed = "event: error\ndata: {\"error\":400,\"message\":\"Invalid SignalFlow program\"}\n\n";
        assert_eq!(
            data_points(failed),
            Err(QueryError::BadAnswer(
                "error executing query: Invalid SignalFlow program".into()
            ))
        );
    }
}
