//! Kubernetes events for a Canary, aggregated the way client-go's recorder does: a repeated
//! event (same object, type, reason and message) bumps `count` and `lastTimestamp` instead of
//! creating a new object. Like client-go, it remembers at most [`REMEMBERED`] events (least
//! recently used forgotten first), and never holds its memory across an API call, so one slow
//! write does not hold up other Canaries' events.
//!
//! Unlike client-go, an event's name is not a timestamp but a hash of the Canary's uid, the
//! event's type and message, and the time of the Canary's last status change. A successor (after
//! a restart or a failover) redoing a step its predecessor was killed in the middle of, from the
//! same status, records that step's events under the same names: the API server answers that
//! they exist (409), and they are not recorded (nor forwarded) again. Finding that out costs no
//! read.

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
    /// This recorder's `reportingInstance`: tells its own events from a predecessor's.
    instance: String,
}

/// Whether this event was written (created or counted again), or found already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Created, counted again, or attempted and logged as failed.
    Written,
    /// A predecessor recorded it during the step being redone.
    AlreadyThere,
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
            instance: format!(
                "{}-{}-{:x}",
                std::env::var("HOSTNAME").unwrap_or_default(),
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ),
        }
    }

    /// Records one event on `canary`; failures are logged, never fatal.
    pub async fn record(&self, canary: &Canary, event: &Event) -> Recorded {
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
                return Recorded::Written;
            }
        }
        let stamp = Time(jiff::Timestamp::now());
        let event_name = event_name(canary, &key);
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
            reporting_instance: Some(self.instance.clone()),
            count: Some(1),
            first_timestamp: Some(stamp.clone()),
            last_timestamp: Some(stamp),
            ..KubeEvent::default()
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => self.remember(key, &event_name, 1),
            Err(kube::Error::Api(e)) if e.code == 409 => return self.exists(&api, key, &event_name).await,
            Err(e) => {
                tracing::warn!(canary = %format!("{namespace}/{name}"), error = %e, message = %event.message, "cannot record event")
            }
        }
        Recorded::Written
    }

    /// The event named `event_name` exists. Ours (forgotten from memory since): counted again.
    /// A predecessor's, for the same status: the step it did not finish, being redone; not
    /// recorded again.
    async fn exists(&self, api: &Api<KubeEvent>, key: EventKey, event_name: &str) -> Recorded {
        let existing = match api.get(event_name).await {
            Ok(existing) => existing,
            Err(e) => {
                tracing::warn!(event = %event_name, error = %e, "cannot read an event that exists");
                return Recorded::Written;
            }
        };
        let count = existing.count.unwrap_or(1);
        if existing.reporting_instance.as_deref() != Some(self.instance.as_str()) {
            tracing::info!(event = %event_name, message = %key.3, "event already recorded for this status by a predecessor (a step redone after a restart or failover)");
            self.remember(key, event_name, count);
            return Recorded::AlreadyThere;
        }
        let patch = json!({"count": count + 1, "lastTimestamp": now()});
        match api
            .patch(event_name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => self.remember(key, event_name, count + 1),
            Err(e) => tracing::warn!(event = %event_name, error = %e, "cannot count an event again"),
        }
        Recorded::Written
    }

    fn remember(&self, key: EventKey, event_name: &str, count: i32) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, (event_name.to_owned(), count));
    }
}

/// `{canary}.{16 hex digits}`: FNV-1a of the uid, type and message, and the time of the Canary's
/// last status change (its last decision's), so that the same event for the same status gets
/// the same name whoever records it.
fn event_name(canary: &Canary, key: &EventKey) -> String {
    let epoch = canary
        .status
        .as_ref()
        .and_then(|s| s.last_decision.as_ref())
        .and_then(|d| d.at.as_deref())
        .unwrap_or_default();
    let hash = crate::shard::fnv1a(&format!("{}\n{}\n{}\n{epoch}", key.1, key.2, key.3));
    format!("{}.{hash:016x}", canary.metadata.name.as_deref().unwrap_or_default())
}
