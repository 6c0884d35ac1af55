//! `serin-sandbox`: run sandbox components as processes.
//!
//! `serin-sandbox kube-api --port N [--crds PATH]...` runs the Kubernetes API emulator, with
//! CRDs from YAML files or directories installed, until interrupted.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serin_sandbox::kube_api::KubeApi;

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
    let Some("kube-api") = args.first().map(String::as_str) else {
        bail!("usage: serin-sandbox kube-api [--port N] [--crds PATH]...");
    };
    let mut port = 0u16;
    let mut crds: Vec<PathBuf> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--port", Some(p)) => port = p.parse().context("--port")?,
            ("--crds", Some(p)) => crds.push(PathBuf::from(p)),
            (other, _) => bail!("unknown argument {other:?}"),
        }
        i += 2;
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
    tokio::signal::ctrl_c().await?;
    Ok(())
}
