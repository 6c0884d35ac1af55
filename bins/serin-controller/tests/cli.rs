//! The controller binary's command line: every documented flag exists, and bad input is a
//! clear error, not a panic.

use std::process::Command;

fn controller(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_serin-controller"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_documented_flag_with_its_environment_variable() {
    let (code, stdout, _) = controller(&["--help"]);
    assert_eq!(code, 0);
    let docs =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/controller.md"))
            .expect("docs");
    for line in docs.lines().filter(|l| l.starts_with("| `--")) {
        let flag = line.split('`').nth(1).unwrap_or_default();
        assert!(stdout.contains(flag), "{flag} is documented but not a flag:\n{stdout}");
        let env = line.split('`').nth(3).unwrap_or_default();
        assert!(stdout.contains(&format!("env: {env}")), "{flag} should read {env}");
    }
}

#[test]
fn bad_values_are_reported_without_a_panic() {
    let (code, _, stderr) = controller(&["--lease-duration", "soon"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("invalid value 'soon' for '--lease-duration"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (code, _, stderr) = controller(&["--log-level", "info", "--kube-server", "not a url"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--kube-server"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
