//! Kubernetes external metrics: the query `NAMESPACE/METRIC?labelSelector=…` (namespace
//! `default` when omitted) lists
//! `/apis/external.metrics.k8s.io/v1beta1/namespaces/NAMESPACE/METRIC`; the first item's
//! value (a quantity). The API server is `address` (with the Secret's `token`) or the
//! controller's own. Availability: listing `kube-system/dummy-metric` answers, as in Flagger.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;

use super::{
    ProviderSettings,
    kube::{KubeAccess, KubeClient, quantity},
};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

/// Reads the external metrics API.
#[derive(Debug, Clone)]
pub struct ExternalMetricsProvider {
    kube: KubeClient,
}

/// `NAMESPACE/METRIC?labelSelector=…` split as Flagger splits it.
fn parse(query: &str) -> Result<(String, String, Option<String>), QueryError> {
    let query = query.trim();
    let (path, params) = query.split_once('?').unwrap_or((query, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let expected = "expected <namespace>/<metricName>?labelSelector=<urlencoded label selectors>";
    let (namespace, metric) = match parts.as_slice() {
        [metric] => ("default", *metric),
        [namespace, metric] => (if namespace.is_empty() { "default" } else { namespace }, *metric),
        _ => {
            return Err(QueryError::BadAnswer(format!(
                "error parsing metric query: malformed query string, too many slashes, {expected}, got {query}"
            )));
        }
    };
    if metric.is_empty() {
        return Err(QueryError::BadAnswer(
            "error parsing metric query: metric name cannot be empty".into(),
        ));
    }
    let selector = form_urlencoded::parse(params.as_bytes())
        .find(|(k, _)| k == "labelSelector")
        .map(|(_, v)| v.into_owned())
        .filter(|s| !s.is_empty());
    Ok((namespace.to_owned(), metric.to_owned(), selector))
}

impl ExternalMetricsProvider {
    /// `address` and the Secret's `token` override the controller's API access.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let mut access = settings
            .kube
            .clone()
            .or_else(KubeAccess::in_cluster)
            .unwrap_or_default();
        if let Some(address) = settings.address.as_ref().filter(|a| !a.is_empty()) {
            access.url = address.clone();
        }
        if let Some(token) = settings.secret_value("token") {
            access.token = Some(token.trim().to_owned());
        }
        if access.url.is_empty() {
            return Err(ProviderError::Config(
                "could not initialize ExternalMetricsProvider: no Kubernetes API (not in a cluster, and no address)"
                    .into(),
            ));
        }
        let timeout = settings.timeout_or(Duration::from_secs(5));
        Ok(ExternalMetricsProvider {
            kube: KubeClient::new(&access, settings.insecure_skip_verify, timeout)?,
        })
    }

    async fn list(&self, namespace: &str, metric: &str, selector: Option<&str>) -> Result<Value, QueryError> {
        let path = format!("/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}");
        let query: Vec<(&str, &str)> = selector.map(|s| ("labelSelector", s)).into_iter().collect();
        self.kube.call(Method::GET, &path, &query, None).await
    }
}

#[async_trait]
impl MetricsProvider for ExternalMetricsProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        let (namespace, metric, selector) = parse(query)?;
        let list = self.list(&namespace, &metric, selector.as_deref()).await?;
        let Some(first) = list.pointer("/items/0/value") else {
            return Ok(QueryValue::NoData);
        };
        let text = first.as_str().map_or_else(|| first.to_string(), str::to_owned);
        quantity(&text)
            .map(QueryValue::Value)
            .ok_or_else(|| QueryError::BadAnswer(format!("external metric value {text:?} is not a quantity")))
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        self.list("kube-system", "dummy-metric", None).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn queries_split_as_in_flagger() {
        assert_eq!(
            parse("test/http_requests?labelSelector=app%3Dpodinfo").ok(),
            Some(("test".into(), "http_requests".into(), Some("app=podinfo".into())))
        );
        assert_eq!(
            parse("requests").ok(),
            Some(("default".into(), "requests".into(), None))
        );
        assert!(parse("a/b/c").is_err());
        assert!(parse("test/").is_err());
    }
}
