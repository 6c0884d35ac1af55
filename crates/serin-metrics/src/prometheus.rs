//! The Prometheus backend: `GET {address}/api/v1/query` (a POST form for long queries), exact
//! about what it saw.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use serde_json::Value;

use crate::{MetricsProvider, QueryError, QueryValue, Series, template::collapse_whitespace};

/// How much of an error body is kept.
const BODY_LIMIT: usize = 1024;

/// Queries longer than this (bytes, whitespace collapsed) are sent as a POST form.
pub const POST_ABOVE: usize = 2048;

/// Credentials for Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// Basic auth.
    Basic {
        /// User.
        username: String,
        /// Password.
        password: String,
    },
}

impl Auth {
    /// Reads a MetricTemplate's Secret data: `token`, or `username` and `password`.
    pub fn from_secret(data: &BTreeMap<String, String>) -> Result<Auth, ProviderError> {
        if let Some(token) = data.get("token") {
            return Ok(Auth::Bearer(token.trim().to_owned()));
        }
        match (data.get("username"), data.get("password")) {
            (Some(u), Some(p)) => Ok(Auth::Basic {
                username: u.clone(),
                password: p.clone(),
            }),
            (None, _) => Err(ProviderError::Credentials("username")),
            (_, None) => Err(ProviderError::Credentials("password")),
        }
    }
}

/// Errors building a provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No process-wide rustls provider: the binary installs one at start.
    #[error(
        "no rustls crypto provider is installed: call serin_metrics::install_crypto_provider() (or install one) at the start of the program"
    )]
    NoCryptoProvider,
    /// The address is not a URL.
    #[error("prometheus address {0:?} is not a valid http(s) URL")]
    Address(String),
    /// A credential key is missing.
    #[error("prometheus credentials do not contain a {0}")]
    Credentials(&'static str),
    /// The CA is not PEM.
    #[error("invalid CA certificate: {0}")]
    Ca(#[source] reqwest::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A provider's settings are incomplete or invalid (Flagger's texts).
    #[error("{0}")]
    Config(String),
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Base URL; path prefixes are kept (`http://host/prometheus`).
    pub address: String,
    /// Per-query timeout (default 5 s).
    pub timeout: Duration,
    /// Credentials.
    pub auth: Auth,
    /// Extra headers, sent with every query.
    pub headers: Vec<(String, String)>,
    /// Skip TLS verification.
    pub insecure_skip_verify: bool,
    /// Extra trusted CA (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

impl PrometheusConfig {
    /// Settings for an address with defaults.
    pub fn new(address: &str) -> Self {
        PrometheusConfig {
            address: address.to_owned(),
            timeout: Duration::from_secs(5),
            auth: Auth::None,
            headers: Vec::new(),
            insecure_skip_verify: false,
            ca_pem: None,
        }
    }
}

/// Installs the process-wide rustls provider (ring) if none is installed yet. For binaries (and
/// tests), once at start: the libraries never install it themselves.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Queries one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusProvider {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    config: PrometheusConfig,
}

impl PrometheusProvider {
    /// A provider for these settings.
    pub fn new(config: PrometheusConfig) -> Result<Self, ProviderError> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(ProviderError::NoCryptoProvider);
        }
        let mut base = reqwest::Url::parse(config.address.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| ProviderError::Address(config.address.clone()))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let endpoint = base
            .join("api/v1/query")
            .map_err(|_| ProviderError::Address(config.address.clone()))?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(config.insecure_skip_verify);
        if let Some(pem) = &config.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(ProviderError::Ca)?;
            builder = builder.tls_certs_merge([cert]);
        }
        let client = builder.build().map_err(ProviderError::Client)?;
        Ok(PrometheusProvider {
            client,
            endpoint,
            config,
        })
    }

    /// The query endpoint.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }
}

#[async_trait]
impl MetricsProvider for PrometheusProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let (status, body) = self.fetch(query).await?;
        parse_response(status, &body)
    }

    async fn query_series(&self, query: &str) -> Result<Vec<Series>, QueryError> {
        let (status, body) = self.fetch(query).await?;
        parse_series(status, &body)
    }
}

impl PrometheusProvider {
    /// Sends one instant query; the status and body of the answer.
    async fn fetch(&self, query: &str) -> Result<(u16, Vec<u8>), QueryError> {
        let query = collapse_whitespace(query);
        // Prometheus takes the same query as a form; long ones go that way, past the URL limits
        // of proxies and servers on the way.
        let mut request = if query.len() > POST_ABOVE {
            let form: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("query", &query)
                .finish();
            self.client
                .post(self.endpoint.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form)
        } else {
            self.client
                .get(self.endpoint.clone())
                .query(&[("query", query.as_str())])
        }
        .timeout(self.config.timeout);
        for (k, v) in &self.config.headers {
            request = request.header(k, v);
        }
        request = match &self.config.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
        };
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                QueryError::Timeout(self.config.timeout)
            } else {
                QueryError::Transport(crate::providers::error_chain(&e))
            }
        })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| QueryError::Transport(crate::providers::error_chain(&e)))?;
        Ok((status, body.to_vec()))
    }
}

/// Every series of Prometheus' answer to an instant query, with its labels.
pub fn parse_series(status: u16, body: &[u8]) -> Result<Vec<Series>, QueryError> {
    let text = || String::from_utf8_lossy(&body[..body.len().min(BODY_LIMIT)]).into_owned();
    let data = answer_data(status, body)?;
    if data.get("resultType").and_then(Value::as_str) != Some("vector") {
        return Err(QueryError::WrongType(
            data.get("resultType")
                .and_then(Value::as_str)
                .unwrap_or("nothing")
                .to_owned(),
        ));
    }
    let result = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| QueryError::BadAnswer(text()))?;
    result
        .iter()
        .map(|s| {
            let labels = s
                .get("metric")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let value = match sample(s.get("value").ok_or_else(|| QueryError::BadAnswer(text()))?)? {
                QueryValue::Value(v) => v,
                _ => f64::NAN,
            };
            Ok(Series { labels, value })
        })
        .collect()
}

/// The `data` of a successful answer, or the error it reports.
fn answer_data(status: u16, body: &[u8]) -> Result<Value, QueryError> {
    let text = || String::from_utf8_lossy(&body[..body.len().min(BODY_LIMIT)]).into_owned();
    if status >= 400 {
        let message = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(text);
        return Err(QueryError::Status { status, body: message });
    }
    let mut v: Value = serde_json::from_slice(body).map_err(|e| QueryError::BadAnswer(format!("{e}: {}", text())))?;
    if v.get("status").and_then(Value::as_str) != Some("success") {
        return Err(QueryError::BadAnswer(text()));
    }
    v.get_mut("data")
        .map(Value::take)
        .ok_or_else(|| QueryError::BadAnswer(text()))
}

/// Interprets Prometheus' answer to an instant query.
pub fn parse_response(status: u16, body: &[u8]) -> Result<QueryValue, QueryError> {
    let text = || String::from_utf8_lossy(&body[..body.len().min(BODY_LIMIT)]).into_owned();
    let data = answer_data(status, body)?;
    let result = data.get("result").ok_or_else(|| QueryError::BadAnswer(text()))?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => {
            let series = result.as_array().ok_or_else(|| QueryError::BadAnswer(text()))?;
            let Some(last) = series.last() else {
                return Ok(QueryValue::NoData);
            };
            // Flagger uses the last series' value; so does Serin, and says so.
            let value = sample(last.get("value").ok_or_else(|| QueryError::BadAnswer(text()))?)?;
            match (value, series.len()) {
                (QueryValue::Value(v), n) if n > 1 => Ok(QueryValue::LastOf(v, n)),
                (value, _) => Ok(value),
            }
        }
        Some("scalar") => sample(result),
        Some(other) => Err(QueryError::WrongType(other.to_owned())),
        None => Err(QueryError::BadAnswer(text())),
    }
}

/// `[timestamp, "value"]`.
fn sample(pair: &Value) -> Result<QueryValue, QueryError> {
    let raw = pair
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| QueryError::BadAnswer(pair.to_string()))?;
    match raw {
        "NaN" => Ok(QueryValue::NaN),
        "+Inf" | "Inf" => Ok(QueryValue::Value(f64::INFINITY)),
        "-Inf" => Ok(QueryValue::Value(f64::NEG_INFINITY)),
        _ => raw
            .parse::<f64>()
            .map(QueryValue::Value)
            .map_err(|_| QueryError::BadAnswer(format!("value {raw:?} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(values: &[&str]) -> Vec<u8> {
        let result: Vec<Value> = values
            .iter()
            .map(|v| serde_json::json!({"metric": {}, "value": [1.0, v]}))
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}}),
        )
        .expect("json")
    }

    #[test]
    fn parses_vectors_scalars_and_special_values() {
        assert_eq!(parse_response(200, &vector(&["95.5"])), Ok(QueryValue::Value(95.5)));
        assert_eq!(parse_response(200, &vector(&[])), Ok(QueryValue::NoData));
        assert_eq!(parse_response(200, &vector(&["NaN"])), Ok(QueryValue::NaN));
        assert_eq!(
            parse_response(200, &vector(&["+Inf"])),
            Ok(QueryValue::Value(f64::INFINITY))
        );
        assert_eq!(
            parse_response(200, &vector(&["1", "2"])),
            Ok(QueryValue::LastOf(2.0, 2))
        );
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"1"]}}"#;
        assert_eq!(parse_response(200, scalar), Ok(QueryValue::Value(1.0)));
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(parse_response(200, matrix), Err(QueryError::WrongType("matrix".into())));
    }

    #[test]
    fn error_bodies_keep_prometheus_message() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#;
        assert_eq!(
            parse_response(400, body),
            Err(QueryError::Status {
                status: 400,
                body: "1:5: parse error: unexpected".into()
            })
        );
        assert!(matches!(parse_response(200, b"<html>"), Err(QueryError::BadAnswer(m)) if m.contains("<html>")));
        assert!(
            matches!(parse_response(502, b"bad gateway"), Err(QueryError::Status { status: 502, body }) if body == "bad gateway")
        );
    }

    #[test]
    fn secrets_give_bearer_or_basic_auth() {
        let token = BTreeMap::from([("token".to_owned(), "abc\n".to_owned())]);
        assert_eq!(Auth::from_secret(&token).expect("token"), Auth::Bearer("abc".into()));
        let basic = BTreeMap::from([
            ("username".to_owned(), "u".to_owned()),
            ("password".to_owned(), "p".to_owned()),
        ]);
        assert!(matches!(Auth::from_secret(&basic), Ok(Auth::Basic { .. })));
        let half = BTreeMap::from([("username".to_owned(), "u".to_owned())]);
        assert_eq!(
            Auth::from_secret(&half).expect_err("incomplete").to_string(),
            "prometheus credentials do not contain a password"
        );
    }

    #[test]
    fn addresses_must_be_urls_and_keep_their_path_prefix() {
        install_crypto_provider();
        assert!(PrometheusProvider::new(PrometheusConfig::new("not a url")).is_err());
        let p = PrometheusProvider::new(PrometheusConfig::new("http://prom:9090/prefix")).expect("valid");
        assert_eq!(p.endpoint(), "http://prom:9090/prefix/api/v1/query");
    }
}
