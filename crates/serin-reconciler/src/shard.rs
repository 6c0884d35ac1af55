//! Sharding: which Canaries this controller acts on, and the record that keeps two shards from
//! acting on one Canary at once.
//!
//! A shard is `--shard N/M` (the Canaries whose `namespace/name` hashes to N modulo M, with
//! 64-bit FNV-1a, stable across versions and platforms) and/or `--selector` (a label selector
//! on Canaries, applied by the API server). Each shard holds its own Lease (see
//! [`lease_name`]), so replicas of a shard fail over as an unsharded controller's do.
//!
//! Ownership is recorded in `status.shard`. A shard acts on a Canary that records it; it
//! claims one that records nothing, or a shard whose Lease nobody holds any more, with a
//! status patch guarded by `resourceVersion` (two claimants: one wins, the other sees the
//! winner's record at its next reconcile). While the recorded shard's Lease is held, anyone
//! else waits. So when the shard count changes, the Canaries move to the new shards as the old
//! shards' Leases lapse, never while an old shard still holds its own. An unsharded controller
//! claims nothing but also waits while a live shard's record stands.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;
use serin_api::Canary;

use crate::{Context, Error};

/// The base name of the controller's Lease; a shard's Lease adds the shard to it.
pub const LEASE_BASE: &str = "serin-controller-leader";

/// What this controller acts on, when it is one shard of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfig {
    /// `N/M` of `--shard`, if given.
    pub hash: Option<(u32, u32)>,
    /// The label selector of `--selector`, if given.
    pub selector: Option<String>,
}

impl ShardConfig {
    /// The shard's name as recorded in `status.shard`: `N/M`, the selector, or both
    /// (`N/M,selector`).
    pub fn name(&self) -> String {
        match (&self.hash, &self.selector) {
            (Some((n, m)), Some(s)) => format!("{n}/{m},{s}"),
            (Some((n, m)), None) => format!("{n}/{m}"),
            (None, Some(s)) => s.clone(),
            (None, None) => String::new(),
        }
    }

    /// Whether the Canary `namespace/name` hashes to this shard (always, without `--shard`).
    /// The selector is applied by the API server on the watch.
    pub fn owns(&self, namespace: &str, name: &str) -> bool {
        self.hash.is_none_or(|(n, m)| shard_of(namespace, name, m) == n)
    }
}

/// `N/M` with `N < M`.
pub fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (n, m) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not N/M (e.g. 0/3)"))?;
    let n: u32 = n.trim().parse().map_err(|_| format!("{text:?}: N is not a number"))?;
    let m: u32 = m.trim().parse().map_err(|_| format!("{text:?}: M is not a number"))?;
    if m == 0 || n >= m {
        return Err(format!("{text:?}: N counts from 0 and must be below M"));
    }
    Ok((n, m))
}

/// 64-bit FNV-1a.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The shard (of `count`) the Canary `namespace/name` belongs to.
pub fn shard_of(namespace: &str, name: &str, count: u32) -> u32 {
    let bucket = fnv1a(&format!("{namespace}/{name}")) % u64::from(count.max(1));
    u32::try_from(bucket).unwrap_or(0)
}

/// The Lease of the shard recorded as `shard` (`serin-controller-leader` for none):
/// `serin-controller-leader-shard-N-of-M` for a hash shard, with the FNV-1a of the selector
/// in hex appended when there is one.
pub fn lease_name(shard: &str) -> String {
    if shard.is_empty() {
        return LEASE_BASE.to_owned();
    }
    let (hash, selector) = match shard.split_once(',') {
        Some((hash, selector)) => (Some(hash), Some(selector)),
        None if parse_shard(shard).is_ok() => (Some(shard), None),
        None => (None, Some(shard)),
    };
    let mut name = LEASE_BASE.to_owned();
    if let Some((n, m)) = hash.and_then(|h| parse_shard(h).ok()) {
        name.push_str(&format!("-shard-{n}-of-{m}"));
    }
    if let Some(selector) = selector {
        name.push_str(&format!("-selector-{:016x}", fnv1a(selector)));
    }
    name
}

/// Whether to act on a Canary now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// It is ours (or nobody's and we are not sharded): go on.
    Act,
    /// Another shard holds it, or we just claimed it: come back after this long.
    Wait(Duration),
}

/// Whether someone holds the Lease `name` now.
async fn lease_held(ctx: &Context, name: &str) -> Result<bool, Error> {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), &ctx.config.lease_namespace);
    let Some(lease) = api.get_opt(name).await? else {
        return Ok(false);
    };
    let spec = lease.spec.unwrap_or_default();
    if spec.holder_identity.as_deref().unwrap_or_default().is_empty() {
        return Ok(false);
    }
    let renewed = spec.renew_time.map(|t| t.0.as_second()).unwrap_or(0);
    let valid_for = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    Ok(jiff::Timestamp::now().as_second() <= renewed + valid_for)
}

/// Decides whether this controller may act on `canary`, claiming it when it may take it.
pub(crate) async fn claim(ctx: &Context, canary: &Canary, api: &Api<Canary>) -> Result<Claim, Error> {
    let recorded = canary.status.as_ref().and_then(|s| s.shard.clone()).unwrap_or_default();
    let mine = ctx.config.shard.as_ref().map(ShardConfig::name).unwrap_or_default();
    if recorded == mine {
        return Ok(Claim::Act);
    }
    let wait = (ctx.config.lease_duration / 2).max(Duration::from_secs(1));
    if !recorded.is_empty() && lease_held(ctx, &lease_name(&recorded)).await? {
        tracing::info!(canary = %crate::reconcile::key(canary), held_by = %recorded, "another shard holds this Canary; waiting");
        return Ok(Claim::Wait(wait));
    }
    // Ours now: our shard, or (unsharded) no shard at all, so that the next reconciles need
    // no Lease read.
    let record = if mine.is_empty() { json!(null) } else { json!(mine) };
    let patch = json!({
        "metadata": {"resourceVersion": canary.resource_version()},
        "status": {"shard": record},
    });
    match api
        .patch_status(&canary.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(canary = %crate::reconcile::key(canary), shard = %mine, previous = %recorded, "claimed");
            Ok(Claim::Wait(Duration::ZERO))
        }
        // Someone else wrote first: look again at their record.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Claim::Wait(Duration::from_millis(500))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_spreads_canaries_evenly() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        let mut counts = [0u32; 3];
        for i in 0..30_000 {
            counts[shard_of("scale", &format!("app-{i}"), 3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..=10_500).contains(&c)), "{counts:?}");
        let config = ShardConfig {
            hash: Some((1, 3)),
            selector: None,
        };
        let owned = (0..300).filter(|i| config.owns("scale", &format!("app-{i}"))).count();
        assert!((80..=120).contains(&owned), "{owned}");
    }

    #[test]
    fn shard_names_and_their_leases() {
        assert_eq!(parse_shard("1/3"), Ok((1, 3)));
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let hash = ShardConfig {
            hash: Some((1, 3)),
            selector: None,
        };
        assert_eq!(hash.name(), "1/3");
        assert_eq!(lease_name(&hash.name()), "serin-controller-leader-shard-1-of-3");
        let both = ShardConfig {
            hash: Some((0, 2)),
            selector: Some("team=payments".into()),
        };
        assert!(lease_name(&both.name()).starts_with("serin-controller-leader-shard-0-of-2-selector-"));
        assert_ne!(lease_name("team=a"), lease_name("team=b"));
        assert_eq!(lease_name(""), LEASE_BASE);
        // Lease names are DNS subdomain names.
        let name = lease_name(&both.name());
        assert!(
            name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
