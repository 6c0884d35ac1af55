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
    let template = "---\napiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: dd\n  namespace: test\nspec:\n  provider:\n    type: datadog\n  query: avg:x{a:{{ target }}}\n";
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
            "{file}: MetricTemplate test/dd: spec.provider.type: \"datadog\" is not supported yet (only prometheus)"
        )),
        "{stdout}"
    );
}
