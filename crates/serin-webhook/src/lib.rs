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
//!
//! The client and the sink are behind the `client` feature (on by default); without it the crate
//! is the payload types only, with no HTTP or TLS stack (the loadtester's case).

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod events;
mod payload;

#[cfg(feature = "mock")]
pub use client::MockWebhookClient;
#[cfg(feature = "client")]
pub use client::{
    BODY_LIMIT, HookCall, HttpWebhookClient, WebhookClient, WebhookError, call_all, install_crypto_provider,
};
#[cfg(feature = "client")]
pub use events::EventSink;
pub use payload::CanaryWebhookPayload;
