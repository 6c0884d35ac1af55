//! End to end, part two: gates through the loadtester, a newer revision mid-analysis, API
//! faults, two replicas with leader election, and a Prometheus that stops. Real processes,
//! `--fast` timings, scenarios in sequence on one sandbox.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
};
use serde_json::{Value, json};
use serin_sandbox::{
    cluster::free_ports,
    demo::{rollout, seed_canary, set_image},
    kube_api::{FailRule, Faults},
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn has(events: &[String], needle: &str) -> bool {
    events.iter().any(|e| e.contains(needle))
}

/// POSTs the tutorial's gate payload to the loadtester.
fn gate(loadtester: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let body = r#"{"name":"podinfo","namespace":"test"}"#;
    let mut s = std::net::TcpStream::connect(loadtester).expect("loadtester");
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

async fn set_webhooks(canaries: &Api<DynamicObject>, extra: Vec<Value>) {
    let mut hooks = seed_canary(&root(), true).expect("seed")["spec"]["analysis"]["webhooks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    hooks.extend(extra);
    canaries
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"analysis": {"webhooks": hooks}}})),
        )
        .await
        .expect("webhooks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_restarts_faults_leadership_and_a_stopped_prometheus() {
    let (mut cluster, client, mut observer) =
        serin_sandbox::demo::seeded_cluster(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root(), true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    let canaries = serin_sandbox::demo::canaries(&client);
    let limit = Duration::from_secs(120);

    // Confirm-promotion gate held closed through the loadtester, then opened.
    set_webhooks(
        &canaries,
        vec![
            json!({"name": "approve", "type": "confirm-promotion", "url": "http://flagger-loadtester.test/gate/check"}),
        ],
    )
    .await;
    set_image(&client, "7.0.1").await.expect("image");
    observer
        .wait_phase(&["WaitingPromotion"], limit)
        .await
        .expect("waits for approval");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        observer.poll().await.expect("poll").pointer("/status/phase"),
        Some(&json!("WaitingPromotion")),
        "the closed gate holds"
    );
    assert!(gate(cluster.loadtester, "/gate/open").contains("202"));
    assert_eq!(
        observer
            .wait_phase(&["Succeeded", "Failed"], limit)
            .await
            .expect("promoted"),
        "Succeeded"
    );
    assert!(
        has(
            &observer.events,
            "Halt podinfo.test advancement waiting for promotion approval approve"
        ),
        "{:#?}",
        observer.events
    );

    // Rollback gate opened mid-analysis: rolled back.
    set_webhooks(
        &canaries,
        vec![json!({"name": "abort", "type": "rollback", "url": "http://flagger-loadtester.test/rollback/check"})],
    )
    .await;
    set_image(&client, "7.0.2").await.expect("image");
    observer.wait_weight(20, Duration::from_secs(60)).await.expect("weight");
    assert!(gate(cluster.loadtester, "/rollback/open").contains("202"));
    assert_eq!(
        observer.wait_phase(&["Failed"], limit).await.expect("rolled back"),
        "Failed"
    );
    assert!(
        has(&observer.events, "Rolling back podinfo.test manual webhook invoked"),
        "{:#?}",
        observer.events
    );
    assert!(gate(cluster.loadtester, "/rollback/close").contains("202"));
    set_webhooks(&canaries, vec![]).await;

    // A newer revision mid-analysis: the analysis restarts on it; the older is never promoted.
    set_image(&client, "7.0.3").await.expect("image");
    observer.wait_weight(20, Duration::from_secs(60)).await.expect("weight");
    let (phase, events) = rollout(&mut observer, &client, "7.0.4", limit)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(phase, "Succeeded", "{events:#?}");
    assert!(
        has(
            &observer.events,
            "New revision detected! Restarting analysis for podinfo.test"
        ),
        "{:#?}",
        observer.events
    );
    let canary = observer.canary().await.expect("canary");
    assert_eq!(canary.pointer("/status/primaryRevision"), Some(&json!("podinfo-00005")));
    assert!(
        !has(&observer.events, "Promoting revision podinfo-00004"),
        "the superseded revision was promoted"
    );

    // API faults: 30% of writes fail (409 and 500 in turn) and watch streams are cut every 5 s;
    // same outcome.
    let faults = Faults {
        writes: Some(FailRule {
            code: 409,
            ratio: 0.3,
            next: 0,
            also: vec![500],
        }),
        close_watches_after_ms: Some(5000),
        ..Faults::default()
    };
    let injected_before = cluster.injected_faults().expect("injected");
    cluster.set_faults(&faults).expect("faults");
    let (phase, events) = rollout(&mut observer, &client, "7.0.5", limit)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    cluster.set_faults(&Faults::default()).expect("clear faults");
    assert_eq!(phase, "Succeeded", "{events:#?}");
    let injected = cluster.injected_faults().expect("injected") - injected_before;
    assert!(
        injected >= 3,
        "the faults must have fired during the rollout: {injected} injected"
    );

    // Two replicas with --leader-elect: one acts; kill it and the other takes over.
    cluster.kill_replica(0);
    let listens: Vec<SocketAddr> = free_ports::<2>()
        .expect("ports")
        .iter()
        .map(|port| format!("127.0.0.1:{port}").parse().expect("addr"))
        .collect();
    for (i, listen) in listens.iter().enumerate() {
        let id = format!("replica-{i}");
        cluster
            .start_replica(
                *listen,
                &[
                    "--leader-elect",
                    "--lease-namespace",
                    "default",
                    "--lease-duration",
                    "3s",
                    "--identity",
                    &id,
                ],
            )
            .expect("replica");
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let holder = loop {
        if let Some(h) = leases
            .get_opt("serin-controller-leader")
            .await
            .expect("lease")
            .and_then(|l| l.spec?.holder_identity)
        {
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "nobody took the lease");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    set_image(&client, "7.0.6").await.expect("image");
    observer.wait_weight(20, Duration::from_secs(60)).await.expect("weight");
    let leader_index = if holder == "replica-0" { 1 } else { 2 };
    cluster.kill_replica(leader_index);
    assert_eq!(
        observer
            .wait_phase(&["Succeeded", "Failed"], limit)
            .await
            .expect("the standby finished it"),
        "Succeeded"
    );
    let new_holder = leases
        .get("serin-controller-leader")
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity);
    assert!(new_holder.is_some_and(|h| h != holder), "the standby holds the lease");

    // Prometheus stops mid-analysis: no promotion, and the reason is in status.
    set_image(&client, "7.0.7").await.expect("image");
    observer.wait_weight(10, Duration::from_secs(60)).await.expect("weight");
    cluster.prometheus.stop();
    let phase = observer
        .wait_phase(&["Succeeded", "Failed"], limit)
        .await
        .expect("finished");
    assert_eq!(phase, "Failed");
    assert!(
        has(&observer.events, "Prometheus query failed for request-success-rate"),
        "{:#?}",
        observer.events
    );
    let canary = observer.canary().await.expect("canary");
    let checks = canary
        .pointer("/status/lastDecision/summary")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    assert!(checks.contains("Rolling back"), "{checks}");
}
