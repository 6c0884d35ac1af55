//! Kubernetes events for a Canary, aggregated the way client-go's recorder does: a repeated
//! event (same object, type, reason and message) bumps `count` and `lastTimestamp` instead of
//! creating a new object. Like client-go, it remembers at most [`REMEMBERED`] events (least
//! recently used forgotten first), and never holds its memory across an API call, so one slow
//! write does not hold up other Canaries' events.

use std::{
    num::NonZeroUsize,
    sync::{Mutex, PoisonError},
};

use lru::LruCache;

use k8s_openapi::{
    api::core::v1::{Event as KubeEvent, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use serin_api::Canary;
use serin_core::Event;

/// What makes two events the same: (namespace, object uid, type, message).
type EventKey = (String, String, String, String);

/// How many events are remembered for aggregation (client-go's `maxLruCacheEntries`).
pub const REMEMBERED: usize = 4096;

/// Records events for Canaries.
pub struct EventRecorder {
    client: Client,
    component: String,
    /// Events already recorded, with their object name and count.
    seen: Mutex<LruCache<EventKey, (String, i32)>>,
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl EventRecorder {
    /// A recorder reporting as `component` (shown in `kubectl describe`'s From column).
    pub fn new(client: Client, component: &str) -> Self {
        EventRecorder {
            client,
            component: component.to_owned(),
            seen: Mutex::new(LruCache::new(
                NonZeroUsize::new(REMEMBERED).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Records one event on `canary`; failures are logged, never fatal.
    pub async fn record(&self, canary: &Canary, event: &Event) {
        let namespace = canary.metadata.namespace.clone().unwrap_or_default();
        let name = canary.metadata.name.clone().unwrap_or_default();
        let uid = canary.metadata.uid.clone().unwrap_or_default();
        let type_ = event.severity.as_str().to_owned();
        let key = (namespace.clone(), uid.clone(), type_.clone(), event.message.clone());
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        let repeated = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.get_mut(&key).map(|(event_name, count)| {
                *count += 1;
                (event_name.clone(), *count)
            })
        };
        if let Some((event_name, count)) = repeated {
            let patch = json!({"count": count, "lastTimestamp": now()});
            if api
                .patch(&event_name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .is_ok()
            {
                return;
            }
        }
        let stamp = Time(jiff::Timestamp::now());
        let event_name = format!(
            "{name}.{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let object = KubeEvent {
            metadata: ObjectMeta {
                name: Some(event_name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("flagger.app/v1beta1".into()),
                kind: Some("Canary".into()),
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                uid: Some(uid.clone()),
                resource_version: canary.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some("Synced".into()),
            message: Some(event.message.clone()),
            type_: Some(type_.clone()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                ..EventSource::default()
            }),
            reporting_component: Some(self.component.clone()),
            count: Some(1),
            first_timestamp: Some(stamp.clone()),
            last_timestamp: Some(stamp),
            ..KubeEvent::default()
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {
                self.seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .put(key, (event_name, 1));
            }
            Err(e) => {
                tracing::warn!(canary = %format!("{namespace}/{name}"), error = %e, message = %event.message, "cannot record event")
            }
        }
    }
}
