//! What `cargo xtask` installs on a fresh machine before it runs: Debian packages (Prometheus
//! for the metric tests and the demo, hey and wrk for the loadtester's comparisons, Chromium
//! and its driver for the dashboard's browser tests) and cargo-deny. Installs as root with apt-get; otherwise says exactly what is missing.

use std::{path::Path, process::Command};

use anyhow::bail;

fn found(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Makes sure each Debian package (named as its program) is installed.
pub(crate) fn ensure_debian_packages(packages: &[&str]) -> anyhow::Result<()> {
    let pairs: Vec<(&str, &str)> = packages.iter().map(|p| (*p, *p)).collect();
    ensure_debian_packages_providing(&pairs)
}

/// Makes sure each (Debian package, program it provides) is installed.
pub(crate) fn ensure_debian_packages_providing(packages: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, program)| !found(program))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() || !found("apt-get") {
        bail!(
            "missing: {list}; install the Debian packages (`sudo apt-get update && sudo apt-get install -y --no-install-recommends {list}`)"
        );
    }
    eprintln!("installing Debian packages: {list}...");
    let install = format!(
        "apt-get install -y --no-install-recommends {list} >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends {list} >/dev/null)"
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(install)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    let still: Vec<&str> = packages
        .iter()
        .filter(|(_, program)| !found(program))
        .map(|(package, _)| *package)
        .collect();
    if !status.success() || !still.is_empty() {
        bail!(
            "could not install {} with apt-get; install the Debian packages by hand",
            still.join(" ")
        );
    }
    Ok(())
}

/// Makes sure the Debian `prometheus` package is installed (metric tests and the demo run a real
/// one), unless `SERIN_PROMETHEUS` names a binary.
pub(crate) fn ensure_prometheus() -> anyhow::Result<()> {
    if std::env::var_os("SERIN_PROMETHEUS").is_some() {
        return Ok(());
    }
    ensure_debian_packages(&["prometheus"])
}

/// Makes sure Debian's Chromium and its WebDriver are installed (the dashboard's browser
/// tests and `cargo xtask demo --dashboard`), unless `SERIN_CHROMIUM` names a browser.
pub(crate) fn ensure_chromium() -> anyhow::Result<()> {
    if std::env::var_os("SERIN_CHROMIUM").is_some() {
        return Ok(());
    }
    ensure_debian_packages_providing(&[("chromium", "chromium"), ("chromium-driver", "chromedriver")])
}

/// `cargo deny check licenses bans sources` (see `deny.toml`), and `advisories` when asked,
/// installing cargo-deny from crates.io when it is missing. `cargo xtask ci` leaves advisories
/// out: their database is on GitHub, which CI machines cannot reach.
pub(crate) fn deny(root: &Path, advisories: bool) -> anyhow::Result<()> {
    let have = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("installing cargo-deny (cargo install --locked cargo-deny)...");
        crate::run(root, "cargo", &["install", "--locked", "--quiet", "cargo-deny"], &[])?;
    }
    let mut args = vec!["deny", "--log-level", "error", "check", "licenses", "bans", "sources"];
    if advisories {
        args.push("advisories");
    }
    crate::run(root, "cargo", &args, &[])
}
