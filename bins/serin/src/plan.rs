//! `serin plan FILE`: the rollout schedule of the file's Canary, computed by running the engine
//! in a simulated world where every check passes.

use std::path::Path;

use anyhow::{Context, bail};
use serin_api::{CanaryDocument, canaries_in, validate};
use serin_core::{go_duration, schedule::Schedule};

use crate::Output;

/// Prints the schedule of the file's Canary.
pub fn run(file: &Path, output: Output) -> anyhow::Result<()> {
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
