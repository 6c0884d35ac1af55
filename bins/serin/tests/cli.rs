//! The `serin` binary as a process: exit codes and output formats.

use std::{path::PathBuf, process::Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn serin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("serin runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("serin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn validate_accepts_the_seed() {
    let (code, stdout, stderr) = serin(&[
        "validate",
        "testdata/seed/podinfo-canary.yaml",
        "testdata/seed/podinfo-ksvc.yaml",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("Canary test/podinfo: valid"), "{stderr}");
}

#[test]
fn validate_prints_one_line_per_problem_and_exits_1() {
    let seed = std::fs::read_to_string(root().join("testdata/seed/podinfo-canary.yaml")).expect("seed");
    let bad = seed
        .replace("provider: knative", "provider: linkerd")
        .replace("maxWeight: 50", "maxWeight: 500");
    let path = temp_file("bad.yaml", &bad);
    let file = path.to_string_lossy().into_owned();
    let (code, stdout, _) = serin(&["validate", &file]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{file}: Canary test/podinfo: spec.provider: \"linkerd\" is not supported: Serin routes Knative Services only (provider: knative)"
            ),
            format!("{file}: Canary test/podinfo: spec.analysis.maxWeight: 500 is not a weight between 1 and 100"),
        ]
    );
}

#[test]
fn validate_reports_non_yaml_without_panicking() {
    let path = temp_file("garbage.yaml", "{ this: [is not yaml");
    let (code, stdout, stderr) = serin(&["validate", &path.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("not valid YAML"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn plan_json_gives_the_seed_schedule() {
    let (code, stdout, stderr) = serin(&["plan", "--output", "json", "testdata/seed/podinfo-canary.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        v,
        serde_json::json!({
            "steps": [
                {"atSeconds": 0, "canaryWeight": 10},
                {"atSeconds": 15, "canaryWeight": 20},
                {"atSeconds": 30, "canaryWeight": 30},
                {"atSeconds": 45, "canaryWeight": 40},
                {"atSeconds": 60, "canaryWeight": 50}
            ],
            "promotionAtSeconds": 75,
            "metricChecks": 5,
            "fastestRollbackSeconds": 210
        })
    );
}

#[test]
fn plan_text_names_the_hooks_at_each_step() {
    let (code, stdout, _) = serin(&["plan", "testdata/seed/podinfo-canary.yaml"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("+   0s  canary weight  10%  hooks: load-test (rollout)"),
        "{stdout}"
    );
    assert!(stdout.contains("+  75s  promotion (after 5 metric checks)"), "{stdout}");
    // The same Canary under the sequential judge: the requests it needs, and what that means in time.
    assert!(stdout.contains("Under the sequential judge"), "{stdout}");
    let needed: f64 = stdout
        .split("verified promotion needs about ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!((1_000.0..20_000.0).contains(&needed), "{stdout}");
    assert!(
        stdout.contains("at     1 req/s: more than the 45m0s deadline"),
        "{stdout}"
    );
}

#[test]
fn validate_finds_queries_the_controller_could_not_render_and_unsupported_providers() {
    let seed = std::fs::read_to_string(root().join("testdata/seed/podinfo-canary.yaml")).expect("seed");
    let with_query = seed.replacen(
        "    - name: request-duration\n",
        "    - name: errors\n      query: sum(rate(x{ns=\"{{ namespace }\"}[{{ interval }}]))\n      thresholdRange:\n        max: 1\n    - name: request-duration\n",
        1,
    );
    assert_ne!(with_query, seed);
    let template = "---\napiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: dd\n  namespace: test\nspec:\n  provider:\n    type: datadog\n    secretRef:\n      name: dd-keys\n  query: avg:x{a:{{ target }}}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: dd-keys\n  namespace: test\nstringData:\n  datadog_api_key: a\n---\napiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: made-up\n  namespace: test\nspec:\n  provider:\n    type: opentsdb\n  query: x\n";
    let path = temp_file("queries.yaml", &format!("{with_query}{template}"));
    let file = path.to_string_lossy().into_owned();
    let (code, stdout, stderr) = serin(&["validate", &file]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "{file}: Canary test/podinfo: spec.analysis.metrics[1].query: template: errors:1:"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{file}: MetricTemplate test/dd: spec.provider: datadog credentials does not contain datadog_application_key"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{file}: MetricTemplate test/made-up: spec.provider: unknown metrics provider \"opentsdb\""
        )),
        "{stdout}"
    );
}

/// A one-answer HTTP server on its own thread: answers `body` to every request and keeps each
/// request's head.
fn answering(body: &'static str) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                head.push_str(&line);
                line.clear();
            }
            if let Ok(mut heads) = seen.lock() {
                heads.push(head);
            }
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, heads)
}

#[test]
fn check_metrics_runs_a_template_of_another_provider_with_its_secret_from_the_file() {
    let (url, heads) = answering(r#"{"series":[{"pointlist":[[1700000000000,0.5]]}]}"#);
    let seed = std::fs::read_to_string(root().join("testdata/seed/podinfo-canary.yaml")).expect("seed");
    // Only the template metric: the built-ins would need a Prometheus.
    let start = seed.find("    metrics:\n").expect("metrics");
    let end = seed.find("    webhooks:").expect("webhooks");
    let canary = format!(
        "{}    metrics:\n    - name: not-found\n      templateRef:\n        name: dd\n      thresholdRange:\n        max: 1\n      interval: 1m\n{}",
        &seed[..start],
        &seed[end..]
    );
    let extra = format!(
        "---\napiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: dd\n  namespace: test\nspec:\n  provider:\n    type: datadog\n    address: {url}\n    secretRef:\n      name: dd-keys\n  query: avg:errors{{app:{{{{ target }}}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: dd-keys\n  namespace: test\ndata:\n  datadog_api_key: YXBp\nstringData:\n  datadog_application_key: app\n"
    );
    let path = temp_file("datadog.yaml", &format!("{canary}{extra}"));
    let file = path.to_string_lossy().into_owned();
    let (code, stdout, stderr) = serin(&[
        "check-metrics",
        &file,
        "--prometheus",
        "http://127.0.0.1:9",
        "--canary-revision",
        "podinfo-00002",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("not-found: 0.5"), "{stdout}");
    assert!(stdout.contains("query: avg:errors{app:podinfo}"), "{stdout}");
    let heads = heads.lock().expect("heads").join("\n").to_lowercase();
    assert!(
        heads.contains("dd-api-key: api") && heads.contains("dd-application-key: app"),
        "{heads}"
    );
}

#[test]
fn validate_checks_alert_references_against_the_alert_providers_in_the_file() {
    let seed = std::fs::read_to_string(root().join("testdata/seed/podinfo-canary.yaml")).expect("seed");
    let with_alerts = seed.replacen(
        "    metrics:\n",
        "    alerts:\n    - name: on-call\n      severity: error\n      providerRef:\n        name: on-call\n    - name: elsewhere\n      providerRef:\n        name: missing\n    metrics:\n",
        1,
    );
    assert_ne!(with_alerts, seed);
    let provider = "---\napiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: on-call\n  namespace: test\nspec:\n  type: slack\n  address: not-a-url\n";
    let path = temp_file("alerts.yaml", &format!("{with_alerts}{provider}"));
    let file = path.to_string_lossy().into_owned();
    let (code, stdout, stderr) = serin(&["validate", &file]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "{file}: Canary test/podinfo: spec.analysis.alerts[0].providerRef: AlertProvider test/on-call: invalid Slack hook URL"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{file}: Canary test/podinfo: spec.analysis.alerts[1].providerRef: AlertProvider test/missing is not in the file"
        )),
        "{stdout}"
    );
}

/// Installed as `kubectl-serin` (a link to `serin` on the PATH), it runs as `kubectl serin`.
#[test]
fn it_runs_as_the_kubectl_serin_plugin() {
    if Command::new("kubectl").args(["version", "--client"]).output().is_err() {
        // As the deploy tests: kubectl is not among what `cargo xtask ci` installs.
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("serin-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let link = dir.join("kubectl-serin");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_serin"), &link).expect("link");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("kubectl")
        .args(["serin", "plan", "testdata/seed/podinfo-canary.yaml"])
        .current_dir(root())
        .env("PATH", path)
        .output()
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("+  75s  promotion (after 5 metric checks)"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
