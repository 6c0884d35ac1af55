//! Access to the Kubernetes API for the providers that read it (`externalmetrics`, `keptn`):
//! plain HTTPS with the pod's service-account token and CA, or what the caller passes (the
//! controller's own `--kube-server`, a template's `address` and `token`).

use std::time::Duration;

use super::http;
use crate::{ProviderError, QueryError};

const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Where the Kubernetes API is and how to authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KubeAccess {
    /// Base URL of the API server.
    pub url: String,
    /// Bearer token.
    pub token: Option<String>,
    /// CA bundle (PEM) to trust besides the system's.
    pub ca_pem: Option<Vec<u8>>,
}

impl KubeAccess {
    /// The in-cluster API server (`KUBERNETES_SERVICE_HOST`/`PORT`, the service account's
    /// token and CA), if this runs in a pod.
    pub fn in_cluster() -> Option<KubeAccess> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        Some(KubeAccess {
            url: format!("https://{host}:{port}"),
            token: std::fs::read_to_string(format!("{SERVICE_ACCOUNT}/token"))
                .ok()
                .map(|t| t.trim().to_owned()),
            ca_pem: std::fs::read(format!("{SERVICE_ACCOUNT}/ca.crt")).ok(),
        })
    }
}

/// A client for one API server.
#[derive(Debug, Clone)]
pub(crate) struct KubeClient {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    pub(crate) timeout: Duration,
}

impl KubeClient {
    pub(crate) fn new(access: &KubeAccess, insecure: bool, timeout: Duration) -> Result<Self, ProviderError> {
        http::base_url(&access.url, "kubernetes")?;
        let client = match &access.ca_pem {
            Some(pem) => http::client_with_ca(insecure, pem)?,
            None => http::client(insecure)?,
        };
        Ok(KubeClient {
            client,
            base: access.url.trim_end_matches('/').to_owned(),
            token: access.token.clone(),
            timeout,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends and decodes a JSON answer; an error status is a [`QueryError::Status`] carrying
    /// the API's `message`.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, QueryError> {
        let mut request = self.request(method, path).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = http::send(request, self.timeout).await?;
        let value: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        if status >= 300 {
            let message = value
                .as_ref()
                .and_then(|v| v.get("message"))
                .and_then(|m| m.as_str())
                .map_or_else(|| http::quote(&bytes), str::to_owned);
            return Err(QueryError::Status { status, body: message });
        }
        value.ok_or_else(|| QueryError::BadAnswer(http::quote(&bytes)))
    }
}

/// A Kubernetes quantity (`"1500m"`, `"2k"`, `"1Gi"`, `"1e3"`) as a number.
pub(crate) fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::quantity;

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(quantity("100"), Some(100.0));
        assert_eq!(quantity("1500m"), Some(1.5));
        assert_eq!(quantity("2k"), Some(2000.0));
        assert_eq!(quantity("1Ki"), Some(1024.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("12x"), None);
    }
}
