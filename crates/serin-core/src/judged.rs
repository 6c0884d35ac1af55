//! The rollout step under the sequential judge (`judge.serin.dev/mode: sequential`), and the
//! shadow judge's reports (`shadow`). Webhooks and custom metrics keep Flagger's meaning and
//! count against `threshold`; the built-in metrics are judged on counts, canary against the
//! concurrent primary, by `sequential::assess`.

use crate::{
    CountsOutcome, CountsRequest, JudgeMode, MetricKind, OnInsufficientEvidence, Severity, Strategy,
    engine::{Pending, Tick},
    evidence::HarmCheck,
    judge::judge,
    sequential::{Assessment, Bounds, Ingested, JudgeState, assess},
};

/// What the judge concludes at one tick.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Conclusion {
    /// Evidence of harm: roll back.
    Regressed(String),
    /// Below max weight: the step may advance.
    Pass(String),
    /// At max weight: every safety gate passed.
    Verified(String),
    /// The deadline came without evidence either way, and the policy says what to do.
    Deadline { reason: &'static str, message: String },
    /// Keep collecting.
    Wait(String),
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn minutes(requests: f64, rate: f64) -> String {
    if rate <= 0.0 {
        return "no canary traffic now".into();
    }
    let secs = requests / rate;
    if secs < 90.0 {
        format!("≈ {}s at current traffic", secs.ceil())
    } else {
        format!("≈ {} min at current traffic", (secs / 60.0).ceil())
    }
}

impl Tick<'_> {
    /// The counters reading, or a request for it (with the calibration on the first reading).
    pub(crate) fn require_counts(&self) -> Result<&CountsOutcome, Pending> {
        match &self.obs.counts {
            Some(outcome) => Ok(outcome),
            None => {
                let mut pending = self.request(Vec::new(), Vec::new());
                pending.0.counts = Some(self.counts_request());
                Err(pending)
            }
        }
    }

    /// The counters to ask for: with the calibration until the bounds are known.
    pub(crate) fn counts_request(&self) -> CountsRequest {
        CountsRequest {
            calibrate: self.status.judge.as_ref().is_none_or(|j| j.bounds.is_none()),
        }
    }

    /// Adds this tick's reading to the judge's state; `None` when the reading failed.
    pub(crate) fn ingest_counts(&mut self) -> Result<Option<Ingested>, Pending> {
        let outcome = self.require_counts()?.clone();
        let plan = self.plan;
        let weight = self.input.canary_weight;
        let now = self.now;
        let state = self.status.judge.get_or_insert_with(JudgeState::default);
        match outcome {
            CountsOutcome::Read { samples, calibration } => {
                if state.bounds.is_none() && !samples.is_empty() {
                    let histogram = calibration.unwrap_or_else(|| crate::sequential::lifetime_histogram(&samples));
                    state.bounds = Some(Bounds::calibrate(plan, &plan.judge.policy, Some(&histogram)));
                }
                Ok(Some(state.ingest(&samples, weight, now)))
            }
            CountsOutcome::Error(_) => {
                state.failed_readings += 1;
                Ok(None)
            }
        }
    }

    /// The judge's conclusion at this tick (already ingested).
    pub(crate) fn conclude(&self, assessment: &Assessment) -> Conclusion {
        let plan = self.plan;
        let policy = &plan.judge.policy;
        let state = self.status.judge.clone().unwrap_or_default();
        if let Some(h) = assessment.harmed() {
            let what = match h.check {
                HarmCheck::Errors => "5xx",
                HarmCheck::SlowMid | HarmCheck::SlowTail => "slower than the primary's bound",
            };
            let bound = match h.check {
                HarmCheck::Errors => String::new(),
                HarmCheck::SlowMid => format!(
                    " {}ms",
                    state.bounds.and_then(|b| b.mid_us).unwrap_or(0) as f64 / 1000.0
                ),
                HarmCheck::SlowTail => format!(
                    " {}ms",
                    state.bounds.and_then(|b| b.tail_us).unwrap_or(0) as f64 / 1000.0
                ),
            };
            return Conclusion::Regressed(format!(
                "Halt {} advancement {} regressed vs primary: canary {}/{} {what}{bound}, primary {}/{}, evidence {:.0} ≥ {:.0}",
                plan.canary_ref(),
                h.check.name(),
                thousands(h.canary.0),
                thousands(h.canary.1),
                thousands(h.primary.0),
                thousands(h.primary.1),
                h.log_evidence.exp(),
                h.log_threshold.exp(),
            ));
        }
        let max_weight = plan.max_weight();
        let at_max = match plan.strategy {
            Strategy::Canary { .. } => self.status.canary_weight >= max_weight,
            Strategy::BlueGreen { .. } => true,
        };
        let rate = state
            .ticks
            .last()
            .map(|t| t.canary.requests as f64 / plan.interval.as_secs_f64().max(1.0))
            .unwrap_or(0.0);
        if at_max && (assessment.verified() || state.outcome.as_deref() == Some("Verified")) {
            return Conclusion::Verified(format!(
                "Verified {}: every safety gate passed on {} canary requests at max weight",
                plan.canary_ref(),
                thousands(assessment.final_requests)
            ));
        }
        let started = self.status.analysis_started_at.unwrap_or(self.now);
        if self.now.since(started) >= policy.max_analysis_duration {
            if state.ticks.is_empty() && state.empty_readings > 0 {
                return Conclusion::Deadline {
                    reason: "NoMetrics",
                    message: format!(
                        "{}: no request series for either revision by the deadline; Serin cannot tell whether there is traffic",
                        plan.canary_ref()
                    ),
                };
            }
            let needed = assessment.requests_to_verify_from_start();
            let insufficient = needed.is_none_or(|n| (assessment.final_requests as f64) < 2.0 * n);
            let needed = needed.map_or("an unknown number of".into(), |n| thousands(n.ceil() as u64));
            return if insufficient {
                Conclusion::Deadline {
                    reason: "InsufficientTraffic",
                    message: format!(
                        "{}: {} canary requests at max weight by the deadline; a healthy canary needs about {needed} to be verified",
                        plan.canary_ref(),
                        thousands(assessment.final_requests)
                    ),
                }
            } else {
                Conclusion::Deadline {
                    reason: "NotProvenSafe",
                    message: format!(
                        "{}: not proven safe by the deadline on {} canary requests at max weight (a healthy canary needs about {needed})",
                        plan.canary_ref(),
                        thousands(assessment.final_requests)
                    ),
                }
            };
        }
        if !at_max {
            if assessment.step_requests >= policy.min_step_requests || assessment.step_ticks >= 4 {
                return Conclusion::Pass(format!(
                    "no harm seen on {} canary requests in this step",
                    thousands(assessment.step_requests)
                ));
            }
            return Conclusion::Wait(format!(
                "Waiting for evidence: {} of {} canary requests in this step",
                assessment.step_requests, policy.min_step_requests
            ));
        }
        let gates: Vec<String> = assessment
            .gates
            .iter()
            .map(|g| format!("{} {:.1}/{:.0}", g.name, g.log_evidence.exp(), g.log_threshold.exp()))
            .collect();
        let eta = match assessment.requests_to_verify() {
            Some(n) => format!(
                "need ≈ {} more canary requests ({})",
                thousands(n.ceil() as u64),
                minutes(n, rate)
            ),
            None => "a canary like the primary cannot pass every gate at these rates".into(),
        };
        Conclusion::Wait(format!("Waiting for evidence: {} · {eta}", gates.join(" · ")))
    }

    /// The step under the sequential judge: custom metrics by Flagger's rule, the built-ins by
    /// the judge. Returns whether to advance.
    pub(crate) fn judged_step(&mut self, canary: &str) -> Result<bool, Pending> {
        let custom: Vec<usize> = (0..self.plan.metrics.len())
            .filter(|&i| self.plan.metrics[i].kind == MetricKind::Custom)
            .collect();
        self.require(&[], &custom)?;
        self.require_counts()?;
        let ingested = self.ingest_counts()?;
        let mut first_failure = None;
        for i in custom {
            let metric = &self.plan.metrics[i];
            if let Some(outcome) = self.obs.metrics.get(&i) {
                let judgement = judge(self.plan, metric, outcome, canary);
                self.explanation.checks.push(judgement.line);
                first_failure = first_failure.or(judgement.halt_message);
            }
        }
        if let Some(message) = first_failure {
            self.count_failure(canary, message);
            return Ok(false);
        }
        let state = self.status.judge.clone().unwrap_or_default();
        let assessment = assess(self.plan, &self.plan.judge.policy, &state);
        self.explain(&assessment);
        if ingested.is_none() && state.failed_readings == 4 {
            self.event(
                Severity::Warning,
                format!(
                    "Metrics unavailable for {}: the counters could not be read for 4 ticks",
                    self.plan.canary_ref()
                ),
            );
        }
        if ingested == Some(Ingested::NoSeries) && state.ticks.is_empty() && state.empty_readings == 4 {
            self.event(Severity::Warning, format!("No request series found for either revision of {}: check the query set and the revision labels (serin check-metrics)", self.plan.target_ref()));
        }
        match self.conclude(&assessment) {
            Conclusion::Regressed(message) => {
                self.set_outcome("Regressed");
                self.status.failed_checks = self.plan.threshold.max(1) - 1;
                self.count_failure(canary, message);
                Ok(false)
            }
            Conclusion::Pass(_) => Ok(true),
            Conclusion::Verified(message) => {
                if self.status.judge.as_ref().and_then(|j| j.outcome.as_deref()) != Some("Verified") {
                    self.event(Severity::Normal, message);
                }
                self.set_outcome("Verified");
                Ok(true)
            }
            Conclusion::Deadline { reason, message } => {
                self.set_outcome(reason);
                let policy = self.plan.judge.policy.on_insufficient_evidence;
                match (reason, policy) {
                    ("InsufficientTraffic", OnInsufficientEvidence::Promote) => {
                        self.event(Severity::Warning, format!("Promoting unverified: {message}"));
                        self.complete_promotion(canary, true);
                    }
                    ("InsufficientTraffic", OnInsufficientEvidence::Pause) => {
                        self.announce(Severity::Warning, format!("Paused unverified: {message}"));
                        self.summary(format!("paused unverified: {message}"));
                        self.schedule_next();
                    }
                    _ => {
                        self.status.failed_checks = self.plan.threshold.max(1) - 1;
                        self.count_failure(canary, format!("Halt advancement: {message}"));
                    }
                }
                Ok(false)
            }
            Conclusion::Wait(message) => {
                let key = format!("wait@{}", self.status.canary_weight);
                if self.status.judge.as_ref().and_then(|j| j.announced.as_deref()) != Some(key.as_str()) {
                    self.event(Severity::Normal, message.clone());
                    if let Some(j) = self.status.judge.as_mut() {
                        j.announced = Some(key);
                    }
                }
                self.summary(message);
                self.schedule_next();
                Ok(false)
            }
        }
    }

    /// The shadow judge: reads the counters beside Flagger's rule and reports, prefixed
    /// `[shadow]`, what it would do; it never changes the flow.
    pub(crate) fn shadow_report(&mut self) -> Result<(), Pending> {
        self.require_counts()?;
        self.ingest_counts()?;
        let state = self.status.judge.clone().unwrap_or_default();
        let assessment = assess(self.plan, &self.plan.judge.policy, &state);
        self.explain(&assessment);
        let (key, message) = match self.conclude(&assessment) {
            Conclusion::Regressed(m) => ("rollback".to_owned(), format!("[shadow] would roll back: {m}")),
            Conclusion::Verified(m) => ("verified".to_owned(), format!("[shadow] {m}")),
            Conclusion::Pass(m) => (
                format!("advance@{}", self.status.canary_weight),
                format!("[shadow] would advance: {m}"),
            ),
            Conclusion::Deadline { reason, message } => {
                (reason.to_owned(), format!("[shadow] deadline ({reason}): {message}"))
            }
            Conclusion::Wait(m) => (format!("wait@{}", self.status.canary_weight), format!("[shadow] {m}")),
        };
        if let Some(j) = self.status.judge.as_mut()
            && j.announced.as_deref() != Some(key.as_str())
        {
            j.announced = Some(key);
            self.event(Severity::Normal, message);
        }
        Ok(())
    }

    fn set_outcome(&mut self, outcome: &str) {
        if let Some(j) = self.status.judge.as_mut() {
            j.outcome = Some(outcome.to_owned());
        }
    }

    fn announce(&mut self, severity: Severity, message: String) {
        let key = message.clone();
        if let Some(j) = self.status.judge.as_mut()
            && j.announced.as_deref() != Some(key.as_str())
        {
            j.announced = Some(key);
            self.event(severity, message);
        }
    }

    /// One explanation line per harm test and gate, with the counts; the summary in the state.
    fn explain(&mut self, assessment: &Assessment) {
        if let Some(j) = self.status.judge.as_mut() {
            j.summary = Some(assessment.summary());
        }
        let prefix = if self.plan.judge.mode == JudgeMode::Shadow {
            "[shadow] "
        } else {
            ""
        };
        for h in &assessment.harm {
            self.explanation.checks.push(crate::CheckVerdict {
                check: format!("{prefix}harm {}", h.check.name()),
                observed: format!(
                    "canary {}/{}, primary {}/{}, evidence {:.2}",
                    h.canary.0,
                    h.canary.1,
                    h.primary.0,
                    h.primary.1,
                    h.log_evidence.exp()
                ),
                bound: format!("< {:.0}", h.log_threshold.exp()),
                verdict: if h.log_evidence >= h.log_threshold {
                    crate::Verdict::Fail
                } else {
                    crate::Verdict::Pass
                },
                measured: None,
            });
        }
        for g in &assessment.gates {
            self.explanation.checks.push(crate::CheckVerdict {
                check: format!("{prefix}gate {}", g.name),
                observed: format!("evidence {:.2}", g.log_evidence.exp()),
                bound: format!(">= {:.0}", g.log_threshold.exp()),
                verdict: if g.log_evidence >= g.log_threshold {
                    crate::Verdict::Pass
                } else {
                    crate::Verdict::NoData
                },
                measured: None,
            });
        }
    }
}
