//! What the HTTP providers share: one client per provider (the process's rustls provider,
//! `insecureSkipVerify`), a send that maps failures to [`QueryError`], and Unix time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{ProviderError, QueryError};

/// How much of an answer is quoted in an error.
pub(crate) const QUOTE_LIMIT: usize = 1024;

/// An HTTP client for a provider.
pub(crate) fn client(insecure_skip_verify: bool) -> Result<reqwest::Client, ProviderError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(ProviderError::NoCryptoProvider);
    }
    reqwest::Client::builder()
        .user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")))
        .tls_danger_accept_invalid_certs(insecure_skip_verify)
        .build()
        .map_err(ProviderError::Client)
}

/// An HTTP client that also trusts the CA bundle `pem`.
pub(crate) fn client_with_ca(insecure_skip_verify: bool, pem: &[u8]) -> Result<reqwest::Client, ProviderError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(ProviderError::NoCryptoProvider);
    }
    let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(ProviderError::Ca)?;
    reqwest::Client::builder()
        .user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")))
        .tls_danger_accept_invalid_certs(insecure_skip_verify)
        .tls_certs_merge(certificates)
        .build()
        .map_err(ProviderError::Client)
}

/// A base URL (`address`), checked; `what` names it in the error.
pub(crate) fn base_url(address: &str, what: &str) -> Result<reqwest::Url, ProviderError> {
    reqwest::Url::parse(address.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| ProviderError::Config(format!("{what} address {address} is not a valid URL")))
}

/// Sends a request; the status and the body, or the failure (a timeout named as such).
pub(crate) async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<(u16, Vec<u8>), QueryError> {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            QueryError::Timeout(timeout)
        } else {
            QueryError::Transport(chain(&e))
        }
    };
    let response = request.timeout(timeout).send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(failed)?;
    Ok((status, body.to_vec()))
}

/// Sends a request that must be answered 200; the body, or the status with the body's start.
pub(crate) async fn send_ok(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Vec<u8>, QueryError> {
    let (status, body) = send(request, timeout).await?;
    if status == 200 {
        Ok(body)
    } else {
        Err(QueryError::Status {
            status,
            body: quote(&body),
        })
    }
}

/// A JSON answer decoded, with Flagger's text when it is not what was expected.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, QueryError> {
    serde_json::from_slice(body)
        .map_err(|e| QueryError::BadAnswer(format!("error unmarshaling result: {e}, '{}'", quote(body))))
}

/// The start of a body, for error texts.
pub(crate) fn quote(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(QUOTE_LIMIT)]).into_owned()
}

/// An error and its sources, `: `-separated.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}
