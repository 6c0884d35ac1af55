//! `serin promote`, `abort`, `retry` and `promote --full` against the sandbox with the
//! controller running: each request moves a seed rollout as documented, through a kubeconfig.

use std::{path::PathBuf, process::Command, time::Duration};

use kube::api::{Patch, PatchParams};
use serde_json::json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn serin(kubeconfig: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .args(["--kubeconfig", kubeconfig])
        .env("USER", "alice")
        .output()
        .expect("serin runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn run(kubeconfig: &str, args: &[&str]) -> (i32, String, String) {
    let kubeconfig = kubeconfig.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        serin(&kubeconfig, &args)
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_abort_retry_and_full_promotion_move_a_seed_rollout() {
    // The sandbox binaries sit beside this one once `cargo build --workspace --bins` ran.
    let sandbox = PathBuf::from(env!("CARGO_BIN_EXE_serin")).with_file_name("serin-sandbox");
    let (cluster, client, mut observer) = serin_sandbox::demo::seeded_cluster(&sandbox, &root(), true)
        .await
        .unwrap_or_else(|e| panic!("{e:#} (build the binaries first: cargo build --workspace --bins)"));
    let config = cluster.write_kubeconfig().expect("kubeconfig");
    let config = config.to_str().expect("utf-8").to_owned();

    // Nothing in flight: refused with the reason, nothing written.
    let (code, _, stderr) = run(&config, &["promote", "podinfo"]).await;
    assert_eq!(
        (code, stderr.trim()),
        (
            1,
            "serin: Canary test/podinfo is Initialized: only a Progressing rollout can be promoted (a closed gate is opened with `serin approve`)"
        )
    );

    // A revision with 30% of 5xx and a threshold it will not reach soon: stuck at 10%.
    serin_sandbox::demo::canaries(&client)
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"analysis": {"threshold": 1000}}})),
        )
        .await
        .expect("threshold");
    serin_sandbox::demo::set_image(&client, "6.0.2").await.expect("image");
    observer
        .wait_weight(10, Duration::from_secs(60))
        .await
        .expect("first step");

    let (code, stdout, stderr) = run(&config, &["promote", "podinfo"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    observer
        .wait_weight(20, Duration::from_secs(30))
        .await
        .expect("promote moved one step");

    let (code, stdout, stderr) = run(&config, &["abort", "podinfo", "--reason", "errors in the logs"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        observer
            .wait_phase(&["Failed"], Duration::from_secs(30))
            .await
            .expect("aborted"),
        "Failed"
    );
    let (code, _, stderr) = run(&config, &["abort", "podinfo"]).await;
    assert_eq!(
        (code, stderr.trim()),
        (1, "serin: Canary test/podinfo is Failed: no rollout is in flight")
    );

    let (code, stdout, stderr) = run(&config, &["retry", "podinfo"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        observer
            .wait_phase(&["Progressing"], Duration::from_secs(30))
            .await
            .expect("retried"),
        "Progressing"
    );
    observer
        .wait_weight(10, Duration::from_secs(60))
        .await
        .expect("first step again");

    let (code, stdout, stderr) = run(&config, &["promote", "podinfo", "--full"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        observer
            .wait_phase(&["Succeeded"], Duration::from_secs(30))
            .await
            .expect("promoted"),
        "Succeeded"
    );
    let canary = observer.canary().await.expect("canary");
    assert_eq!(canary["status"]["primaryRevision"], "podinfo-00002");
    // Each request was recorded as handled and its annotation removed.
    let handled = canary["status"]["handledRequests"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for key in [
        "serin.dev/promote",
        "serin.dev/abort",
        "serin.dev/retry",
        "serin.dev/promote-full",
    ] {
        assert!(handled.contains_key(key), "{key} not recorded: {canary:#}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let canary = observer.canary().await.expect("canary");
        let left: Vec<String> = canary["metadata"]["annotations"]
            .as_object()
            .map(|a| a.keys().filter(|k| k.starts_with("serin.dev/")).cloned().collect())
            .unwrap_or_default();
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "request annotations left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let events = observer.events.join("\n");
    for expected in [
        "The next step of podinfo.test requested by alice",
        "Abort of podinfo.test requested by alice: errors in the logs",
        "Rolling back podinfo.test abort requested",
        "Retry of podinfo.test requested by alice: analysing revision podinfo-00002 again",
        "Full promotion of podinfo.test requested by alice",
    ] {
        assert!(events.contains(expected), "{expected:?} missing from:\n{events}");
    }
    drop(cluster);
}
