//! Keptn: `keptnmetric/NAMESPACE/NAME` reads a `KeptnMetric`'s `status.value`;
//! `analysis/NAMESPACE/DEFINITION[/TIMEFRAME[/k=v;k=v]]` creates an `Analysis` of that
//! definition over the timeframe (default `1m`), waits for it to complete (polling every
//! second, at most 10 s) and answers 1 when it passed, 0 when not; the Analysis is deleted
//! afterwards. The query is lower-cased first, as in Flagger. Always available, as in Flagger.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{
    ProviderSettings,
    kube::{KubeAccess, KubeClient},
};
use crate::{MetricsProvider, ProviderError, QueryError, QueryValue};

const API: &str = "/apis/metrics.keptn.sh/v1beta1";

/// Reads Keptn metrics and runs Keptn analyses.
#[derive(Debug, Clone)]
pub struct KeptnProvider {
    kube: KubeClient,
    analysis_timeout: Duration,
    poll: Duration,
}

enum Query {
    Metric {
        namespace: String,
        name: String,
    },
    Analysis {
        namespace: String,
        definition: String,
        timeframe: String,
        args: Map<String, Value>,
    },
}

fn parse(query: &str) -> Result<Query, QueryError> {
    let lowered = query.trim().to_lowercase();
    let parts: Vec<&str> = lowered.split('/').collect();
    if parts.len() < 3 {
        return Err(QueryError::BadAnswer(
            "unexpected query format. query must be in the format <keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>".into(),
        ));
    }
    let (namespace, name) = (parts[1].to_owned(), parts[2].to_owned());
    match parts[0] {
        "keptnmetric" | "keptnmetrics" => Ok(Query::Metric { namespace, name }),
        "analysis" | "analyses" => Ok(Query::Analysis {
            namespace,
            definition: name,
            timeframe: parts.get(3).map_or("1m", |t| *t).to_owned(),
            args: parts
                .get(4)
                .into_iter()
                .flat_map(|a| a.split(';'))
                .filter_map(|kv| match kv.split('=').collect::<Vec<_>>().as_slice() {
                    [k, v] => Some(((*k).to_owned(), Value::String((*v).to_owned()))),
                    _ => None,
                })
                .collect(),
        }),
        _ => Err(QueryError::BadAnswer(
            "unexpected resource kind provided in the query. must be one of: ['keptnmetric', 'analysis']".into(),
        )),
    }
}

impl KeptnProvider {
    /// Uses the controller's Kubernetes API access.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let access = settings.kube.clone().or_else(KubeAccess::in_cluster).ok_or_else(|| {
            ProviderError::Config("could not initialize KeptnProvider: no KubeConfig provided".into())
        })?;
        Ok(KeptnProvider {
            kube: KubeClient::new(&access, false, settings.timeout_or(Duration::from_secs(5)))?,
            analysis_timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        })
    }

    /// Shorter waits, for tests.
    pub fn with_waits(mut self, analysis_timeout: Duration, poll: Duration) -> Self {
        self.analysis_timeout = analysis_timeout;
        self.poll = poll;
        self
    }

    async fn metric(&self, namespace: &str, name: &str) -> Result<QueryValue, QueryError> {
        let path = format!("{API}/namespaces/{namespace}/keptnmetrics/{name}");
        let object =
            self.kube.call(Method::GET, &path, &[], None).await.map_err(|e| {
                QueryError::Transport(format!("could not retrieve KeptnMetric {namespace}/{name}: {e}"))
            })?;
        let Some(value) = object.pointer("/status/value").and_then(Value::as_str) else {
            return Ok(QueryValue::NoData);
        };
        value.trim().parse().map(QueryValue::Value).map_err(|_| {
            QueryError::BadAnswer(format!(
                "could not parse value of KeptnMetric {namespace}/{name} to float: {value:?}"
            ))
        })
    }

    async fn analysis(
        &self,
        namespace: &str,
        definition: &str,
        timeframe: &str,
        args: &Map<String, Value>,
    ) -> Result<QueryValue, QueryError> {
        let collection = format!("{API}/namespaces/{namespace}/analyses");
        let body = json!({
            "apiVersion": "metrics.keptn.sh/v1beta1",
            "kind": "Analysis",
            "metadata": {"generateName": format!("{definition}-"), "namespace": namespace},
            "spec": {
                "analysisDefinition": {"name": definition},
                "timeframe": {"recent": timeframe},
                "args": args,
            },
        });
        let created = self
            .kube
            .call(Method::POST, &collection, &[], Some(&body))
            .await
            .map_err(|e| {
                QueryError::Transport(format!("could not create Keptn Analysis {namespace}/{definition}: {e}"))
            })?;
        let name = created
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let path = format!("{collection}/{name}");
        let wait = async {
            loop {
                tokio::time::sleep(self.poll).await;
                let object = self.kube.call(Method::GET, &path, &[], None).await.map_err(|e| {
                    QueryError::Transport(format!(
                        "could not check status of created Keptn Analysis {namespace}/{definition}: {e}"
                    ))
                })?;
                if object.pointer("/status/state").and_then(Value::as_str) == Some("Completed")
                    && let Some(passed) = object.pointer("/status/pass").and_then(Value::as_bool)
                {
                    return Ok(QueryValue::Value(if passed { 1.0 } else { 0.0 }));
                }
            }
        };
        let result = tokio::time::timeout(self.analysis_timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(QueryError::Transport(format!(
                    "encountered timeout while waiting for Keptn Analysis {namespace}/{definition} to be finished"
                )))
            });
        if let Err(e) = self.kube.call(Method::DELETE, &path, &[], None).await {
            tracing::warn!(analysis = %name, error = %e, "could not delete Keptn Analysis");
        }
        result
    }
}

#[async_trait]
impl MetricsProvider for KeptnProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        match parse(query)? {
            Query::Metric { namespace, name } => self.metric(&namespace, &name).await,
            Query::Analysis {
                namespace,
                definition,
                timeframe,
                args,
            } => self.analysis(&namespace, &definition, &timeframe, &args).await,
        }
    }

    async fn is_online(&self) -> Result<(), QueryError> {
        Ok(())
    }
}
