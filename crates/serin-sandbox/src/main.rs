//! `serin-sandbox`: run sandbox components as processes.
//!
//! - `serin-sandbox kube-api --port N [--crds PATH]... [--knative]` runs the Kubernetes API
//!   emulator, with CRDs from YAML files or directories installed; `--knative` also attaches the
//!   Knative Serving simulator, Knative's traffic validation and the traffic router.
//! - `serin-sandbox knative --server URL` runs the Knative simulator alone against any API server.
//!
//! Both run until interrupted.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serin_sandbox::{
    knative::{SimConfig, Simulator},
    kube_api::KubeApi,
    router::TrafficRouter,
};

fn crd_documents(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).with_context(|| format!("{} is not YAML", f.display()))?;
        out.extend(
            docs.into_iter()
                .filter(|d| d.get("kind").and_then(|k| k.as_str()) == Some("CustomResourceDefinition")),
        );
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: serin-sandbox kube-api [--port N] [--crds PATH]... [--knative] | serin-sandbox knative --server URL";
    let command = args.first().map(String::as_str).unwrap_or_default().to_owned();
    if !matches!(command.as_str(), "kube-api" | "knative") {
        bail!(usage);
    }
    let mut port = 0u16;
    let mut crds: Vec<PathBuf> = Vec::new();
    let mut knative = false;
    let mut server = None;
    let mut i = 1;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--knative", _) => {
                knative = true;
                i += 1;
                continue;
            }
            ("--port", Some(p)) => port = p.parse().context("--port")?,
            ("--crds", Some(p)) => crds.push(PathBuf::from(p)),
            ("--server", Some(s)) => server = Some(s.clone()),
            (other, _) => bail!("unknown argument {other:?}; {usage}"),
        }
        i += 2;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    if command == "knative" {
        let url: http::Uri = server
            .context("--server URL is required")?
            .parse()
            .context("--server")?;
        let client = kube::Client::try_from(kube::Config::new(url))?;
        let router = std::sync::Arc::new(TrafficRouter::start().await?);
        println!(
            "knative simulator running; traffic router on {} (metrics on {})",
            router.addr, router.admin_addr
        );
        Simulator::new(client, SimConfig::default(), Some(router)).run().await;
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SERIN_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let api = KubeApi::start(port).await?;
    for path in &crds {
        for crd in crd_documents(path)? {
            api.install_crd(crd)
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
        }
    }
    println!("kube-api listening on {} (kubectl --server {})", api.url(), api.url());
    if knative {
        serin_sandbox::knative::validation::install(&api);
        let router = std::sync::Arc::new(TrafficRouter::start().await?);
        println!(
            "knative simulator attached; traffic router on {} (metrics on {})",
            router.addr, router.admin_addr
        );
        tokio::spawn(Simulator::new(api.client()?, SimConfig::default(), Some(router)).run());
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
