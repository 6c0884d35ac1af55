//! The step function: one call per reconcile, pure.
//!
//! [`step`] is re-entrant in the sans-IO style: when it needs webhook or metric
//! outcomes it has not been given, it returns [`Step::Need`] with the checks to
//! run (concurrently), and the caller calls it again with the outcomes added to
//! the [`Observation`]. Nothing is kept between the two calls, so the answer
//! depends only on (plan, status, observation, now).

use crate::{
    Action, CheckRequest, CheckVerdict, Decision, Event, Explanation, HookKind, HookOutcome, Observation, Phase, Plan,
    RolloutStatus, Severity, Time, TrafficSplit, Verdict, World, messages,
};

/// The answer of [`step`].
#[must_use]
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one Step per engine call; boxing would only add an allocation"
)]
pub enum Step {
    /// Run these checks, add their outcomes to the observation, and call [`step`] again.
    Need(CheckRequest),
    /// The decision for this step.
    Done(Decision),
}

/// Decides what to do for one Canary at `now`, given its plan, its stored status
/// and what was observed.
pub fn step(plan: &Plan, status: &RolloutStatus, obs: &Observation, now: Time) -> Step {
    let mut tick = Tick::new(plan, status, obs, now);
    match tick.run() {
        Err(Pending(request)) => Step::Need(request),
        Ok(()) => Step::Done(tick.finish()),
    }
}

/// The decision for a Canary being deleted with `revertOnDeletion`: stop managing the target
/// without ever sending traffic to a revision that is not the primary. When the latest Ready
/// revision is the primary, routing goes back to Knative's default (`latestRevision`, 100%);
/// otherwise (after a rollback, or mid-analysis) 100% stays pinned on the primary and a Warning
/// says how to follow the latest revision again.
pub fn finalize(plan: &Plan, status: &RolloutStatus, world: &World, now: Time) -> Decision {
    let obs = Observation::of(world.clone());
    let mut tick = Tick::new(plan, status, &obs, now);
    tick.event(Severity::Normal, messages::terminating(plan));
    let primary = status
        .primary_revision
        .clone()
        .or_else(|| world.primary.as_ref().map(|r| r.name.clone()));
    match primary {
        None => {
            tick.summary("routing left as it is: Serin never took it over".into());
        }
        Some(primary) if world.latest_ready.as_deref() == Some(primary.as_str()) => {
            tick.actions.push(Action::Release { pin: None });
            tick.summary(format!(
                "routing given back to Knative (latestRevision 100%, which is primary {primary})"
            ));
        }
        Some(primary) => {
            tick.actions.push(Action::Release {
                pin: Some(primary.clone()),
            });
            let latest = world.latest_ready.as_deref().unwrap_or("none");
            tick.event(Severity::Warning, messages::pinned_on_deletion(plan, &primary, latest));
            tick.summary(format!(
                "traffic pinned to primary {primary} (the latest Ready revision {latest} is not the primary)"
            ));
        }
    }
    tick.event(Severity::Normal, messages::terminated(plan));
    tick.status.phase = Phase::Terminating;
    tick.status.next_step_at = None;
    tick.finish()
}

/// Control flow for "the engine needs more observations": aborts the step.
pub(crate) struct Pending(pub(crate) CheckRequest);

pub(crate) type Flow = Result<(), Pending>;

/// One step in progress: the input, the status being built and the actions so far.
pub(crate) struct Tick<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) input: &'a RolloutStatus,
    pub(crate) obs: &'a Observation,
    pub(crate) now: Time,
    pub(crate) status: RolloutStatus,
    pub(crate) actions: Vec<Action>,
    pub(crate) explanation: Explanation,
}

impl<'a> Tick<'a> {
    fn new(plan: &'a Plan, input: &'a RolloutStatus, obs: &'a Observation, now: Time) -> Self {
        Tick {
            plan,
            input,
            obs,
            now,
            status: input.clone(),
            actions: Vec::new(),
            explanation: Explanation::default(),
        }
    }

    fn run(&mut self) -> Flow {
        if self.operator_requests() {
            return Ok(());
        }
        if self.plan.suspend {
            return self.suspended();
        }
        if self.status.primary_revision.is_none() && self.status.phase != Phase::Initializing {
            // A status without Serin's revision names: written by Flagger, or edited by hand.
            return self.adopt();
        }
        match self.status.phase {
            Phase::Initializing => self.initialize(),
            Phase::Initialized | Phase::Succeeded | Phase::Failed | Phase::Waiting => self.detect(),
            Phase::Progressing | Phase::WaitingPromotion => self.analyse(),
            Phase::Promoting | Phase::Finalising => self.promote_in_steps(),
            Phase::Terminating => {
                self.summary("the Canary is being deleted".into());
                Ok(())
            }
        }
    }

    pub(crate) fn start_rollout(&mut self, revision: &str) {
        let s = &mut self.status;
        s.phase = Phase::Progressing;
        s.canary_weight = 0;
        s.failed_checks = 0;
        s.iterations = 0;
        s.canary_revision = Some(revision.to_owned());
        s.rollout_started_at = Some(self.now);
        s.analysis_started_at = None;
        s.canary_unready_since = None;
        s.next_step_at = None;
        s.judge = None;
        s.approved_gates.clear();
    }

    pub(crate) fn due(&self) -> bool {
        self.status.next_step_at.is_none_or(|t| self.now >= t)
    }

    pub(crate) fn schedule_next(&mut self) {
        self.status.next_step_at = Some(self.now + self.plan.interval);
    }

    pub(crate) fn event(&mut self, severity: Severity, message: String) {
        self.actions.push(Action::Event(Event { severity, message }));
    }

    pub(crate) fn summary(&mut self, summary: String) {
        self.explanation.summary = summary;
    }

    /// Sends `weight` percent to the canary revision and the rest to the primary.
    pub(crate) fn set_traffic(&mut self, canary: &str, weight: u8) {
        if let Some(primary) = self.status.primary_revision.clone() {
            self.actions.push(Action::SetTraffic(TrafficSplit {
                primary,
                canary: canary.to_owned(),
                canary_weight: weight.min(100),
            }));
            self.status.canary_weight = weight.min(100);
        }
    }

    pub(crate) fn request(&self, hooks: Vec<usize>, metrics: Vec<usize>) -> Pending {
        // The phase Flagger sends: the current one to confirm-rollout and rollback hooks,
        // Progressing to the hooks of an analysis (also while WaitingPromotion).
        let phase = match hooks.first().map(|&i| self.plan.webhooks[i].kind) {
            Some(HookKind::ConfirmRollout | HookKind::Rollback) | None => self.status.phase,
            Some(_) if self.status.phase.is_active() => Phase::Progressing,
            Some(_) => self.status.phase,
        };
        // The sequential judge reads its counters with the metrics, in the same round.
        let counts = (self.plan.judge.sequential_runs() && !metrics.is_empty() && self.obs.counts.is_none())
            .then(|| self.counts_request());
        Pending(CheckRequest {
            metrics,
            hooks,
            phase,
            canary_revision: self.status.canary_revision.clone(),
            primary_revision: self.status.primary_revision.clone(),
            counts,
        })
    }

    /// The outcomes of the given hooks and metrics, or a request for the missing ones.
    pub(crate) fn require(&self, hooks: &[usize], metrics: &[usize]) -> Flow {
        let missing_hooks: Vec<usize> = hooks
            .iter()
            .copied()
            .filter(|i| !self.obs.hooks.contains_key(i))
            .collect();
        let missing_metrics: Vec<usize> = metrics
            .iter()
            .copied()
            .filter(|i| !self.obs.metrics.contains_key(i))
            .collect();
        if missing_hooks.is_empty() && missing_metrics.is_empty() {
            Ok(())
        } else {
            Err(self.request(missing_hooks, missing_metrics))
        }
    }

    /// Calls the hooks of `kind` one at a time in spec order (through requests), stopping at the
    /// first that fails, as Flagger does; returns that failure, recording every outcome in the
    /// explanation.
    pub(crate) fn first_hook_failure(&mut self, kind: HookKind) -> Result<Option<Rejection>, Pending> {
        let mut first = None;
        if self.approved(kind) {
            self.explanation.checks.push(CheckVerdict {
                check: format!("gate {}", kind.as_str()),
                observed: "approved by a person for this rollout".into(),
                bound: "open".into(),
                verdict: Verdict::Pass,
                measured: None,
            });
            return Ok(None);
        }
        for i in self.plan.hooks_of(kind) {
            let hook = &self.plan.webhooks[i];
            let Some(outcome) = self.obs.hooks.get(&i).cloned() else {
                return Err(self.request(vec![i], Vec::new()));
            };
            let verdict = match &outcome {
                HookOutcome::Passed => Verdict::Pass,
                HookOutcome::Rejected { .. } => Verdict::Fail,
                HookOutcome::TimedOut | HookOutcome::Error(_) => Verdict::Error,
            };
            self.explanation.checks.push(CheckVerdict {
                check: format!("webhook {} ({})", hook.name, kind.as_str()),
                observed: outcome.describe(),
                bound: "2xx".into(),
                verdict,
                measured: None,
            });
            if !outcome.passed() {
                first = Some(Rejection {
                    hook: hook.name.clone(),
                    detail: outcome.describe(),
                });
                break;
            }
        }
        Ok(first)
    }

    /// A gate: like [`Tick::first_hook_failure`], plus Flagger's `… check {hook} passed` events.
    pub(crate) fn gate(&mut self, kind: HookKind) -> Result<Option<Rejection>, Pending> {
        let rejection = self.first_hook_failure(kind)?;
        if rejection.is_none() {
            let label = match kind {
                HookKind::ConfirmRollout => "Confirm-rollout",
                HookKind::PreRollout => "Pre-rollout",
                HookKind::ConfirmTrafficIncrease => "Confirm-traffic-increase",
                HookKind::ConfirmPromotion => "Confirm-promotion",
                _ => return Ok(None),
            };
            for i in self.plan.hooks_of(kind) {
                let message = messages::check_passed(label, &self.plan.webhooks[i].name);
                self.event(Severity::Normal, message);
            }
        }
        Ok(rejection)
    }

    fn finish(mut self) -> Decision {
        coalesce_traffic(&mut self.actions);
        if self.status.transition_key() != self.input.transition_key() || self.status.last_transition_at.is_none() {
            self.status.last_transition_at = Some(self.now);
        }
        let deadline = self
            .status
            .canary_unready_since
            .map(|since| since + self.plan.progress_deadline);
        let wake_at = match (self.status.next_step_at, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.explanation.summary.is_empty() {
            self.explanation.summary = format!("phase {}", self.status.phase.as_str());
        }
        Decision {
            status: self.status,
            actions: self.actions,
            wake_at,
            explanation: self.explanation,
        }
    }
}

/// A hook that said no, and what it said.
pub(crate) struct Rejection {
    pub(crate) hook: String,
    pub(crate) detail: String,
}

/// Drops a traffic write that a later one in the same step overrides, when nothing but
/// events and metric samples lie between them.
fn coalesce_traffic(actions: &mut Vec<Action>) {
    let mut i = 0;
    while i < actions.len() {
        if matches!(actions[i], Action::SetTraffic(_)) {
            let next_write = actions[i + 1..]
                .iter()
                .position(|a| !matches!(a, Action::Event(_) | Action::RecordMetric { .. }))
                .map(|offset| i + 1 + offset);
            if let Some(j) = next_write
                && matches!(actions[j], Action::SetTraffic(_))
            {
                actions.remove(i);
                continue;
            }
        }
        i += 1;
    }
}
