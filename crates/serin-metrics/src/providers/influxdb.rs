//! InfluxDB 2: Flux through `POST {address}/api/v2/query?org={org}` with
//! `Authorization: Token {token}` (the Secret's `token` and `org`, when a Secret is named); the
//! first record's `_value` of the annotated CSV answer, which must be a double, as Flagger
//! requires. Availability: `from(bucket: "default") |> range(start: -2h)` runs without error.
//!
//! Flagger returns 0 when the answer has no rows; Serin reports no data.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::{ProviderSettings, http};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

/// Queries InfluxDB 2 with Flux.
#[derive(Debug, Clone)]
pub struct InfluxdbProvider {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    token: Option<String>,
    timeout: Duration,
}

impl InfluxdbProvider {
    /// Needs `address`; `token` and `org` when a Secret is named.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let address = settings.address.clone().unwrap_or_default();
        let mut endpoint = http::base_url(&address, "influxdb")?;
        let path = format!("{}/api/v2/query", endpoint.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        let mut token = None;
        if settings.secret.is_some() {
            let value = |k: &str, what: &str| {
                settings
                    .secret_value(k)
                    .map(str::to_owned)
                    .ok_or_else(|| ProviderError::Config(format!("influxdb credentials does not contain {what}")))
            };
            token = Some(value("token", "an authentication token")?);
            let org = value("org", "an organisation")?;
            endpoint.query_pairs_mut().append_pair("org", &org);
        }
        Ok(InfluxdbProvider {
            client: http::client(settings.insecure_skip_verify)?,
            endpoint,
            token,
            timeout: settings.timeout_or(Duration::from_secs(15)),
        })
    }

    async fn flux(&self, query: &str) -> Result<String, QueryError> {
        let mut request = self.client.post(self.endpoint.clone()).json(&json!({
            "query": query,
            "type": "flux",
            "dialect": {"annotations": ["datatype", "group", "default"], "delimiter": ",", "header": true},
        }));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        let (status, body) = http::send(request, self.timeout).await?;
        if status >= 300 {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| http::quote(&body));
            return Err(QueryError::Status {
                status,
                body: format!("error accessing influxdb query api: {message}"),
            });
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// The first record's `_value` in an annotated CSV answer, with its `#datatype`.
fn first_value(csv: &str) -> Result<QueryValue, QueryError> {
    let mut datatypes: Vec<String> = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for line in csv.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            // A blank line ends a table; the next one starts with its own annotations.
            header = None;
            continue;
        }
        let cells: Vec<String> = line.split(',').map(str::to_owned).collect();
        if cells[0] == "#datatype" {
            datatypes = cells;
            continue;
        }
        if cells[0].starts_with('#') {
            continue;
        }
        let Some(columns) = &header else {
            header = Some(cells);
            continue;
        };
        let Some(at) = columns.iter().position(|c| c == "_value") else {
            return Err(QueryError::BadAnswer(format!(
                "invalid response: no _value column: {line}"
            )));
        };
        let raw = cells.get(at).map(String::as_str).unwrap_or_default();
        if raw.is_empty() {
            return Ok(QueryValue::NoData);
        }
        return match datatypes.get(at).map(String::as_str) {
            Some("double") => match raw {
                "NaN" => Ok(QueryValue::NaN),
                "+Inf" => Ok(QueryValue::Value(f64::INFINITY)),
                "-Inf" => Ok(QueryValue::Value(f64::NEG_INFINITY)),
                _ => raw
                    .parse()
                    .map(QueryValue::Value)
                    .map_err(|_| QueryError::BadAnswer(format!("invalid response: {line}"))),
            },
            // Flagger accepts only float64 values.
            other => Err(QueryError::WrongType(format!(
                "{} _value (InfluxDB needs a double: cast with float())",
                other.unwrap_or("untyped")
            ))),
        };
    }
    Ok(QueryValue::NoData)
}

#[async_trait]
impl MetricsProvider for InfluxdbProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        first_value(&self.flux(query).await?)
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        self.flux(r#"from(bucket: "default") |> range(start: -2h)"#)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_records_value_is_read_with_its_type() {
        let csv = "#datatype,string,long,dateTime:RFC3339,double\n#group,false,false,false,false\n#default,_result,,,\n,result,table,_time,_value\n,,0,2026-12-01T00:00:00Z,0.25\n,,0,2026-12-01T00:01:00Z,0.5\n\n";
        assert_eq!(first_value(csv), Ok(QueryValue::Value(0.25)));
        assert_eq!(first_value(""), Ok(QueryValue::NoData));
        let long = csv.replace(",double", ",long").replace("0.25", "3");
        assert!(matches!(first_value(&long), Err(QueryError::WrongType(_))));
    }
}
