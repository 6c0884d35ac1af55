//! Starts a real Prometheus (the Debian package) that scrapes the sandbox, and stops it on drop.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// Why Prometheus could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// No binary.
    #[error(
        "prometheus is not installed: run `apt-get update && apt-get install -y --no-install-recommends prometheus` (Debian), or set SERIN_PROMETHEUS to its path"
    )]
    Missing,
    /// It could not be started or did not become ready.
    #[error("prometheus: {0}")]
    Start(String),
}

/// A running Prometheus; killed and its data removed when dropped.
pub struct Prometheus {
    /// Its base URL.
    pub url: String,
    child: Child,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Prometheus binary: `$SERIN_PROMETHEUS`, `prometheus` on the PATH, or `/usr/bin/prometheus`.
pub fn find_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SERIN_PROMETHEUS") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, PrometheusError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PrometheusError::Start(e.to_string()))
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/stats/prometheus`) every second,
    /// and waits until it is ready.
    pub fn start(targets: &[String]) -> Result<Prometheus, PrometheusError> {
        let targets = targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        Self::start_with_config(&format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sandbox\n    metrics_path: /stats/prometheus\n    static_configs:\n      - targets: [{targets}]\n"
        ))
    }

    /// Starts Prometheus with this configuration file's text, and waits until it is ready.
    pub fn start_with_config(config: &str) -> Result<Prometheus, PrometheusError> {
        let binary = find_binary().ok_or(PrometheusError::Missing)?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("serin-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| PrometheusError::Start(e.to_string()))?;
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(|e| PrometheusError::Start(e.to_string()))?;
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| PrometheusError::Start(format!("{}: {e}", binary.display())))?;
        let prometheus = Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        prometheus.wait_ready(Duration::from_secs(30))?;
        Ok(prometheus)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), PrometheusError> {
        let addr = self.url.trim_start_matches("http://");
        crate::cluster::wait_http(addr, "/-/ready", limit).map_err(|e| PrometheusError::Start(e.to_string()))
    }

    /// Stops Prometheus now (tests of provider errors).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
