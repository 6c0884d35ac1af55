//! The install manifests: they parse, the ClusterRole covers every resource and verb the
//! controller declares, and `kubectl apply -k deploy/knative` succeeds against the API emulator.

use std::path::PathBuf;

use serde_json::Value;
use serin_reconciler::PERMISSIONS;
use serin_sandbox::kube_api::KubeApi;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_manifest_parses() {
    for path in [
        "deploy/knative/kustomization.yaml",
        "deploy/knative/namespace.yaml",
        "deploy/knative/rbac.yaml",
        "deploy/knative/controller/kustomization.yaml",
        "deploy/knative/controller/deployment.yaml",
        "deploy/sharded/kustomization.yaml",
        "deploy/sharded/shard-0/kustomization.yaml",
        "deploy/knative/service.yaml",
        "deploy/knative/prometheus.yaml",
        "deploy/tester/kustomization.yaml",
        "deploy/tester/deployment.yaml",
        "deploy/tester/service.yaml",
        "deploy/tester/rbac.yaml",
        "deploy/tester-tools/kustomization.yaml",
        "deploy/crds/Kustomization",
    ] {
        assert!(!documents(path).is_empty(), "{path} is empty");
    }
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("deploy/grafana/serin.json")).expect("dashboard"))
            .expect("json");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 4));
    let service = documents("deploy/tester/service.yaml");
    assert_eq!(
        service[0]["metadata"]["name"], "flagger-loadtester",
        "the seed's webhook URL needs this name"
    );
    assert_eq!(service[0]["spec"]["ports"][0]["port"], 80);
}

#[test]
fn rbac_covers_exactly_what_the_controller_uses() {
    let rules: Vec<Value> = documents("deploy/knative/rbac.yaml")
        .into_iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    for (group, resource, verbs) in PERMISSIONS {
        for verb in *verbs {
            let covered = rules.iter().any(|r| {
                strings(&r["apiGroups"]).iter().any(|g| g == group)
                    && strings(&r["resources"]).iter().any(|x| x == resource)
                    && strings(&r["verbs"]).iter().any(|v| v == verb)
            });
            assert!(covered, "RBAC does not grant {verb} on {resource}.{group}");
        }
    }
    let granted: usize = rules
        .iter()
        .map(|r| strings(&r["resources"]).len() * strings(&r["verbs"]).len())
        .sum();
    let declared: usize = PERMISSIONS.iter().map(|(_, _, v)| v.len()).sum();
    assert_eq!(granted, declared, "the roles grant more than the controller declares");
}

/// Whether kubectl can run here; says so when it cannot (the kubectl tests are then skipped).
fn kubectl_installed() -> bool {
    let installed = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("SKIPPED: kubectl is not installed");
    }
    installed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_deploy_knative_succeeds_against_the_emulator() {
    if !kubectl_installed() {
        return;
    }
    let api = KubeApi::start(0).await.expect("start");
    let server = api.url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .args(["--server", &server, "apply", "-k", "deploy/knative"])
            .env("KUBECONFIG", "/dev/null")
            .current_dir(root())
            .output()
            .expect("kubectl")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for created in [
        "namespace/serin-system",
        "customresourcedefinition.apiextensions.k8s.io/canaries.flagger.app",
        "clusterrole.rbac.authorization.k8s.io/serin",
        "deployment.apps/serin-controller",
        "deployment.apps/prometheus",
        "service/prometheus",
        "configmap/prometheus-config",
    ] {
        assert!(stdout.contains(created), "{created} missing:\n{stdout}");
    }
}

#[test]
fn the_sharded_overlay_has_one_controller_per_shard_and_no_unsharded_one() {
    if !kubectl_installed() {
        return;
    }
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", "deploy/sharded"])
        .current_dir(root())
        .output()
        .expect("kubectl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("yaml");
    let controllers: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["kind"] == "Deployment"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("serin-controller"))
        })
        .collect();
    assert_eq!(controllers.len(), 3, "{controllers:#?}");
    for (n, deployment) in controllers.iter().enumerate() {
        assert_eq!(deployment["metadata"]["name"], format!("serin-controller-shard-{n}"));
        let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
        assert!(args.contains(&format!("--shard={n}/3")), "{args}");
        // Each shard's pods are selected by its own Deployment only.
        assert_eq!(
            deployment["spec"]["selector"]["matchLabels"]["serin.dev/shard"],
            n.to_string()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_the_two_loadtesters_succeeds_against_the_emulator() {
    if !kubectl_installed() {
        return;
    }
    let api = KubeApi::start(0).await.expect("start");
    api.create_namespace("test");
    let server = api.url();
    let kubectl = move |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .args(["--server", &server, "-n", "test"])
            .args(args)
            .env("KUBECONFIG", "/dev/null")
            .current_dir(root())
            .output()
            .expect("kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let out = tokio::task::spawn_blocking(move || {
        let default = kubectl(&["apply", "-k", "deploy/tester"]);
        let args = kubectl(&[
            "get",
            "deploy",
            "flagger-loadtester",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ]);
        let tools = kubectl(&["apply", "-k", "deploy/tester-tools"]);
        let tools_args = kubectl(&[
            "get",
            "deploy",
            "flagger-loadtester",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args} {.spec.template.spec.containers[0].image}",
        ]);
        (default, args, tools, tools_args)
    })
    .await
    .expect("join");
    let (default, args, tools, tools_args) = out;
    for created in [
        "serviceaccount/flagger-loadtester",
        "role.rbac.authorization.k8s.io/flagger-loadtester-gates",
        "rolebinding.rbac.authorization.k8s.io/flagger-loadtester-gates",
        "service/flagger-loadtester",
        "deployment.apps/flagger-loadtester",
    ] {
        assert!(default.contains(created), "{created} missing:\n{default}");
    }
    assert!(
        args.contains("--state-configmap=flagger-loadtester-gates") && !args.contains("--allow-shell"),
        "{args}"
    );
    assert!(
        tools.contains("deployment.apps/flagger-loadtester configured"),
        "{tools}"
    );
    assert!(
        tools_args.contains("--allow-shell") && tools_args.contains("serin-loadtester-tools"),
        "{tools_args}"
    );
}
