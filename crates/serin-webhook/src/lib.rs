//! Webhooks for Serin: Flagger's payload, and a client that calls hooks with per-attempt
//! timeouts, retries with backoff and jitter, and success on any 2xx.
//!
//! This crate calls URLs and reports outcomes as `serin_core::HookOutcome`; it does not decide
//! what an outcome means for a rollout (the engine does), and it does not serve hooks (the
//! loadtester does, reusing [`CanaryWebhookPayload`]).
//!
//! # Layout
//! - [`CanaryWebhookPayload`]: the JSON body.
//! - [`WebhookClient`] (mock behind the `mock` feature), [`HttpWebhookClient`], [`call_all`].
//! - [`EventSink`]: event webhooks, fire and forget through a bounded queue.

mod client;
mod events;
mod payload;

#[cfg(feature = "mock")]
pub use client::MockWebhookClient;
pub use client::{
    BODY_LIMIT, HookCall, HttpWebhookClient, WebhookClient, WebhookError, call_all, install_crypto_provider,
};
pub use events::EventSink;
pub use payload::CanaryWebhookPayload;
