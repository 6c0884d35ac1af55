//! The Serin loadtester: Flagger's loadtester HTTP API (tasks, gates, rollback gates), with a
//! native hey-compatible load generator and safe defaults.
//!
//! It runs load and answers gates; it does not decide anything about a rollout. It runs no
//! shell unless started with `--allow-shell`.
//!
//! # Layout
//! - [`hey`]: `hey` command-line parsing into a [`hey::LoadSpec`].
//! - [`generator`]: the worker pool that sends the load and summarises it.
//! - [`tasks`]: the task endpoint: `cmd`, `load`, `bash`, de-duplication, limits.
//! - [`gates`]: gate state persisted to a file.
//! - [`server`]: the axum router and auth.
//! - [`metrics`]: Prometheus metrics.

pub mod flagger_flags;
pub mod gates;
pub mod generator;
pub mod hey;
pub mod metrics;
pub mod server;
pub mod tasks;
