//! `cargo xtask bench judge`: the twelve scenarios, 1,000 seeded runs per cell (`JUDGE_RUNS`
//! overrides), judged by Flagger's rule and by the sequential judge, with shadow mode checked
//! against Flagger's rule on every run; the table goes to stdout and `target/bench/judge.json`.

use std::{path::PathBuf, time::Instant};

use serin_core::JudgeMode;
use serin_corpus::{Cell, Summary, render_table, run, run_cell, scenarios};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: u64 = std::env::var("JUDGE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let started = Instant::now();
    let mut cells = Vec::new();
    let mut shadow_mismatches = 0u64;
    let mut shadow_runs = 0u64;
    for s in scenarios() {
        for mode in [JudgeMode::Flagger, JudgeMode::Sequential] {
            let results = run_cell(&s, mode, runs, 1, threads);
            if mode == JudgeMode::Flagger {
                let shadow = run_cell(&s, JudgeMode::Shadow, runs.min(200), 1, threads);
                shadow_runs += shadow.len() as u64;
                shadow_mismatches += shadow.iter().zip(&results).filter(|(a, b)| a != b).count() as u64;
            }
            cells.push(Cell {
                scenario: s.id.into(),
                title: s.title.into(),
                healthy: s.healthy,
                judge: mode.as_str().into(),
                summary: Summary::of(&s, &results),
            });
        }
    }
    // One run of each kind, to show the decisions are reproducible from their seed.
    let again = run(&scenarios()[0], JudgeMode::Sequential, 1);
    let first = run_cell(&scenarios()[0], JudgeMode::Sequential, 1, 1, 1);
    print!("{}", render_table(&cells));
    println!(
        "shadow mode decided as Flagger's rule in {}/{shadow_runs} runs; reproducible: {}; {:.0} s",
        shadow_runs - shadow_mismatches,
        first.first() == Some(&again),
        started.elapsed().as_secs_f64()
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::json!({ "runs_per_cell": runs, "cells": cells, "shadow_runs": shadow_runs, "shadow_mismatches": shadow_mismatches });
    std::fs::write(dir.join("judge.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
