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

/// Knative Serving's CRDs, copied unchanged into testdata/knative.
const KNATIVE_CRDS: [&str; 4] = [
    include_str!("../../../testdata/knative/service.yaml"),
    include_str!("../../../testdata/knative/configuration.yaml"),
    include_str!("../../../testdata/knative/revision.yaml"),
    include_str!("../../../testdata/knative/route.yaml"),
];

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

/// `serin-sandbox demo [--root DIR] [--scenario promote|rollback|all] [--fast] [--keep]`.
async fn demo(args: &[String]) -> anyhow::Result<()> {
    let mut root = PathBuf::from(".");
    let mut scenario = serin_sandbox::demo::Scenario::All;
    let (mut fast, mut keep) = (false, false);
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1).map(String::as_str)) {
            ("--fast", _) => fast = true,
            ("--keep", _) => keep = true,
            ("--root", Some(r)) => {
                root = PathBuf::from(r);
                i += 1;
            }
            ("--scenario", Some(s)) => {
                scenario = match s {
                    "promote" => serin_sandbox::demo::Scenario::Promote,
                    "rollback" => serin_sandbox::demo::Scenario::Rollback,
                    "all" => serin_sandbox::demo::Scenario::All,
                    other => bail!("--scenario {other:?}: promote, rollback or all"),
                };
                i += 1;
            }
            (other, _) => bail!("unknown demo argument {other:?}"),
        }
        i += 1;
    }
    let exe = std::env::current_exe()?;
    let bins = serin_sandbox::cluster::Binaries::in_dir(exe.parent().context("binary directory")?)?;
    println!(
        "Starting the sandbox: Kubernetes API emulator + Knative simulator + traffic router, Prometheus, serin-loadtester, serin-controller (real processes on loopback)..."
    );
    let mut cluster = serin_sandbox::cluster::Cluster::start(bins, &root, Vec::new())?;
    cluster.start_controller()?;
    println!("logs: {}", cluster.logs.display());
    let ok = serin_sandbox::demo::run(&cluster, &root, scenario, fast).await;
    if keep {
        println!(
            "
The sandbox keeps running. Explore with:
  kubectl --server {} get canaries -A
  kubectl --server {} -n test describe canary podinfo
Press Ctrl-C to stop.",
            cluster.api_url, cluster.api_url
        );
        tokio::signal::ctrl_c().await?;
    }
    match ok {
        Ok(true) => {
            println!(
                "
demo: every scenario ended as expected"
            );
            Ok(())
        }
        Ok(false) => bail!(
            "demo: a scenario did not end as expected (logs in {})",
            cluster.logs.display()
        ),
        Err(e) => Err(e.context(format!("demo failed (logs in {})", cluster.logs.display()))),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: serin-sandbox kube-api [--port N] [--crds PATH]... [--knative [--router-port N] [--router-admin-port N] [--route HOST=ADDR]...] | serin-sandbox knative --server URL [router flags]";
    let command = args.first().map(String::as_str).unwrap_or_default().to_owned();
    if command == "demo" {
        return demo(&args[1..]).await;
    }
    if !matches!(command.as_str(), "kube-api" | "knative") {
        bail!(usage);
    }
    let mut port = 0u16;
    let mut crds: Vec<PathBuf> = Vec::new();
    let mut knative = false;
    let mut no_router = false;
    let mut server = None;
    let mut router_port = 0u16;
    let mut router_admin_port = 0u16;
    let mut routes: Vec<(String, std::net::SocketAddr)> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--knative", _) => {
                knative = true;
                i += 1;
                continue;
            }
            ("--no-router", _) => {
                no_router = true;
                i += 1;
                continue;
            }
            ("--port", Some(p)) => port = p.parse().context("--port")?,
            ("--crds", Some(p)) => crds.push(PathBuf::from(p)),
            ("--server", Some(s)) => server = Some(s.clone()),
            ("--router-port", Some(p)) => router_port = p.parse().context("--router-port")?,
            ("--router-admin-port", Some(p)) => router_admin_port = p.parse().context("--router-admin-port")?,
            ("--route", Some(r)) => {
                let (host, addr) = r.split_once('=').context("--route HOST=ADDR")?;
                routes.push((host.to_owned(), addr.parse().context("--route address")?));
            }
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
        let router = std::sync::Arc::new(TrafficRouter::start_on(router_port, router_admin_port).await?);
        for (host, addr) in &routes {
            router.set_static(host, *addr);
        }
        println!(
            "knative simulator running; traffic router on {} (metrics on {})",
            router.addr, router.admin_addr
        );
        Simulator::new(client, SimConfig::demo(), Some(router)).run().await;
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
        // Knative's own CRDs (testdata/knative), unless given with --crds already.
        for text in KNATIVE_CRDS {
            let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).context("embedded Knative CRDs")?;
            for crd in docs
                .into_iter()
                .filter(|d| d.get("kind").and_then(|k| k.as_str()) == Some("CustomResourceDefinition"))
            {
                match api.install_crd(crd) {
                    Ok(()) => {}
                    Err(e) if e.code == 409 => {}
                    Err(e) => bail!("Knative CRDs: {}", e.message),
                }
            }
        }
        serin_sandbox::knative::validation::install(&api);
        let router = if no_router {
            println!("knative simulator attached (no traffic router)");
            None
        } else {
            let router = std::sync::Arc::new(TrafficRouter::start_on(router_port, router_admin_port).await?);
            for (host, addr) in &routes {
                router.set_static(host, *addr);
            }
            println!(
                "knative simulator attached; traffic router on {} (metrics on {})",
                router.addr, router.admin_addr
            );
            Some(router)
        };
        tokio::spawn(Simulator::new(api.client()?, SimConfig::demo(), router).run());
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
