//! Metrics for Serin: the [`MetricsProvider`] trait, a Prometheus backend, Knative's built-in
//! queries, and query templating.
//!
//! This crate runs queries and reports exactly what it saw (a value, no data, NaN, or a typed
//! error); it does not judge values against thresholds (the engine does, in
//! `serin_core::judge`) and does not read Kubernetes objects (the caller passes credentials).
//!
//! # Layout
//! - [`MetricsProvider`] (mock behind the `mock` feature), [`QueryValue`], [`QueryError`],
//!   [`query_all`] (one analysis step's queries, concurrently).
//! - [`PrometheusProvider`]: `GET /api/v1/query`, auth, headers, TLS options, timeouts.
//! - [`providers`]: every other MetricTemplate provider type, one module each, built from one
//!   [`providers::ProviderSettings`] by [`providers::build_provider`].
//! - [`builtin_query`] and [`QuerySet`]: `request-success-rate` and `request-duration`.
//! - [`read_counters`]: the sequential judge's raw counters of both revisions and the primary's
//!   calibration histogram (labelled series through [`MetricsProvider::query_series`]).
//! - [`render`]: Go `text/template` rendering with Flagger's functions; [`metric_query`]: one
//!   metric's query, built the same way for the controller and the CLI.

mod builtin;
mod counters;
mod prometheus;
mod provider;
pub mod providers;
mod query;
mod template;

pub use builtin::{QuerySet, builtin_query, label_probes};
pub use counters::{CounterScope, counter_queries, read_counters};
pub use prometheus::{
    Auth, POST_ABOVE, PrometheusConfig, PrometheusProvider, ProviderError, install_crypto_provider, parse_response,
    parse_series,
};
#[cfg(feature = "mock")]
pub use provider::MockMetricsProvider;
pub use provider::{MetricsProvider, QueryError, QueryValue, Series, outcome, query_all};
pub use query::{QuerySource, Revisions, metric_query};
pub use template::{QueryContext, TemplateError, collapse_whitespace, promql_duration, render};
