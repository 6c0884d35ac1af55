//! Every loadtester hook in Flagger's documentation runs where `docs/install.md` says: natively
//! in the default loadtester, or under `--allow-shell` in the tools image, which then carries
//! the program it needs.

use serde::Deserialize;
use serin_loadtester::hey;

#[derive(Deserialize)]
struct Hook {
    #[serde(rename = "type")]
    kind: String,
    runs: String,
    cmd: String,
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_documented_hook_runs_natively_or_in_the_tools_image() {
    let text = std::fs::read_to_string(root().join("testdata/flagger/loadtester-hooks.yaml")).expect("hooks");
    let hooks: Vec<Hook> = serde_saphyr::from_str(&text).expect("yaml");
    let image = std::fs::read_to_string(root().join("deploy/docker/loadtester-tools.Dockerfile")).expect("Dockerfile");
    assert!(hooks.len() >= 25, "{} hooks", hooks.len());
    for hook in &hooks {
        match hook.runs.as_str() {
            "native" => {
                assert_eq!(hook.kind, "cmd");
                let spec = hey::parse_command(&hook.cmd).unwrap_or_else(|e| panic!("{}: {e}", hook.cmd));
                assert!(spec.duration.is_some(), "{}", hook.cmd);
            }
            "tools" => {
                let program = match hook.kind.as_str() {
                    "cmd" | "bash" => hook.cmd.split_whitespace().next().unwrap_or_default(),
                    "helm" | "helmv3" => "helm",
                    other => other,
                };
                if hook.kind == "cmd" {
                    assert!(
                        hey::parse_command(&hook.cmd).is_err(),
                        "{} would run natively",
                        hook.cmd
                    );
                }
                assert!(
                    image.contains(&format!(" {program} "))
                        || image.contains(&format!("/{program} "))
                        || image.contains(&format!(" {program}\n")),
                    "the tools image does not carry {program} (for {:?})",
                    hook.cmd
                );
            }
            other => panic!("unknown place {other}"),
        }
    }
}
