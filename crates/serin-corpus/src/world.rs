//! The simulated service behind a corpus run: Poisson arrivals split by the canary weight, 5xx
//! and log-normal latencies binned into Envoy's buckets, shared noise, incidents, scale-to-zero
//! gaps and cold starts, and a Prometheus that may flap. It answers the engine's checks the way
//! the real backends would: Flagger's two built-in queries over a 1-minute window, and the raw
//! cumulative counters the sequential judge reads.

use std::collections::{BTreeMap, VecDeque};

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use serin_core::{
    Arm, Counter, CounterSample, CountsOutcome, CountsRequest, Hook, HookKind, HookOutcome, LatencyHistogram,
    MetricCheck, MetricKind, MetricOutcome,
    sim::{CheckContext, Responder},
};

use crate::Scenario;

/// Envoy's default histogram bounds, in milliseconds.
pub const ENVOY_BOUNDS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
    600000.0, 1800000.0, 3600000.0,
];
const BINS: usize = ENVOY_BOUNDS_MS.len() + 1;
const SLOT_MS: i64 = 5_000;
const WINDOW_SLOTS: usize = 12;
const MEDIAN_MS: f64 = 80.0;
const SIGMA: f64 = 0.45;
const HEALTHY_5XX: f64 = 0.003;
const COLD_AFTER_MS: i64 = 90_000;
const COLD_LATENCY_BIN: usize = 10; // (1000, 2500] ms: a cold start of about 2 s

/// One revision's counters: cumulative, and per slot for Flagger's window.
#[derive(Debug, Clone, Default)]
struct ArmState {
    requests: u64,
    errors: u64,
    bins: [u64; BINS],
    last_served: Option<i64>,
    window: VecDeque<(u64, u64, [u64; BINS])>,
}

/// The world of one run.
pub struct CorpusWorld {
    scenario: Scenario,
    seed: u64,
    rng: StdRng,
    generated_to: i64,
    gap_phase_ms: i64,
    incidents: Vec<(i64, i64)>,
    noise: BTreeMap<i64, (f64, f64)>,
    canary: ArmState,
    primary: ArmState,
    calibration: LatencyHistogram,
}

fn phi(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map(|d| d.sample(rng) as u64).unwrap_or(0)
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).map(|d| d.sample(rng)).unwrap_or(0)
}

/// Spreads `n` requests over the bins with probabilities `probs` (a multinomial draw).
fn multinomial(rng: &mut StdRng, n: u64, probs: &[f64; BINS], into: &mut [u64; BINS]) {
    let mut left = n;
    let mut mass = 1.0;
    for (i, p) in probs.iter().enumerate() {
        if left == 0 {
            break;
        }
        let k = if i + 1 == BINS || mass <= *p {
            left
        } else {
            binomial(rng, left, (p / mass).clamp(0.0, 1.0))
        };
        into[i] += k;
        left -= k;
        mass -= p;
    }
}

impl CorpusWorld {
    /// The world for `scenario` with `seed`; the rollout's first request comes after `start_ms`.
    pub fn new(scenario: Scenario, seed: u64, start_ms: i64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let gap_phase_ms = rng.random_range(0..240_000);
        let incidents = if scenario.incidents {
            (0..2)
                .map(|_| start_ms + rng.random_range(0..280_000))
                .map(|s| (s, s + 20_000))
                .collect()
        } else {
            Vec::new()
        };
        let mut world = CorpusWorld {
            scenario,
            seed,
            rng,
            generated_to: start_ms,
            gap_phase_ms,
            incidents,
            noise: BTreeMap::new(),
            canary: ArmState::default(),
            primary: ArmState {
                last_served: Some(start_ms),
                ..ArmState::default()
            },
            calibration: LatencyHistogram::default(),
        };
        world.calibration = world.history();
        world
    }

    /// The primary's last hour before the rollout, without noise.
    fn history(&mut self) -> LatencyHistogram {
        let duty = if self.scenario.gaps { 90.0 / 240.0 } else { 1.0 };
        let n = poisson(&mut self.rng, self.scenario.rate * 3600.0 * duty);
        let mut bins = [0; BINS];
        let probs = self.bin_probs(false, 1.0);
        multinomial(&mut self.rng, n, &probs, &mut bins);
        cumulative(&bins)
    }

    fn rate_at(&self, t: i64) -> f64 {
        if self.scenario.gaps && (t + self.gap_phase_ms).rem_euclid(240_000) >= 90_000 {
            return 0.0;
        }
        self.scenario.rate
    }

    fn in_incident(&self, t: i64) -> bool {
        self.incidents.iter().any(|(a, b)| t >= *a && t < *b)
    }

    fn noise_at(&mut self, t: i64) -> (f64, f64) {
        let minute = t.div_euclid(60_000);
        if let Some(n) = self.noise.get(&minute) {
            return *n;
        }
        let err = LogNormal::new(0.0, 0.5).map(|d| d.sample(&mut self.rng)).unwrap_or(1.0);
        let lat = LogNormal::new(0.0, 0.1).map(|d| d.sample(&mut self.rng)).unwrap_or(1.0);
        self.noise.insert(minute, (err, lat));
        (err, lat)
    }

    /// Bin probabilities; the canary's tail may be slowed (+20% above the primary's p90).
    fn bin_probs(&self, slow_tail: bool, lat_mult: f64) -> [f64; BINS] {
        let median = MEDIAN_MS * lat_mult;
        let base = |b: f64| phi(((b / median).ln()) / SIGMA);
        let p90 = median * (1.2816 * SIGMA).exp();
        let cdf = |b: f64| {
            if !slow_tail || b <= p90 {
                base(b)
            } else if b < 1.2 * p90 {
                base(p90)
            } else {
                base(b / 1.2)
            }
        };
        let mut probs = [0.0; BINS];
        let mut below = 0.0;
        for (i, b) in ENVOY_BOUNDS_MS.iter().enumerate() {
            let c = cdf(*b);
            probs[i] = (c - below).max(0.0);
            below = c;
        }
        probs[BINS - 1] = (1.0 - below).max(0.0);
        probs
    }

    /// Generates traffic up to `now`, with the canary at `weight` percent.
    pub fn advance(&mut self, now: i64, weight: u8) {
        while self.generated_to + SLOT_MS <= now {
            let t = self.generated_to;
            self.slot(t, weight);
            self.generated_to += SLOT_MS;
        }
    }

    fn slot(&mut self, t: i64, weight: u8) {
        let (err_mult, mut lat_mult) = self.noise_at(t);
        let incident = self.in_incident(t);
        if incident {
            lat_mult *= 4.0;
        }
        let mut base_p = (HEALTHY_5XX * err_mult).min(1.0);
        if incident {
            base_p = 0.5;
        }
        let rate = self.rate_at(t);
        for canary in [true, false] {
            let share = if canary {
                f64::from(weight) / 100.0
            } else {
                1.0 - f64::from(weight) / 100.0
            };
            let n = poisson(&mut self.rng, rate * share * SLOT_MS as f64 / 1000.0);
            let sc = &self.scenario;
            let p = if !canary {
                base_p
            } else if let Some(abs) = sc.canary_error_rate {
                abs.max(base_p)
            } else if weight > sc.extra_errors_above_weight {
                (base_p + sc.canary_extra_errors).min(1.0)
            } else {
                base_p
            };
            let errors = binomial(&mut self.rng, n, p);
            let probs = self.bin_probs(canary && sc.tail_slowdown, lat_mult);
            let arm = if canary { &mut self.canary } else { &mut self.primary };
            let mut bins = [0; BINS];
            let cold = n > 0 && arm.last_served.is_none_or(|last| t - last >= COLD_AFTER_MS);
            let cold_n = if cold { n.min(3) } else { 0 };
            bins[COLD_LATENCY_BIN] += cold_n;
            multinomial(&mut self.rng, n - cold_n, &probs, &mut bins);
            if n > 0 {
                arm.last_served = Some(t + SLOT_MS);
            }
            arm.requests += n;
            arm.errors += errors;
            for (total, add) in arm.bins.iter_mut().zip(bins) {
                *total += add;
            }
            arm.window.push_back((n, errors, bins));
            if arm.window.len() > WINDOW_SLOTS {
                arm.window.pop_front();
            }
        }
    }

    /// The query's fate on a flapping Prometheus: `Some(true)` fails, `Some(false)` is empty.
    /// Drawn from its own stream, so that extra queries never change the traffic.
    fn flap(&self, now: i64, query: u64) -> Option<bool> {
        if !self.scenario.flapping {
            return None;
        }
        let mut rng = StdRng::seed_from_u64(mix(mix(self.seed, now as u64), query));
        let u: f64 = rng.random();
        if u < 0.2 {
            Some(true)
        } else if u < 0.3 {
            Some(false)
        } else {
            None
        }
    }

    fn flagger_value(&self, kind: MetricKind) -> MetricOutcome {
        let (n, e, bins) = self
            .canary
            .window
            .iter()
            .fold((0, 0, [0u64; BINS]), |(n, e, mut b), (sn, se, sb)| {
                for (x, y) in b.iter_mut().zip(sb) {
                    *x += y;
                }
                (n + sn, e + se, b)
            });
        if n == 0 {
            return MetricOutcome::NaN;
        }
        match kind {
            MetricKind::SuccessRate => MetricOutcome::Value(100.0 * (1.0 - e as f64 / n as f64)),
            _ => MetricOutcome::Value(histogram_quantile(0.99, &bins)),
        }
    }
}

/// Prometheus's `histogram_quantile` over Envoy's bins (linear inside a bucket; the highest finite
/// bound when the rank falls in `+Inf`).
pub fn histogram_quantile(q: f64, bins: &[u64; BINS]) -> f64 {
    let total: u64 = bins.iter().sum();
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, count) in bins.iter().enumerate() {
        if (below + count) as f64 >= rank && *count > 0 {
            if i + 1 == BINS {
                return ENVOY_BOUNDS_MS[BINS - 2];
            }
            let lower = if i == 0 { 0.0 } else { ENVOY_BOUNDS_MS[i - 1] };
            let upper = ENVOY_BOUNDS_MS[i];
            return lower + (upper - lower) * (rank - below as f64) / *count as f64;
        }
        below += count;
    }
    ENVOY_BOUNDS_MS[BINS - 2]
}

fn cumulative(bins: &[u64; BINS]) -> LatencyHistogram {
    let mut total = 0;
    let mut buckets = Vec::with_capacity(BINS);
    for (i, count) in bins.iter().enumerate() {
        total += count;
        let le = ENVOY_BOUNDS_MS.get(i).map_or(u64::MAX, |ms| (ms * 1000.0) as u64);
        buckets.push((le, total as f64));
    }
    LatencyHistogram { buckets }
}

fn samples(arm: Arm, state: &ArmState, out: &mut Vec<CounterSample>) {
    let mut push = |counter, value: u64| {
        out.push(CounterSample {
            series: "gateway-0".into(),
            arm,
            counter,
            value: value as f64,
        })
    };
    push(Counter::Requests, state.requests);
    push(Counter::Errors, state.errors);
    for bucket in cumulative(&state.bins).buckets {
        push(Counter::LatencyAtMost { le_micros: bucket.0 }, bucket.1 as u64);
    }
}

impl Responder for CorpusWorld {
    fn metric(&mut self, metric: &MetricCheck, ctx: &CheckContext) -> MetricOutcome {
        let now = ctx.now.as_millis();
        self.advance(now, ctx.canary_weight);
        let query = match metric.kind {
            MetricKind::SuccessRate => 1,
            _ => 2,
        };
        match self.flap(now, query) {
            Some(true) => MetricOutcome::Error("Prometheus query failed (simulated)".into()),
            Some(false) => MetricOutcome::NoData,
            None => self.flagger_value(metric.kind),
        }
    }

    fn hook(&mut self, hook: &Hook, _: &CheckContext) -> HookOutcome {
        match hook.kind {
            HookKind::Rollback => HookOutcome::Rejected {
                status: 403,
                body: "closed".into(),
            },
            _ => HookOutcome::Passed,
        }
    }

    fn counts(&mut self, request: &CountsRequest, ctx: &CheckContext) -> CountsOutcome {
        let now = ctx.now.as_millis();
        self.advance(now, ctx.canary_weight);
        match self.flap(now, 3) {
            Some(true) => return CountsOutcome::Error("Prometheus query failed (simulated)".into()),
            Some(false) => {
                return CountsOutcome::Read {
                    samples: Vec::new(),
                    calibration: None,
                };
            }
            None => {}
        }
        let mut out = Vec::new();
        samples(Arm::Primary, &self.primary, &mut out);
        if self.canary.requests > 0 {
            samples(Arm::Canary, &self.canary, &mut out);
        }
        CountsOutcome::Read {
            samples: out,
            calibration: request.calibrate.then(|| self.calibration.clone()),
        }
    }
}
