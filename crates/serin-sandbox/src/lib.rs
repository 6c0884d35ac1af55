//! Knative-in-a-box for Serin's demo and end-to-end tests: a Kubernetes API emulator
//! ([`kube_api`]) with Knative Serving's CRDs and a simulator of its controllers ([`knative`]),
//! a podinfo-like [`demo_app`] for revision backends, a [`router`] standing in for Kourier
//! (routes by Host and percent, exports Envoy-named metrics), a launcher for a real
//! [`prometheus`], the process [`cluster`] the end-to-end tests and the [`demo`] run, a [`fleet`] of Canaries for the scale benchmark and the shard tests, and the
//! dashboard with a headless browser to look at it ([`browser`]).
//!
//! What it does not do: run real pods or a real Knative; it emulates what Serin and `kubectl`
//! touch.
//!
//! No product crate depends on this one.

pub mod browser;
pub mod cluster;
pub mod demo;
pub mod demo_app;
pub mod fleet;
pub mod knative;
pub mod kube_api;
pub mod prometheus;
pub mod router;
