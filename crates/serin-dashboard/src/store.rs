//! The dashboard's memory: every Canary's [`History`], fed by two watches (Canaries, and the
//! Kubernetes events whose object is a Canary), with a version counter that the live streams
//! wait on. Nothing is polled.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::{
    Api,
    runtime::{WatchStreamExt, watcher},
};
use serin_api::Canary;
use serin_core::Time;
use tokio::sync::watch;

use crate::history::{EventLine, History};

/// `(namespace, name)`.
pub type Key = (String, String);

/// Every Canary's history, and a signal when any changes.
pub struct Store {
    canaries: RwLock<BTreeMap<Key, History>>,
    version: watch::Sender<u64>,
    synced: AtomicBool,
    /// During a (re)list: the Canaries listed so far.
    relisting: Mutex<Option<BTreeSet<Key>>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            canaries: RwLock::new(BTreeMap::new()),
            version: watch::Sender::new(0),
            synced: AtomicBool::new(false),
            relisting: Mutex::new(None),
        }
    }
}

pub use serin_api::wall_clock_now as wall_clock;

fn jiff_time(t: &k8s_openapi::jiff::Timestamp) -> Time {
    Time::from_millis(t.as_millisecond())
}

impl Store {
    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Whether the Canary watch has listed every Canary once (before that, a Canary missing
    /// from the store may just not have arrived yet).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// A (re)list of every Canary begins: what it does not list by [`Store::end_list`] was
    /// deleted meanwhile (while the watch was disconnected).
    pub fn begin_list(&self) {
        *self.relisting.lock().unwrap_or_else(PoisonError::into_inner) = Some(BTreeSet::new());
    }

    /// The (re)list is complete: forgets the Canaries it did not list, and marks the store
    /// synced.
    pub fn end_list(&self) {
        let listed = self.relisting.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(listed) = listed {
            self.write(|all| all.retain(|key, h| h.canary.is_none() || listed.contains(key)));
        }
        self.synced.store(true, Ordering::Relaxed);
        self.changed();
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Reads the histories.
    pub fn read<T>(&self, f: impl FnOnce(&BTreeMap<Key, History>) -> T) -> T {
        f(&self.canaries.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write(&self, f: impl FnOnce(&mut BTreeMap<Key, History>)) {
        f(&mut self.canaries.write().unwrap_or_else(PoisonError::into_inner));
        self.changed();
    }

    /// Records a Canary as seen now.
    pub fn canary(&self, canary: Canary, now: Time) {
        let key = (
            canary.metadata.namespace.clone().unwrap_or_default(),
            canary.metadata.name.clone().unwrap_or_default(),
        );
        if let Some(listed) = self.relisting.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            listed.insert(key.clone());
        }
        self.write(|all| all.entry(key).or_default().observe(canary, now));
    }

    /// Forgets a deleted Canary.
    pub fn forget(&self, canary: &Canary) {
        let key = (
            canary.metadata.namespace.clone().unwrap_or_default(),
            canary.metadata.name.clone().unwrap_or_default(),
        );
        self.write(|all| {
            all.remove(&key);
        });
    }

    /// Records a Kubernetes event about a Canary.
    pub fn event(&self, event: &KubeEvent) {
        let object = &event.involved_object;
        let key = (
            object.namespace.clone().unwrap_or_default(),
            object.name.clone().unwrap_or_default(),
        );
        let at = event
            .last_timestamp
            .as_ref()
            .map(|t| jiff_time(&t.0))
            .or_else(|| event.event_time.as_ref().map(|t| jiff_time(&t.0)))
            .or_else(|| event.first_timestamp.as_ref().map(|t| jiff_time(&t.0)))
            .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| jiff_time(&t.0)))
            .unwrap_or_else(wall_clock);
        let line = EventLine {
            at,
            kind: event.type_.clone().unwrap_or_else(|| "Normal".into()),
            message: event.message.clone().unwrap_or_default(),
            count: event.count.unwrap_or(1),
            name: event.metadata.name.clone().unwrap_or_default(),
        };
        self.write(|all| all.entry(key).or_default().event(line));
    }
}

/// Keeps `store` fed from the Canary watch until the task is dropped. Watch errors are logged
/// and retried with kube's default backoff.
pub async fn watch_canaries(api: Api<Canary>, store: std::sync::Arc<Store>) {
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => store.canary(c, wall_clock()),
            Ok(watcher::Event::Delete(c)) => store.forget(&c),
            Ok(watcher::Event::Init) => store.begin_list(),
            Ok(watcher::Event::InitDone) => store.end_list(),
            Err(e) => tracing::warn!(error = %e, "Canary watch failed; retrying"),
        }
    }
}

/// Keeps `store` fed from the watch on events about Canaries.
pub async fn watch_events(api: Api<KubeEvent>, store: std::sync::Arc<Store>) {
    let config = watcher::Config::default().fields("involvedObject.kind=Canary");
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e)) => store.event(&e),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "event watch failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(name: &str) -> Canary {
        let mut c = Canary::new(name, Default::default());
        c.metadata.namespace = Some("test".into());
        c
    }

    fn names(store: &Store) -> Vec<String> {
        store.read(|all| all.keys().map(|k| k.1.clone()).collect())
    }

    #[test]
    fn a_relist_forgets_canaries_deleted_while_the_watch_was_away() {
        let store = Store::default();
        assert!(!store.synced());
        store.begin_list();
        store.canary(canary("a"), Time::from_millis(0));
        store.canary(canary("b"), Time::from_millis(0));
        store.end_list();
        assert!(store.synced());
        assert_eq!(names(&store), ["a", "b"]);
        // The watch reconnects; "a" was deleted meanwhile, "c" created.
        store.begin_list();
        store.canary(canary("b"), Time::from_millis(1));
        store.canary(canary("c"), Time::from_millis(1));
        assert_eq!(
            names(&store),
            ["a", "b", "c"],
            "nothing is forgotten before the list ends"
        );
        store.end_list();
        assert_eq!(names(&store), ["b", "c"]);
    }
}
