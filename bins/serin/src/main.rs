//! `serin`: the user's command line.
//!
//! - `serin validate FILE...`: checks every Canary in the files; one line per problem,
//!   `FILE: Canary NAMESPACE/NAME: FIELD.PATH: problem`, exit 1 when any.
//! - `serin plan FILE`: the rollout schedule of the file's Canary, computed by running the
//!   engine in a simulated world where everything passes.
//!
//! - `serin check-metrics FILE --prometheus URL --canary-revision REV`: runs the Canary's metric
//!   queries once and prints values, bounds and verdicts.
//!
//! It reads files and, for `check-metrics`, queries Prometheus; it never talks to a cluster.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serin_api::{CanaryDocument, canaries_in, validate};
use serin_core::{go_duration, schedule::Schedule};
use serin_metrics::QuerySet;

mod check_metrics;

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
    /// Print the rollout schedule of a Canary.
    Plan {
        /// A YAML file holding one Canary.
        file: PathBuf,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => validate_files(&files),
        Command::Plan { file, output } => plan(&file, output).map(|()| true),
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

/// Prints one line per problem; returns whether every Canary is valid.
fn validate_files(files: &[PathBuf]) -> anyhow::Result<bool> {
    let mut all_valid = true;
    for file in files {
        let name = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                println!("{name}: cannot read: {e}");
                all_valid = false;
                continue;
            }
        };
        let docs = match canaries_in(&text) {
            Ok(docs) => docs,
            Err(e) => {
                println!("{name}: {e}");
                all_valid = false;
                continue;
            }
        };
        for doc in docs {
            match doc {
                CanaryDocument::Malformed { id, problem } => {
                    println!("{name}: Canary {id}: {problem}");
                    all_valid = false;
                }
                CanaryDocument::Parsed(canary) => {
                    let id = format!(
                        "{}/{}",
                        canary.metadata.namespace.as_deref().unwrap_or("default"),
                        canary.metadata.name.as_deref().unwrap_or_default()
                    );
                    match validate(&canary) {
                        Ok(v) => {
                            for w in v.warnings {
                                eprintln!("{name}: Canary {id}: warning: {w}");
                            }
                            eprintln!("{name}: Canary {id}: valid");
                        }
                        Err(invalid) => {
                            all_valid = false;
                            for p in invalid.problems {
                                println!("{name}: Canary {id}: {p}");
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(all_valid)
}

fn plan(file: &PathBuf, output: Output) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let docs = canaries_in(&text).with_context(|| file.display().to_string())?;
    let canary = match docs.into_iter().next() {
        Some(CanaryDocument::Parsed(c)) => c,
        Some(CanaryDocument::Malformed { id, problem }) => {
            bail!("{}: Canary {id}: {problem}", file.display())
        }
        None => bail!("{}: no Canary found", file.display()),
    };
    let plan = validate(&canary)
        .map_err(|e| anyhow::anyhow!("{}: {e} (run `serin validate` for details)", file.display()))?
        .plan;
    let schedule = Schedule::for_plan(&plan);
    match output {
        Output::Json => println!("{}", serde_json::to_string(&schedule)?),
        Output::Text => {
            println!(
                "Rollout of {} (interval {}):",
                plan.target_ref(),
                go_duration(plan.interval)
            );
            for step in &schedule.steps {
                let hooks: Vec<String> = schedule
                    .hooks
                    .iter()
                    .filter(|h| h.at_seconds == step.at_seconds)
                    .map(|h| format!("{} ({})", h.name, h.kind))
                    .collect();
                let hooks = if hooks.is_empty() {
                    String::new()
                } else {
                    format!("  hooks: {}", hooks.join(", "))
                };
                println!(
                    "  +{:>4}s  canary weight {:>3}%{hooks}",
                    step.at_seconds, step.canary_weight
                );
            }
            match schedule.promotion_at_seconds {
                Some(s) => println!("  +{s:>4}s  promotion (after {} metric checks)", schedule.metric_checks),
                None => println!("  never promoted: check the plan"),
            }
            match schedule.fastest_rollback_seconds {
                Some(s) => println!("Fastest rollback (every check failing): {s}s after detection"),
                None => println!("No check can fail: only the progress deadline can roll back"),
            }
        }
    }
    Ok(())
}
