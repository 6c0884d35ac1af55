//! The one helper every rollout test goes through: a seed-like world driven in virtual time,
//! rendered as a transcript of events and traffic changes with their offsets from detection.

use std::time::Duration;

use serin_core::{
    Hook, HookKind, HookOutcome, MetricCheck, MetricOutcome, Plan, Readiness, Time,
    sim::{CheckContext, Happening, Responder, Simulation, passing_value},
};

/// Detection time of the new revision in every scenario.
pub const T0: Time = Time::from_millis(1_000_000);

pub fn at(secs: u64) -> Time {
    T0 + Duration::from_secs(secs)
}

/// A value inside the metric's bounds.
pub fn passing(metric: &MetricCheck) -> f64 {
    passing_value(metric)
}

/// Answers a metric query.
pub type MetricFn = Box<dyn FnMut(&MetricCheck, &CheckContext) -> MetricOutcome>;
/// Answers a webhook call.
pub type HookFn = Box<dyn FnMut(&Hook, &CheckContext) -> HookOutcome>;

/// A responder driven by closures over the check context.
pub struct Scripted {
    pub metric: MetricFn,
    pub hook: HookFn,
}

impl Scripted {
    pub fn all_pass() -> Self {
        Scripted {
            metric: Box::new(|m, _| MetricOutcome::Value(passing_value(m))),
            hook: Box::new(|h, _| match h.kind {
                HookKind::Rollback => HookOutcome::Rejected {
                    status: 403,
                    body: "Forbidden".into(),
                },
                _ => HookOutcome::Passed,
            }),
        }
    }

    pub fn metric(mut self, f: impl FnMut(&MetricCheck, &CheckContext) -> MetricOutcome + 'static) -> Self {
        self.metric = Box::new(f);
        self
    }

    pub fn hook(mut self, f: impl FnMut(&Hook, &CheckContext) -> HookOutcome + 'static) -> Self {
        self.hook = Box::new(f);
        self
    }
}

impl Responder for Scripted {
    fn metric(&mut self, metric: &MetricCheck, ctx: &CheckContext) -> MetricOutcome {
        (self.metric)(metric, ctx)
    }

    fn hook(&mut self, hook: &Hook, ctx: &CheckContext) -> HookOutcome {
        (self.hook)(hook, ctx)
    }
}

/// A simulation where `podinfo-00001` is primary (initialized 100 s before T0) and
/// `podinfo-00002` (with `readiness`) was just created and detected at T0.
pub fn started(plan: Plan, responder: Scripted, readiness: Readiness) -> Simulation<Scripted> {
    let mut sim = Simulation::new(plan, responder, Time::from_millis(T0.as_millis() - 100_000));
    sim.world.create_revision("podinfo-00001", Readiness::Ready);
    let _ = sim.step_now();
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00001"));
    sim.log.clear();
    sim.now = T0;
    sim.world.create_revision("podinfo-00002", readiness);
    let _ = sim.step_now();
    sim
}

/// The transcript: one line per event or traffic change, `+SECONDS what`.
pub fn transcript(sim: &Simulation<Scripted>) -> String {
    let mut out = String::new();
    for (time, happening) in &sim.log {
        let offset = time.as_millis().saturating_sub(T0.as_millis()) / 1000;
        let line = match happening {
            Happening::Event(e) => format!("{} {}", e.severity.as_str(), e.message),
            Happening::Traffic(t) => {
                format!(
                    "traffic {} {}% / {} {}%",
                    t.primary,
                    t.primary_weight(),
                    t.canary,
                    t.canary_weight
                )
            }
            Happening::Promoted(r) => format!("promote {r}"),
            Happening::Initialized(r) => format!("initialize {r}"),
            Happening::MetricsQueried => "metrics".into(),
            Happening::Released(Some(pin)) => format!("release: {pin} pinned at 100%"),
            Happening::Released(None) => "release: latestRevision 100%".into(),
        };
        out.push_str(&format!("+{offset} {line}\n"));
    }
    out
}

/// Compares transcripts line by line, printing both on mismatch.
#[track_caller]
pub fn assert_transcript(sim: &Simulation<Scripted>, expected: &str) {
    let actual = transcript(sim);
    let expected: String = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        actual == expected,
        "transcript mismatch\n--- expected\n{expected}--- actual\n{actual}"
    );
}
