//! Alerts for Serin: Flagger's `AlertProvider` types (`slack`, `msteams`, `discord`, `rocket`,
//! `gchat`) with their payload formats, and a delivery queue that sends them off the reconcile
//! path, with retries, a rate limit per provider and a bounded backlog.
//!
//! It formats and delivers; it does not decide which alerts a rollout raises (that is
//! `serin_core::alerts`) nor read Kubernetes objects (the caller resolves providers and their
//! Secrets into a [`Target`]). Hook URLs and tokens are secrets: no error, log line or
//! [`Delivery`] report contains them.
//!
//! # Layout
//! - [`payload`]: one JSON body per provider type.
//! - [`Target`], [`ProviderKind`]: where and how to send.
//! - [`Dispatcher`]: the queue and its worker; [`Delivery`] reports each outcome.

pub mod payload;
mod queue;
mod target;

pub use queue::{Delivery, DeliveryResult, Dispatcher, DispatcherConfig, Job};
pub use target::{ProviderKind, Target, TargetError};
