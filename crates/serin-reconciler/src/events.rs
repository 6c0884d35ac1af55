//! Kubernetes events for a Canary, aggregated the way client-go's recorder does: a repeated
//! event (same object, type, reason and message) bumps `count` and `lastTimestamp` instead of
//! creating a new object.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use serin_api::Canary;
use serin_core::Event;
use tokio::sync::Mutex;

/// What makes two events the same: (namespace, object uid, type, message).
type EventKey = (String, String, String, String);

/// Records events for Canaries.
pub struct EventRecorder {
    client: Client,
    component: String,
    /// Events already recorded, with their object name and count.
    seen: Mutex<HashMap<EventKey, (String, i32)>>,
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
            seen: Mutex::new(HashMap::new()),
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
        let mut seen = self.seen.lock().await;
        if let Some((event_name, count)) = seen.get_mut(&key) {
            *count += 1;
            let patch = json!({"count": *count, "lastTimestamp": now()});
            if api
                .patch(event_name, &PatchParams::default(), &Patch::Merge(patch))
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
                seen.insert(key, (event_name, 1));
            }
            Err(e) => {
                tracing::warn!(canary = %format!("{namespace}/{name}"), error = %e, message = %event.message, "cannot record event")
            }
        }
    }
}
