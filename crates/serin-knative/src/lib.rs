//! Traffic routing for Serin: the [`Router`] trait and its Knative Serving implementation.
//!
//! The Knative router reads a Service and its Revisions, and writes JSON merge patches of
//! `spec.traffic` and the `flagger.app/primary-revision` annotation only, guarded by
//! `resourceVersion` and retried on conflict. It does not decide when to route (the engine
//! does) and does not watch: with [`KnativeCache`] it reads watch caches that the reconciler
//! fills, otherwise it GETs.
//!
//! # Layout
//! - [`Router`] (mock behind the `mock` feature), [`Target`], [`RouterError`].
//! - [`KnativeRouter`]: the implementation; [`KnativeCache`]: the watch caches it can read.
//! - [`patches`]: the pure patch builders.
//! - [`types`]: the Knative fields Serin reads.
//! - [`watches`]: the Service and Revision watches that trigger reconciles and fill the caches.

pub mod cache;
mod knative;
pub mod patches;
mod router;
pub mod types;
pub mod watches;

pub use cache::{CachedRevision, CachedService, KnativeCache, KnativeCacheWriter};
pub use knative::KnativeRouter;
#[cfg(feature = "mock")]
pub use router::MockRouter;
pub use router::{Router, RouterError, Target};
