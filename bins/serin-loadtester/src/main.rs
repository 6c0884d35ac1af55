//! `serin-loadtester`: serve the Flagger-compatible loadtester API, or `run` a hey-style load
//! from the command line. Wiring only: flags, logging, state, shutdown.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use serin_loadtester::{
    gates::GateStore,
    generator, hey,
    metrics::Metrics,
    server::{self, AppState},
    tasks::{TaskConfig, Tasks},
};

#[derive(Parser)]
#[command(
    name = "serin-loadtester",
    version,
    about = "Flagger-compatible loadtester with a native load generator"
)]
struct Cli {
    /// Port to listen on.
    #[arg(long, env = "LOADTESTER_PORT", default_value_t = 9090)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "LOADTESTER_BIND", default_value = "0.0.0.0")]
    bind: String,
    /// Upper bound of any task.
    #[arg(long, env = "LOADTESTER_TIMEOUT", default_value = "1h", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Accept only payloads whose namespace matches this regular expression (whole string).
    #[arg(long, env = "LOADTESTER_NAMESPACE_REGEXP")]
    namespace_regexp: Option<String>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, env = "LOADTESTER_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// File holding a bearer token every endpoint but /healthz requires.
    #[arg(long, env = "LOADTESTER_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Allow `bash` tasks and `cmd` tasks that are not hey syntax.
    #[arg(long, env = "LOADTESTER_ALLOW_SHELL")]
    allow_shell: bool,
    /// Where gate state is kept across restarts.
    #[arg(
        long,
        env = "LOADTESTER_STATE_FILE",
        default_value = "/tmp/serin-loadtester-gates.json"
    )]
    state_file: PathBuf,
    /// Keep gate state in this ConfigMap instead of the state file, so it survives a new pod
    /// and is shared by replicas (needs get/create/update on ConfigMaps in its namespace).
    #[arg(long, env = "LOADTESTER_STATE_CONFIGMAP")]
    state_configmap: Option<String>,
    /// Namespace of `--state-configmap` (default: POD_NAMESPACE, else the kubeconfig's).
    #[arg(long, env = "POD_NAMESPACE")]
    state_namespace: Option<String>,
    /// Use this API server URL instead of in-cluster or kubeconfig settings (tests).
    #[arg(long, env = "LOADTESTER_KUBE_SERVER")]
    kube_server: Option<String>,
    /// Connect to ADDR for hosts ending in SUFFIX, keeping the Host header (`.test=127.0.0.1:8080`).
    #[arg(long, env = "LOADTESTER_RESOLVE", value_delimiter = ',', value_parser = parse_resolve)]
    resolve: Vec<(String, String)>,
    /// Background tasks at once.
    #[arg(long, env = "LOADTESTER_MAX_TASKS", default_value_t = 32)]
    max_tasks: usize,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a load like hey (`run -z 30s -q 5 -c 2 URL`, or `run hey …`) or like wrk
    /// (`run wrk -t2 -c10 -d30s URL`), printing that tool's report.
    Run {
        /// hey arguments, or a hey or wrk command line.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
}

fn parse_resolve(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(suffix, addr)| (suffix.to_owned(), addr.to_owned()))
        .ok_or_else(|| format!("{text:?} is not SUFFIX=HOST:PORT"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Flagger's Go-style flags (`-port=8080`, …) work unchanged.
    let cli = Cli::parse_from(
        std::iter::once("serin-loadtester".to_owned())
            .chain(serin_loadtester::flagger_flags::rewrite(std::env::args().skip(1))),
    );
    // One crypto provider for the Kubernetes client's TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log_level).context("--log-level")?)
        .with_writer(std::io::stderr)
        .init();
    if let Some(Command::Run { args }) = cli.command {
        let spec = match args.first().map(String::as_str) {
            Some("wrk") => serin_loadtester::wrk::parse_args(&args[1..]),
            Some("hey") => hey::parse_args(&args[1..]),
            _ => hey::parse_args(&args),
        }
        .context("invalid load arguments")?;
        let summary = generator::run(&spec).await?;
        print!("{}", serin_loadtester::report::render(&summary, &spec.style));
        return Ok(());
    }
    let token = match &cli.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --token-file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let namespace_regexp = cli
        .namespace_regexp
        .as_deref()
        .map(|r| regex::Regex::new(&format!("^(?:{r})$")))
        .transpose()
        .context("--namespace-regexp")?;
    let metrics = Arc::new(Metrics::new());
    let tasks = Tasks::new(
        TaskConfig {
            allow_shell: cli.allow_shell,
            task_timeout: cli.timeout,
            max_tasks: cli.max_tasks,
            namespace_regexp,
            resolve: cli.resolve,
        },
        metrics.clone(),
    );
    let gates = Arc::new(match &cli.state_configmap {
        Some(name) => {
            let config = match &cli.kube_server {
                Some(url) => kube::Config::new(url.parse().context("--kube-server")?),
                None => kube::Config::infer()
                    .await
                    .context("--state-configmap needs a Kubernetes configuration (in-cluster or kubeconfig)")?,
            };
            let namespace = cli
                .state_namespace
                .clone()
                .unwrap_or_else(|| config.default_namespace.clone());
            tracing::info!(configmap = %name, %namespace, "gate state in a ConfigMap");
            GateStore::config_map(kube::Client::try_from(config)?, &namespace, name)
        }
        None => GateStore::open(&cli.state_file)?,
    });
    let listener = tokio::net::TcpListener::bind((cli.bind.as_str(), cli.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", cli.bind, cli.port))?;
    tracing::info!(addr = %listener.local_addr()?, allow_shell = cli.allow_shell, auth = token.is_some(), "loadtester listening");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
        tracing::info!("shutting down");
    };
    server::serve(
        listener,
        AppState {
            gates,
            tasks,
            metrics,
            token,
        },
        shutdown,
    )
    .await?;
    Ok(())
}
