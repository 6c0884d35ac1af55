//! End to end, part three: the controller SIGKILLed at 20 random points across rollouts, and a
//! webhook that hangs for one Canary while another rolls out. Real processes, `--fast` timings.
//!
//! The kill points come from a seeded generator; the seed is printed, and `SERIN_E2E_SEED`
//! replays a run.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use kube::{
    Api,
    api::{DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};
use serin_sandbox::demo::{Observer, check_splits, seed_canary, set_image};
use tokio::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// xorshift64*: enough randomness for kill points, and replayable.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn text(c: &Value, pointer: &str) -> String {
    c.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Polls until Knative sends all traffic to `revision` (other entries at 0%); false when it
/// does not within 15 s.
async fn all_traffic_on(observer: &mut Observer, revision: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        observer.poll().await.expect("poll");
        let last = observer.splits.last().cloned().unwrap_or_default();
        if last
            .iter()
            .all(|(r, p)| if r == revision { *p == 100 } else { *p == 0 })
            && !last.is_empty()
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An event of a check that held a step: a halt, a failed query, a primary not ready.
fn is_hold(message: &str) -> bool {
    message.starts_with("Halt") || message.contains("query failed") || message.contains("not ready")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_at_random_points_and_a_hanging_webhook_elsewhere() {
    let (mut cluster, client, mut observer) =
        serin_sandbox::demo::seeded_cluster(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root(), true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));

    // A webhook that hangs for Canary `slow`: its pre-rollout check never answers (60 s timeout).
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hang_addr = hang.local_addr().expect("addr");
    let hung = Arc::new(AtomicUsize::new(0));
    let count = hung.clone();
    let _hanger = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let services: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "test",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("serving.knative.dev", "v1", "Service"),
            "services",
        ),
    );
    let mut ksvc: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join("testdata/seed/podinfo-ksvc.yaml")).expect("ksvc"))
            .expect("yaml");
    ksvc["metadata"]["name"] = json!("slow");
    services
        .create(&PostParams::default(), &serde_json::from_value(ksvc).expect("ksvc"))
        .await
        .expect("create slow");
    let mut slow = seed_canary(&root(), true).expect("seed");
    slow["metadata"]["name"] = json!("slow");
    slow["spec"]["targetRef"]["name"] = json!("slow");
    slow["spec"]["analysis"]["webhooks"] = json!([
        {"name": "hangs", "type": "pre-rollout", "url": format!("http://{hang_addr}/"), "timeout": "60s"}
    ]);
    let canaries = serin_sandbox::demo::canaries(&client);
    canaries
        .create(&PostParams::default(), &serde_json::from_value(slow).expect("canary"))
        .await
        .expect("create slow canary");
    let deadline = Instant::now() + Duration::from_secs(60);
    while text(
        &serde_json::to_value(canaries.get("slow").await.expect("get")).expect("json"),
        "/status/phase",
    ) != "Initialized"
    {
        assert!(Instant::now() < deadline, "slow never Initialized");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "ghcr.io/stefanprodan/podinfo:6.0.1"}
    ]))
    .expect("patch");
    services
        .patch("slow", &Default::default(), &kube::api::Patch::<()>::Json(patch))
        .await
        .expect("image of slow");
    let deadline = Instant::now() + Duration::from_secs(60);
    while hung.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the hanging webhook was never called");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // While `slow` hangs, podinfo's steps keep time: each comes at most 1 s after the 3 s
    // interval. A check of podinfo's own that halts (on a slow machine, the canary's first
    // requests may not have been scraped twice 3 s after its first step: "no values found")
    // holds a step for one interval, as under Flagger; such holds are allowed for, one interval
    // each. Waiting on `slow`'s hook would cost far more (its timeout is 60 s).
    set_image(&client, "6.1.0").await.expect("image");
    let events_before = observer.events.len();
    // (when the weight was first seen, the weight, how many events had been seen by then)
    let mut changes: Vec<(Instant, i64, usize)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let phase = loop {
        let c = observer.poll().await.expect("poll");
        let weight = c.pointer("/status/canaryWeight").and_then(Value::as_i64).unwrap_or(0);
        if changes.last().is_none_or(|(_, w, _)| *w != weight) {
            changes.push((Instant::now(), weight, observer.events.len()));
        }
        let phase = text(&c, "/status/phase");
        if phase == "Succeeded" || phase == "Failed" {
            break phase;
        }
        assert!(Instant::now() < deadline, "podinfo stuck in {phase}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rollout_events = &observer.events[events_before..];
    assert_eq!(phase, "Succeeded", "{rollout_events:#?}");
    let steps: Vec<(Instant, i64, usize)> = changes.into_iter().filter(|(_, w, _)| *w >= 10).collect();
    assert_eq!(
        steps.iter().map(|(_, w, _)| *w).collect::<Vec<_>>(),
        [10, 20, 30, 40, 50],
        "weights seen"
    );
    for pair in steps.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        let between = &observer.events[pair[0].2..pair[1].2];
        let holds = between.iter().filter(|e| is_hold(e)).count() as u32;
        println!(
            "podinfo weight {} -> {} after {gap:?} ({holds} halted checks between)",
            pair[0].1, pair[1].1
        );
        assert!(
            gap <= Duration::from_secs(3) * (1 + holds) + Duration::from_secs(1),
            "step to {} came {gap:?} after the one before (interval 3s, {holds} halted checks); events between: {between:#?}",
            pair[1].1
        );
    }
    let slow_now = serde_json::to_value(canaries.get("slow").await.expect("get")).expect("json");
    assert_eq!(text(&slow_now, "/status/phase"), "Progressing", "{slow_now:#}");
    assert_eq!(
        slow_now.pointer("/status/canaryWeight"),
        Some(&json!(0)),
        "slow is held by its hook"
    );
    canaries.delete("slow", &Default::default()).await.expect("delete slow");

    // SIGKILL at 20 random points across rollouts; each ends as it would have without them.
    let seed = std::env::var("SERIN_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    println!("kill points from SERIN_E2E_SEED={seed}");
    let mut rng = Rng(seed);
    let mut kills = 0;
    for (round, tag) in ["6.1.1", "6.0.2", "6.1.2", "6.0.2", "6.1.3", "6.0.2"]
        .iter()
        .enumerate()
    {
        if kills >= 20 {
            break;
        }
        let before = observer.canary().await.expect("canary");
        let (old_primary, old_canary) = (
            text(&before, "/status/primaryRevision"),
            text(&before, "/status/canaryRevision"),
        );
        observer.splits.clear();
        let events_before = observer.events.len();
        set_image(&client, tag).await.expect("image");
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut next_kill = Instant::now() + Duration::from_secs_f64(2.5 * rng.next_f64());
        let finished = loop {
            let c = observer.poll().await.expect("poll");
            let picked = text(&c, "/status/canaryRevision") != old_canary;
            let phase = text(&c, "/status/phase");
            if picked && (phase == "Succeeded" || phase == "Failed") {
                break c;
            }
            if kills < 20 && Instant::now() >= next_kill {
                cluster.kill_controller();
                cluster.start_controller().expect("restart");
                kills += 1;
                next_kill = Instant::now() + Duration::from_secs_f64(0.3 + 2.2 * rng.next_f64());
            }
            assert!(Instant::now() < deadline, "round {round} ({tag}) stuck in {phase}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let analysed = text(&finished, "/status/canaryRevision");
        let events = observer.events[events_before..].to_vec();
        if *tag == "6.0.2" {
            assert_eq!(text(&finished, "/status/phase"), "Failed", "{tag}: {events:#?}");
            assert_eq!(text(&finished, "/status/primaryRevision"), old_primary, "{tag}");
            assert!(
                all_traffic_on(&mut observer, &old_primary).await,
                "{:?}",
                observer.splits
            );
            assert!(events.iter().any(|e| e.contains("Rolling back")), "{events:#?}");
        } else {
            assert_eq!(text(&finished, "/status/phase"), "Succeeded", "{tag}: {events:#?}");
            assert_eq!(text(&finished, "/status/primaryRevision"), analysed, "{tag}");
            assert!(all_traffic_on(&mut observer, &analysed).await, "{:?}", observer.splits);
            assert!(events.iter().any(|e| e.contains("Promotion completed")), "{events:#?}");
        }
        check_splits(&observer.splits, 50).unwrap_or_else(|e| panic!("round {round} ({tag}): {e}"));
        println!(
            "round {round} ({tag}): {}, {kills} kills so far",
            text(&finished, "/status/phase")
        );
    }
    assert_eq!(kills, 20, "not enough rollouts to place 20 kills");
}
