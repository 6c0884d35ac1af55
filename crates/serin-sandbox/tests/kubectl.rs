//! Conformance of the API emulator through `kubectl` (1.32 on the machine image): apply, get,
//! get -w, patch, replace, describe, delete, on built-ins and on CRDs. Skipped, with a message,
//! where kubectl is absent.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serin_sandbox::kube_api::KubeApi;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kubectl_present() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs kubectl against the emulator; returns (success, stdout, stderr).
fn kubectl(server: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg("--server")
        .arg(server)
        .args(args)
        .current_dir(root())
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(server: &str, args: &[&str]) -> String {
    let (success, stdout, stderr) = kubectl(server, args);
    assert!(success, "kubectl {args:?} failed:\n{stdout}{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_against_the_emulator() {
    if !kubectl_present() {
        eprintln!("SKIPPED: kubectl is not installed; the kubectl conformance checks need kubectl 1.32");
        return;
    }
    let api = KubeApi::start(0).await.expect("start");
    let server = api.url();
    tokio::task::spawn_blocking(move || {
        let s = server.as_str();
        ok(s, &["apply", "-f", "deploy/crds/"]);
        ok(s, &["apply", "-f", "testdata/knative/service.yaml"]);
        ok(s, &["create", "namespace", "test"]);
        ok(s, &["apply", "-f", "testdata/seed/podinfo-ksvc.yaml", "-f", "testdata/seed/podinfo-canary.yaml"]);
        let table = ok(s, &["get", "canaries", "-A"]);
        let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(header, ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"], "{table}");
        assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("test") && l.contains("podinfo")), "{table}");

        // get -w streams a change made after it started.
        let mut watch = Command::new("kubectl")
            .args(["--server", s, "get", "canaries", "-n", "test", "-w", "--output-watch-events"])
            .env("KUBECONFIG", "/dev/null")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch");
        std::thread::sleep(Duration::from_millis(500));
        ok(s, &["-n", "test", "patch", "canary", "podinfo", "--subresource", "status", "--type", "merge", "-p", r#"{"status":{"phase":"Progressing","canaryWeight":10}}"#]);
        std::thread::sleep(Duration::from_millis(500));
        let _ = watch.kill();
        let output = watch.wait_with_output().expect("watch output");
        let streamed = String::from_utf8_lossy(&output.stdout);
        assert!(streamed.lines().any(|l| l.starts_with("MODIFIED") && l.contains("Progressing") && l.contains("10")), "{streamed}");

        ok(s, &["-n", "test", "patch", "canary", "podinfo", "--type", "merge", "-p", r#"{"spec":{"suspend":true}}"#]);
        ok(s, &["-n", "test", "patch", "canary", "podinfo", "--type", "json", "-p", r#"[{"op":"replace","path":"/spec/analysis/threshold","value":7}]"#]);
        let threshold = ok(s, &["-n", "test", "get", "canary", "podinfo", "-o", "jsonpath={.spec.analysis.threshold} {.spec.suspend} {.metadata.generation}"]);
        assert_eq!(threshold, "7 true 3");
        ok(s, &["-n", "test", "patch", "services.serving", "podinfo", "--type=json", "-p", r#"[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "ghcr.io/stefanprodan/podinfo:6.0.1"}]"#]);
        let image = ok(s, &["-n", "test", "get", "ksvc", "podinfo", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]);
        assert_eq!(image, "ghcr.io/stefanprodan/podinfo:6.0.1");

        let yaml = ok(s, &["-n", "test", "get", "canary", "podinfo", "-o", "yaml"]);
        let replaced = yaml.replace("threshold: 7", "threshold: 8");
        let file = std::env::temp_dir().join(format!("serin-kubectl-{}.yaml", std::process::id()));
        std::fs::write(&file, replaced).expect("write");
        ok(s, &["replace", "-f", &file.to_string_lossy()]);
        let stale = kubectl(s, &["replace", "-f", &file.to_string_lossy()]);
        assert!(!stale.0 && stale.2.contains("the object has been modified"), "a stale replace conflicts: {}", stale.2);

        let uid = ok(s, &["-n", "test", "get", "canary", "podinfo", "-o", "jsonpath={.metadata.uid}"]);
        let event = format!(
            r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"podinfo.1","namespace":"test"}},"involvedObject":{{"apiVersion":"flagger.app/v1beta1","kind":"Canary","name":"podinfo","namespace":"test","uid":"{uid}"}},"reason":"Synced","message":"Advance podinfo.test canary weight 10","type":"Normal","source":{{"component":"serin"}},"count":1}}"#
        );
        let event_file = std::env::temp_dir().join(format!("serin-event-{}.json", std::process::id()));
        std::fs::write(&event_file, event).expect("write");
        ok(s, &["create", "-f", &event_file.to_string_lossy()]);
        let described = ok(s, &["-n", "test", "describe", "canary", "podinfo"]);
        assert!(described.contains("Advance podinfo.test canary weight 10"), "{described}");

        // A type-mismatched Canary is refused as a real API server refuses it.
        let (applied, stdout, stderr) = kubectl(s, &["apply", "-f", "testdata/invalid/podinfo-canary-interval-number.yaml"]);
        assert!(!applied, "{stdout}{stderr}");
        assert_eq!(
            stderr.trim(),
            r#"The Canary "podinfo" is invalid: spec.analysis.interval: Invalid value: "integer": spec.analysis.interval in body must be of type string: "integer""#
        );

        ok(s, &["-n", "test", "delete", "canary", "podinfo"]);
        let (_, stdout, stderr) = kubectl(s, &["get", "canaries", "-A"]);
        assert!(stdout.trim().is_empty() && stderr.contains("No resources found"), "{stdout}{stderr}");
        let _ = std::fs::remove_file(file);
        let _ = std::fs::remove_file(event_file);
        let _ = Instant::now();
    })
    .await
    .expect("kubectl checks");
}
