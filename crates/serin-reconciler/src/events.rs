//! Kubernetes events for a Canary, aggregated the way client-go's recorder does: a repeated
//! event (same object, type, reason and message) bumps `count` and `lastTimestamp` instead of
//! creating a new object. Like client-go, it remembers at most [`REMEMBERED`] events (least
//! recently used forgotten first), and never holds its memory across an API call, so one slow
//! write does not hold up other Canaries' events.

use std::{num::NonZeroUsize, sync::Mutex};

use lru::LruCache;

use k8s_openapi::api::core::v1::Event as KubeEvent;
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
        let repeated = self.seen.lock().ok().and_then(|mut seen| {
            let (event_name, count) = seen.get_mut(&key)?;
            *count += 1;
            Some((event_name.clone(), *count))
        });
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
        let stamp = now();
        let event_name = format!(
            "{name}.{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let object: KubeEvent = match serde_json::from_value(json!({
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": name, "namespace": namespace, "uid": uid,
                               "resourceVersion": canary.metadata.resource_version},
            "reason": "Synced",
            "message": event.message,
            "type": type_,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
        })) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build event");
                return;
            }
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {
                if let Ok(mut seen) = self.seen.lock() {
                    seen.put(key, (event_name, 1));
                }
            }
            Err(e) => {
                tracing::warn!(canary = %format!("{namespace}/{name}"), error = %e, message = %event.message, "cannot record event")
            }
        }
    }
}
