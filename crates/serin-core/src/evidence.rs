//! The arithmetic of the sequential judge: likelihood ratios on counts, e-processes mixed over
//! fixed start points, and the evidence a healthy canary gathers per request. Pure, in log
//! space, no clock.
//!
//! Every function here reads a count trace ([`TickCounts`], one per analysis tick) and returns
//! numbers; `sequential::assess` puts them together. The design is explained in
//! `docs/judgement.md`.

use crate::sequential::{ArmCounts, TickCounts};

/// A harm test: "the canary's rate of this event is more than `tolerance` times the primary's".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HarmCheck {
    /// 5xx answers.
    Errors,
    /// Requests slower than the bound near the primary's p50.
    SlowMid,
    /// Requests slower than the bound near the primary's p99.
    SlowTail,
}

impl HarmCheck {
    /// The alternatives mixed over (event-rate ratios canary/primary).
    pub fn grid(self) -> &'static [f64] {
        match self {
            HarmCheck::Errors => &[2.5, 4.0, 8.0, 16.0, 32.0],
            HarmCheck::SlowMid => &[1.5, 2.0, 3.0],
            HarmCheck::SlowTail => &[2.0, 3.0, 5.0, 10.0],
        }
    }

    /// The name used in events and status.
    pub fn name(self) -> &'static str {
        match self {
            HarmCheck::Errors => "5xx",
            HarmCheck::SlowMid => "slow@p50",
            HarmCheck::SlowTail => "slow@p99",
        }
    }

    /// (events, trials) of one arm for this check; latency checks use the timed requests.
    pub fn of(self, arm: &ArmCounts) -> (u64, u64) {
        match self {
            HarmCheck::Errors => (arm.errors, arm.requests),
            HarmCheck::SlowMid => (arm.slow_mid, arm.timed),
            HarmCheck::SlowTail => (arm.slow_tail, arm.timed),
        }
    }

    /// Whether cold ticks are left out (latency checks only: a cold start is not a regression).
    pub fn skips_cold(self) -> bool {
        self != HarmCheck::Errors
    }
}

/// Conditional probability that an event belongs to the canary, given the canary's share of
/// requests `rho` and the rate ratio `r` (Lindon & Malek's Poisson thinning).
pub fn theta(rho: f64, r: f64) -> f64 {
    rho * r / (rho * r + 1.0 - rho)
}

/// ln LR of one tick for the two-arm comparison, `r1` against `r0`; 0 when the tick says nothing.
pub fn two_arm_log_lr(canary: (u64, u64), primary: (u64, u64), r1: f64, r0: f64) -> f64 {
    let (x_c, n_c) = canary;
    let (x_p, n_p) = primary;
    if n_c == 0 || n_p == 0 || x_c + x_p == 0 {
        return 0.0;
    }
    let rho = n_c as f64 / (n_c + n_p) as f64;
    let (t1, t0) = (theta(rho, r1), theta(rho, r0));
    x_c as f64 * (t1.ln() - t0.ln()) + x_p as f64 * ((1.0 - t1).ln() - (1.0 - t0).ln())
}

/// ln LR of one tick for a one-arm Bernoulli rate, `p1` against `p0`.
pub fn bernoulli_log_lr(events: u64, trials: u64, p1: f64, p0: f64) -> f64 {
    let x = events.min(trials) as f64;
    let rest = (trials - events.min(trials)) as f64;
    x * (p1 / p0).ln() + rest * ((1.0 - p1) / (1.0 - p0)).ln()
}

/// ln of the weighted mean of `exp(value)`, weights summing to at most 1; the remaining weight
/// counts components that have not started yet, whose value is 1.
pub fn log_weighted_mean_exp(parts: &[(f64, f64)]) -> f64 {
    let used: f64 = parts.iter().map(|(w, _)| w).sum();
    let rest = (1.0 - used).max(0.0);
    let top = parts.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let sum: f64 = parts.iter().map(|(w, v)| w * (v - top).exp()).sum::<f64>() + rest * (-top).exp();
    top + sum.ln()
}

/// Whether an arm was cold in tick `k`: it served requests then and none in the ticks of the
/// `idle_ms` before (for the canary, also its first tick with requests).
pub fn cold(ticks: &[TickCounts], k: usize, canary: bool, idle_ms: i64) -> bool {
    let served = |t: &TickCounts| if canary { t.canary.requests } else { t.primary.requests };
    if served(&ticks[k]) == 0 {
        return false;
    }
    let at = ticks[k].at.as_millis();
    let mut seen_any = false;
    for t in ticks[..k].iter().rev().take_while(|t| at - t.at.as_millis() <= idle_ms) {
        seen_any = true;
        if served(t) > 0 {
            return false;
        }
    }
    seen_any || canary && ticks[..k].iter().all(|t| served(t) == 0)
}

/// The harm e-process of one check (ln): the mean over the planned step starts of the mean over
/// the grid of the likelihood ratio since that start. Starts not reached yet count as 1. Also
/// returns the start that weighs most (for the message).
pub fn harm_log_evidence(
    ticks: &[TickCounts],
    check: HarmCheck,
    starts: &[Option<usize>],
    tolerance: f64,
    cold_ticks: &[bool],
) -> (f64, usize) {
    let grid = check.grid();
    let planned = starts.len().max(1) as f64;
    let per_tick: Vec<Vec<f64>> = grid
        .iter()
        .map(|&r| {
            (0..ticks.len())
                .map(|k| {
                    if check.skips_cold() && cold_ticks[k] {
                        0.0
                    } else {
                        two_arm_log_lr(check.of(&ticks[k].canary), check.of(&ticks[k].primary), r, tolerance)
                    }
                })
                .collect()
        })
        .collect();
    let mut parts = Vec::new();
    let mut best = (f64::NEG_INFINITY, 0);
    for &start in starts.iter().flatten() {
        let per_alt: Vec<(f64, f64)> = per_tick
            .iter()
            .map(|lrs| (1.0 / grid.len() as f64, lrs[start..].iter().sum()))
            .collect();
        let value = log_weighted_mean_exp(&per_alt);
        if value > best.0 {
            best = (value, start);
        }
        parts.push((1.0 / planned, value));
    }
    (log_weighted_mean_exp(&parts), best.1)
}

/// The weight of the `i`-th restart of a safety gate: 1/((i+1)(i+2)), summing to 1.
fn restart_weight(i: usize) -> f64 {
    1.0 / ((i + 1) as f64 * (i + 2) as f64)
}

/// A safety gate (ln) over the final step's ticks, restarted every `every` ticks with fixed
/// weights, so that a bad minute delays it without blocking it. `tick_log_lr` is one tick's
/// evidence of safety.
pub fn gate_log_evidence(final_ticks: &[usize], every: usize, tick_log_lr: impl Fn(usize) -> f64) -> f64 {
    let every = every.max(1);
    let per_tick: Vec<f64> = final_ticks.iter().map(|&k| tick_log_lr(k)).collect();
    let parts: Vec<(f64, f64)> = (0..per_tick.len())
        .step_by(every)
        .enumerate()
        .map(|(i, from)| (restart_weight(i), per_tick[from..].iter().sum()))
        .collect();
    log_weighted_mean_exp(&parts)
}

/// Expected evidence of safety per canary request for the tail gate, when the canary behaves
/// like the primary (event rate `q` per request, canary share `rho`).
pub fn tail_gate_drift(q: f64, rho: f64, r_ok: f64, r_bad: f64) -> f64 {
    if q <= 0.0 || rho <= 0.0 || rho >= 1.0 {
        return 0.0;
    }
    let (ok, bad) = (theta(rho, r_ok), theta(rho, r_bad));
    let per_event = rho * (ok / bad).ln() + (1.0 - rho) * ((1.0 - ok) / (1.0 - bad)).ln();
    q / rho * per_event
}

/// Expected evidence of safety per request for an SLO gate (`limit/2` against `limit`) when the
/// true rate is `p`.
pub fn slo_gate_drift(p: f64, limit: f64) -> f64 {
    let safe = limit / 2.0;
    p * (safe / limit).ln() + (1.0 - p) * ((1.0 - safe) / (1.0 - limit)).ln()
}

/// One test of an evidence summary (`status.judge.summary`, written by
/// [`crate::Assessment::summary`]), read back for display.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryLine {
    /// `5xx`, `slow@p50`, `slow@p99` (harm tests) or `tail`, `5xx-slo`, `latency-slo` (gates).
    pub name: String,
    /// The evidence so far.
    pub evidence: f64,
    /// The level at which it decides.
    pub threshold: f64,
    /// A harm test (reaching its level rolls back), not a gate (reaching its level proves the
    /// canary safe).
    pub harm: bool,
}

/// Reads back an evidence summary (`5xx 0.3/300 · tail 14.2/60`); parts that do not read are
/// left out.
pub fn read_summary(text: &str) -> Vec<SummaryLine> {
    let harm_names = [HarmCheck::Errors, HarmCheck::SlowMid, HarmCheck::SlowTail].map(HarmCheck::name);
    text.split(" · ")
        .filter_map(|part| {
            let (name, numbers) = part.trim().rsplit_once(' ')?;
            let (evidence, threshold) = numbers.split_once('/')?;
            Some(SummaryLine {
                harm: harm_names.contains(&name),
                name: name.to_owned(),
                evidence: evidence.parse().ok()?,
                threshold: threshold.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_with_the_events_split_like_the_requests_favours_the_null() {
        // 10% of the requests and 10% of the errors on the canary: no harm.
        let lr = two_arm_log_lr((10, 1000), (90, 9000), 4.0, 1.25);
        assert!(lr < 0.0, "{lr}");
        // 10% of the requests and half of the errors: harm.
        let lr = two_arm_log_lr((50, 1000), (50, 9000), 4.0, 1.25);
        assert!(lr > 5.0, "{lr}");
        assert_eq!(two_arm_log_lr((0, 0), (5, 100), 4.0, 1.25), 0.0);
    }

    #[test]
    fn the_weighted_mean_counts_unstarted_components_as_one() {
        let v = log_weighted_mean_exp(&[(0.5, 10.0_f64.ln())]);
        assert!((v.exp() - 5.5).abs() < 1e-9, "{}", v.exp());
        let v = log_weighted_mean_exp(&[(0.5, 0.0), (0.5, 0.0)]);
        assert!(v.abs() < 1e-12);
    }

    #[test]
    fn evidence_of_safety_grows_only_when_the_rate_is_low() {
        assert!(bernoulli_log_lr(0, 1000, 0.005, 0.01) > 4.0);
        assert!(bernoulli_log_lr(20, 1000, 0.005, 0.01) < 0.0);
        assert!(slo_gate_drift(0.003, 0.01) > 0.0);
        assert!(slo_gate_drift(0.009, 0.01) < 0.0);
        assert!(tail_gate_drift(0.0057, 0.5, 1.25, 2.25) > 0.0);
    }

    #[test]
    fn a_summary_reads_back_as_written() {
        use crate::sequential::{Assessment, GateResult, HarmResult};
        let assessment = Assessment {
            harm: vec![HarmResult {
                check: HarmCheck::Errors,
                log_evidence: 0.3f64.ln(),
                log_threshold: 300f64.ln(),
                canary: (0, 10),
                primary: (0, 100),
            }],
            gates: vec![GateResult {
                name: "tail",
                log_evidence: 14.2f64.ln(),
                log_threshold: 60f64.ln(),
                drift: 0.0,
            }],
            final_requests: 0,
            step_requests: 0,
            step_ticks: 0,
        };
        let read: Vec<(String, String, String, bool)> = read_summary(&assessment.summary())
            .iter()
            .map(|l| {
                let e = format!("{:.1}", l.evidence);
                (l.name.clone(), e, format!("{:.0}", l.threshold), l.harm)
            })
            .collect();
        let expected = [("5xx", "0.3", "300", true), ("tail", "14.2", "60", false)]
            .map(|(n, e, t, h)| (n.to_owned(), e.to_owned(), t.to_owned(), h));
        assert_eq!(read, expected);
        assert!(read_summary("paused unverified: no traffic").is_empty());
    }
}
