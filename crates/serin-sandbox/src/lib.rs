//! Knative-in-a-box for Serin's demo and end-to-end tests.
//!
//! Built so far: a podinfo-like [`demo_app`] for revision backends, a [`router`] standing in for
//! Kourier (routes by Host and percent, exports Envoy-named metrics), and a launcher for a real
//! [`prometheus`] that scrapes it.
//! Not built yet: the Kubernetes API emulator and the Knative Serving simulator; the router's
//! routes are set by the caller.
//!
//! No product crate depends on this one.

pub mod cluster;
pub mod demo;
pub mod demo_app;
pub mod knative;
pub mod kube_api;
pub mod prometheus;
pub mod router;
