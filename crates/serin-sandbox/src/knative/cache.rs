//! What the simulator has seen of Services and Revisions, fed by its watches and its own
//! creates, so that a reconcile reads memory instead of GETting the Service and LISTing its
//! Revisions by label (a scan of every Revision in the emulator).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use kube::{api::DynamicObject, runtime::watcher::Event};
use serde_json::Value;

/// `(namespace, name)`.
pub type Key = (String, String);

/// Services by key, Revisions by the key of their Service.
#[derive(Default)]
pub struct SimCache {
    services: Mutex<HashMap<Key, Arc<Value>>>,
    revisions: Mutex<HashMap<Key, BTreeMap<String, Value>>>,
    /// One lock per Service: reconciles of one Service never overlap.
    locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

fn key_of(obj: &DynamicObject) -> Key {
    (
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

fn service_of(revision: &Value, label: &str) -> Option<Key> {
    Some((
        revision.pointer("/metadata/namespace")?.as_str()?.to_owned(),
        revision.pointer("/metadata/labels")?.get(label)?.as_str()?.to_owned(),
    ))
}

/// The object of a watch event and whether it was deleted; `None` for list markers.
fn object_of(event: Event<DynamicObject>) -> Option<(DynamicObject, bool)> {
    match event {
        Event::Apply(o) | Event::InitApply(o) => Some((o, false)),
        Event::Delete(o) => Some((o, true)),
        Event::Init | Event::InitDone => None,
    }
}

impl SimCache {
    /// Records a Service watch event; returns the Service to reconcile.
    pub fn service_event(&self, event: Event<DynamicObject>) -> Option<Key> {
        let (obj, deleted) = object_of(event)?;
        let key = key_of(&obj);
        let mut services = self.services.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if deleted {
            services.remove(&key);
        } else {
            services.insert(key.clone(), Arc::new(serde_json::to_value(&obj).ok()?));
        }
        Some(key)
    }

    /// Records a Revision watch event; returns its Service to reconcile.
    pub fn revision_event(&self, event: Event<DynamicObject>, label: &str) -> Option<Key> {
        let (obj, deleted) = object_of(event)?;
        let value = serde_json::to_value(&obj).ok()?;
        let service = service_of(&value, label)?;
        let name = obj.metadata.name.clone().unwrap_or_default();
        let mut revisions = self.revisions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let of_service = revisions.entry(service.clone()).or_default();
        if deleted {
            of_service.remove(&name);
        } else {
            of_service.insert(name, value);
        }
        Some(service)
    }

    /// A Revision we just created, before its watch event arrives.
    pub fn created_revision(&self, revision: &Value, label: &str) {
        let (Some(service), Some(name)) = (
            service_of(revision, label),
            revision.pointer("/metadata/name").and_then(Value::as_str),
        ) else {
            return;
        };
        self.revisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(service)
            .or_default()
            .entry(name.to_owned())
            .or_insert_with(|| revision.clone());
    }

    /// The Service as last seen.
    pub fn service(&self, key: &Key) -> Option<Arc<Value>> {
        self.services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The Revisions of a Service.
    pub fn revisions(&self, key: &Key) -> Vec<Value> {
        self.revisions
            .lock()
            .ok()
            .and_then(|r| r.get(key).map(|m| m.values().cloned().collect()))
            .unwrap_or_default()
    }

    /// The lock of one Service.
    pub fn lock_of(&self, key: &Key) -> Arc<tokio::sync::Mutex<()>> {
        match self.locks.lock() {
            Ok(mut locks) => locks.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }
}
