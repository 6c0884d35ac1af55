//! The dashboard in the sandbox, and a real browser to look at it: [`Dashboard`] serves
//! `serin_dashboard` in-process against the sandbox's API, [`screenshot`] runs headless
//! Chromium once for a PNG (the demo's `--dashboard`), and [`ChromeDriver`] starts Debian's
//! `chromedriver` for tests that click.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};

use crate::cluster::{Managed, free_port, spawn, wait_http};

/// The dashboard served in-process; stops when dropped.
pub struct Dashboard {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    server: tokio::task::JoinHandle<()>,
    _watches: serin_dashboard::WatchGuard,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Dashboard {
    /// Serves the dashboard for every namespace on a free loopback port.
    pub async fn start(client: kube::Client, allow_actions: bool) -> anyhow::Result<Dashboard> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (store, watches) = serin_dashboard::watch(&client, None);
        let options = serin_dashboard::Options {
            allow_actions,
            who: "sandbox".into(),
            allowed_hosts: Some(Vec::new()),
        };
        let router = serin_dashboard::router(store, client, options);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the dashboard stopped");
            }
        });
        // The listener is bound already: connections wait in its backlog until it serves.
        Ok(Dashboard {
            url: format!("http://{addr}"),
            server,
            _watches: watches,
        })
    }
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Chromium binary: `SERIN_CHROMIUM`, else `chromium` or `chromium-browser` on `PATH`.
pub fn chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SERIN_CHROMIUM") {
        return Ok(path.into());
    }
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|p| found(p))
        .map(PathBuf::from)
        .context("no chromium: install the Debian packages `chromium chromium-driver` (cargo xtask ci does as root)")
}

/// The flags every headless run gets (`--no-sandbox`: CI runs as root).
pub const HEADLESS: [&str; 5] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

/// Saves a PNG of `url` at `width`×`height` to `path`, with JavaScript running (the page's
/// live stream connects, which does not delay the capture).
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) -> anyhow::Result<()> {
    let chromium = chromium()?;
    let profile = std::env::temp_dir().join(format!("serin-chromium-{}", std::process::id()));
    let output = Command::new(&chromium)
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", path.display()))
        .arg("--timeout=5000")
        .arg(url)
        .output()
        .with_context(|| format!("cannot run {}", chromium.display()))?;
    let _ = std::fs::remove_dir_all(&profile);
    if !path.exists() {
        bail!(
            "chromium wrote no screenshot of {url} ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Debian's `chromedriver` on a free port; killed when dropped.
pub struct ChromeDriver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _process: Managed,
}

impl ChromeDriver {
    /// Starts `chromedriver` (or `SERIN_CHROMEDRIVER`) and waits until it answers, logging
    /// into `logs`.
    pub fn start(logs: &Path) -> anyhow::Result<ChromeDriver> {
        let program = std::env::var_os("SERIN_CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| found("chromedriver").then(|| PathBuf::from("chromedriver")))
            .context("no chromedriver: install the Debian package `chromium-driver` (cargo xtask ci does as root)")?;
        let port = free_port()?;
        let process = spawn("chromedriver", &program, &[format!("--port={port}")], logs)?;
        let addr = format!("127.0.0.1:{port}");
        wait_http(&addr, "/status", Duration::from_secs(20))?;
        Ok(ChromeDriver {
            url: format!("http://{addr}"),
            _process: process,
        })
    }

    /// The capabilities for a headless Chromium session.
    pub fn capabilities() -> serde_json::Map<String, serde_json::Value> {
        let mut args: Vec<String> = HEADLESS.iter().map(|s| (*s).to_owned()).collect();
        args.push("--window-size=1280,1000".into());
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"args": args},
        });
        caps.as_object().cloned().unwrap_or_default()
    }
}

/// The demo's screenshots of one rollout (`prefix` is `promote` or `rollback`, after the
/// judge's name for another judge than Flagger's rule): one while it runs, taken from a
/// background task once the rollout is well under way, and the rest by
/// [`Screenshots::finish`] when it has ended.
pub struct Screenshots {
    dashboard: String,
    dir: PathBuf,
    prefix: String,
    during: tokio::task::JoinHandle<()>,
}

fn canary_url(dashboard: &str) -> String {
    format!("{dashboard}/canaries/test/podinfo")
}

async fn shoot(url: String, path: PathBuf) {
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || screenshot(&url, &path, 1280, 1500)).await {
        Ok(Ok(())) => println!("screenshot: {shown}"),
        Ok(Err(e)) => println!("screenshot {shown} failed: {e:#}"),
        Err(e) => println!("screenshot {shown} failed: {e}"),
    }
}

impl Screenshots {
    /// Starts watching for the moment to take the one during the rollout: weight at 30% for a
    /// promotion, two failed checks for a rollback.
    /// Files are named `<prefix>-during.png` and so on; a prefix ending in `rollback` waits for
    /// the failed checks.
    pub fn start(client: kube::Client, dashboard: &str, dir: &Path, prefix: &str) -> Screenshots {
        let rollback = prefix.ends_with("rollback");
        let url = canary_url(dashboard);
        let path = dir.join(format!("{prefix}-during.png"));
        let during = tokio::spawn(async move {
            let api = crate::demo::canaries(&client);
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Ok(canary) = api.get("podinfo").await else { continue };
                let status = &canary.data["status"];
                let weight = status["canaryWeight"].as_i64().unwrap_or(0);
                let failed = status["failedChecks"].as_i64().unwrap_or(0);
                let progressing = status["phase"].as_str() == Some("Progressing");
                let moment = if rollback { failed >= 2 } else { weight >= 30 };
                if progressing && moment {
                    // Let the live page catch up with the step before it is captured.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    shoot(url, path).await;
                    return;
                }
            }
        });
        Screenshots {
            dashboard: dashboard.to_owned(),
            dir: dir.to_owned(),
            prefix: prefix.to_owned(),
            during,
        }
    }

    /// The rollout has ended: the Canary's page and the list, as they are now.
    pub async fn finish(self) {
        self.during.abort();
        let dir = self.dir;
        shoot(
            canary_url(&self.dashboard),
            dir.join(format!("{}-after.png", self.prefix)),
        )
        .await;
        shoot(
            format!("{}/", self.dashboard),
            dir.join(format!("{}-list.png", self.prefix)),
        )
        .await;
    }
}
