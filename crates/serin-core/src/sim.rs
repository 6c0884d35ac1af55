//! A simulated world for driving the engine in virtual time: tests, `serin plan`, benchmarks.
//!
//! The simulation plays the caller's part: it keeps the Knative-like routing state that the
//! actions produce, answers check requests through a [`Responder`], and advances a virtual
//! clock from one wake-up to the next. It is pure like the rest of the crate.

use crate::{
    Action, CountsOutcome, CountsRequest, Decision, Event, Hook, HookOutcome, MetricCheck, MetricOutcome, Observation,
    Phase, Plan, Readiness, Revision, RolloutStatus, Step, Time, TrafficSplit, World, step,
};

/// What a responder knows when it answers a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckContext {
    /// Virtual time of the check.
    pub now: Time,
    /// Canary weight before this step.
    pub canary_weight: u8,
    /// The revision under analysis.
    pub canary_revision: Option<String>,
    /// Phase sent with webhooks.
    pub phase: Phase,
}

/// Answers the checks the engine asks for.
pub trait Responder {
    /// The outcome of a metric query.
    fn metric(&mut self, metric: &MetricCheck, ctx: &CheckContext) -> MetricOutcome;
    /// The outcome of a webhook call.
    fn hook(&mut self, hook: &Hook, ctx: &CheckContext) -> HookOutcome;
    /// The request counters of both revisions (the sequential judge); none by default.
    fn counts(&mut self, request: &CountsRequest, ctx: &CheckContext) -> CountsOutcome {
        let _ = (request, ctx);
        CountsOutcome::Read {
            samples: Vec::new(),
            calibration: None,
        }
    }
}

/// Every metric within bounds, every hook answering 200 (a rollback hook too, so it answers
/// with a rejection: success would trigger a rollback).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllPass;

/// A value inside `metric`'s range.
pub fn passing_value(metric: &MetricCheck) -> f64 {
    match (metric.range.min, metric.range.max) {
        (Some(min), Some(max)) => (min + max) / 2.0,
        (Some(min), None) => min,
        (None, Some(max)) => max,
        (None, None) => 0.0,
    }
}

impl Responder for AllPass {
    fn metric(&mut self, metric: &MetricCheck, _: &CheckContext) -> MetricOutcome {
        MetricOutcome::Value(passing_value(metric))
    }

    fn hook(&mut self, hook: &Hook, _: &CheckContext) -> HookOutcome {
        match hook.kind {
            crate::HookKind::Rollback => HookOutcome::Rejected {
                status: 403,
                body: "closed".into(),
            },
            _ => HookOutcome::Passed,
        }
    }
}

/// Knative as the simulation sees it: revisions in creation order, the primary annotation and
/// the traffic split.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimWorld {
    /// Revisions in creation order.
    pub revisions: Vec<Revision>,
    /// The primary annotation.
    pub primary: Option<String>,
    /// Current traffic, revision → percent.
    pub traffic: Vec<(String, u8)>,
}

impl SimWorld {
    /// Creates a revision (the newest).
    pub fn create_revision(&mut self, name: &str, readiness: Readiness) {
        self.revisions.push(Revision {
            name: name.to_owned(),
            readiness,
        });
    }

    /// Changes the readiness of a revision.
    pub fn set_readiness(&mut self, name: &str, readiness: Readiness) {
        if let Some(rev) = self.revisions.iter_mut().find(|r| r.name == name) {
            rev.readiness = readiness;
        }
    }

    /// What a router would observe.
    pub fn observe(&self) -> World {
        let primary = self.primary.as_ref().map(|name| {
            self.revisions
                .iter()
                .find(|r| &r.name == name)
                .cloned()
                .unwrap_or(Revision {
                    name: name.clone(),
                    readiness: Readiness::Failed {
                        reason: "revision not found".into(),
                    },
                })
        });
        World {
            primary,
            latest_created: self.revisions.last().cloned(),
            latest_ready: self
                .revisions
                .iter()
                .rev()
                .find(|r| r.readiness == Readiness::Ready)
                .map(|r| r.name.clone()),
        }
    }

    fn apply(&mut self, action: &Action) {
        match action {
            Action::Initialize { primary } | Action::Promote { revision: primary } => {
                self.primary = Some(primary.clone());
                self.traffic = vec![(primary.clone(), 100)];
            }
            Action::SetTraffic(split) => {
                self.traffic = vec![
                    (split.primary.clone(), split.primary_weight()),
                    (split.canary.clone(), split.canary_weight),
                ];
            }
            Action::Release { pin } => {
                self.primary = None;
                let latest_ready = || {
                    self.revisions
                        .iter()
                        .rev()
                        .find(|r| r.readiness == Readiness::Ready)
                        .map(|r| r.name.clone())
                };
                self.traffic = pin
                    .clone()
                    .or_else(latest_ready)
                    .map(|r| (r, 100))
                    .into_iter()
                    .collect();
            }
            Action::CallHooks { .. } | Action::Event(_) | Action::RecordMetric { .. } => {}
        }
    }
}

/// Something that happened during a simulation.
#[derive(Debug, Clone, PartialEq)]
pub enum Happening {
    /// An event was recorded.
    Event(Event),
    /// Traffic was split.
    Traffic(TrafficSplit),
    /// A revision was promoted.
    Promoted(String),
    /// Routing was taken over.
    Initialized(String),
    /// Metrics were queried (one analysis step).
    MetricsQueried,
    /// Routing was released (`revertOnDeletion`): pinned to a revision, or handed to Knative.
    Released(Option<String>),
}

/// The engine plus a simulated world and a virtual clock.
pub struct Simulation<R> {
    /// The plan.
    pub plan: Plan,
    /// The stored status.
    pub status: RolloutStatus,
    /// The world.
    pub world: SimWorld,
    /// Virtual now.
    pub now: Time,
    /// Answers checks.
    pub responder: R,
    /// Everything that happened, with its time.
    pub log: Vec<(Time, Happening)>,
    /// When the engine asked to be called next.
    pub wake_at: Option<Time>,
    /// Number of engine calls (including re-entries for checks).
    pub engine_calls: usize,
    /// Request annotations people wrote on the Canary (`serin promote`, …).
    pub requests: Vec<crate::OperatorRequest>,
}

impl<R: Responder> Simulation<R> {
    /// A simulation starting at `start`, with nothing created yet.
    pub fn new(plan: Plan, responder: R, start: Time) -> Self {
        Simulation {
            plan,
            status: RolloutStatus::default(),
            world: SimWorld::default(),
            now: start,
            responder,
            log: Vec::new(),
            wake_at: None,
            engine_calls: 0,
            requests: Vec::new(),
        }
    }

    /// Runs the deletion of the Canary (`revertOnDeletion`) at the current time.
    pub fn delete(&mut self) -> Decision {
        let decision = crate::finalize(&self.plan, &self.status, &self.world.observe(), self.now);
        self.record(&decision);
        decision
    }

    fn record(&mut self, decision: &Decision) {
        for action in &decision.actions {
            self.world.apply(action);
            let happening = match action {
                Action::Event(e) => Happening::Event(e.clone()),
                Action::SetTraffic(split) => Happening::Traffic(split.clone()),
                Action::Promote { revision } => Happening::Promoted(revision.clone()),
                Action::Initialize { primary } => Happening::Initialized(primary.clone()),
                Action::Release { pin } => Happening::Released(pin.clone()),
                _ => continue,
            };
            self.log.push((self.now, happening));
        }
        self.status = decision.status.clone();
        self.wake_at = decision.wake_at;
    }

    /// Runs one step at the current time, as a reconcile triggered by a change would.
    pub fn step_now(&mut self) -> Decision {
        let mut obs = Observation::of(self.world.observe());
        obs.requests = self.requests.clone();
        let decision = loop {
            self.engine_calls += 1;
            match step(&self.plan, &self.status, &obs, self.now) {
                Step::Done(decision) => break decision,
                Step::Need(request) => {
                    let ctx = CheckContext {
                        now: self.now,
                        canary_weight: self.status.canary_weight,
                        canary_revision: request.canary_revision.clone(),
                        phase: request.phase,
                    };
                    if !request.metrics.is_empty() {
                        self.log.push((self.now, Happening::MetricsQueried));
                    }
                    for i in request.metrics {
                        let outcome = self.responder.metric(&self.plan.metrics[i], &ctx);
                        obs.metrics.insert(i, outcome);
                    }
                    for i in request.hooks {
                        let outcome = self.responder.hook(&self.plan.webhooks[i], &ctx);
                        obs.hooks.insert(i, outcome);
                    }
                    if let Some(counts) = request.counts {
                        obs.counts = Some(self.responder.counts(&counts, &ctx));
                    }
                }
            }
        };
        self.record(&decision);
        decision
    }

    /// Steps at every wake-up up to and including `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(wake) = self.wake_at {
            if wake > until {
                break;
            }
            self.now = self.now.max(wake);
            let _ = self.step_now();
        }
        self.now = self.now.max(until);
    }

    /// Steps until the engine has nothing scheduled or `limit` is reached; returns whether it settled.
    pub fn run_until_idle(&mut self, limit: Time) -> bool {
        self.run_until(limit);
        self.wake_at.is_none()
    }

    /// The messages of all events so far.
    pub fn event_messages(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|(_, h)| match h {
                Happening::Event(e) => Some(e.message.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The seed tutorial's Canary as a plan: interval 15s, threshold 15, steps of 10 up to 50,
/// success rate ≥ 99%, P99 ≤ 500ms, one load-test rollout hook.
pub fn example_plan() -> Plan {
    use std::time::Duration;

    use crate::{HookKind, MetricKind, Strategy, ThresholdRange};
    Plan {
        canary_name: "podinfo".into(),
        namespace: "test".into(),
        target_name: "podinfo".into(),
        target_kind: "Service".into(),
        interval: Duration::from_secs(15),
        threshold: 15,
        strategy: Strategy::Canary {
            weights: Strategy::linear(10, 50),
            promotion_step: None,
        },
        progress_deadline: Duration::from_secs(60),
        skip_analysis: false,
        suspend: false,
        metrics: vec![
            MetricCheck {
                name: "request-success-rate".into(),
                kind: MetricKind::SuccessRate,
                range: ThresholdRange {
                    min: Some(99.0),
                    max: None,
                },
                window: Duration::from_secs(60),
            },
            MetricCheck {
                name: "request-duration".into(),
                kind: MetricKind::Duration,
                range: ThresholdRange {
                    min: None,
                    max: Some(500.0),
                },
                window: Duration::from_secs(60),
            },
        ],
        webhooks: vec![Hook {
            name: "load-test".into(),
            kind: HookKind::Rollout,
        }],
        judge: Default::default(),
    }
}
