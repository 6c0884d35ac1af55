//! The loadtester as a real process: gate state survives a restart; `run` prints a summary.

mod support;

use std::process::Command;

use std::sync::atomic::Ordering;

use support::{Running, free_port};

fn start(port: u16, state: &std::path::Path) -> Running {
    support::start_at(port, &["--bind", "127.0.0.1", "--port", &port.to_string()], &[], state)
}

fn post(port: u16, path: &str) -> u16 {
    let body = r#"{"name":"podinfo","namespace":"test"}"#;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        http()
            .post(format!("http://127.0.0.1:{port}{path}"))
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

#[test]
fn gate_state_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("serin-lt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let state = dir.join("gates.json");
    let _ = std::fs::remove_file(&state);
    let port = free_port();
    {
        let _lt = start(port, &state);
        assert_eq!(post(port, "/gate/check"), 403);
        assert_eq!(post(port, "/gate/open"), 202);
    }
    let port = free_port();
    let _lt = start(port, &state);
    assert_eq!(
        post(port, "/gate/check"),
        200,
        "the opened gate must survive the restart"
    );
}

#[test]
fn run_subcommand_prints_a_hey_like_summary() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, axum::Router::new().fallback(|| async { "ok" })).await });
    let out = Command::new(env!("CARGO_BIN_EXE_serin-loadtester"))
        .args(["run", "-n", "50", "-c", "5", &format!("http://{addr}/")])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("  [200]\t50 responses\n"), "{stdout}");
    assert!(stdout.contains("Requests/sec:"), "{stdout}");
}

/// An HTTP client (with the process's rustls provider installed first).
fn http() -> reqwest::Client {
    serin_webhook::install_crypto_provider();
    reqwest::Client::new()
}

#[test]
fn flaggers_tester_arguments_start_it_unchanged() {
    let dir = std::env::temp_dir().join(format!("serin-lt-flagger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    // Flagger's kustomize/tester arguments, plus what this test needs (loopback, a state file).
    let port_flag = format!("-port={port}");
    let _running = support::start_at(
        port,
        &[
            &port_flag,
            "-log-level=info",
            "-timeout=1h",
            "-zap-encoding=json",
            "--bind",
            "127.0.0.1",
        ],
        &[],
        &dir.join("gates.json"),
    );
    assert_eq!(post(port, "/gate/check"), 403, "a closed gate, as in Flagger");
}

/// Here, not beside the other load tests: those saturate the CPU and would bend the rate.
#[test]
fn the_rate_limit_holds_within_ten_percent() {
    let target = support::start_target(false, b"r");
    // hey's -q is per worker: 2 workers × 10/s × 2 s = 40 requests.
    support::run_load(&[
        "-z",
        "2s",
        "-q",
        "10",
        "-c",
        "2",
        &format!("http://127.0.0.1:{}/", target.port),
    ]);
    let sent = target.seen.requests.load(Ordering::Relaxed);
    assert!((36..=44).contains(&sent), "{sent} requests, expected 40 ± 10%");
}
