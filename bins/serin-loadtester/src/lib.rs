//! The Serin loadtester: Flagger's loadtester HTTP API (tasks, gates, rollback gates), with a
//! native hey-compatible load generator and safe defaults.
//!
//! It runs load and answers gates; it does not decide anything about a rollout. It runs no
//! shell unless started with `--allow-shell`.
//!
//! # Layout
//! - [`hey`], [`wrk`]: command-line parsing into a [`hey::LoadSpec`].
//! - [`generator`]: the worker pool that sends the load and summarises it, over
//!   [`connector`] (TCP, TLS, proxies).
//! - [`report`]: the summary printed as hey or wrk print theirs.
//! - [`tasks`]: the task endpoint: every Flagger task type, de-duplication, limits; programs run
//!   through [`process`] (process groups, timeouts), services through [`concord`] and
//!   [`ngrinder`]; [`load_task`] is Serin's typed `load` task.
//! - [`gates`]: gate state persisted to a file.
//! - [`server`]: the axum router and auth.
//! - [`metrics`]: Prometheus metrics.

pub mod concord;
pub mod connector;
pub mod flagger_flags;
pub mod gates;
pub mod generator;
pub mod hey;
pub mod load_task;
pub mod metrics;
pub mod ngrinder;
pub mod process;
pub mod report;
pub mod server;
pub mod tasks;
mod worker;
pub mod wrk;
