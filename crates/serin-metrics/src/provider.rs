//! The `MetricsProvider` trait and what a query can return.

use async_trait::async_trait;
use serin_core::MetricOutcome;

/// A successful query answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueryValue {
    /// One value (`+Inf`/`-Inf` included).
    Value(f64),
    /// Several series: the last one's value (Flagger's rule), and how many there were.
    LastOf(f64, usize),
    /// No series.
    NoData,
    /// The value is NaN (typically 0/0: no requests in the window).
    NaN,
}

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The request did not get an answer.
    #[error("request failed: {0}")]
    Transport(String),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// An HTTP error status.
    #[error("error response: status {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer is not Prometheus' JSON.
    #[error("cannot parse the answer: {0}")]
    BadAnswer(String),
    /// A range vector or string where a number is needed.
    #[error("query returned a {0}, not an instant vector or scalar")]
    WrongType(String),
    /// The query could not be rendered.
    #[error("{0}")]
    Template(#[from] crate::TemplateError),
    /// This provider cannot do what was asked (e.g. return labelled series).
    #[error("{0}")]
    Unsupported(String),
}

/// One series of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its labels (`__name__` included when the query kept it).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Runs instant queries.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MetricsProvider: Send + Sync {
    /// Runs one instant query.
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError>;

    /// Runs one instant query and returns every series with its labels (the sequential judge
    /// reads raw counters this way). Only Prometheus-compatible providers can.
    async fn query_series(&self, query: &str) -> Result<Vec<Series>, QueryError> {
        let _ = query;
        Err(QueryError::Unsupported(
            "this metrics provider cannot return labelled series; the sequential judge needs Prometheus".into(),
        ))
    }

    /// Checks the provider answers (`vector(1)` must return 1).
    async fn is_online(&self) -> Result<(), QueryError> {
        match self.query("vector(1)").await? {
            QueryValue::Value(1.0) => Ok(()),
            other => Err(QueryError::BadAnswer(format!("vector(1) returned {other:?}"))),
        }
    }
}

/// The engine's view of a query result.
pub fn outcome(result: Result<QueryValue, QueryError>) -> MetricOutcome {
    match result {
        Ok(QueryValue::Value(v)) => MetricOutcome::Value(v),
        Ok(QueryValue::LastOf(value, series)) => MetricOutcome::LastOf { value, series },
        Ok(QueryValue::NoData) => MetricOutcome::NoData,
        Ok(QueryValue::NaN) => MetricOutcome::NaN,
        Err(e) => MetricOutcome::Error(e.to_string()),
    }
}

/// Runs the queries of one analysis step concurrently; results in input order.
pub async fn query_all(provider: &dyn MetricsProvider, queries: &[String]) -> Vec<MetricOutcome> {
    futures::future::join_all(queries.iter().map(|q| async move { outcome(provider.query(q).await) })).await
}
