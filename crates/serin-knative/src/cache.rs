//! Watch caches of Knative Services and Revisions, read by [`KnativeRouter`](crate::KnativeRouter)
//! instead of GETting on every observation.
//!
//! The router only reads them; whoever runs the watches (the reconciler) feeds the
//! [`KnativeCacheWriter`]. A cache can lag the router's own writes: the router keeps the object
//! each of its patches returned and prefers it until the cache has caught up (same uid, a
//! generation at least as new). [`slim_service`] and [`slim_revision`] cut cached objects down to
//! what the router reads.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};

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

/// Keeps only the fields the router reads (the ones in [`crate::types`]), so that a cache of
/// thousands of Services stays small: `spec.traffic`, the status fields, the primary
/// annotation, and the labels. Apply it to each object before it enters the cache.
pub fn slim_service(obj: &mut DynamicObject) {
    slim_meta(obj, &[crate::patches::PRIMARY_ANNOTATION]);
    let traffic = obj.data.pointer_mut("/spec/traffic").map(Value::take);
    let status = obj.data.get_mut("status").map(Value::take).map(|mut s| {
        keep_keys(
            &mut s,
            &[
                "observedGeneration",
                "latestCreatedRevisionName",
                "latestReadyRevisionName",
                "traffic",
                "conditions",
                "url",
            ],
        );
        s
    });
    obj.data = json!({});
    if let Some(traffic) = traffic {
        obj.data["spec"] = json!({ "traffic": traffic });
    }
    if let Some(status) = status {
        obj.data["status"] = status;
    }
}

/// [`slim_service`] for Revisions: only `status.conditions` (and labels) are read.
pub fn slim_revision(obj: &mut DynamicObject) {
    slim_meta(obj, &[]);
    let conditions = obj.data.pointer_mut("/status/conditions").map(Value::take);
    obj.data = json!({});
    if let Some(conditions) = conditions {
        obj.data["status"] = json!({ "conditions": conditions });
    }
}

fn slim_meta(obj: &mut DynamicObject, annotations: &[&str]) {
    let meta = &mut obj.metadata;
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| annotations.contains(&k.as_str()));
    }
}

fn keep_keys(value: &mut Value, keys: &[&str]) {
    if let Some(map) = value.as_object_mut() {
        map.retain(|k, _| keys.contains(&k.as_str()));
    }
}

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
    pub(crate) fn wrote(&self, namespace: &str, name: &str, mut object: DynamicObject) {
        slim_service(&mut object);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Revision, Service};

    fn full_service() -> DynamicObject {
        serde_json::from_value(json!({
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
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "RoutesReady", "status": "False", "reason": "RevisionMissing", "message": "gone"}]
            }
        }))
        .expect("service")
    }

    fn decoded<T: serde::de::DeserializeOwned>(obj: &DynamicObject) -> T {
        serde_json::from_value(serde_json::to_value(obj).expect("json")).expect("decode")
    }

    #[test]
    fn a_slim_service_reads_the_same_and_is_smaller() {
        let full = full_service();
        let mut slim = full.clone();
        slim_service(&mut slim);
        // The router reads one annotation; everything else it reads is kept whole.
        let mut read = decoded::<Service>(&full);
        read.metadata
            .annotations
            .retain(|k, _| k == crate::patches::PRIMARY_ANNOTATION);
        assert_eq!(decoded::<Service>(&slim), read);
        let size = |o: &DynamicObject| serde_json::to_string(o).expect("json").len();
        assert!(size(&slim) < size(&full), "{} vs {}", size(&slim), size(&full));
        assert!(slim.data.pointer("/spec/template").is_none());
        assert!(slim.data.pointer("/status/address").is_none());
        assert!(slim.metadata.managed_fields.is_none());
    }

    #[test]
    fn a_slim_revision_reads_the_same() {
        let full: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": "podinfo-00002", "namespace": "test", "labels": {"serving.knative.dev/service": "podinfo"},
                "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": "podinfo", "uid": "u"}]},
            "spec": {"containers": [{"image": "ghcr.io/stefanprodan/podinfo:6.0.1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ContainerMissing", "message": "no image"}],
                "containerStatuses": [{"name": "user-container"}]}
        }))
        .expect("revision");
        let mut slim = full.clone();
        slim_revision(&mut slim);
        assert_eq!(decoded::<Revision>(&slim), decoded::<Revision>(&full));
        assert_eq!(
            decoded::<Revision>(&slim).readiness(),
            decoded::<Revision>(&full).readiness()
        );
        assert!(slim.data.get("spec").is_none());
    }
}
