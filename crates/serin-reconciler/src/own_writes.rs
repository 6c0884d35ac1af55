//! Our own status writes, remembered until the Canary cache has seen them.
//!
//! A reconcile reads the Canary from the watch cache. A Service change caused by a step (our own
//! traffic patch) triggers the next reconcile of the same Canary, and under load that can run
//! before the watch has delivered the step's status write. Deciding from the status before the
//! write would redo the step: its webhooks called again, its event repeated, its status written
//! again with a later next step. So a reconcile that finds the cache behind our last write skips,
//! and the watch event of that write (which always follows) triggers the next one.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use kube::ResourceExt;
use serin_api::Canary;

/// How long the cache may lag our write before we decide from it anyway (with a warning): a
/// watch that lost the event relists, but a write must never hold a Canary for good.
pub const CACHE_LAG_LIMIT: Duration = Duration::from_secs(30);

/// When a skipped reconcile tries again if no watch event triggers it first.
pub const CACHE_BEHIND_RETRY: Duration = Duration::from_secs(1);

struct Written {
    uid: Option<String>,
    resource_version: String,
    at: Instant,
}

/// The `resourceVersion` of our last status write per Canary, until the cache has it.
#[derive(Default)]
pub struct OwnWrites {
    written: Mutex<HashMap<(String, String), Written>>,
}

fn id(canary: &Canary) -> (String, String) {
    (canary.namespace().unwrap_or_default(), canary.name_any())
}

impl OwnWrites {
    /// Remembers the object a status patch of ours returned.
    pub fn wrote(&self, patched: &Canary) {
        let Some(resource_version) = patched.resource_version() else {
            return;
        };
        self.lock().insert(
            id(patched),
            Written {
                uid: patched.uid(),
                resource_version,
                at: Instant::now(),
            },
        );
    }

    /// Whether `cached` predates our last status write. Resource versions are compared as
    /// numbers when both are (as the API server's are); an opaque one is behind until it equals
    /// ours. Forgets the write once the cache has it, the Canary was replaced, or
    /// [`CACHE_LAG_LIMIT`] has passed.
    pub fn cache_behind(&self, cached: &Canary) -> bool {
        let mut written = self.lock();
        let key = id(cached);
        let Some(ours) = written.get(&key) else {
            return false;
        };
        let theirs = cached.resource_version().unwrap_or_default();
        let caught_up = ours.uid != cached.uid()
            || theirs == ours.resource_version
            || matches!(
                (theirs.parse::<u64>(), ours.resource_version.parse::<u64>()),
                (Ok(t), Ok(o)) if t >= o
            );
        if caught_up {
            written.remove(&key);
            return false;
        }
        if ours.at.elapsed() > CACHE_LAG_LIMIT {
            tracing::warn!(
                canary = %format!("{}/{}", key.0, key.1),
                cached = %theirs,
                written = %ours.resource_version,
                "the Canary cache has not shown our status write for {CACHE_LAG_LIMIT:?}; deciding from it anyway"
            );
            written.remove(&key);
            return false;
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Written>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(uid: &str, rv: &str) -> Canary {
        let mut c: Canary = serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test", "uid": uid, "resourceVersion": rv},
            "spec": {"targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"},
                     "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}}
        }))
        .expect("canary");
        c.metadata.resource_version = Some(rv.to_owned());
        c
    }

    #[test]
    fn the_cache_is_behind_until_it_shows_our_write_or_a_later_one() {
        let own = OwnWrites::default();
        assert!(!own.cache_behind(&canary("u1", "10")), "nothing written yet");
        own.wrote(&canary("u1", "12"));
        assert!(own.cache_behind(&canary("u1", "10")));
        assert!(own.cache_behind(&canary("u1", "11")));
        assert!(!own.cache_behind(&canary("u1", "13")), "a later write counts");
        assert!(!own.cache_behind(&canary("u1", "10")), "forgotten once caught up");
    }

    #[test]
    fn opaque_versions_must_match_and_a_replaced_canary_is_not_behind() {
        let own = OwnWrites::default();
        own.wrote(&canary("u1", "b"));
        assert!(own.cache_behind(&canary("u1", "a")));
        assert!(!own.cache_behind(&canary("u1", "b")));
        own.wrote(&canary("u1", "12"));
        assert!(!own.cache_behind(&canary("u2", "3")), "another Canary of the same name");
    }
}
