//! The watches of Knative Services and Revisions: each change triggers the reconcile of the
//! Canaries that target the Service, and, when the router reads caches, fills them (slimmed to
//! what the router reads).

use futures::{StreamExt, stream::BoxStream};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};

use crate::{
    CachedRevision, CachedService, KnativeCacheWriter,
    cache::{revision_resource, service_resource, slim_revision, slim_service},
};

/// The label Knative puts on a Revision to name its Service.
pub const SERVICE_LABEL: &str = "serving.knative.dev/service";

/// A stream of changed objects, for `Controller::watches_stream_with`.
pub type Changes<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// The Service and Revision watches, in one namespace or all.
pub struct Watches {
    /// Changed Services.
    pub services: Changes<CachedService>,
    /// Changed Revisions.
    pub revisions: Changes<CachedRevision>,
}

/// Starts the watches; with `cache`, they also fill the router's caches.
pub fn watches(client: &Client, namespace: Option<&str>, cache: Option<KnativeCacheWriter>) -> Watches {
    let (services, revisions): (Api<CachedService>, Api<CachedRevision>) = match namespace {
        Some(ns) => (
            Api::namespaced_with(client.clone(), ns, &service_resource()),
            Api::namespaced_with(client.clone(), ns, &revision_resource()),
        ),
        None => (
            Api::all_with(client.clone(), &service_resource()),
            Api::all_with(client.clone(), &revision_resource()),
        ),
    };
    let services = watcher(services, watcher::Config::default()).default_backoff();
    let revisions = watcher(revisions, watcher::Config::default()).default_backoff();
    match cache {
        Some(caches) => Watches {
            services: services
                .modify(slim_service)
                .reflect(caches.services)
                .touched_objects()
                .boxed(),
            revisions: revisions
                .modify(slim_revision)
                .reflect(caches.revisions)
                .touched_objects()
                .boxed(),
        },
        None => Watches {
            services: services.touched_objects().boxed(),
            revisions: revisions.touched_objects().boxed(),
        },
    }
}

/// The Service a Revision belongs to.
pub fn service_of(revision: &CachedRevision) -> Option<String> {
    revision.metadata.labels.as_ref()?.get(SERVICE_LABEL).cloned()
}
