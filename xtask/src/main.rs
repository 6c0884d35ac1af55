//! `cargo xtask`: the project's automation, in Rust so that cargo is all one needs.
//!
//! - `ci`: format check, the declared-MSRV check (`msrv.rs`), clippy, the whole test suite in
//!   one invocation (the end-to-end suites and the repository rules of `tidy.rs` included), docs
//!   with warnings denied.
//! - `e2e`: the end-to-end suites only (`crates/serin-sandbox/tests/e2e*.rs`).
//! - `crdgen`: writes `deploy/crds/*.yaml` from the Rust types.
//! - `demo [--scenario promote|rollback|all] [--fast] [--keep] [--judge flagger|shadow|sequential] [--dashboard]`: the seed tutorial end to end,
//!   every component a real process (`serin-sandbox demo`; `--dashboard` also serves the
//!   dashboard and saves screenshots of it into `target/dashboard/`); `--simulated` runs the engine-only
//!   version in virtual time (see `demo.rs`).
//! - `bench [core|judge|loadtester|sandbox|dashboard|scale|seed|all]`: the benchmarks; figures go to stdout and `target/bench/`.

mod demo;
mod msrv;
mod tidy;
mod tools;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("e2e") => e2e(&root),
        Some("crdgen") => crdgen(&root),
        Some("demo") if args.iter().any(|a| a == "--simulated") => demo::run(&root, &args[1..]),
        Some("demo") => sandbox_demo(&root, &args[1..]),
        Some("bench") => bench(&root, args.get(1).map(String::as_str).unwrap_or("all")),
        Some("deny") => tools::deny(&root, args.iter().any(|a| a == "--advisories")),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|e2e|crdgen|demo|deny [--advisories]|bench [core|judge|loadtester|sandbox|dashboard|scale|seed|all]>"
            );
            bail!("unknown or missing command")
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs a command in the repository root, failing when it fails.
pub(crate) fn run(root: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let started = std::time::Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(root)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    // CI's log then says where its minutes go.
    eprintln!("  ({:.0} s)", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The end-to-end suites: real processes, `--fast` timings.
fn e2e(root: &Path) -> anyhow::Result<()> {
    tools::ensure_prometheus()?;
    tools::ensure_chromium()?;
    run(root, "cargo", &["build", "--workspace", "--bins"], &[])?;
    run(
        root,
        "cargo",
        &[
            "test",
            "-p",
            "serin-sandbox",
            "--test",
            "e2e",
            "--test",
            "e2e_faults",
            "--test",
            "e2e_crashes",
            "--test",
            "e2e_alerts",
            "--test",
            "e2e_judge",
            "--test",
            "e2e_dashboard",
        ],
        &[],
    )
}

fn ci(root: &Path) -> anyhow::Result<()> {
    tools::ensure_prometheus()?;
    // The loadtester's tests compare its reports with the real hey's and wrk's.
    tools::ensure_debian_packages(&["hey", "wrk"])?;
    tools::ensure_chromium()?;
    run(root, "cargo", &["fmt", "--all", "--check"], &[])?;
    msrv::check(root)?;
    tools::deny(root, false)?;
    run(
        root,
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        &[],
    )?;
    // The end-to-end tests start the binaries of other packages: build them all first.
    run(root, "cargo", &["build", "--workspace", "--bins"], &[])?;
    run(root, "cargo", &["test", "--workspace"], &[("SERIN_REQUIRE_TOOLS", "1")])?;
    run(
        root,
        "cargo",
        &["run", "--quiet", "-p", "serin-examples", "--example", "embed_engine"],
        &[],
    )?;
    run(
        root,
        "cargo",
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-Dwarnings")],
    )?;
    eprintln!("ci: all checks passed");
    Ok(())
}

/// Installs Prometheus if needed and builds the sandbox's three binaries; returns the target dir.
fn build_sandbox(root: &Path) -> anyhow::Result<PathBuf> {
    tools::ensure_prometheus()?;
    run(
        root,
        "cargo",
        &[
            "build",
            "--quiet",
            "-p",
            "serin-sandbox",
            "-p",
            "serin-controller",
            "-p",
            "serin-loadtester",
        ],
        &[],
    )?;
    Ok(std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target")))
}

fn sandbox_demo(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let target = build_sandbox(root)?;
    let sandbox = target.join("debug/serin-sandbox");
    let mut demo_args = vec!["demo".to_owned(), "--root".to_owned(), root.display().to_string()];
    for arg in args {
        demo_args.push(arg.clone());
        if arg == "--dashboard" {
            // Screenshots go to target/dashboard/.
            tools::ensure_chromium()?;
            demo_args.push(target.join("dashboard").display().to_string());
        }
    }
    let status = Command::new(&sandbox)
        .args(&demo_args)
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot start {}", sandbox.display()))?;
    if !status.success() {
        bail!("the demo failed ({status})");
    }
    Ok(())
}

/// The seed rollout timed in the sandbox (image patch → Succeeded), against the 75 s the plan promises.
fn seed_bench(root: &Path) -> anyhow::Result<()> {
    let target = build_sandbox(root)?;
    let out = Command::new(target.join("debug/serin-sandbox"))
        .args(["demo", "--root", &root.display().to_string(), "--scenario", "promote"])
        .output()
        .context("cannot run the sandbox demo")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let seconds: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("verdict: PASS ")?
                .split(" after ")
                .nth(1)?
                .split('s')
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("the promotion did not pass:\n{text}"))?;
    let planned = 75.0;
    println!(
        "seed rollout in the sandbox: image patch → Succeeded in {seconds:.0} s; plan (detection → promotion): {planned:.0} s; ratio {:.2}",
        seconds / planned
    );
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("seed.json"),
        format!("{{\"measuredSeconds\":{seconds},\"plannedSeconds\":{planned}}}\n"),
    )?;
    Ok(())
}

fn crdgen(root: &Path) -> anyhow::Result<()> {
    let dir = root.join("deploy/crds");
    std::fs::create_dir_all(&dir)?;
    for (file, yaml) in serin_api::crd_documents()? {
        let path = dir.join(file);
        std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn bench(root: &Path, which: &str) -> anyhow::Result<()> {
    if which == "seed" {
        return seed_bench(root);
    }
    if which == "scale" {
        // The controller runs as its own (release) process next to the emulator.
        run(
            root,
            "cargo",
            &["build", "--release", "-p", "serin-controller", "-p", "serin-sandbox"],
            &[],
        )?;
        return run(
            root,
            "cargo",
            &[
                "bench",
                "-p",
                "serin-sandbox",
                "--bench",
                "scale",
                "--",
                // The goal: 10,000 Canaries at a 15 s interval, in both shapes.
                "10000@15s",
                // Three shards of two replicas, shard 0's leader killed mid-run.
                "--sharded",
                "10000@15s",
            ],
            &[],
        );
    }
    let packages: &[&str] = match which {
        "core" => &["serin-core"],
        "judge" => &["serin-corpus"],
        "loadtester" => &["serin-loadtester"],
        "sandbox" => &["serin-sandbox"],
        "dashboard" => &["serin-dashboard"],
        "all" => &[
            "serin-core",
            "serin-corpus",
            "serin-loadtester",
            "serin-sandbox",
            "serin-dashboard",
        ],
        other => bail!("unknown benchmark {other:?}: core, judge, loadtester, sandbox, dashboard, scale or all"),
    };
    for package in packages {
        let mut args = vec!["bench", "-p", package];
        if *package == "serin-sandbox" {
            args.extend(["--bench", "kube_api"]);
        }
        run(root, "cargo", &args, &[])?;
    }
    Ok(())
}
