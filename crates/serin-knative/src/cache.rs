//! Watch caches of Knative Services and Revisions, read by [`KnativeRouter`](crate::KnativeRouter)
//! instead of GETting on every observation.
//!
//! The router only reads them; whoever runs the watches (the reconciler) feeds the
//! [`KnativeCacheWriter`]. A cache can lag the router's own writes: the router keeps the object
//! each of its patches returned and prefers it until the cache has caught up (same uid, a
//! generation at least as new).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use kube::{
    api::DynamicObject,
    core::{ApiResource, GroupVersionKind},
    runtime::reflector::{ObjectRef, Store, store::Writer},
};

pub(crate) fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("serving.knative.dev", "v1", kind), plural)
}

/// The Knative Service resource (`serving.knative.dev/v1`, `services`).
pub fn service_resource() -> ApiResource {
    resource("Service", "services")
}

/// The Knative Revision resource (`serving.knative.dev/v1`, `revisions`).
pub fn revision_resource() -> ApiResource {
    resource("Revision", "revisions")
}

/// Services as our own patches returned them, by `(namespace, name)`.
type OwnWrites = Arc<Mutex<HashMap<(String, String), Arc<DynamicObject>>>>;

/// Read side of the caches; cheap to clone.
#[derive(Clone)]
pub struct KnativeCache {
    services: Store<DynamicObject>,
    revisions: Store<DynamicObject>,
    /// What our own patches returned, per `(namespace, name)`, until the cache catches up.
    written: OwnWrites,
}

/// Write side of the caches: feed each with a reflector over its resource.
pub struct KnativeCacheWriter {
    /// For the Services watch.
    pub services: Writer<DynamicObject>,
    /// For the Revisions watch.
    pub revisions: Writer<DynamicObject>,
}

impl KnativeCache {
    /// Empty caches, with the writers that fill them.
    pub fn new() -> (KnativeCache, KnativeCacheWriter) {
        let services = Writer::new(service_resource());
        let revisions = Writer::new(revision_resource());
        let cache = KnativeCache {
            services: services.as_reader(),
            revisions: revisions.as_reader(),
            written: Arc::default(),
        };
        (cache, KnativeCacheWriter { services, revisions })
    }

    /// The Service as last seen: the cached one, or our own newer write; `None` when neither
    /// knows it (not synced yet, or absent).
    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        let key = ObjectRef::new_with(name, service_resource()).within(namespace);
        let cached = self.services.get(&key);
        let Ok(mut written) = self.written.lock() else {
            return cached;
        };
        let id = (namespace.to_owned(), name.to_owned());
        let Some(ours) = written.get(&id).cloned() else {
            return cached;
        };
        match cached {
            Some(c) if c.metadata.uid == ours.metadata.uid && c.metadata.generation < ours.metadata.generation => {
                Some(ours)
            }
            // Caught up, replaced, or gone (deleted): the cache knows better than our write.
            other => {
                written.remove(&id);
                other
            }
        }
    }

    /// A Revision from the cache.
    pub(crate) fn revision(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.revisions
            .get(&ObjectRef::new_with(name, revision_resource()).within(namespace))
    }

    /// Remembers what a patch of ours returned.
    pub(crate) fn wrote(&self, namespace: &str, name: &str, object: DynamicObject) {
        if let Ok(mut written) = self.written.lock() {
            written.insert((namespace.to_owned(), name.to_owned()), Arc::new(object));
        }
    }

    /// Forgets our write of a Service (after a conflict: the cache or a GET knows better).
    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        if let Ok(mut written) = self.written.lock() {
            written.remove(&(namespace.to_owned(), name.to_owned()));
        }
    }
}
