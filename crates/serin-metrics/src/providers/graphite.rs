//! Graphite: the render API, `GET {address}/render?{query}&format=json` (the template's query is
//! a query string: `target=…&from=-5min&until=now`), basic auth from the Secret's `username`
//! and `password` when a Secret is named; the last non-null point across every target, as
//! Flagger reads it. Availability: `target=test` answers (with or without values).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{ProviderSettings, http};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue, template::collapse_whitespace};

/// Queries Graphite.
#[derive(Debug, Clone)]
pub struct GraphiteProvider {
    client: reqwest::Client,
    render: reqwest::Url,
    credentials: Option<(String, String)>,
    timeout: Duration,
}

impl GraphiteProvider {
    /// Needs `address`; `username` and `password` when a Secret is named.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let address = settings.address.clone().unwrap_or_default();
        let mut render = http::base_url(&address, "graphite")?;
        let path = format!("{}/render", render.path().trim_end_matches('/'));
        render.set_path(&path);
        let credentials = match &settings.secret {
            None => None,
            Some(_) => {
                let key = |k: &str, what: &str| {
                    settings
                        .secret_value(k)
                        .map(str::to_owned)
                        .ok_or_else(|| ProviderError::Config(format!("graphite credentials does not contain a {what}")))
                };
                Some((key("username", "username")?, key("password", "password")?))
            }
        };
        Ok(GraphiteProvider {
            client: http::client(settings.insecure_skip_verify)?,
            render,
            credentials,
            timeout: settings.timeout_or(Duration::from_secs(5)),
        })
    }

    /// The render URL of a query: its parameters (whitespace collapsed as Flagger does, and
    /// trimmed around each one) plus `format=json`, sorted by name as Go's `url.Values.Encode`
    /// sorts them.
    pub fn url(&self, query: &str) -> reqwest::Url {
        let query = collapse_whitespace(query);
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.trim().trim_start_matches('?').as_bytes())
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .filter(|(k, _)| k != "format")
            .collect();
        pairs.push(("format".into(), "json".into()));
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut url = self.render.clone();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url
    }
}

/// A point's value: a number, a numeric string, or null.
fn point_value(point: &Value) -> Result<Option<f64>, QueryError> {
    match point.get(0) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| QueryError::BadAnswer(format!("error unmarshaling value: {s:?}"))),
        Some(other) => Err(QueryError::BadAnswer(format!("error unmarshaling value: {other}"))),
    }
}

#[async_trait]
impl MetricsProvider for GraphiteProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let mut request = self.client.get(self.url(query));
        if let Some((user, password)) = &self.credentials
            && !user.is_empty()
            && !password.is_empty()
        {
            request = request.basic_auth(user, Some(password));
        }
        let (status, body) = http::send(request, self.timeout).await?;
        if status >= 400 {
            return Err(QueryError::Status {
                status,
                body: http::quote(&body),
            });
        }
        let targets: Vec<Value> = serde_json::from_slice(&body)
            .map_err(|e| QueryError::BadAnswer(format!("error unmarshaling result: {e}, '{}'", http::quote(&body))))?;
        let mut last = None;
        for target in &targets {
            for point in target.get("datapoints").and_then(Value::as_array).into_iter().flatten() {
                if let Some(v) = point_value(point)? {
                    last = Some(v);
                }
            }
        }
        Ok(match last {
            Some(v) if v.is_nan() => QueryValue::NaN,
            Some(v) => QueryValue::Value(v),
            None => QueryValue::NoData,
        })
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        self.query("target=test").await.map(|_| ())
    }
}
