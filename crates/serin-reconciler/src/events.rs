//! Kubernetes events for a Canary, aggregated the way client-go's recorder does: a repeated
//! event (same object, type, reason and message) bumps `count` and `lastTimestamp` instead of
//! creating a new object. Like client-go, it remembers at most [`REMEMBERED`] events (least
//! recently used forgotten first), and never holds its memory across an API call, so one slow
//! write does not hold up other Canaries' events.
//!
//! Unlike client-go, it also reads the events a predecessor left: the first time this process
//! records an event for a Canary with a rollout in flight (after a restart or a failover), it
//! lists that Canary's events once. An event the predecessor recorded after the Canary's last
//! status change belongs to the step it was killed in the middle of, which this process is now
//! redoing: that event is already there and is not recorded again (nor forwarded). Older ones
//! are aggregated with as usual.

use std::{
    collections::HashSet,
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
    api::{ListParams, Patch, PatchParams, PostParams},
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
    /// Canaries (uids) whose earlier events have been read.
    adopted: Mutex<HashSet<String>>,
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
            adopted: Mutex::default(),
        }
    }

    /// The first time a Canary with a rollout in flight records an event here: its events from
    /// before, remembered for aggregation. Returns whether `key` is among those recorded after
    /// the Canary's last status change (the step a predecessor did not finish).
    async fn adopt(&self, api: &Api<KubeEvent>, canary: &Canary, key: &EventKey) -> bool {
        let uid = &key.1;
        let in_flight = canary
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| serin_core::Phase::parse(p).is_some_and(serin_core::Phase::is_active));
        if !in_flight
            || uid.is_empty()
            || !self
                .adopted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(uid.clone())
        {
            return false;
        }
        let listed = match api
            .list(&ListParams::default().fields(&format!("involvedObject.uid={uid}")))
            .await
        {
            Ok(list) => list.items,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read a Canary's earlier events; aggregating from here on");
                return false;
            }
        };
        let last_change = canary
            .status
            .as_ref()
            .and_then(|s| s.last_decision.as_ref())
            .and_then(|d| d.at.as_deref())
            .and_then(serin_api::parse_time);
        let mut unfinished_step = false;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        for e in listed {
            let (Some(name), Some(message), Some(type_)) = (e.metadata.name, e.message, e.type_) else {
                continue;
            };
            let at = e
                .last_timestamp
                .as_ref()
                .map(|t| serin_core::Time::from_millis(t.0.as_millisecond()));
            let this = (key.0.clone(), uid.clone(), type_, message);
            if this == *key && matches!((at, last_change), (Some(at), Some(change)) if at > change) {
                unfinished_step = true;
            }
            seen.put(this, (name, e.count.unwrap_or(1)));
        }
        unfinished_step
    }

    /// Records one event on `canary`; failures are logged, never fatal.
    pub async fn record(&self, canary: &Canary, event: &Event) -> Recorded {
        let namespace = canary.metadata.namespace.clone().unwrap_or_default();
        let name = canary.metadata.name.clone().unwrap_or_default();
        let uid = canary.metadata.uid.clone().unwrap_or_default();
        let type_ = event.severity.as_str().to_owned();
        let key = (namespace.clone(), uid.clone(), type_.clone(), event.message.clone());
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        if self.adopt(&api, canary, &key).await {
            tracing::info!(canary = %format!("{namespace}/{name}"), message = %event.message, "event already recorded by a predecessor during the step being redone");
            return Recorded::AlreadyThere;
        }
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
        Recorded::Written
    }
}
