//! Flagger's program and service task types against a loadtester process started with
//! `--allow-shell`: stub `helm` and `kubectl` binaries record their exact argv; stub Concord
//! and nGrinder servers check each request.

mod support;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::HeaderMap,
    routing::{get, post},
};
use serde_json::{Value, json};
use support::start_server;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("serin-lt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A stub program that appends its name and arguments, one per line, to `$STUB_LOG`.
fn stub(dir: &Path, name: &str, exit: i32) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let script =
        format!("#!/bin/sh\nprintf '%s\\n' \"{name}\" \"$@\" >> \"$STUB_LOG\"\necho \"{name} ran\"\nexit {exit}\n");
    std::fs::write(&path, script).expect("write stub");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

async fn post_task(port: u16, metadata: Value) -> (u16, String) {
    let body = json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "metadata": metadata});
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .json(&body)
        .send()
        .await
        .expect("post");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn helm_and_kubectl_run_with_flaggers_argument_splitting() {
    let dir = scratch("stubs");
    stub(&dir, "helm", 0);
    stub(&dir, "kubectl", 1);
    let log = dir.join("argv.log");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let (_lt, port) = start_server(
        &["--allow-shell"],
        &[("PATH", path.as_str()), ("STUB_LOG", log.to_str().expect("utf-8 path"))],
    );

    let (code, body) = post_task(
        port,
        json!({"type": "helmv3", "cmd": "test podinfo  -n test --timeout 3m", "returnCmdOutput": "true"}),
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "helm ran\n"));
    let (code, body) = post_task(port, json!({"type": "helm", "cmd": "test 'quoted arg'"})).await;
    assert_eq!((code, body.as_str()), (200, ""));
    let (code, body) = post_task(port, json!({"type": "kubectl", "cmd": "rollout status deploy/podinfo"})).await;
    assert_eq!(code, 500);
    assert_eq!(
        body,
        "command rollout status deploy/podinfo failed: kubectl ran: exit status: 1"
    );

    let argv = std::fs::read_to_string(&log).expect("stub log");
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "helm",
            "test",
            "podinfo",
            "-n",
            "test",
            "--timeout",
            "3m", // whitespace split
            "helm",
            "test",
            "'quoted",
            "arg'", // no quote handling, as strings.Fields
            "kubectl",
            "rollout",
            "status",
            "deploy/podinfo",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_non_native_cmd_runs_in_sh_in_the_background() {
    let dir = scratch("cmd");
    let marker = dir.join("ran");
    let (_lt, port) = start_server(&["--allow-shell"], &[]);
    let cmd = format!("echo from-sh | tee {} >/dev/null", marker.display());
    let (code, _) = post_task(port, json!({"cmd": cmd})).await;
    assert_eq!(code, 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&marker).unwrap_or_default() != "from-sh\n" {
        assert!(Instant::now() < deadline, "the background command did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the stub services received.
#[derive(Default)]
struct Calls(Mutex<Vec<String>>);

impl Calls {
    fn push(&self, call: String) {
        if let Ok(mut calls) = self.0.lock() {
            calls.push(call);
        }
    }

    fn list(&self) -> Vec<String> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// The multipart form's fields (a small reader for the stub's checks).
fn form_fields(headers: &HeaderMap, body: &[u8]) -> BTreeMap<String, String> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = content_type.split("boundary=").nth(1).unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    text.split(&format!("--{boundary}"))
        .filter_map(|part| {
            let (head, value) = part.split_once("\r\n\r\n")?;
            let name = head.split("name=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), value.trim_end_matches("\r\n").to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn concord_starts_a_process_with_the_api_key_and_waits_for_it() {
    let calls = Arc::new(Calls::default());
    let app = Router::new()
        .route(
            "/api/v1/process",
            post(
                |State(calls): State<Arc<Calls>>, headers: HeaderMap, body: Bytes| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    calls.push(format!("start auth={auth} {:?}", form_fields(&headers, &body)));
                    Json(json!({"instanceId": "p-1", "ok": true}))
                },
            ),
        )
        .route(
            "/api/v1/process/{id}",
            get(
                |State(calls): State<Arc<Calls>>, UrlPath(id): UrlPath<String>| async move {
                    let polls = calls.list().iter().filter(|c| c.starts_with("poll")).count();
                    calls.push(format!("poll {id}"));
                    Json(json!({"instanceId": id, "status": if polls == 0 { "RUNNING" } else { "FINISHED" }}))
                },
            ),
        )
        .with_state(calls.clone());
    let concord = serve(app).await;
    let dir = scratch("concord");
    let key = dir.join("api-key");
    std::fs::write(&key, "secret-key\n").expect("key");
    let (_lt, port) = start_server(&["--allow-shell"], &[]);
    let meta = json!({
        "type": "concord", "server": format!("http://127.0.0.1:{concord}/base"),
        "org": "acme", "project": "shop", "repo": "tests", "entrypoint": "smoke",
        "apiKeyPath": key.to_str().expect("utf-8 path"), "endpoint": "http://podinfo-canary",
        "arguments.region": "eu", "pollInterval": "1",
    });
    let (code, body) = post_task(port, meta.clone()).await;
    assert_eq!((code, body.as_str()), (200, ""));
    assert_eq!(
        calls.list(),
        [
            r#"start auth=secret-key {"arguments.endpoint": "http://podinfo-canary", "arguments.region": "eu", "entryPoint": "smoke", "org": "acme", "project": "shop", "repo": "tests"}"#,
            "poll p-1",
            "poll p-1",
        ]
    );

    let mut bad = meta;
    bad["arguments.endpoint"] = json!("elsewhere");
    let (code, body) = post_task(port, bad).await;
    assert_eq!(
        (code, body.as_str()),
        (
            500,
            "You cannot override Endpoint through arguments. You must override Endpoint directly"
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ngrinder_clones_starts_and_polls_in_the_background() {
    let calls = Arc::new(Calls::default());
    let app = Router::new()
        .route(
            "/perftest/api/{clone}/clone_and_start",
            post(
                |State(calls): State<Arc<Calls>>, headers: HeaderMap, UrlPath(clone): UrlPath<String>| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    calls.push(format!("clone {clone} {auth}"));
                    Json(json!({"id": 42, "success": true}))
                },
            ),
        )
        .route(
            "/perftest/api/{id}/status",
            get(
                |State(calls): State<Arc<Calls>>, UrlPath(id): UrlPath<String>| async move {
                    let polls = calls.list().iter().filter(|c| c.starts_with("status")).count();
                    calls.push(format!("status {id}"));
                    let state = if polls == 0 { "TESTING" } else { "FINISHED" };
                    Json(json!({"status": [{"status_id": state}], "success": true}))
                },
            ),
        )
        .with_state(calls.clone());
    let ngrinder = serve(app).await;
    // nGrinder needs no program: it runs without --allow-shell.
    let (_lt, port) = start_server(&[], &[]);
    let meta = json!({
        "type": "ngrinder", "server": format!("http://127.0.0.1:{ngrinder}"), "clone": "7",
        "username": "admin", "passwd": "YWRtaW4=", "pollInterval": "200ms",
    });
    let (code, _) = post_task(port, meta).await;
    assert_eq!(code, 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.list().len() < 3 {
        assert!(Instant::now() < deadline, "calls so far: {:?}", calls.list());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Basic admin:admin, as base64-decoded from `passwd`.
    assert_eq!(
        calls.list(),
        ["clone 7 Basic YWRtaW46YWRtaW4=", "status 42", "status 42"]
    );
}
