//! Watch caches of Knative Services and Revisions, read by [`KnativeRouter`](crate::KnativeRouter)
//! instead of GETting on every observation.
//!
//! The router only reads them; whoever runs the watches (the reconciler) feeds the
//! [`KnativeCacheWriter`]. Objects are decoded straight into [`CachedService`] and
//! [`CachedRevision`], which hold only what the router reads (so 10,000 Services stay small), and
//! [`slim_service`] / [`slim_revision`] drop the metadata it does not read. A cache can lag the
//! router's own writes: the router keeps the object each of its patches returned and prefers it
//! until the cache has caught up (same uid, a generation at least as new).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{
    core::{ApiResource, GroupVersionKind, NotUsed, Object},
    runtime::reflector::{ObjectRef, Store, store::Writer},
};

use crate::types::{RevisionStatus, ServiceSpec, ServiceStatus};

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

/// A Knative Service as read and cached: metadata, `spec.traffic` and the status fields in
/// [`ServiceStatus`]; everything else is skipped while decoding.
pub type CachedService = Object<ServiceSpec, ServiceStatus>;

/// A Knative Revision as read and cached: metadata and `status.conditions`.
pub type CachedRevision = Object<NotUsed, RevisionStatus>;

/// Drops what the router does not read: managed fields, owners, finalizers, labels, every
/// annotation but the primary one, and every condition but `Ready` and `RoutesReady`. Apply it
/// to each Service before it enters the cache.
pub fn slim_service(obj: &mut CachedService) {
    slim_meta(&mut obj.metadata, &[crate::patches::PRIMARY_ANNOTATION]);
    obj.metadata.labels = None;
    if let Some(status) = obj.status.as_mut() {
        status
            .conditions
            .retain(|c| c.type_ == "Ready" || c.type_ == "RoutesReady");
    }
}

/// [`slim_service`] for Revisions: the one label kept names the Service, the one condition kept
/// is `Ready` (Knative sets about six labels and five conditions on each).
pub fn slim_revision(obj: &mut CachedRevision) {
    slim_meta(&mut obj.metadata, &[]);
    if let Some(labels) = obj.metadata.labels.as_mut() {
        labels.retain(|k, _| k == crate::watches::SERVICE_LABEL);
    }
    if let Some(status) = obj.status.as_mut() {
        status.conditions.retain(|c| c.type_ == "Ready");
    }
}

fn slim_meta(meta: &mut ObjectMeta, annotations: &[&str]) {
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| annotations.contains(&k.as_str()));
    }
}

/// Services as our own patches returned them, by `(namespace, name)`.
type OwnWrites = Arc<Mutex<HashMap<(String, String), Arc<CachedService>>>>;

/// Read side of the caches; cheap to clone.
#[derive(Clone)]
pub struct KnativeCache {
    services: Store<CachedService>,
    revisions: Store<CachedRevision>,
    /// What our own patches returned, per `(namespace, name)`, until the cache catches up.
    written: OwnWrites,
}

/// Write side of the caches: feed each with a reflector over its resource.
pub struct KnativeCacheWriter {
    /// For the Services watch.
    pub services: Writer<CachedService>,
    /// For the Revisions watch.
    pub revisions: Writer<CachedRevision>,
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
    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<Arc<CachedService>> {
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
    pub(crate) fn revision(&self, namespace: &str, name: &str) -> Option<Arc<CachedRevision>> {
        self.revisions
            .get(&ObjectRef::new_with(name, revision_resource()).within(namespace))
    }

    /// Remembers what a patch of ours returned.
    pub(crate) fn wrote(&self, namespace: &str, name: &str, mut object: CachedService) {
        slim_service(&mut object);
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((namespace.to_owned(), name.to_owned()), Arc::new(object));
    }

    /// Forgets our write of a Service (after a conflict: the cache or a GET knows better).
    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(namespace.to_owned(), name.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn full_service() -> serde_json::Value {
        json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {
                "name": "podinfo", "namespace": "test", "uid": "u1", "resourceVersion": "42", "generation": 3,
                "labels": {"app": "podinfo"},
                "annotations": {"flagger.app/primary-revision": "podinfo-00001", "serving.knative.dev/creator": "admin",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}]
            },
            "spec": {
                "template": {"spec": {"containers": [{"image": "ghcr.io/stefanprodan/podinfo:6.0.1", "command": ["./podinfo"]}]}},
                "traffic": [{"revisionName": "podinfo-00001", "percent": 90}, {"revisionName": "podinfo-00002", "percent": 10, "tag": "canary"}]
            },
            "status": {
                "observedGeneration": 3, "latestCreatedRevisionName": "podinfo-00002", "latestReadyRevisionName": "podinfo-00002",
                "url": "http://podinfo.test.example.com", "address": {"url": "http://podinfo.test.svc.cluster.local"},
                "traffic": [{"revisionName": "podinfo-00001", "percent": 90}, {"revisionName": "podinfo-00002", "percent": 10, "tag": "canary", "url": "http://canary-podinfo.test"}],
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "RoutesReady", "status": "False", "reason": "RevisionMissing", "message": "gone"},
                    {"type": "ConfigurationsReady", "status": "True"}]
            }
        })
    }

    #[test]
    fn a_cached_slim_service_keeps_what_the_router_reads() {
        let mut cached: CachedService = serde_json::from_value(full_service()).expect("cached");
        slim_service(&mut cached);
        let annotations = cached.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            [crate::patches::PRIMARY_ANNOTATION]
        );
        assert!(cached.metadata.managed_fields.is_none());
        assert!(cached.metadata.labels.is_none());
        let status = cached.status.clone().unwrap_or_default();
        assert_eq!(
            status.conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Ready", "RoutesReady"]
        );
        assert_eq!(status.latest_ready_revision_name.as_deref(), Some("podinfo-00002"));
        assert_eq!(status.traffic.len(), 2);
        assert_eq!(cached.spec.traffic.len(), 2);
        assert!(crate::types::condition(&status.conditions, "RoutesReady").is_some_and(|c| c.status == "False"));
    }

    #[test]
    fn a_cached_slim_revision_keeps_its_readiness_and_labels() {
        let full = json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": "podinfo-00002", "namespace": "test", "labels": {"serving.knative.dev/service": "podinfo",
                    "serving.knative.dev/configuration": "podinfo", "serving.knative.dev/routingState": "active"},
                "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": "podinfo", "uid": "u"}]},
            "spec": {"containers": [{"image": "ghcr.io/stefanprodan/podinfo:6.0.1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ContainerMissing", "message": "no image"},
                    {"type": "ContainerHealthy", "status": "False", "reason": "ContainerMissing"}, {"type": "Active", "status": "Unknown"}],
                "containerStatuses": [{"name": "user-container"}]}
        });
        let mut cached: CachedRevision = serde_json::from_value(full).expect("cached");
        slim_revision(&mut cached);
        assert_eq!(
            cached.status.clone().unwrap_or_default().readiness(),
            serin_core::Readiness::Failed {
                reason: "ContainerMissing: no image".into()
            }
        );
        assert!(cached.metadata.owner_references.is_none());
        assert_eq!(
            cached.metadata.labels.unwrap_or_default().keys().collect::<Vec<_>>(),
            ["serving.knative.dev/service"]
        );
        assert_eq!(cached.status.unwrap_or_default().conditions.len(), 1, "Ready only");
    }
}
