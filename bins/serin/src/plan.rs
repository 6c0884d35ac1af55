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
        Output::Yaml => print!("{}", serde_saphyr::to_string(&schedule)?),
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
            sequential(&plan);
        }
    }
    Ok(())
}

/// What the same Canary takes under the sequential judge (`docs/judgement.md`): the canary
/// requests a healthy canary needs at max weight, and the time that is at a few traffic levels.
fn sequential(plan: &serin_core::Plan) {
    let policy = serin_core::JudgePolicy::default();
    let (errors, above_tail, above_slo) = (0.001, 0.01, 0.0);
    println!(
        "Under the sequential judge (annotation judge.serin.dev/mode: sequential), for a primary answering 0.1% 5xx with 1% of requests above its tail bound:"
    );
    let Some(needed) = serin_core::sequential::requests_to_verify(plan, &policy, errors, above_tail, above_slo) else {
        println!("  a canary like that primary cannot be verified: it will be promoted Unverified at the deadline");
        return;
    };
    let share = f64::from(plan.max_weight().max(1)) / 100.0;
    let steps = match &plan.strategy {
        serin_core::Strategy::Canary { weights, .. } => weights.len(),
        serin_core::Strategy::BlueGreen { .. } => 1,
    };
    println!(
        "  verified promotion needs about {needed:.0} canary requests at {}%",
        plan.max_weight()
    );
    for rate in [1.0, 10.0, 100.0] {
        let at_max = needed / (rate * share);
        let step_time = steps as f64 * plan.interval.as_secs_f64().max(50.0 / (rate * 0.1));
        let total = at_max + step_time;
        let deadline = policy.max_analysis_duration.as_secs_f64();
        if total > deadline {
            println!(
                "  at {rate:>5} req/s: more than the {} deadline: promoted Unverified (or paused, or rolled back, as the JudgePolicy says)",
                go_duration(policy.max_analysis_duration)
            );
        } else {
            println!(
                "  at {rate:>5} req/s: about {}",
                go_duration(std::time::Duration::from_secs(total.ceil() as u64))
            );
        }
    }
}
