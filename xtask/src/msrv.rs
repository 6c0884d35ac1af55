//! The declared-MSRV check of `cargo xtask ci`: no dependency may declare a `rust-version` above
//! the workspace's (`[workspace.package] rust-version`). Only one toolchain can be installed here,
//! so this checks what the dependencies declare; it does not build with the older compiler.

use std::{path::Path, process::Command};

use anyhow::{Context, bail};

/// `1.89`, `1.89.0` → (1, 89, 0).
fn version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The workspace's declared MSRV.
fn workspace_msrv(root: &Path) -> anyhow::Result<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .context("no rust-version in the workspace Cargo.toml")
}

/// Every `(package, rust-version)` in `cargo metadata`'s JSON.
fn declared(metadata: &str) -> anyhow::Result<Vec<(String, String)>> {
    let value: serde_json::Value = serde_json::from_str(metadata).context("cargo metadata is not JSON")?;
    Ok(value["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.to_owned(), p["rust_version"].as_str()?.to_owned())))
        .collect())
}

/// Fails when a dependency declares a newer Rust than the workspace.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let msrv = workspace_msrv(root)?;
    let ours = version(&msrv).context("unreadable workspace rust-version")?;
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let metadata = String::from_utf8_lossy(&out.stdout);
    let packages = declared(&metadata)?;
    let newer: Vec<String> = packages
        .iter()
        .filter(|(_, v)| version(v).is_some_and(|v| v > ours))
        .map(|(n, v)| format!("{n} ({v})"))
        .collect();
    if !newer.is_empty() {
        bail!(
            "dependencies need a newer Rust than rust-version {msrv}: {}",
            newer.join(", ")
        );
    }
    eprintln!(
        "msrv: {} packages declare a rust-version, none above {msrv}",
        packages.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_and_metadata_is_read() {
        assert!(version("1.90") > version("1.89.0"));
        assert_eq!(version("1.89"), Some((1, 89, 0)));
        let json = r#"{"packages":[{"name":"a","version":"1.0.0","rust_version":"1.70"},{"name":"b","version":"2.0.0","rust_version":null}]}"#;
        assert_eq!(declared(json).expect("json"), [("a".to_owned(), "1.70".to_owned())]);
    }
}
