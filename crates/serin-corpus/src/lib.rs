//! The judge corpus (`docs/judgement.md`, "How long it takes"): twelve labelled rollout scenarios (healthy or
//! regressed, 0.2 to 100 req/s, noise, incidents, scale-to-zero, a flapping Prometheus),
//! simulated in virtual time by `serin-core`'s simulator and judged by Serin's Flagger rule,
//! its shadow mode and its sequential judge, with the measures of the design (false rollbacks, false promotions, stuck runs, time to a
//! decision, Unverified promotions).
//!
//! It serves `cargo xtask bench judge` (1,000 seeded runs per cell) and a seeded slice run by
//! `cargo test`. It is a test instrument: no product crate depends on it, and its world is a
//! model (log-normal latencies, Poisson arrivals), not a replay of real traffic.

mod report;
mod world;

use serin_core::{
    JudgeMode, JudgeSettings, Phase, Readiness, Time,
    sim::{Simulation, example_plan},
};

pub use report::{Cell, Summary, render_table};
pub use world::{CorpusWorld, ENVOY_BOUNDS_MS, histogram_quantile};

/// One scenario of the corpus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// `S1` … `S12`.
    pub id: &'static str,
    /// What it is.
    pub title: &'static str,
    /// The right outcome is promotion.
    pub healthy: bool,
    /// Requests per second to the service (both revisions).
    pub rate: f64,
    /// 5xx probability added on the canary.
    pub canary_extra_errors: f64,
    /// The extra 5xx only while the canary weight is above this.
    pub extra_errors_above_weight: u8,
    /// The canary's 5xx probability, absolute.
    pub canary_error_rate: Option<f64>,
    /// The canary's latencies above the primary's p90 are 20% slower.
    pub tail_slowdown: bool,
    /// Traffic 90 s on, 150 s off, at a random phase.
    pub gaps: bool,
    /// Two shared 20 s incidents (50% 5xx, latency × 4) in the first 5 minutes.
    pub incidents: bool,
    /// Each query fails with p = 0.2 and is empty with p = 0.1.
    pub flapping: bool,
}

const BASE: Scenario = Scenario {
    id: "",
    title: "",
    healthy: true,
    rate: 10.0,
    canary_extra_errors: 0.0,
    extra_errors_above_weight: 0,
    canary_error_rate: None,
    tail_slowdown: false,
    gaps: false,
    incidents: false,
    flapping: false,
};

/// The twelve scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "S1",
            title: "healthy, 10 req/s",
            ..BASE
        },
        Scenario {
            id: "S2",
            title: "healthy, 0.2 req/s",
            rate: 0.2,
            ..BASE
        },
        Scenario {
            id: "S3",
            title: "healthy, scale-to-zero gaps",
            gaps: true,
            ..BASE
        },
        Scenario {
            id: "S4",
            title: "+1 pp 5xx, 10 req/s",
            healthy: false,
            canary_extra_errors: 0.01,
            ..BASE
        },
        Scenario {
            id: "S5",
            title: "+20% p99 (tail), 10 req/s",
            healthy: false,
            tail_slowdown: true,
            ..BASE
        },
        Scenario {
            id: "S6",
            title: "healthy, shared incidents",
            incidents: true,
            ..BASE
        },
        Scenario {
            id: "S7",
            title: "+2 pp 5xx above 30% weight",
            healthy: false,
            canary_extra_errors: 0.02,
            extra_errors_above_weight: 30,
            ..BASE
        },
        Scenario {
            id: "S8",
            title: "healthy, flapping Prometheus",
            flapping: true,
            ..BASE
        },
        Scenario {
            id: "S9",
            title: "20% 5xx, 0.2 req/s",
            healthy: false,
            rate: 0.2,
            canary_error_rate: Some(0.2),
            ..BASE
        },
        Scenario {
            id: "S10",
            title: "+1 pp 5xx, 100 req/s",
            healthy: false,
            rate: 100.0,
            canary_extra_errors: 0.01,
            ..BASE
        },
        Scenario {
            id: "S11",
            title: "+20% p99 (tail), 100 req/s",
            healthy: false,
            rate: 100.0,
            tail_slowdown: true,
            ..BASE
        },
        Scenario {
            id: "S12",
            title: "healthy, 100 req/s",
            rate: 100.0,
            ..BASE
        },
    ]
}

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Promoted; `verified` when the judge verified it.
    Promoted {
        /// The sequential judge verified it (always false under Flagger's rule).
        verified: bool,
    },
    /// Rolled back.
    RolledBack,
    /// Neither by the horizon.
    Stuck,
}

/// One run's result.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The verdict.
    pub verdict: Verdict,
    /// Minutes from the first traffic step to the verdict.
    pub minutes: f64,
    /// The canary weights set, in order (to compare shadow with Flagger).
    pub weights: Vec<u8>,
}

/// The horizon: a run without a verdict 60 minutes after its first step is stuck.
pub const HORIZON_MINUTES: i64 = 60;

/// Runs `scenario` once under `mode` with `seed`.
pub fn run(scenario: &Scenario, mode: JudgeMode, seed: u64) -> RunResult {
    let mut plan = example_plan();
    plan.judge = JudgeSettings {
        mode,
        ..JudgeSettings::default()
    };
    let start = Time::from_millis(3_600_000);
    let world = CorpusWorld::new(*scenario, seed, start.as_millis());
    let mut sim = Simulation::new(plan, world, start);
    sim.world.create_revision("app-00001", Readiness::Ready);
    let _ = sim.step_now();
    sim.world.create_revision("app-00002", Readiness::Ready);
    let _ = sim.step_now();
    let horizon = start + std::time::Duration::from_secs(60 * (HORIZON_MINUTES as u64 + 1));
    sim.run_until(horizon);
    let weights = sim
        .log
        .iter()
        .filter_map(|(_, h)| match h {
            serin_core::sim::Happening::Traffic(split) => Some(split.canary_weight),
            _ => None,
        })
        .collect();
    let first = sim.status.analysis_started_at.unwrap_or(start);
    let end = sim.status.last_transition_at.unwrap_or(horizon);
    let minutes = end.since(first).as_secs_f64() / 60.0;
    let verdict = match sim.status.phase {
        Phase::Succeeded if minutes <= HORIZON_MINUTES as f64 => Verdict::Promoted {
            verified: sim
                .status
                .judge
                .as_ref()
                .is_some_and(|j| j.outcome.as_deref() == Some("Verified")),
        },
        Phase::Failed if minutes <= HORIZON_MINUTES as f64 => Verdict::RolledBack,
        _ => Verdict::Stuck,
    };
    RunResult {
        verdict,
        minutes,
        weights,
    }
}

/// Runs `runs` seeded runs of `scenario` under `mode` (seeds `base_seed..base_seed+runs`) on
/// `threads` threads.
pub fn run_cell(scenario: &Scenario, mode: JudgeMode, runs: u64, base_seed: u64, threads: usize) -> Vec<RunResult> {
    let threads = threads.max(1) as u64;
    let mut results: Vec<(u64, RunResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (0..runs)
                        .filter(|i| i % threads == t)
                        .map(|i| (i, run(scenario, mode, base_seed + i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
