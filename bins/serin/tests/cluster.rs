//! `serin get`, `pause`, `resume` and `dashboard` as a process against the API emulator,
//! through a kubeconfig file as kubectl would use it.

use std::{path::PathBuf, process::Command};

use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serin_api::Canary;
use serin_sandbox::kube_api::KubeApi;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn serin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .output()
        .expect("serin runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A kubeconfig whose current context reaches `server` in namespace `test`.
fn kubeconfig(server: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("serin-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // One file per emulator: tests run in parallel.
    let path = dir.join(format!("config-{}", server.rsplit(':').next().unwrap_or("0")));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {server}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: me\n    namespace: test\ncurrent-context: sandbox\nusers:\n- name: me\n  user: {{}}\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// The API emulator with Serin's Canary CRD, namespace `test` and the seed's Canary.
async fn emulator_with_the_seed_canary() -> (KubeApi, Api<Canary>) {
    let api = KubeApi::start(0).await.expect("emulator");
    let crd = std::fs::read_to_string(root().join("deploy/crds/canaries.flagger.app.yaml")).expect("crd");
    api.install_crd(serde_saphyr::from_str(&crd).expect("yaml"))
        .expect("install");
    api.create_namespace("test");
    let canaries: Api<Canary> = Api::namespaced(api.client().expect("client"), "test");
    let seed = std::fs::read_to_string(root().join("testdata/seed/podinfo-canary.yaml")).expect("seed");
    let canary: Canary = serde_saphyr::from_str(&seed).expect("canary");
    canaries.create(&PostParams::default(), &canary).await.expect("create");
    (api, canaries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pause_and_resume_work_through_a_kubeconfig() {
    let (api, canaries) = emulator_with_the_seed_canary().await;
    let status = serde_json::json!({"status": {
        "phase": "Progressing", "canaryWeight": 20, "failedChecks": 1,
        "primaryRevision": "podinfo-00001", "canaryRevision": "podinfo-00002",
        "estimatedPromotionAt": "2026-12-02T10:00:00Z",
        "lastDecision": {"summary": "analysis passed; canary weight 20%", "checks": ["request-success-rate 99.9% (bound >= 99%) Pass"]},
    }});
    canaries
        .patch_status("podinfo", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");
    let config = kubeconfig(&api.url());
    let config = config.to_str().expect("utf-8 path");

    let output = tokio::task::spawn_blocking({
        let config = config.to_owned();
        move || {
            (
                serin(&["get", "canaries", "--kubeconfig", &config]),
                serin(&["get", "canary", "podinfo", "--kubeconfig", &config]),
                serin(&["get", "canary", "missing", "--kubeconfig", &config]),
                serin(&["get", "canaries", "-A", "-n", "test", "--kubeconfig", &config]),
                serin(&["pause", "podinfo", "--kubeconfig", &config]),
            )
        }
    })
    .await
    .expect("join");
    let (list, one, missing, both, pause) = output;
    assert_eq!(list.0, 0, "{list:?}");
    let lines: Vec<&str> = list.1.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE  NAME     PHASE"), "{}", list.1);
    assert!(
        lines[1].contains("podinfo")
            && lines[1].contains("Progressing")
            && lines[1].contains("podinfo-00001 → podinfo-00002")
            && lines[1].contains("1/15"),
        "{}",
        list.1
    );
    assert_eq!(one.0, 0, "{one:?}");
    assert!(one.1.contains("  Weight:    20%\n"), "{}", one.1);
    assert!(
        one.1.contains("    request-success-rate 99.9% (bound >= 99%) Pass\n"),
        "{}",
        one.1
    );
    assert_eq!(
        (missing.0, missing.2.trim()),
        (1, "serin: Canary test/missing not found")
    );
    assert_eq!((both.0, both.2.trim()), (1, "serin: use either -A or -n, not both"));
    assert_eq!(pause.0, 0, "{pause:?}");
    assert_eq!(canaries.get("podinfo").await.expect("get").spec.suspend, Some(true));
    let resume = tokio::task::spawn_blocking({
        let config = config.to_owned();
        move || serin(&["resume", "podinfo", "--kubeconfig", &config])
    })
    .await
    .expect("join");
    assert_eq!(resume.0, 0, "{resume:?}");
    assert_eq!(canaries.get("podinfo").await.expect("get").spec.suspend, Some(false));
}

/// Starts `serin` with `args`, the kubeconfig and `extra`; its stdout arrives line by line.
fn spawn_serin_lines(
    args: &[&str],
    config: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .arg(config)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("serin {args:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_w_prints_a_line_per_change_as_it_happens() {
    let (api, canaries) = emulator_with_the_seed_canary().await;
    let config = kubeconfig(&api.url());
    let (mut child, rx) = spawn_serin_lines(&["get", "canary", "podinfo", "-w", "--kubeconfig"], &config, &[]);
    let next = |rx: &std::sync::mpsc::Receiver<String>| {
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("a line within 10 s")
    };
    let first = next(&rx);
    assert!(
        first.starts_with("- - weight 0% - → - failed 0/15"),
        "the current state first: {first}"
    );
    for (weight, summary) in [(10, "advanced to 10%"), (20, "advanced to 20%")] {
        let status = serde_json::json!({"status": {"phase": "Progressing", "canaryWeight": weight, "canaryRevision": "podinfo-00002",
            "primaryRevision": "podinfo-00001", "lastDecision": {"summary": summary}}});
        canaries
            .patch_status("podinfo", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("status");
        let line = next(&rx);
        assert!(
            line.contains(&format!("Progressing weight {weight}% podinfo-00001 → podinfo-00002"))
                && line.ends_with(summary),
            "{line}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `get -w` on a terminal (a pseudo-terminal from `script`): the view is redrawn in place, one
/// frame per change, with the plan's steps, the current one marked, the reason and the checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_w_on_a_terminal_redraws_one_frame_per_change() {
    use std::io::Read;
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("SERIN_REQUIRE_TOOLS").is_none(),
            "script (util-linux) is required"
        );
        eprintln!("SKIPPED: script (util-linux) is not installed");
        return;
    }
    let (api, canaries) = emulator_with_the_seed_canary().await;
    let config = kubeconfig(&api.url());
    let command = format!(
        "{} get canary podinfo -w --kubeconfig {}",
        env!("CARGO_BIN_EXE_serin"),
        config.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // Frames are separated by the clear-screen sequence; wait until `count` of them arrived.
    let frames = move |count: usize| -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = output.lock().expect("lock").clone();
            let frames: Vec<String> = text
                .split("\x1b[H\x1b[2J")
                .skip(1)
                .map(|f| f.replace('\r', ""))
                .collect();
            if frames.len() >= count || std::time::Instant::now() > deadline {
                return frames;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let first = frames(1);
    assert_eq!(first.len(), 1, "one frame for the current state: {first:?}");
    assert!(
        first[0].contains("Steps:     10% → 20% → 30% → 40% → 50% → promote   (every 15s)"),
        "{}",
        first[0]
    );
    for (i, (weight, summary)) in [
        (10, "first step: 10% of traffic"),
        (20, "analysis passed; 20% of traffic"),
    ]
    .into_iter()
    .enumerate()
    {
        let status = serde_json::json!({"status": {"phase": "Progressing", "canaryWeight": weight, "failedChecks": 1,
            "canaryRevision": "podinfo-00002", "primaryRevision": "podinfo-00001",
            "lastDecision": {"summary": summary, "checks": ["request-success-rate 98.50% (bound >= 99%) Fail"]}}});
        canaries
            .patch_status("podinfo", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("status");
        let all = tokio::task::spawn_blocking({
            let frames = frames.clone();
            move || frames(i + 2)
        })
        .await
        .expect("join");
        assert_eq!(all.len(), i + 2, "one new frame per change: {all:?}");
        let frame = &all[i + 1];
        assert!(
            frame.starts_with("Canary test/podinfo   Progressing   weight "),
            "{frame}"
        );
        assert!(
            frame.contains(&format!("[{weight}%]")),
            "the current step is marked: {frame}"
        );
        assert!(frame.contains(&format!("Why:       {summary}")), "{frame}");
        assert!(
            frame.contains("  request-success-rate 98.50% (bound >= 99%) Fail"),
            "{frame}"
        );
        assert!(frame.contains("Failed checks: 1/15"), "{frame}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `serin dashboard` running until dropped.
struct DashboardProcess {
    child: std::process::Child,
    url: String,
}

impl Drop for DashboardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serin dashboard` on a free loopback port and waits for the address it prints.
fn start_dashboard(config: &std::path::Path, extra: &[&str]) -> DashboardProcess {
    let (child, rx) = spawn_serin_lines(&["dashboard", "--port", "0", "--kubeconfig"], config, extra);
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("serin dashboard prints its address");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("an address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    DashboardProcess { child, url }
}

/// GET `path`, with `host` as the Host header when given: (status, body).
async fn get(http: &reqwest::Client, url: &str, host: Option<&str>) -> (u16, String) {
    let mut request = http.get(url);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_process_shows_the_canary_and_writes_requests_only_when_allowed() {
    serin_metrics::install_crypto_provider();
    let (api, canaries) = emulator_with_the_seed_canary().await;
    let config = kubeconfig(&api.url());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");

    let read_only = start_dashboard(&config, &[]);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = get(&http, &format!("{}/", read_only.url), None).await;
        if status == 200 && body.contains(r#"data-name="test/podinfo""#) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the list never showed the Canary: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, page) = get(&http, &format!("{}/canaries/test/podinfo", read_only.url), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("<form"), "read-only: {page}");
    let (status, _) = get(&http, &format!("{}/canaries/test/missing", read_only.url), None).await;
    assert_eq!(status, 404);
    let (status, body) = get(&http, &format!("{}/", read_only.url), Some("attacker.example")).await;
    assert_eq!(status, 403, "another host name: {body}");
    drop(read_only);

    let acting = start_dashboard(&config, &["--allow-actions"]);
    let page_url = format!("{}/canaries/test/podinfo", acting.url);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let page = loop {
        let (_, page) = get(&http, &page_url, None).await;
        if page.contains("id=\"action-pause\"") {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "no Pause button: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the form");
    let response = http
        .post(format!("{page_url}/requests"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&request=pause"))
        .send()
        .await
        .expect("POST pause");
    assert_eq!(response.status().as_u16(), 303, "redirected back to the page");
    assert_eq!(canaries.get("podinfo").await.expect("get").spec.suspend, Some(true));
}
