//! The rollout itself: readiness, analysis steps, traffic steps, promotion and rollback.

use crate::{
    Action, HookKind, JudgeMode, Phase, Readiness, Severity, Strategy,
    engine::{Flow, Pending, Tick},
    judge::judge,
    messages,
    time::go_duration,
};

/// Why a rollout is rolled back.
enum RollbackCause {
    Threshold,
    Manual,
    Requested,
    RevisionFailed(String),
    Deadline(Option<String>),
}

impl Tick<'_> {
    /// Progressing and WaitingPromotion.
    pub(crate) fn analyse(&mut self) -> Flow {
        let Some(mut canary) = self.status.canary_revision.clone() else {
            self.status.phase = Phase::Initialized;
            return Ok(());
        };
        if let Some(latest) = self.obs.world.latest_created.clone()
            && latest.name != canary
            && Some(&latest.name) != self.status.primary_revision.as_ref()
        {
            self.event(Severity::Normal, messages::restarting(self.plan));
            self.set_traffic(&latest.name, 0);
            self.start_rollout(&latest.name);
            canary = latest.name;
        }
        let was_unready = self.status.canary_unready_since.is_some();
        if !self.canary_ready(&canary) {
            return Ok(());
        }
        if self.plan.skip_analysis {
            self.event(Severity::Normal, messages::skipped(self.plan));
            self.complete_promotion(&canary, false);
            return Ok(());
        }
        let started = self.status.analysis_started_at.is_some();
        if started
            && self.status.phase == Phase::Progressing
            && let Some(full) = self.promote_requested()
        {
            // A person passes the step: no metric analysis, but the gates and the weights'
            // order still apply.
            if full {
                return self.promotion_gate(&canary);
            }
            return self.advance(&canary);
        }
        if !started && (self.due() || was_unready) {
            return self.first_step(&canary);
        }
        if !self.due() {
            self.summary(format!("waiting for the next step of revision {canary}"));
            self.explanation.on_schedule = true;
            return Ok(());
        }
        if let Some(primary) = &self.obs.world.primary
            && primary.readiness != Readiness::Ready
        {
            let message = messages::not_ready(self.plan, &primary.name, &primary.readiness);
            self.event(Severity::Warning, message.clone());
            self.summary(format!("halted: primary {message}"));
            self.schedule_next();
            return Ok(());
        }
        if !self.analysis_passed(&canary)? {
            return Ok(());
        }
        self.advance(&canary)
    }

    /// Readiness of the canary revision; rolls back on failure or an expired deadline.
    fn canary_ready(&mut self, canary: &str) -> bool {
        let readiness = match &self.obs.world.latest_created {
            Some(rev) if rev.name == canary => rev.readiness.clone(),
            _ => Readiness::NotYet {
                reason: Some(format!("revision {canary} is not reported by Knative")),
            },
        };
        match readiness {
            Readiness::Ready => {
                self.status.canary_unready_since = None;
                true
            }
            Readiness::Failed { reason } => {
                self.rollback(canary, RollbackCause::RevisionFailed(reason));
                false
            }
            Readiness::NotYet { reason } => {
                let since = *self.status.canary_unready_since.get_or_insert(self.now);
                let waited = self.now.since(since);
                if waited >= self.plan.progress_deadline {
                    self.rollback(canary, RollbackCause::Deadline(reason));
                } else {
                    if self.input.canary_unready_since.is_none() {
                        let message = messages::not_ready(self.plan, canary, &Readiness::NotYet { reason });
                        self.event(Severity::Warning, message);
                    }
                    // No running time in the text: the same wait is the same status, so
                    // waiting writes nothing (`canaryUnreadySince` says since when).
                    self.summary(format!(
                        "waiting for revision {canary} to become Ready (rolled back if it is not within the {} progress deadline)",
                        go_duration(self.plan.progress_deadline)
                    ));
                }
                false
            }
        }
    }

    /// The first step of a rollout: pre-rollout hooks, then the first weight (or, for
    /// blue/green, the load), with the load-test hooks started at once.
    fn first_step(&mut self, canary: &str) -> Flow {
        if self.rollback_requested(canary)? {
            return Ok(());
        }
        if self.plan.judge.sequential_runs() {
            // The counters' starting point, and the calibration from the primary's history.
            self.ingest_counts()?;
        }
        self.event(Severity::Normal, messages::starting(self.plan));
        if let Some(rejection) = self.gate(HookKind::PreRollout)? {
            let message = messages::pre_rollout_failed(self.plan, &rejection.hook, &rejection.detail);
            self.count_failure(canary, message);
            return Ok(());
        }
        match self.plan.strategy.clone() {
            Strategy::Canary { weights, .. } => {
                if self.traffic_increase_refused()? {
                    return Ok(());
                }
                if let Some(rejection) = self.first_hook_failure(HookKind::Rollout)? {
                    let message = self.external_check_failed(&rejection.hook, &rejection.detail);
                    self.count_failure(canary, message);
                    return Ok(());
                }
                let weight = weights.first().copied().unwrap_or(100);
                self.set_traffic(canary, weight);
                self.event(Severity::Normal, messages::advance_weight(self.plan, weight));
                self.summary(format!("first step: {weight}% of traffic to revision {canary}"));
            }
            Strategy::BlueGreen { iterations } => {
                if let Some(rejection) = self.first_hook_failure(HookKind::Rollout)? {
                    let message = self.external_check_failed(&rejection.hook, &rejection.detail);
                    self.count_failure(canary, message);
                    return Ok(());
                }
                self.set_traffic(canary, 0);
                self.status.iterations = 1;
                self.event(Severity::Normal, messages::advance_iteration(self.plan, 1, iterations));
                self.summary(format!(
                    "blue/green: revision {canary} gets no user traffic for {iterations} iterations (load tests reach it through its canary tag), then all traffic for one interval before promotion"
                ));
            }
        }
        self.status.analysis_started_at = Some(self.now);
        self.schedule_next();
        Ok(())
    }

    /// One analysis step, in Flagger's order: rollback hooks, then rollout hooks (one at a time,
    /// stopping at the first failure), then, once they have returned, every metric (queried
    /// together). Returns whether the step passed; a failure has been counted (and may have
    /// rolled back).
    fn analysis_passed(&mut self, canary: &str) -> Result<bool, Pending> {
        if self.rollback_requested(canary)? {
            return Ok(false);
        }
        if let Some(rejection) = self.first_hook_failure(HookKind::Rollout)? {
            let message = self.external_check_failed(&rejection.hook, &rejection.detail);
            self.count_failure(canary, message);
            return Ok(false);
        }
        if self.plan.judge.mode == JudgeMode::Sequential {
            return self.judged_step(canary);
        }
        let metrics: Vec<usize> = (0..self.plan.metrics.len()).collect();
        self.require(&[], &metrics)?;
        if self.plan.judge.mode == JudgeMode::Shadow {
            self.shadow_report()?;
        }
        let mut first_failure: Option<String> = None;
        for (i, metric) in self.plan.metrics.iter().enumerate() {
            let Some(outcome) = self.obs.metrics.get(&i) else {
                continue;
            };
            if let Some(value) = outcome.value() {
                self.actions.push(Action::RecordMetric {
                    name: metric.name.clone(),
                    value,
                });
            }
            let judgement = judge(self.plan, metric, outcome, canary);
            self.explanation.checks.push(judgement.line);
            if first_failure.is_none() {
                first_failure = judgement.halt_message;
            }
        }
        match first_failure {
            Some(message) => {
                self.count_failure(canary, message);
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// Rollback hooks in spec order: the first that answers 2xx rolls back (Flagger's rule); each
    /// that does not gets Flagger's `not signaling a rollback` event.
    fn rollback_requested(&mut self, canary: &str) -> Result<bool, Pending> {
        for i in self.plan.hooks_of(HookKind::Rollback) {
            let Some(outcome) = self.obs.hooks.get(&i).cloned() else {
                return Err(self.request(vec![i], Vec::new()));
            };
            let name = self.plan.webhooks[i].name.clone();
            if outcome.passed() {
                self.event(Severity::Warning, messages::check_passed("Rollback", &name));
                self.rollback(canary, RollbackCause::Manual);
                return Ok(true);
            }
            self.event(Severity::Normal, messages::not_signaling_rollback(&name));
        }
        Ok(false)
    }

    /// After a passing analysis step: the next weight, the next iteration, or promotion.
    fn advance(&mut self, canary: &str) -> Flow {
        match self.plan.strategy.clone() {
            Strategy::Canary { weights, .. } => {
                let current = self.status.canary_weight;
                let Some(&next) = weights.iter().find(|w| **w > current) else {
                    // Flagger asks confirm-traffic-increase on the promotion step too (a "no"
                    // holds promotion), except while WaitingPromotion.
                    if self.status.phase != Phase::WaitingPromotion && self.traffic_increase_refused()? {
                        return Ok(());
                    }
                    return self.promotion_gate(canary);
                };
                if self.traffic_increase_refused()? {
                    return Ok(());
                }
                self.set_traffic(canary, next);
                self.event(Severity::Normal, messages::advance_weight(self.plan, next));
                self.summary(format!("analysis passed; {next}% of traffic to revision {canary}"));
                self.schedule_next();
                Ok(())
            }
            // Flagger's blue/green: iterations 1..n with the canary at 0%, then (gate open) all
            // traffic to the canary for one interval, then (its analysis passed) promotion.
            Strategy::BlueGreen { iterations } => {
                let done = self.status.iterations;
                if done < iterations {
                    self.status.iterations = done + 1;
                    let i = done + 1;
                    self.event(Severity::Normal, messages::advance_iteration(self.plan, i, iterations));
                    self.summary(format!("analysis passed; iteration {i} of {iterations}"));
                    self.schedule_next();
                    return Ok(());
                }
                if self.promotion_refused(canary)? {
                    return Ok(());
                }
                if done == iterations {
                    self.status.phase = Phase::Progressing;
                    self.event(Severity::Normal, messages::ALL_TO_CANARY.into());
                    self.set_traffic(canary, 100);
                    self.status.iterations = iterations + 1;
                    self.summary(format!(
                        "analysis passed; all traffic on revision {canary} for one interval before promotion"
                    ));
                    self.schedule_next();
                    return Ok(());
                }
                self.complete_promotion(canary, true);
                Ok(())
            }
        }
    }

    fn traffic_increase_refused(&mut self) -> Result<bool, Pending> {
        let Some(rejection) = self.gate(HookKind::ConfirmTrafficIncrease)? else {
            return Ok(false);
        };
        let message = messages::waiting_for_traffic_increase(self.plan, &rejection.hook);
        self.event(Severity::Warning, message.clone());
        self.summary(message);
        self.schedule_next();
        Ok(true)
    }

    fn promotion_gate(&mut self, canary: &str) -> Flow {
        if self.promotion_refused(canary)? {
            return Ok(());
        }
        match self.plan.strategy {
            Strategy::Canary {
                promotion_step: Some(step),
                ..
            } if step > 0 => {
                self.status.phase = Phase::Promoting;
                self.ramp(canary, step);
            }
            _ => self.complete_promotion(canary, true),
        }
        Ok(())
    }

    /// Confirm-promotion gates: a refusal holds the rollout in WaitingPromotion (announced once).
    fn promotion_refused(&mut self, canary: &str) -> Result<bool, Pending> {
        if let Some(rejection) = self.gate(HookKind::ConfirmPromotion)? {
            if self.status.phase != Phase::WaitingPromotion {
                self.status.phase = Phase::WaitingPromotion;
                let message = messages::waiting_for_promotion(self.plan, &rejection.hook);
                self.event(Severity::Warning, message);
            }
            self.summary(format!(
                "analysis passed; promotion of {canary} waits for {} ({})",
                rejection.hook, rejection.detail
            ));
            self.schedule_next();
            return Ok(true);
        }
        Ok(false)
    }

    /// Promoting: one ramp step per interval (`stepWeightPromotion`).
    pub(crate) fn promote_in_steps(&mut self) -> Flow {
        let Some(canary) = self.status.canary_revision.clone() else {
            self.status.phase = Phase::Initialized;
            return Ok(());
        };
        let step = match self.plan.strategy {
            Strategy::Canary {
                promotion_step: Some(step),
                ..
            } if step > 0 => step,
            _ => 100,
        };
        if self.status.phase == Phase::Finalising || self.due() {
            if self.status.phase == Phase::Finalising {
                self.complete_promotion(&canary, true);
            } else {
                self.ramp(&canary, step);
            }
        }
        Ok(())
    }

    fn ramp(&mut self, canary: &str, step: u8) {
        let weight = self.status.canary_weight.saturating_add(step).min(100);
        if weight >= 100 {
            self.complete_promotion(canary, true);
            return;
        }
        self.set_traffic(canary, weight);
        self.event(Severity::Normal, messages::advance_promotion(self.plan, weight));
        self.summary(format!("promoting revision {canary}: {weight}% of traffic"));
        self.schedule_next();
    }

    pub(crate) fn complete_promotion(&mut self, canary: &str, analysed: bool) {
        self.actions.push(Action::Promote {
            revision: canary.to_owned(),
        });
        if analysed {
            self.event(Severity::Normal, messages::promoting(self.plan, canary));
            self.event(Severity::Normal, messages::ALL_TO_PRIMARY.into());
            self.event(Severity::Normal, messages::promoted(self.plan));
        }
        let s = &mut self.status;
        s.phase = Phase::Succeeded;
        s.primary_revision = Some(canary.to_owned());
        s.canary_weight = 0;
        s.iterations = 0;
        s.canary_unready_since = None;
        s.next_step_at = None;
        self.post_rollout(Phase::Succeeded);
        self.summary(format!(
            "revision {canary} promoted: it is primary with 100% of traffic"
        ));
    }

    pub(crate) fn count_failure(&mut self, canary: &str, message: String) {
        self.status.failed_checks += 1;
        self.event(Severity::Warning, message.clone());
        if self.status.failed_checks >= self.plan.threshold {
            self.rollback(canary, RollbackCause::Threshold);
        } else {
            self.summary(format!(
                "{message} (failed checks {}/{})",
                self.status.failed_checks, self.plan.threshold
            ));
            self.schedule_next();
        }
    }

    /// A rollback asked for by a person (`serin abort`): all traffic back on the primary.
    pub(crate) fn rollback_now(&mut self, canary: &str) {
        self.rollback(canary, RollbackCause::Requested);
    }

    fn rollback(&mut self, canary: &str, cause: RollbackCause) {
        let reason = match cause {
            RollbackCause::Threshold => messages::rollback_threshold(self.plan, self.status.failed_checks),
            RollbackCause::Manual => messages::rollback_manual(self.plan),
            RollbackCause::Requested => messages::rollback_requested(self.plan),
            RollbackCause::RevisionFailed(reason) => messages::rollback_revision_failed(self.plan, canary, &reason),
            RollbackCause::Deadline(reason) => messages::rollback_deadline(self.plan, canary, reason.as_deref()),
        };
        self.event(Severity::Warning, reason.clone());
        self.set_traffic(canary, 0);
        self.event(Severity::Warning, messages::failed(self.plan));
        let s = &mut self.status;
        s.phase = Phase::Failed;
        s.canary_weight = 0;
        s.iterations = 0;
        s.canary_unready_since = None;
        s.next_step_at = None;
        self.post_rollout(Phase::Failed);
        self.summary(reason);
    }

    fn post_rollout(&mut self, phase: Phase) {
        if !self.plan.hooks_of(HookKind::PostRollout).is_empty() {
            self.actions.push(Action::CallHooks {
                kind: HookKind::PostRollout,
                phase,
            });
        }
    }

    fn external_check_failed(&self, hook: &str, detail: &str) -> String {
        messages::external_check_failed(self.plan, hook, detail)
    }
}
