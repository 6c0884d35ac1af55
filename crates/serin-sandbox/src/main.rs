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
use clap::{Args, Parser, ValueEnum};
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

/// `serin-sandbox`: Knative-in-a-box as processes.
#[derive(Parser)]
#[command(
    name = "serin-sandbox",
    about = "Knative-in-a-box: API emulator, Knative simulator, traffic router, demo"
)]
enum Cli {
    /// The Kubernetes API emulator (with CRDs installed), optionally with the Knative simulator.
    KubeApi {
        /// Port (0: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// CRD YAML files or directories to install.
        #[arg(long)]
        crds: Vec<PathBuf>,
        /// Attach the Knative Serving simulator, Knative's traffic validation and (unless
        /// `--no-router`) the traffic router.
        #[arg(long)]
        knative: bool,
        /// With `--knative`: no traffic router.
        #[arg(long)]
        no_router: bool,
        #[command(flatten)]
        router: RouterArgs,
    },
    /// The Knative Serving simulator alone, against any API server.
    Knative {
        /// The API server URL.
        #[arg(long)]
        server: String,
        #[command(flatten)]
        router: RouterArgs,
    },
    /// The seed tutorial end to end with every component a real process.
    Demo {
        /// The repository root (test data, CRDs).
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Which rollouts to run.
        #[arg(long, value_enum, default_value_t = ScenarioArg::All)]
        scenario: ScenarioArg,
        /// Short intervals (3 s steps, 10 s metric windows).
        #[arg(long)]
        fast: bool,
        /// Leave the sandbox running afterwards.
        #[arg(long)]
        keep: bool,
        /// Judge the rollouts with `flagger` (default), `shadow` or `sequential` (with 100 req/s
        /// of load, what the sequential judge needs to decide in a few minutes).
        #[arg(long, default_value = "flagger")]
        judge: String,
        /// Serve the dashboard too, and save screenshots of it (headless Chromium) into DIR.
        #[arg(long, value_name = "DIR")]
        dashboard: Option<PathBuf>,
    },
}

/// The traffic router's settings.
#[derive(Args)]
struct RouterArgs {
    /// Port of the routed traffic (0: a free one).
    #[arg(long, default_value_t = 0)]
    router_port: u16,
    /// Port of the router's metrics (0: a free one).
    #[arg(long, default_value_t = 0)]
    router_admin_port: u16,
    /// A fixed backend for a host, `HOST=ADDR` (repeatable).
    #[arg(long = "route", value_parser = parse_route)]
    routes: Vec<(String, std::net::SocketAddr)>,
}

fn parse_route(text: &str) -> Result<(String, std::net::SocketAddr), String> {
    let (host, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not HOST=ADDR"))?;
    Ok((host.to_owned(), addr.parse().map_err(|e| format!("{addr:?}: {e}"))?))
}

/// The demo's rollouts.
#[derive(Clone, Copy, ValueEnum)]
enum ScenarioArg {
    /// 6.0.1 is promoted.
    Promote,
    /// 6.0.2 is rolled back.
    Rollback,
    /// Both, in order.
    All,
}

async fn demo(
    root: PathBuf,
    scenario: ScenarioArg,
    fast: bool,
    keep: bool,
    judge: String,
    dashboard: Option<PathBuf>,
) -> anyhow::Result<()> {
    if serin_core::JudgeMode::parse(&judge).is_none() {
        bail!("--judge {judge:?}: flagger, shadow or sequential");
    }
    let scenario = match scenario {
        ScenarioArg::Promote => serin_sandbox::demo::Scenario::Promote,
        ScenarioArg::Rollback => serin_sandbox::demo::Scenario::Rollback,
        ScenarioArg::All => serin_sandbox::demo::Scenario::All,
    };
    let exe = std::env::current_exe()?;
    let bins = serin_sandbox::cluster::Binaries::in_dir(exe.parent().context("binary directory")?)?;
    println!(
        "Starting the sandbox: Kubernetes API emulator + Knative simulator + traffic router, Prometheus, serin-loadtester, serin-controller (real processes on loopback)..."
    );
    let mut cluster = serin_sandbox::cluster::Cluster::start(bins, &root, Vec::new())?;
    cluster.start_controller()?;
    println!("logs: {}", cluster.logs.display());
    let ok = serin_sandbox::demo::run(&cluster, &root, scenario, fast, &judge, dashboard.as_deref()).await;
    if keep {
        println!(
            "
The sandbox keeps running. Explore with:
  kubectl --server {} get canaries -A
  kubectl --server {} -n test describe canary podinfo
  KUBECONFIG={} serin get canary podinfo -n test -w
  KUBECONFIG={} serin dashboard   (then open http://127.0.0.1:3100/)
Press Ctrl-C to stop.",
            cluster.api_url,
            cluster.api_url,
            cluster.write_kubeconfig()?.display(),
            cluster.write_kubeconfig()?.display()
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse() {
        Cli::Demo {
            root,
            scenario,
            fast,
            keep,
            judge,
            dashboard,
        } => demo(root, scenario, fast, keep, judge, dashboard).await,
        Cli::Knative { server, router } => knative(&server, router).await,
        Cli::KubeApi {
            port,
            crds,
            knative,
            no_router,
            router,
        } => kube_api(port, &crds, knative.then_some((no_router, router))).await,
    }
}

async fn knative(server: &str, router: RouterArgs) -> anyhow::Result<()> {
    let url: http::Uri = server.parse().context("--server")?;
    let client = kube::Client::try_from(kube::Config::new(url))?;
    let traffic = std::sync::Arc::new(TrafficRouter::start_on(router.router_port, router.router_admin_port).await?);
    for (host, addr) in &router.routes {
        traffic.set_static(host, *addr);
    }
    println!(
        "knative simulator running; traffic router on {} (metrics on {})",
        traffic.addr, traffic.admin_addr
    );
    Simulator::new(client, SimConfig::demo(), Some(traffic)).run().await;
    Ok(())
}

/// The emulator; with `knative`, the simulator too (`(no_router, router settings)`).
async fn kube_api(port: u16, crds: &[PathBuf], knative: Option<(bool, RouterArgs)>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SERIN_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let api = KubeApi::start(port).await?;
    for path in crds {
        for crd in crd_documents(path)? {
            api.install_crd(crd)
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
        }
    }
    println!("kube-api listening on {} (kubectl --server {})", api.url(), api.url());
    if let Some((no_router, router)) = knative {
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
            let traffic =
                std::sync::Arc::new(TrafficRouter::start_on(router.router_port, router.router_admin_port).await?);
            for (host, addr) in &router.routes {
                traffic.set_static(host, *addr);
            }
            println!(
                "knative simulator attached; traffic router on {} (metrics on {})",
                traffic.addr, traffic.admin_addr
            );
            Some(traffic)
        };
        tokio::spawn(Simulator::new(api.client()?, SimConfig::demo(), router).run());
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
