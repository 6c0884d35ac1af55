//! `serin`: the user's command line.
//!
//! - `serin validate FILE...`: checks every Canary (and MetricTemplate) in the files as the
//!   controller would; one line per problem,
//!   `FILE: Canary NAMESPACE/NAME: FIELD.PATH: problem`, exit 1 when any.
//! - `serin plan FILE`: the rollout schedule of the file's Canary, computed by running the
//!   engine in a simulated world where everything passes.
//!
//! - `serin check-metrics FILE --prometheus URL --canary-revision REV`: runs the Canary's metric
//!   queries once and prints values, bounds and verdicts.
//!
//! - `serin get canaries [-n NS | -A]`, `serin get canary NAME [-o json]`: a cluster's
//!   Canaries, through kubeconfig as kubectl finds it.
//! - `serin pause NAME`, `serin resume NAME`: `spec.suspend`.
//!
//! - `serin dashboard [--port 3100] [--allow-actions] [--allow-host NAME]`: the rollout dashboard on loopback.
//!
//! `validate`, `plan` and `check-metrics` read files (and Prometheus); `get`, `pause` and
//! `resume` talk to the cluster of the current kubeconfig context.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use serin_api::requests::Request;
use serin_metrics::QuerySet;

mod check_metrics;
mod cluster;
mod dashboard;
mod live;
mod plan;
mod requests;
mod validate;

#[derive(Parser)]
#[command(name = "serin", version, about = "Progressive delivery for Knative Services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the Canaries in YAML files (other documents are skipped).
    Validate {
        /// YAML files, multi-document allowed.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a Canary's metric queries once against Prometheus and judge them.
    CheckMetrics {
        /// A YAML file holding the Canary (and any MetricTemplates it references).
        file: PathBuf,
        /// Prometheus base URL.
        #[arg(long, env = "SERIN_PROMETHEUS_URL")]
        prometheus: String,
        /// The revision to measure (`{{ route }}`), e.g. podinfo-00002.
        #[arg(long)]
        canary_revision: String,
        /// The primary revision (`{{ primary }}`).
        #[arg(long)]
        primary_revision: Option<String>,
        /// Built-in query set: kourier, queue-proxy-opencensus, queue-proxy-otel.
        #[arg(long, default_value = "kourier")]
        query_set: QuerySet,
    },
    /// Show Canaries in a cluster.
    Get {
        #[command(subcommand)]
        what: Get,
    },
    /// Pause a Canary's rollout (`spec.suspend: true`).
    Pause {
        /// The Canary.
        name: String,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// Resume a paused Canary (`spec.suspend: false`).
    Resume {
        /// The Canary.
        name: String,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// Pass the current step of a rollout now (no analysis; gates and weights' order still apply).
    Promote {
        /// The Canary.
        name: String,
        /// Go straight to promotion instead of the next weight.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// Roll a rollout back now: all traffic to the primary.
    Abort {
        /// The Canary.
        name: String,
        /// Why, recorded in the request and its event.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// Analyse again the revision that was rolled back.
    Retry {
        /// The Canary.
        name: String,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// Open a gate for the current rollout without a loadtester.
    Approve {
        /// The Canary.
        name: String,
        /// confirm-rollout, confirm-traffic-increase or confirm-promotion.
        #[arg(long, default_value = "confirm-promotion")]
        gate: String,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// Serve the rollout dashboard (read-only unless --allow-actions) on loopback.
    Dashboard {
        /// The port to listen on.
        #[arg(long, default_value_t = 3100)]
        port: u16,
        /// The address to listen on; anything but loopback shares the pages (and, with
        /// --allow-actions, the buttons) with whoever can reach it.
        #[arg(long, default_value = "127.0.0.1")]
        address: std::net::IpAddr,
        /// Show the action buttons (promote, abort, retry, approve, pause, resume) and accept them.
        #[arg(long)]
        allow_actions: bool,
        /// A host name the pages answer to besides IP addresses and localhost (repeatable);
        /// other names are refused, so no web site can reach the dashboard by DNS rebinding.
        #[arg(long = "allow-host", value_name = "NAME")]
        allowed_hosts: Vec<String>,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// Print the rollout schedule of a Canary.
    Plan {
        /// A YAML file holding one Canary.
        file: PathBuf,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// What `serin get` shows.
#[derive(Subcommand)]
enum Get {
    /// One line per Canary: phase, weight, revisions, failed checks, ETA.
    Canaries {
        /// Every namespace.
        #[arg(long, short = 'A')]
        all_namespaces: bool,
        #[command(flatten)]
        access: cluster::Access,
    },
    /// One Canary: what it is doing and why (the last decision, its checks, conditions).
    Canary {
        /// The Canary.
        name: String,
        /// Keep watching: one line each time the rollout changes.
        #[arg(long, short = 'w')]
        watch: bool,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
        #[command(flatten)]
        access: cluster::Access,
    },
}

/// Output format of `plan`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Output {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    serin_metrics::install_crypto_provider();
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    let on_cluster = |work: std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>| match runtime() {
        Ok(rt) => rt.block_on(work).map(|()| true),
        Err(e) => Err(anyhow::Error::from(e)),
    };
    let result = match cli.command {
        Command::Get {
            what: Get::Canaries { all_namespaces, access },
        } => cluster::check_scope(all_namespaces, &access)
            .and_then(|()| on_cluster(Box::pin(async move { cluster::list(&access, all_namespaces).await }))),
        Command::Get {
            what:
                Get::Canary {
                    name,
                    watch: true,
                    access,
                    ..
                },
        } => on_cluster(Box::pin(async move { cluster::watch(&access, &name).await })),
        Command::Get {
            what: Get::Canary {
                name, output, access, ..
            },
        } => on_cluster(Box::pin(async move { cluster::show(&access, &name, output).await })),
        Command::Pause { name, access } => {
            on_cluster(Box::pin(async move { cluster::suspend(&access, &name, true).await }))
        }
        Command::Resume { name, access } => {
            on_cluster(Box::pin(async move { cluster::suspend(&access, &name, false).await }))
        }
        Command::Promote { name, full, access } => on_cluster(Box::pin(async move {
            let request = if full { Request::PromoteFull } else { Request::Promote };
            requests::send(&access, &name, request, None).await
        })),
        Command::Abort { name, reason, access } => on_cluster(Box::pin(async move {
            requests::send(&access, &name, Request::Abort, reason.as_deref()).await
        })),
        Command::Retry { name, access } => on_cluster(Box::pin(async move {
            requests::send(&access, &name, Request::Retry, None).await
        })),
        Command::Approve { name, gate, access } => on_cluster(Box::pin(async move {
            let Some(request) = Request::parse(&format!("approve-{gate}")) else {
                anyhow::bail!("--gate {gate:?}: confirm-rollout, confirm-traffic-increase or confirm-promotion");
            };
            requests::send(&access, &name, request, None).await
        })),
        Command::Dashboard {
            port,
            address,
            allow_actions,
            allowed_hosts,
            access,
        } => on_cluster(Box::pin(async move {
            dashboard::run(&access, (address, port).into(), allow_actions, allowed_hosts).await
        })),
        Command::Validate { files } => validate::run(&files),
        Command::Plan { file, output } => plan::run(&file, output).map(|()| true),
        Command::CheckMetrics {
            file,
            prometheus,
            canary_revision,
            primary_revision,
            query_set,
        } => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(check_metrics::run(check_metrics::CheckMetrics {
                file: &file,
                prometheus: &prometheus,
                canary_revision: &canary_revision,
                primary_revision: primary_revision.as_deref(),
                query_set,
            })),
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("serin: {e:#}");
            ExitCode::FAILURE
        }
    }
}
