//! The loadtester's HTTP API in-process, against a real local target server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serin_loadtester::{
    gates::GateStore,
    generator, hey,
    metrics::Metrics,
    server::{AppState, serve},
    tasks::{TaskConfig, Tasks},
};

/// A target that counts requests.
async fn target() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(axum::routing::any(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), hits)
}

/// The target's count once the run has ended: it has not changed for half a second, at least
/// 2 s (the run's length) after the call, with a 15 s deadline for a slow machine.
async fn settled_count(hits: &AtomicU64) -> u64 {
    let started = std::time::Instant::now();
    let mut last = hits.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = hits.load(Ordering::Relaxed);
        let quiet = now == last && now > 0;
        if (quiet && started.elapsed() >= Duration::from_secs(2)) || started.elapsed() > Duration::from_secs(15) {
            return now;
        }
        last = now;
    }
}

async fn loadtester(allow_shell: bool, token: Option<&str>) -> String {
    loadtester_resolving(allow_shell, token, vec![]).await
}

async fn loadtester_resolving(allow_shell: bool, token: Option<&str>, resolve: Vec<(String, String)>) -> String {
    let metrics = Arc::new(Metrics::new());
    let tasks = Tasks::new(
        TaskConfig {
            allow_shell,
            task_timeout: Duration::from_secs(30),
            max_tasks: 4,
            namespace_regexp: None,
            resolve,
        },
        metrics.clone(),
    );
    let state = AppState {
        gates: Arc::new(GateStore::in_memory()),
        tasks,
        metrics,
        token: token.map(str::to_owned),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, state, std::future::pending()));
    format!("http://{addr}")
}

fn payload(metadata: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "x", "metadata": metadata})
}

async fn post(url: &str, body: &serde_json::Value) -> (u16, String) {
    let r = http().post(url).json(body).send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn gates_follow_flaggers_status_codes() {
    let base = loadtester(false, None).await;
    let p = payload(serde_json::json!({}));
    assert_eq!(post(&format!("{base}/gate/check"), &p).await, (403, "Forbidden".into()));
    assert_eq!(post(&format!("{base}/gate/open"), &p).await.0, 202);
    assert_eq!(post(&format!("{base}/gate/check"), &p).await, (200, "Approved".into()));
    assert_eq!(post(&format!("{base}/gate/close"), &p).await.0, 202);
    assert_eq!(post(&format!("{base}/gate/check"), &p).await.0, 403);
    assert_eq!(post(&format!("{base}/rollback/check"), &p).await.0, 403);
    assert_eq!(post(&format!("{base}/rollback/open"), &p).await.0, 202);
    assert_eq!(
        post(&format!("{base}/rollback/check"), &p).await,
        (200, "Approved".into())
    );
    assert_eq!(
        post(&format!("{base}/gate/check"), &p).await.0,
        403,
        "rollback and promotion gates are separate"
    );
    assert_eq!(post(&format!("{base}/gate/approve"), &p).await.0, 200);
    assert_eq!(post(&format!("{base}/gate/halt"), &p).await.0, 403);
    assert_eq!(
        post(&format!("{base}/gate/check"), &serde_json::json!("garbage"))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn token_protects_everything_but_healthz() {
    let base = loadtester(false, Some("s3cret")).await;
    let client = http();
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("req")
            .status(),
        200
    );
    let p = payload(serde_json::json!({}));
    assert_eq!(
        client
            .post(format!("{base}/gate/approve"))
            .json(&p)
            .send()
            .await
            .expect("req")
            .status(),
        401
    );
    let ok = client
        .post(format!("{base}/gate/approve"))
        .bearer_auth("s3cret")
        .json(&p)
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200);
    let wrong = client
        .post(format!("{base}/gate/approve"))
        .bearer_auth("guess")
        .json(&p)
        .send()
        .await
        .expect("req");
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn shell_is_refused_without_allow_shell() {
    let base = loadtester(false, None).await;
    let (code, body) = post(&base, &payload(serde_json::json!({"type": "bash", "cmd": "echo hi"}))).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = post(
        &base,
        &payload(serde_json::json!({"type": "cmd", "cmd": "curl http://podinfo.test"})),
    )
    .await;
    assert_eq!(code, 403);
    assert!(body.contains("--allow-shell"), "{body}");
}

#[tokio::test]
async fn bash_runs_with_allow_shell_and_returns_output() {
    let base = loadtester(true, None).await;
    let (code, body) = post(
        &base,
        &payload(serde_json::json!({"type": "bash", "cmd": "echo hi", "returnCmdOutput": "true"})),
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "hi\n"));
    let (code, body) = post(&base, &payload(serde_json::json!({"type": "bash", "cmd": "exit 3"}))).await;
    assert_eq!(code, 500);
    assert!(body.starts_with("command exit 3 failed"), "{body}");
}

#[tokio::test]
async fn bad_tasks_are_400_with_a_message() {
    let base = loadtester(false, None).await;
    let (code, body) = post(&base, &payload(serde_json::json!({"type": "jmeter"}))).await;
    assert_eq!((code, body.as_str()), (400, "unknown task type jmeter"));
    let (code, body) = post(&base, &payload(serde_json::json!({"type": "ngrinder"}))).await;
    assert_eq!(
        (code, body.as_str()),
        (400, "server, clone, username and passwd are required metadata")
    );
    let (code, body) = post(&base, &payload(serde_json::json!({}))).await;
    assert_eq!((code, body.as_str()), (400, "metadata not found in payload"));
    let (code, body) = post(
        &base,
        &payload(serde_json::json!({"type": "cmd", "cmd": "hey -c nope http://x"})),
    )
    .await;
    assert_eq!(code, 400);
    assert!(body.contains("flag -c"), "{body}");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let base = loadtester(false, None).await;
    let big = payload(serde_json::json!({"cmd": "x".repeat(100 * 1024)}));
    assert_eq!(post(&base, &big).await.0, 413);
}

#[tokio::test]
async fn seed_cmd_webhook_is_accepted_deduplicated_and_generates_load() {
    let (url, hits) = target().await;
    let base = loadtester(false, None).await;
    let cmd = format!("hey -z 2s -q 5 -c 2 {url}");
    let p = payload(serde_json::json!({"type": "cmd", "cmd": cmd, "logCmdOutput": "true"}));
    assert_eq!(post(&base, &p).await.0, 202);
    assert_eq!(
        post(&base, &p).await.0,
        202,
        "a second call while running is accepted and skipped"
    );
    let n = settled_count(&hits).await;
    // 2 workers × 5 req/s × 2 s = 20 requests from one run (a duplicate run would double it).
    assert!((16..=24).contains(&n), "expected about 20 requests, got {n}");
    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"serin_loadtester_tasks_total{kind="load",outcome="skipped"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("serin_loadtester_requests_total{target="), "{metrics}");
}

#[tokio::test]
async fn resolved_hosts_reach_their_address_with_the_original_host_header() {
    let (url, hits) = target().await;
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let base = loadtester_resolving(false, None, vec![(".test".into(), addr)]).await;
    let p = payload(serde_json::json!({"type": "cmd", "cmd": "hey -n 20 -c 2 http://podinfo.test/"}));
    assert_eq!(post(&base, &p).await.0, 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hits.load(Ordering::Relaxed) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} requests arrived",
            hits.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn exact_request_count_with_n() {
    let (url, hits) = target().await;
    let spec = hey::parse_command(&format!("hey -n 200 -c 4 {url}")).expect("spec");
    let summary = generator::run(&spec).await.expect("run");
    assert_eq!(summary.responses, 200);
    assert_eq!(summary.by_status.get(&200), Some(&200));
    assert_eq!(hits.load(Ordering::Relaxed), 200);
}

/// An HTTP client (with the process's rustls provider installed first).
fn http() -> reqwest::Client {
    serin_webhook::install_crypto_provider();
    reqwest::Client::new()
}

#[tokio::test]
async fn hey_host_and_basic_auth_reach_the_target_as_headers() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(axum::routing::any(move |headers: axum::http::HeaderMap| {
        let record = record.clone();
        async move {
            let get = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            record.lock().expect("lock").push((get("host"), get("authorization")));
            "ok"
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let spec = hey::parse_command(&format!("hey -n 4 -c 2 -host app.example.com -a u:p http://{addr}/")).expect("spec");
    let summary = generator::run(&spec).await.expect("run");
    assert_eq!(summary.responses, 4);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter()
            .all(|(host, auth)| host == "app.example.com" && auth == "Basic dTpw"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_hey_flag_run_only_by_the_real_hey_is_refused_with_the_fix() {
    let base = loadtester(false, None).await;
    let p = payload(serde_json::json!({"type": "cmd", "cmd": "hey -z 1m -D /etc/passwd https://podinfo.test/"}));
    let (code, body) = post(&base, &p).await;
    assert_eq!(
        (code, body.as_str()),
        (
            403,
            "hey -D is not run natively (a webhook does not get to read the loadtester's files); run the loadtester with --allow-shell (deploy/tester-tools) to run it"
        )
    );
    for kind in ["bash", "helm", "helmv3", "kubectl", "concord"] {
        let p = payload(serde_json::json!({"type": kind, "cmd": "version"}));
        let (code, body) = post(&base, &p).await;
        assert_eq!(
            (code, body),
            (
                403,
                format!(
                    "a {kind} task is not run natively; run the loadtester with --allow-shell (deploy/tester-tools) to run it"
                )
            )
        );
    }
}
