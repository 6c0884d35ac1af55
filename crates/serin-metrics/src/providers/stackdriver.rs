//! Google Cloud Monitoring (Stackdriver): the MQL query through
//! `POST {address}/v3/projects/{project}/timeSeries:query` (`address` defaults to
//! `https://monitoring.googleapis.com`); the first value of the first point of the first time
//! series, as Flagger reads it. The Secret gives `project` and, optionally, `serviceAccountKey`
//! (a JSON key: its JWT is signed here and exchanged at the key's `token_uri`); without a key,
//! the token comes from the metadata server (workload identity; `GCE_METADATA_HOST` overrides
//! it). Availability: an empty query must be refused with 400, as Flagger checks it.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ProviderSettings, http};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

const SCOPE: &str = "https://www.googleapis.com/auth/monitoring.read";

/// A service-account key file's fields that matter here.
#[derive(Clone, Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

/// Queries Cloud Monitoring.
pub struct StackdriverProvider {
    client: reqwest::Client,
    endpoint: String,
    key: Option<(ServiceAccountKey, ring::signature::RsaKeyPair)>,
    metadata_host: String,
    timeout: Duration,
    /// An access token and when it expires.
    token: Mutex<Option<(String, SystemTime)>>,
}

impl std::fmt::Debug for StackdriverProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackdriverProvider")
            .field("endpoint", &self.endpoint)
            .field("key", &self.key.as_ref().map(|(k, _)| &k.client_email))
            .finish_non_exhaustive()
    }
}

fn config(message: impl Into<String>) -> ProviderError {
    ProviderError::Config(message.into())
}

/// The DER of a PEM `PRIVATE KEY` block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
}

impl StackdriverProvider {
    /// Needs the Secret's `project`; `serviceAccountKey` is optional.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let project = settings
            .secret_value("project")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| config("stackdriver credentials does not contain a project id"))?;
        let key = match settings.secret_value("serviceAccountKey") {
            None => None,
            Some(json) => {
                let key: ServiceAccountKey = serde_json::from_str(json).map_err(|e| {
                    config(format!(
                        "stackdriver serviceAccountKey is not a service-account key: {e}"
                    ))
                })?;
                let der = pem_der(&key.private_key)
                    .ok_or_else(|| config("stackdriver serviceAccountKey: private_key is not PEM"))?;
                let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
                    .map_err(|e| config(format!("stackdriver serviceAccountKey: private_key: {e}")))?;
                Some((key, pair))
            }
        };
        let address = settings
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "https://monitoring.googleapis.com".into());
        http::base_url(&address, "stackdriver")?;
        Ok(StackdriverProvider {
            client: http::client(settings.insecure_skip_verify)?,
            endpoint: format!(
                "{}/v3/projects/{project}/timeSeries:query",
                address.trim_end_matches('/')
            ),
            key,
            metadata_host: std::env::var("GCE_METADATA_HOST").unwrap_or_else(|_| "metadata.google.internal".into()),
            timeout: settings.timeout_or(Duration::from_secs(5)),
            token: Mutex::new(None),
        })
    }

    /// A signed JWT assertion for the key's token endpoint.
    fn assertion(&self, key: &ServiceAccountKey, pair: &ring::signature::RsaKeyPair) -> Result<String, QueryError> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = http::now_unix().as_secs();
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let claims = json!({
            "iss": key.client_email, "scope": SCOPE, "aud": key.token_uri,
            "iat": now, "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| QueryError::Transport("cannot sign the service-account assertion".into()))?;
        Ok(format!("{signing_input}.{}", b64(&signature)))
    }

    async fn access_token(&self) -> Result<String, QueryError> {
        let soon = SystemTime::now() + Duration::from_secs(60);
        if let Some((token, expires)) = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            && expires > soon
        {
            return Ok(token);
        }
        let request = match &self.key {
            Some((key, pair)) => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", &self.assertion(key, pair)?)
                    .finish();
                self.client
                    .post(&key.token_uri)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form)
            }
            None => self
                .client
                .get(format!(
                    "http://{}/computeMetadata/v1/instance/service-accounts/default/token",
                    self.metadata_host
                ))
                .query(&[("scopes", SCOPE)])
                .header("Metadata-Flavor", "Google"),
        };
        let (status, body) = http::send(request, self.timeout).await?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let token = answer.get("access_token").and_then(Value::as_str);
        match (status, token) {
            (200, Some(token)) => {
                let lifetime = answer.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
                let expires = SystemTime::now() + Duration::from_secs(lifetime);
                *self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((token.to_owned(), expires));
                Ok(token.to_owned())
            }
            _ => Err(QueryError::Status {
                status,
                body: format!("cannot get a Google access token: {}", http::quote(&body)),
            }),
        }
    }

    async fn run(&self, query: &str) -> Result<(u16, Vec<u8>), QueryError> {
        let token = self.access_token().await?;
        let request = self
            .client
            .post(&self.endpoint)
            .bearer_auth(token)
            .json(&json!({"query": query}));
        http::send(request, self.timeout).await
    }
}

#[async_trait]
impl MetricsProvider for StackdriverProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let (status, body) = self.run(query).await?;
        if status != 200 {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| http::quote(&body));
            return Err(QueryError::Status {
                status,
                body: format!("error requesting stackdriver: {message}"),
            });
        }
        let answer: Value =
            serde_json::from_slice(&body).map_err(|e| QueryError::BadAnswer(format!("{e}: {}", http::quote(&body))))?;
        let value = answer.pointer("/timeSeriesData/0/pointData/0/values/0");
        Ok(match value {
            Some(v) => match (v.get("doubleValue"), v.get("int64Value")) {
                (Some(d), _) => d.as_f64().map_or(QueryValue::NoData, QueryValue::Value),
                // int64 values arrive as JSON strings.
                (None, Some(i)) => i
                    .as_str()
                    .and_then(|s| s.parse::<f64>().ok())
                    .or_else(|| i.as_f64())
                    .map_or(QueryValue::NoData, QueryValue::Value),
                _ => QueryValue::NoData,
            },
            None => QueryValue::NoData,
        })
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        match self.run("").await? {
            (200 | 400, _) => Ok(()),
            (status, body) => Err(QueryError::Status {
                status,
                body: format!("unexpected status code: {}", http::quote(&body)),
            }),
        }
    }
}
