//! The rollout schedule of a plan, computed by running the engine in a simulated world
//! (not by a separate formula), and the estimated promotion time of a rollout in flight.

use std::time::Duration;

use serde::Serialize;

use crate::{
    Hook, HookKind, HookOutcome, MetricCheck, MetricOutcome, Phase, Plan, Readiness, RolloutStatus, Time,
    sim::{AllPass, CheckContext, Happening, Responder, Simulation},
};

const PRIMARY: &str = "primary-00001";
const CANARY: &str = "canary-00002";
/// Simulations stop after this much virtual time.
const HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);

/// One traffic step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledStep {
    /// Seconds after detection.
    pub at_seconds: u64,
    /// Canary weight from then on.
    pub canary_weight: u8,
}

/// A webhook call in the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledHook {
    /// Seconds after detection.
    pub at_seconds: u64,
    /// Hook name.
    pub name: String,
    /// Hook type.
    pub kind: &'static str,
}

/// What a rollout of this plan looks like when everything passes, and how fast it can fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Traffic steps before promotion.
    pub steps: Vec<ScheduledStep>,
    /// Seconds from detection to promotion.
    pub promotion_at_seconds: Option<u64>,
    /// Analysis steps with metric queries.
    pub metric_checks: usize,
    /// Seconds from detection to rollback when every check fails; `None` when nothing can fail.
    pub fastest_rollback_seconds: Option<u64>,
    /// Webhook calls (not part of the JSON output).
    #[serde(skip)]
    pub hooks: Vec<ScheduledHook>,
}

/// Records hook calls while answering like [`AllPass`], or failing every check.
struct Recorder {
    fail: bool,
    hooks: Vec<(Time, String, HookKind)>,
}

impl Responder for Recorder {
    fn metric(&mut self, metric: &MetricCheck, ctx: &CheckContext) -> MetricOutcome {
        if self.fail {
            MetricOutcome::NoData
        } else {
            AllPass.metric(metric, ctx)
        }
    }

    fn hook(&mut self, hook: &Hook, ctx: &CheckContext) -> HookOutcome {
        self.hooks.push((ctx.now, hook.name.clone(), hook.kind));
        let failing = matches!(hook.kind, HookKind::PreRollout | HookKind::Rollout);
        if self.fail && failing {
            HookOutcome::Rejected {
                status: 500,
                body: "simulated failure".into(),
            }
        } else {
            AllPass.hook(hook, ctx)
        }
    }
}

fn run(plan: &Plan, fail: bool) -> Simulation<Recorder> {
    let start = Time::from_millis(0);
    let mut sim = Simulation::new(
        plan.clone(),
        Recorder {
            fail,
            hooks: Vec::new(),
        },
        start,
    );
    sim.plan.suspend = false;
    sim.world.create_revision(PRIMARY, Readiness::Ready);
    let _ = sim.step_now();
    sim.log.clear();
    sim.responder.hooks.clear();
    sim.world.create_revision(CANARY, Readiness::Ready);
    let _ = sim.step_now();
    sim.run_until_idle(start + HORIZON);
    sim
}

fn secs(t: Time) -> u64 {
    u64::try_from(t.as_millis() / 1000).unwrap_or(0)
}

impl Schedule {
    /// The schedule of `plan`, detection at 0 s.
    pub fn for_plan(plan: &Plan) -> Schedule {
        let ok = run(plan, false);
        let mut steps = Vec::new();
        let mut promotion_at_seconds = None;
        let mut metric_checks = 0;
        for (t, happening) in &ok.log {
            match happening {
                Happening::Traffic(split) if promotion_at_seconds.is_none() => {
                    steps.push(ScheduledStep {
                        at_seconds: secs(*t),
                        canary_weight: split.canary_weight,
                    });
                }
                Happening::Promoted(_) => promotion_at_seconds = Some(secs(*t)),
                Happening::MetricsQueried => metric_checks += 1,
                _ => {}
            }
        }
        let hooks = ok
            .responder
            .hooks
            .iter()
            .map(|(t, name, kind)| ScheduledHook {
                at_seconds: secs(*t),
                name: name.clone(),
                kind: kind.as_str(),
            })
            .collect();
        let failing = run(plan, true);
        let fastest_rollback_seconds = (failing.status.phase == Phase::Failed)
            .then(|| failing.log.last().map(|(t, _)| secs(*t)))
            .flatten();
        Schedule {
            steps,
            promotion_at_seconds,
            metric_checks,
            fastest_rollback_seconds,
            hooks,
        }
    }
}

/// What is left of a rollout in flight if every remaining check passes and every gate opens:
/// the traffic steps still to come and the promotion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    /// Each remaining change of the canary's weight (time, weight), in order.
    pub steps: Vec<(Time, u8)>,
    /// When the canary would be promoted; `None` when it never would be in the horizon.
    pub promotion: Option<Time>,
}

/// The rollout in `status` simulated on from `now` with `responder` answering its checks;
/// `None` when no rollout is in flight, or under the sequential judge (there the time to
/// promotion depends on the traffic, and the judge's own estimate is in its summary and
/// events).
fn continue_rollout<R: Responder>(
    plan: &Plan,
    status: &RolloutStatus,
    now: Time,
    responder: R,
) -> Option<Simulation<R>> {
    if !status.phase.is_active() || plan.judge.mode == crate::JudgeMode::Sequential {
        return None;
    }
    let primary = status.primary_revision.clone()?;
    let canary = status.canary_revision.clone()?;
    let mut sim = Simulation::new(plan.clone(), responder, now);
    sim.plan.suspend = false;
    sim.status = status.clone();
    sim.world.create_revision(&primary, Readiness::Ready);
    sim.world.create_revision(&canary, Readiness::Ready);
    sim.world.primary = Some(primary);
    sim.wake_at = Some(status.next_step_at.unwrap_or(now).max(now));
    sim.run_until_idle(now + HORIZON);
    Some(sim)
}

/// The rest of the rollout in `status` if every remaining check passes and every gate opens,
/// simulated from `now`; `None` as for [`estimated_promotion`].
pub fn projection(plan: &Plan, status: &RolloutStatus, now: Time) -> Option<Projection> {
    let sim = continue_rollout(plan, status, now, AllPass)?;
    let mut projection = Projection::default();
    for (t, happening) in &sim.log {
        match happening {
            Happening::Promoted(_) => {
                projection.promotion = Some(*t);
                break;
            }
            Happening::Traffic(split) => projection.steps.push((*t, split.canary_weight)),
            _ => {}
        }
    }
    Some(projection)
}

/// When the rollout in `status` would be rolled back if every check from `now` on failed (the
/// failed-checks threshold reached, or a rollout hook refusing); `None` when no rollout is in
/// flight or nothing can fail it.
pub fn rollback_if_failing(plan: &Plan, status: &RolloutStatus, now: Time) -> Option<Time> {
    let recorder = Recorder {
        fail: true,
        hooks: Vec::new(),
    };
    let sim = continue_rollout(plan, status, now, recorder)?;
    if sim.status.phase != Phase::Failed {
        return None;
    }
    sim.log
        .iter()
        .find_map(|(t, h)| matches!(h, Happening::Traffic(split) if split.canary_weight == 0).then_some(*t))
        .or_else(|| sim.log.last().map(|(t, _)| *t))
}

/// When the rollout in `status` would be promoted if every remaining check passed and every
/// gate were open; `None` when no rollout is in flight.
pub fn estimated_promotion(plan: &Plan, status: &RolloutStatus, now: Time) -> Option<Time> {
    projection(plan, status, now)?.promotion
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::example_plan;

    #[test]
    fn seed_schedule_is_10_to_50_then_promotion_at_75() {
        let s = Schedule::for_plan(&example_plan());
        let steps: Vec<(u64, u8)> = s.steps.iter().map(|s| (s.at_seconds, s.canary_weight)).collect();
        assert_eq!(steps, [(0, 10), (15, 20), (30, 30), (45, 40), (60, 50)]);
        assert_eq!(s.promotion_at_seconds, Some(75));
        assert_eq!(s.metric_checks, 5);
        // Every check fails from the first step: rollout hook fails at 0 s (1st failed check),
        // then every 15 s until the 15th.
        assert_eq!(s.fastest_rollback_seconds, Some(210));
        assert_eq!(
            s.hooks.first().map(|h| (h.at_seconds, h.name.as_str())),
            Some((0, "load-test"))
        );
    }

    #[test]
    fn estimate_counts_the_remaining_steps_from_the_current_weight() {
        let plan = example_plan();
        let status = RolloutStatus {
            phase: Phase::Progressing,
            canary_weight: 30,
            primary_revision: Some("a".into()),
            canary_revision: Some("b".into()),
            analysis_started_at: Some(Time::from_millis(0)),
            next_step_at: Some(Time::from_millis(45_000)),
            ..RolloutStatus::default()
        };
        assert_eq!(
            estimated_promotion(&plan, &status, Time::from_millis(40_000)),
            Some(Time::from_millis(75_000))
        );
        assert_eq!(
            estimated_promotion(&plan, &RolloutStatus::default(), Time::from_millis(0)),
            None
        );
        let rest = projection(&plan, &status, Time::from_millis(40_000)).expect("in flight");
        let weights: Vec<(i64, u8)> = rest.steps.iter().map(|(t, w)| (t.as_millis() / 1000, *w)).collect();
        assert_eq!(weights, [(45, 40), (60, 50)], "the steps after 30%, one interval apart");
        assert_eq!(rest.promotion, Some(Time::from_millis(75_000)));
        // Every check failing from here: with 13 of 15 failed, two more fail, at 45 s and 60 s.
        let failing = RolloutStatus {
            failed_checks: 13,
            ..status.clone()
        };
        assert_eq!(
            rollback_if_failing(&plan, &failing, Time::from_millis(40_000)),
            Some(Time::from_millis(60_000)),
            "two more failed checks, at 45 s and 60 s"
        );
        assert_eq!(
            rollback_if_failing(&plan, &RolloutStatus::default(), Time::from_millis(0)),
            None
        );
    }
}
