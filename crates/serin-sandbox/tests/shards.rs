//! Sharded controllers as real processes against the API emulator: two shards (`--shard 0/2`
//! with two replicas, `--shard 1/2` with one) roll out 16 Canaries; the leader of shard 0 is
//! killed mid-run and its standby finishes its Canaries; every Canary records the shard its
//! name hashes to, and the other shard's Canaries advance exactly once per step. Then the
//! shard count changes: a `--shard 0/1` controller started beside the old shards acts on
//! nothing while their Leases are held, and takes every Canary over once they are gone.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::Value;
use serin_reconciler::shard::{lease_name, shard_of};
use serin_sandbox::fleet::{Fleet, NAMESPACE};

const CANARIES: usize = 16;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn args(shard: &str, identity: &str) -> Vec<String> {
    ["--shard", shard, "--identity", identity, "--lease-duration", "3s"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

async fn holder(fleet: &Fleet, lease: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(fleet.client.clone(), NAMESPACE);
    leases.get_opt(lease).await.ok()??.spec?.holder_identity
}

/// Each Canary's status field at `pointer` (empty when absent).
async fn status_of_each(fleet: &Fleet, pointer: &str) -> BTreeMap<String, String> {
    fleet
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|c| {
            let value = c.data.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_owned();
            (c.metadata.name.unwrap_or_default(), value)
        })
        .collect()
}

/// Each Canary's recorded shard.
async fn recorded(fleet: &Fleet) -> BTreeMap<String, String> {
    status_of_each(fleet, "/status/shard").await
}

/// Each Canary's `status.lastPromotedSpec`.
async fn promoted(fleet: &Fleet) -> BTreeMap<String, String> {
    status_of_each(fleet, "/status/lastPromotedSpec").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_canaries_fail_over_and_hand_over_safely() {
    let mut fleet = Fleet::start(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    fleet.create(CANARIES, "2s").await.expect("canaries");
    let a0 = fleet
        .start_controller(&args("0/2", "shard0-a"))
        .expect("shard 0 replica a");
    let leader_of_0 = lease_name("0/2");
    // The first replica of shard 0 leads before its standby starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while holder(&fleet, &leader_of_0).await.as_deref() != Some("shard0-a") {
        assert!(tokio::time::Instant::now() < deadline, "shard 0 never elected a leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet
        .start_controller(&args("0/2", "shard0-b"))
        .expect("shard 0 replica b");
    fleet.start_controller(&args("1/2", "shard1-a")).expect("shard 1");
    let initialized = fleet
        .wait_all(CANARIES, "Initialized", Duration::from_secs(60))
        .await
        .expect("initialize");
    assert_eq!(initialized, CANARIES, "logs in {}", fleet.logs.display());

    // Roll out; kill shard 0's leader once the first steps are taken.
    fleet
        .roll_out(CANARIES, "example.com/app:2", Duration::ZERO)
        .await
        .expect("roll out");
    fleet
        .wait_all(1, "Progressing", Duration::from_secs(30))
        .await
        .expect("progressing");
    fleet.kill_controller(a0);
    let succeeded = fleet
        .wait_all(CANARIES, "Succeeded", Duration::from_secs(120))
        .await
        .expect("succeed");
    assert_eq!(succeeded, CANARIES, "logs in {}", fleet.logs.display());
    assert_eq!(holder(&fleet, &leader_of_0).await.as_deref(), Some("shard0-b"));
    let shards = recorded(&fleet).await;
    for (name, shard) in &shards {
        assert_eq!(*shard, format!("{}/2", shard_of(NAMESPACE, name, 2)), "{name}");
    }
    let mut advances: BTreeMap<(String, String), i32> = BTreeMap::new();
    for (object, message, count) in fleet.events().await.expect("events") {
        if message.starts_with("Advance ") {
            *advances.entry((object, message)).or_default() += count;
        }
    }
    for ((object, message), count) in &advances {
        if shard_of(NAMESPACE, object, 2) == 1 {
            assert_eq!(*count, 1, "{object}: {message:?} {count} times");
        }
    }
    assert!(advances.len() >= CANARIES * 2, "{advances:?}");

    // A new shard count beside the old shards: it waits while their Leases are held.
    let promoted_before = promoted(&fleet).await;
    fleet.start_controller(&args("0/1", "one-shard")).expect("new shard");
    fleet
        .roll_out(CANARIES, "example.com/app:3", Duration::ZERO)
        .await
        .expect("second roll out");
    promoted_again(&fleet, &promoted_before, |_| true).await;
    assert_eq!(recorded(&fleet).await, shards, "the old shards kept their Canaries");

    // The old shards go: once their Leases lapse, the new shard claims every Canary.
    let promoted_before = promoted(&fleet).await;
    for index in 1..3 {
        fleet.kill_controller(index);
    }
    fleet
        .roll_out(CANARIES, "example.com/app:4", Duration::ZERO)
        .await
        .expect("third roll out");
    promoted_again(&fleet, &promoted_before, |shard| shard == "0/1").await;
}

/// Waits until every Canary has promoted a spec other than in `before`, is Succeeded, and
/// records a shard `accepted`.
async fn promoted_again(fleet: &Fleet, before: &BTreeMap<String, String>, accepted: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let shards = recorded(fleet).await;
        let now = promoted(fleet).await;
        let again = now
            .iter()
            .filter(|(name, spec)| before.get(*name) != Some(spec))
            .count();
        let succeeded = fleet
            .wait_all(CANARIES, "Succeeded", Duration::ZERO)
            .await
            .expect("list");
        if succeeded == CANARIES && again == CANARIES && shards.values().all(|s| accepted(s)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{shards:?}, {succeeded} succeeded, {again} promoted again; logs in {}",
            fleet.logs.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
