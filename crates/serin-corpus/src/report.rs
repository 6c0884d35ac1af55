//! The corpus's measures per cell (as in `docs/judgement.md`) and the table printed by
//! `cargo xtask bench judge`.

use serde::Serialize;

use crate::{RunResult, Scenario, Verdict};

/// The measures of one (scenario, judge) cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Runs.
    pub runs: usize,
    /// Healthy canaries rolled back, %.
    pub false_rollback_pct: f64,
    /// Regressed canaries promoted, %.
    pub false_promotion_pct: f64,
    /// Runs without a verdict by the horizon, %.
    pub stuck_pct: f64,
    /// Minutes to the verdict, median.
    pub t50_min: f64,
    /// Minutes to the verdict, 90th percentile.
    pub t90_min: f64,
    /// Promotions the sequential judge did not verify, % of promotions.
    pub unverified_pct: f64,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Scenario id.
    pub scenario: String,
    /// Scenario title.
    pub title: String,
    /// Whether promotion is the right outcome.
    pub healthy: bool,
    /// `flagger` or `sequential`.
    pub judge: String,
    /// The measures.
    pub summary: Summary,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl Summary {
    /// The measures of `results` for `scenario`.
    pub fn of(scenario: &Scenario, results: &[RunResult]) -> Summary {
        let n = results.len().max(1) as f64;
        let pct = |count: usize| 100.0 * count as f64 / n;
        let promoted: Vec<&RunResult> = results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Promoted { .. }))
            .collect();
        let rolled_back = results.iter().filter(|r| r.verdict == Verdict::RolledBack).count();
        let stuck = results.iter().filter(|r| r.verdict == Verdict::Stuck).count();
        let unverified = promoted
            .iter()
            .filter(|r| r.verdict == Verdict::Promoted { verified: false })
            .count();
        let mut times: Vec<f64> = results
            .iter()
            .filter(|r| r.verdict != Verdict::Stuck)
            .map(|r| r.minutes)
            .collect();
        times.sort_by(f64::total_cmp);
        Summary {
            runs: results.len(),
            false_rollback_pct: if scenario.healthy { pct(rolled_back) } else { 0.0 },
            false_promotion_pct: if scenario.healthy { 0.0 } else { pct(promoted.len()) },
            stuck_pct: pct(stuck),
            t50_min: percentile(&times, 0.5),
            t90_min: percentile(&times, 0.9),
            unverified_pct: if promoted.is_empty() {
                0.0
            } else {
                100.0 * unverified as f64 / promoted.len() as f64
            },
        }
    }
}

/// The table: one line per cell.
pub fn render_table(cells: &[Cell]) -> String {
    let mut out = format!(
        "{:<4} {:<30} {:<10} {:>6} {:>9} {:>9} {:>7} {:>7} {:>7} {:>11}\n",
        "id", "scenario", "judge", "runs", "false RB%", "false PR%", "stuck%", "t50 min", "t90 min", "unverified%"
    );
    for c in cells {
        let s = &c.summary;
        out.push_str(&format!(
            "{:<4} {:<30} {:<10} {:>6} {:>9.1} {:>9.1} {:>7.1} {:>7.1} {:>7.1} {:>11}\n",
            c.scenario,
            c.title,
            c.judge,
            s.runs,
            s.false_rollback_pct,
            s.false_promotion_pct,
            s.stuck_pct,
            s.t50_min,
            s.t90_min,
            if c.judge == "flagger" {
                "-".to_owned()
            } else {
                format!("{:.1}", s.unverified_pct)
            }
        ));
    }
    out
}
