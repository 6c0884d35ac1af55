//! The sequential judge's memory and its reading of the evidence: the counter snapshot, the
//! per-tick count trace (stored in the status, so a restart resumes and a stored trace replays
//! the decision exactly), the calibration from the primary's history, and the [`Assessment`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    Arm, Counter, CounterSample, JudgePolicy, LatencyHistogram, MetricKind, Plan, Strategy, Time,
    evidence::{self, HarmCheck},
};

/// Requests counted for one revision in one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArmCounts {
    /// Requests answered.
    #[serde(rename = "n")]
    pub requests: u64,
    /// Of which 5xx.
    #[serde(rename = "e")]
    pub errors: u64,
    /// Requests timed by the latency histogram.
    #[serde(rename = "t")]
    pub timed: u64,
    /// Timed requests slower than the mid bound.
    #[serde(rename = "m")]
    pub slow_mid: u64,
    /// Timed requests slower than the tail bound.
    #[serde(rename = "p")]
    pub slow_tail: u64,
    /// Timed requests slower than the SLO bound.
    #[serde(rename = "s")]
    pub slow_slo: u64,
}

/// The counts of one analysis tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickCounts {
    /// When the counters were read.
    pub at: Time,
    /// The canary weight during the interval the counts cover.
    #[serde(rename = "w")]
    pub weight: u8,
    /// The canary's counts.
    #[serde(rename = "c")]
    pub canary: ArmCounts,
    /// The primary's counts.
    #[serde(rename = "p")]
    pub primary: ArmCounts,
}

/// Latency bounds (microseconds) chosen from the primary's history, and the tail margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bounds {
    /// First bound at or above the primary's p50.
    pub mid_us: Option<u64>,
    /// The bound whose exceedance by the primary is nearest 1% (near its p99).
    pub tail_us: Option<u64>,
    /// The largest bound at or below the request-duration threshold.
    pub slo_us: Option<u64>,
    /// The tail event-rate ratio that is a regression (×1000).
    pub r_bad_milli: u32,
}

/// What the judge keeps between ticks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JudgeState {
    /// Bounds, once calibrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Bounds>,
    /// The last cumulative value of every counter series read (arm, counter, series) → value.
    #[serde(default)]
    pub snapshot: BTreeMap<String, u64>,
    /// The first reading (the baseline) has been taken.
    #[serde(default)]
    pub baseline: bool,
    /// One entry per tick with counts.
    #[serde(default)]
    pub ticks: Vec<TickCounts>,
    /// Consecutive readings without any series.
    #[serde(default)]
    pub empty_readings: u32,
    /// Consecutive readings that failed.
    #[serde(default)]
    pub failed_readings: u32,
    /// What was last announced in an event (announced again only when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<String>,
    /// The evidence in one line (the `Evidence` printer column), e.g. `5xx 0.3/300 · tail 14.2/60`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// How the rollout ended for the judge: `Verified`, `InsufficientTraffic`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

const INF: u64 = u64::MAX;

fn key(arm: Arm, counter: Counter, series: &str) -> String {
    let arm = match arm {
        Arm::Canary => 'c',
        Arm::Primary => 'p',
    };
    match counter {
        Counter::Requests => format!("{arm}|n|{series}"),
        Counter::Errors => format!("{arm}|e|{series}"),
        Counter::LatencyAtMost { le_micros } => format!("{arm}|le{le_micros}|{series}"),
    }
}

impl Bounds {
    /// Bounds from the primary's histogram and the plan's request-duration threshold.
    pub fn calibrate(plan: &Plan, policy: &JudgePolicy, histogram: Option<&LatencyHistogram>) -> Bounds {
        let buckets: Vec<(u64, f64)> = histogram.map(|h| h.buckets.clone()).unwrap_or_default();
        let slo_us =
            slo_bound_us(plan).and_then(|limit| buckets.iter().map(|(le, _)| *le).filter(|le| *le <= limit).max());
        let total = buckets
            .iter()
            .find(|(le, _)| *le == INF)
            .map(|(_, c)| *c)
            .unwrap_or(0.0);
        let mut bounds = Bounds {
            mid_us: None,
            tail_us: None,
            slo_us,
            r_bad_milli: 2250,
        };
        if total < 1.0 {
            return bounds;
        }
        let first_at = |share: f64| buckets.iter().find(|(_, c)| *c >= share * total).map(|(le, _)| *le);
        // The tail bound: the finite bound (above the median) whose exceedance is nearest 1% on
        // a log scale. The first bound at or above the p99 can sit far out when buckets are
        // coarse (a 57 ms p99 between Envoy's 50 and 100 leaves 0.02% above 100 ms): a gate
        // there would gather almost no evidence.
        let tail = buckets
            .iter()
            .filter(|(le, c)| *le != INF && *c >= 0.5 * total && *c < total)
            .map(|(le, c)| (*le, ((1.0 - c / total).ln() - 0.01_f64.ln()).abs()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(le, _)| le);
        let mid = first_at(0.5).filter(|le| *le != INF && Some(*le) != tail);
        bounds.mid_us = mid;
        bounds.tail_us = tail;
        if let Some(tail) = tail {
            let survival = |c: f64| 1.0 - c / total;
            let at_tail = buckets
                .iter()
                .find(|(b, _)| *b == tail)
                .map_or(0.0, |(_, c)| survival(*c));
            // ln S(x) against ln x through the tail bound and the two bounds below it (a
            // parabola: exact for a log-normal's tail up to the curvature's change), or a line
            // when only one bound below carries data.
            let points: Vec<(f64, f64)> = buckets
                .iter()
                .filter(|(b, c)| *b <= tail && *b > 0 && survival(*c) > 0.0)
                .rev()
                .take(3)
                .map(|(b, c)| ((*b as f64).ln(), survival(*c).ln()))
                .collect();
            let x = (tail as f64 / (1.0 + policy.latency_margin)).ln();
            if at_tail > 0.0 && points.len() >= 2 && points[0].0 == (tail as f64).ln() {
                let log_s = lagrange(&points, x);
                bounds.r_bad_milli = (((log_s - at_tail.ln()).exp()).clamp(1.5, 10.0) * 1000.0).round() as u32;
            }
        }
        bounds
    }

    fn r_bad(&self) -> f64 {
        f64::from(self.r_bad_milli) / 1000.0
    }
}

/// The polynomial through `points` evaluated at `x`.
fn lagrange(points: &[(f64, f64)], x: f64) -> f64 {
    points
        .iter()
        .enumerate()
        .map(|(i, (xi, yi))| {
            points
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(*yi, |acc, (_, (xj, _))| acc * (x - xj) / (xi - xj))
        })
        .sum()
}

fn slo_bound_us(plan: &Plan) -> Option<u64> {
    let max = plan
        .metrics
        .iter()
        .find(|m| m.kind == MetricKind::Duration)?
        .range
        .max?;
    (max.is_finite() && max > 0.0).then_some((max * 1000.0) as u64)
}

fn error_limit(plan: &Plan) -> Option<f64> {
    let min = plan
        .metrics
        .iter()
        .find(|m| m.kind == MetricKind::SuccessRate)?
        .range
        .min?;
    let limit = (100.0 - min) / 100.0;
    (limit > 0.0 && limit < 0.5).then_some(limit)
}

/// The primary's histogram over its whole life, from one reading: the calibration used when
/// the backend could not give the last hour.
pub fn lifetime_histogram(samples: &[CounterSample]) -> LatencyHistogram {
    let mut by_bound: BTreeMap<u64, f64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.arm == Arm::Primary) {
        if let Counter::LatencyAtMost { le_micros } = s.counter {
            *by_bound.entry(le_micros).or_default() += s.value.max(0.0);
        }
    }
    LatencyHistogram {
        buckets: by_bound.into_iter().collect(),
    }
}

/// What one reading of the counters did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// The first reading: the counters' starting point.
    Baseline,
    /// No series for either revision.
    NoSeries,
    /// A tick of counts was added.
    Tick,
}

impl JudgeState {
    /// Adds a reading: per-series deltas (a value below the last is a counter reset, a series
    /// not seen before started at zero), summed per revision into one tick.
    pub fn ingest(&mut self, samples: &[CounterSample], weight: u8, now: Time) -> Ingested {
        self.failed_readings = 0;
        if samples.is_empty() {
            self.empty_readings += 1;
            return Ingested::NoSeries;
        }
        self.empty_readings = 0;
        let bounds = self.bounds.unwrap_or_default();
        let wanted = |c: Counter| match c {
            Counter::LatencyAtMost { le_micros } => {
                le_micros == INF || [bounds.mid_us, bounds.tail_us, bounds.slo_us].contains(&Some(le_micros))
            }
            _ => true,
        };
        let mut tick = TickCounts {
            at: now,
            weight,
            canary: ArmCounts::default(),
            primary: ArmCounts::default(),
        };
        let mut at_most: BTreeMap<(Arm, u64), u64> = BTreeMap::new();
        for sample in samples.iter().filter(|s| wanted(s.counter)) {
            let value = if sample.value.is_finite() && sample.value > 0.0 {
                sample.value.round() as u64
            } else {
                0
            };
            let k = key(sample.arm, sample.counter, &sample.series);
            let delta = match self.snapshot.insert(k, value) {
                Some(previous) if value >= previous => value - previous,
                _ => value,
            };
            let arm = match sample.arm {
                Arm::Canary => &mut tick.canary,
                Arm::Primary => &mut tick.primary,
            };
            match sample.counter {
                Counter::Requests => arm.requests += delta,
                Counter::Errors => arm.errors += delta,
                Counter::LatencyAtMost { le_micros } => *at_most.entry((sample.arm, le_micros)).or_default() += delta,
            }
        }
        if !self.baseline {
            self.baseline = true;
            return Ingested::Baseline;
        }
        for (arm_id, counts) in [(Arm::Canary, &mut tick.canary), (Arm::Primary, &mut tick.primary)] {
            let timed = at_most.get(&(arm_id, INF)).copied().unwrap_or(0);
            let slow =
                |b: Option<u64>| b.map(|b| timed.saturating_sub(at_most.get(&(arm_id, b)).copied().unwrap_or(0)));
            counts.timed = timed;
            counts.slow_mid = slow(bounds.mid_us).unwrap_or(0);
            counts.slow_tail = slow(bounds.tail_us).unwrap_or(0);
            counts.slow_slo = slow(bounds.slo_us).unwrap_or(0);
        }
        self.ticks.push(tick);
        Ingested::Tick
    }
}

/// One harm test's state.
#[derive(Debug, Clone, PartialEq)]
pub struct HarmResult {
    /// Which test.
    pub check: HarmCheck,
    /// ln of the e-process.
    pub log_evidence: f64,
    /// ln of the rejection level.
    pub log_threshold: f64,
    /// (events, requests) of the canary and the primary since the start that weighs most.
    pub canary: (u64, u64),
    /// Same for the primary.
    pub primary: (u64, u64),
}

/// One safety gate's state.
#[derive(Debug, Clone, PartialEq)]
pub struct GateResult {
    /// `tail`, `5xx-slo` or `latency-slo`.
    pub name: &'static str,
    /// ln of the evidence of safety.
    pub log_evidence: f64,
    /// ln of the level at which it passes.
    pub log_threshold: f64,
    /// Expected evidence per canary request from a canary like the primary (0: none comes).
    pub drift: f64,
}

/// The judge's reading of the trace at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Every harm test.
    pub harm: Vec<HarmResult>,
    /// Every safety gate (on the ticks at max weight).
    pub gates: Vec<GateResult>,
    /// Canary requests at max weight so far.
    pub final_requests: u64,
    /// Canary requests in the current step.
    pub step_requests: u64,
    /// Ticks in the current step.
    pub step_ticks: usize,
}

impl Assessment {
    /// The evidence in one line: each harm test against its level, each gate against its own.
    pub fn summary(&self) -> String {
        let harm = self.harm.iter().map(|h| {
            format!(
                "{} {:.1}/{:.0}",
                h.check.name(),
                h.log_evidence.exp(),
                h.log_threshold.exp()
            )
        });
        let gates = self
            .gates
            .iter()
            .map(|g| format!("{} {:.1}/{:.0}", g.name, g.log_evidence.exp(), g.log_threshold.exp()));
        harm.chain(gates).collect::<Vec<_>>().join(" · ")
    }

    /// The first harm test past its level.
    pub fn harmed(&self) -> Option<&HarmResult> {
        self.harm.iter().find(|h| h.log_evidence >= h.log_threshold)
    }

    /// Every safety gate has passed (and there is at least one).
    pub fn verified(&self) -> bool {
        !self.gates.is_empty() && self.gates.iter().all(|g| g.log_evidence >= g.log_threshold)
    }

    /// More canary requests a canary like the primary needs to pass every gate; `None` when a
    /// gate cannot pass at these rates.
    pub fn requests_to_verify(&self) -> Option<f64> {
        self.gates
            .iter()
            .map(|g| {
                let missing = (g.log_threshold - g.log_evidence).max(0.0);
                if missing == 0.0 {
                    Some(0.0)
                } else if g.drift > 0.0 {
                    Some(missing / g.drift)
                } else {
                    None
                }
            })
            .try_fold(0.0_f64, |acc, r| r.map(|r| acc.max(r)))
    }

    /// Canary requests a canary like the primary needs at max weight to pass every gate from nothing.
    pub fn requests_to_verify_from_start(&self) -> Option<f64> {
        self.gates
            .iter()
            .map(|g| (g.drift > 0.0).then(|| g.log_threshold / g.drift))
            .try_fold(0.0_f64, |acc, r| r.map(|r| acc.max(r)))
    }
}

/// Canary requests at max weight that a canary like its primary needs to pass every gate, for a
/// primary with these rates (5xx, share above the tail bound, share above the SLO bound); the
/// first restart's weight (½) included. `None` when a gate cannot pass at these rates.
pub fn requests_to_verify(
    plan: &Plan,
    policy: &JudgePolicy,
    errors: f64,
    above_tail: f64,
    above_slo: f64,
) -> Option<f64> {
    let rho = f64::from(plan.max_weight().max(1)) / 100.0;
    let mut drifts = vec![evidence::tail_gate_drift(
        above_tail,
        rho.min(0.99),
        policy.tolerance,
        2.25,
    )];
    if let Some(limit) = error_limit(plan) {
        drifts.push(evidence::slo_gate_drift(errors, limit));
    }
    if slo_bound_us(plan).is_some() {
        drifts.push(evidence::slo_gate_drift(above_slo, 0.01));
    }
    let level = (drifts.len() as f64 / policy.beta).ln() + 2.0_f64.ln();
    drifts
        .iter()
        .map(|d| (*d > 0.0).then(|| level / d))
        .try_fold(0.0_f64, |acc, n| n.map(|n| acc.max(n)))
}

/// One tick's evidence of safety for a gate, by tick index.
type TickEvidence<'a> = Box<dyn Fn(usize) -> f64 + 'a>;

/// Idle time after which a revision's first requests count as a cold start: Knative's default
/// stable window (60 s) plus the scale-to-zero grace period (30 s).
const COLD_AFTER_MS: i64 = 90_000;

/// Reads the trace: harm e-processes mixed over the planned step starts, safety gates on the
/// max-weight ticks.
pub fn assess(plan: &Plan, policy: &JudgePolicy, state: &JudgeState) -> Assessment {
    let ticks = &state.ticks;
    let bounds = state.bounds.unwrap_or_default();
    let cold: Vec<bool> = (0..ticks.len())
        .map(|k| evidence::cold(ticks, k, true, COLD_AFTER_MS) || evidence::cold(ticks, k, false, COLD_AFTER_MS))
        .collect();
    let (weights, max_weight) = match &plan.strategy {
        Strategy::Canary { weights, .. } => (weights.clone(), plan.max_weight()),
        Strategy::BlueGreen { .. } => (vec![0], 0),
    };
    let starts: Vec<Option<usize>> = weights
        .iter()
        .map(|w| ticks.iter().position(|t| t.weight >= *w))
        .collect();
    let mut checks = vec![HarmCheck::Errors];
    if bounds.mid_us.is_some() {
        checks.push(HarmCheck::SlowMid);
    }
    if bounds.tail_us.is_some() {
        checks.push(HarmCheck::SlowTail);
    }
    let log_harm_level = (checks.len() as f64 / policy.alpha).ln();
    let harm = checks
        .iter()
        .map(|&check| {
            let (log_evidence, from) = evidence::harm_log_evidence(ticks, check, &starts, policy.tolerance, &cold);
            let sum = |canary: bool| {
                ticks[from.min(ticks.len())..]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !(check.skips_cold() && cold[from + i]))
                    .map(|(_, t)| check.of(if canary { &t.canary } else { &t.primary }))
                    .fold((0, 0), |(x, n), (a, b)| (x + a, n + b))
            };
            HarmResult {
                check,
                log_evidence,
                log_threshold: log_harm_level,
                canary: sum(true),
                primary: sum(false),
            }
        })
        .collect();

    let final_ticks: Vec<usize> = (0..ticks.len()).filter(|&k| ticks[k].weight >= max_weight).collect();
    let interval_ms = plan.interval.as_millis().max(1) as f64;
    let every = (60_000.0 / interval_ms).ceil() as usize;
    let pooled = |f: &dyn Fn(&ArmCounts) -> (u64, u64)| {
        let (x, n) = ticks
            .iter()
            .map(|t| f(&t.primary))
            .fold((0, 0), |(a, b), (x, n)| (a + x, b + n));
        (n > 0).then(|| x as f64 / n as f64)
    };
    let rho = final_ticks
        .iter()
        .map(|&k| (ticks[k].canary.requests, ticks[k].primary.requests))
        .fold((0, 0), |(a, b), (c, p)| (a + c, b + p));
    let rho = if rho.0 + rho.1 > 0 {
        rho.0 as f64 / (rho.0 + rho.1) as f64
    } else {
        f64::from(max_weight.max(1)) / 100.0
    };
    let mut gates: Vec<(&'static str, TickEvidence<'_>, f64)> = Vec::new();
    if bounds.tail_us.is_some() {
        let (r_ok, r_bad) = (policy.tolerance, bounds.r_bad());
        let drift = pooled(&|a| (a.slow_tail, a.timed)).map_or(0.0, |q| evidence::tail_gate_drift(q, rho, r_ok, r_bad));
        let cold = cold.clone();
        let lr = move |k: usize| {
            if cold[k] {
                return 0.0;
            }
            let t = &ticks[k];
            evidence::two_arm_log_lr(
                (t.canary.slow_tail, t.canary.timed),
                (t.primary.slow_tail, t.primary.timed),
                r_ok,
                r_bad,
            )
        };
        gates.push(("tail", Box::new(lr), drift));
    }
    if let Some(limit) = error_limit(plan) {
        let drift = pooled(&|a| (a.errors, a.requests)).map_or(0.0, |p| evidence::slo_gate_drift(p, limit));
        let lr = move |k: usize| {
            evidence::bernoulli_log_lr(ticks[k].canary.errors, ticks[k].canary.requests, limit / 2.0, limit)
        };
        gates.push(("5xx-slo", Box::new(lr), drift));
    }
    if bounds.slo_us.is_some() {
        let limit = 0.01;
        let drift = pooled(&|a| (a.slow_slo, a.timed)).map_or(0.0, |p| evidence::slo_gate_drift(p, limit));
        let cold = cold.clone();
        let lr = move |k: usize| {
            if cold[k] {
                return 0.0;
            }
            evidence::bernoulli_log_lr(ticks[k].canary.slow_slo, ticks[k].canary.timed, limit / 2.0, limit)
        };
        gates.push(("latency-slo", Box::new(lr), drift));
    }
    let log_gate_level = (gates.len().max(1) as f64 / policy.beta).ln();
    let gates = gates
        .into_iter()
        .map(|(name, lr, drift)| GateResult {
            name,
            log_evidence: evidence::gate_log_evidence(&final_ticks, every, lr),
            log_threshold: log_gate_level,
            drift,
        })
        .collect();
    let current = ticks.last().map(|t| t.weight);
    let step_from = ticks.len() - ticks.iter().rev().take_while(|t| Some(t.weight) == current).count();
    Assessment {
        harm,
        gates,
        final_requests: final_ticks.iter().map(|&k| ticks[k].canary.requests).sum(),
        step_requests: ticks[step_from..].iter().map(|t| t.canary.requests).sum(),
        step_ticks: ticks.len() - step_from,
    }
}
