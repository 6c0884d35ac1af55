//! Property tests over random observation sequences.

use proptest::prelude::*;
use serin_core::{
    Action, HookKind, HookOutcome, MetricOutcome, Observation, Phase, Readiness, Revision, RolloutStatus, Step,
    Strategy as Rollout, Time, World, sim::example_plan, step,
};

/// What the world does at one step.
#[derive(Debug, Clone)]
struct Beat {
    advance_secs: u64,
    new_revision: bool,
    readiness: u8,
    metric: u8,
    gates_open: bool,
    rollback_hook: bool,
}

fn beat() -> impl Strategy<Value = Beat> {
    (
        0u64..40,
        prop::bool::weighted(0.08),
        0u8..10,
        0u8..10,
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.03),
    )
        .prop_map(
            |(advance_secs, new_revision, readiness, metric, gates_open, rollback_hook)| Beat {
                advance_secs,
                new_revision,
                readiness,
                metric,
                gates_open,
                rollback_hook,
            },
        )
}

fn plan_variant() -> impl Strategy<Value = serin_core::Plan> {
    (1u32..5, 1u8..60, 1u8..=100, prop::bool::ANY, 0u8..40).prop_map(|(threshold, step, max, blue_green, promo)| {
        let mut plan = example_plan();
        plan.threshold = threshold;
        plan.strategy = if blue_green {
            Rollout::BlueGreen {
                iterations: u32::from(step % 5) + 1,
            }
        } else {
            Rollout::Canary {
                weights: Rollout::linear(step, max),
                promotion_step: (promo > 20).then_some(promo),
            }
        };
        for (name, kind) in [
            ("rollout-gate", HookKind::ConfirmRollout),
            ("more", HookKind::ConfirmTrafficIncrease),
            ("promote", HookKind::ConfirmPromotion),
            ("abort", HookKind::Rollback),
        ] {
            plan.webhooks.push(serin_core::Hook {
                name: name.into(),
                kind,
            });
        }
        plan
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_worlds(plan in plan_variant(), beats in prop::collection::vec(beat(), 1..80)) {
        let mut revisions = vec![Revision::ready("r-1")];
        let mut annotation: Option<String> = None;
        let mut status = RolloutStatus::default();
        let mut now = Time::from_millis(0);
        let max_weight = plan.max_weight();
        for b in beats {
            now = now + std::time::Duration::from_secs(b.advance_secs);
            if b.new_revision {
                let name = format!("r-{}", revisions.len() + 1);
                revisions.push(Revision { name, readiness: Readiness::NotYet { reason: None } });
            }
            if let Some(last) = revisions.last_mut() {
                last.readiness = match b.readiness { 0 => Readiness::Failed { reason: "crash".into() }, 1..=2 => Readiness::NotYet { reason: None }, _ => Readiness::Ready };
                if revisions.len() == 1 { revisions[0].readiness = Readiness::Ready; }
            }
            let world = World {
                primary: annotation.as_ref().and_then(|a| revisions.iter().find(|r| &r.name == a).cloned()),
                latest_created: revisions.last().cloned(),
                latest_ready: revisions.iter().rev().find(|r| r.readiness == Readiness::Ready).map(|r| r.name.clone()),
            };
            let mut obs = Observation::of(world.clone());
            let decision = loop {
                match step(&plan, &status, &obs, now) {
                    Step::Done(d) => break d,
                    Step::Need(req) => {
                        prop_assert!(!req.hooks.is_empty() || !req.metrics.is_empty());
                        for i in req.metrics {
                            let outcome = match b.metric { 0 => MetricOutcome::NoData, 1 => MetricOutcome::Error("down".into()), 2 => MetricOutcome::Value(50.0), _ => MetricOutcome::Value(99.5) };
                            obs.metrics.insert(i, outcome);
                        }
                        for i in req.hooks {
                            let open = match plan.webhooks[i].kind { HookKind::Rollback => b.rollback_hook, HookKind::Rollout => true, _ => b.gates_open };
                            obs.hooks.insert(i, if open { HookOutcome::Passed } else { HookOutcome::Rejected { status: 403, body: String::new() } });
                        }
                    }
                }
            };
            let checks_failed = obs.metrics.values().any(|m| !matches!(m, MetricOutcome::Value(v) if *v >= 99.0 && *v <= 500.0));
            let promotion_gate_closed = plan.webhooks.iter().enumerate().any(|(i, h)| h.kind == HookKind::ConfirmPromotion && obs.hooks.get(&i).is_some_and(|o| !o.passed()));
            let mut weight_before = status.canary_weight;
            for action in &decision.actions {
                match action {
                    Action::SetTraffic(split) => {
                        prop_assert_eq!(u16::from(split.primary_weight()) + u16::from(split.canary_weight), 100);
                        match plan.strategy {
                            // Blue/green: 0%, then 100% only for the interval before promotion.
                            serin_core::Strategy::BlueGreen { iterations } => prop_assert!(
                                split.canary_weight == 0 || (split.canary_weight == 100 && decision.status.iterations > iterations),
                                "blue/green weight {} at iteration {}", split.canary_weight, decision.status.iterations
                            ),
                            _ if decision.status.phase != Phase::Promoting => {
                                prop_assert!(split.canary_weight <= max_weight, "weight {} above max {}", split.canary_weight, max_weight);
                            }
                            _ => {}
                        }
                        if split.canary_weight > weight_before && status.analysis_started_at.is_some() {
                            prop_assert!(!checks_failed, "advanced on a failed check");
                        }
                        prop_assert_ne!(&split.primary, &split.canary);
                        weight_before = split.canary_weight;
                    }
                    Action::Promote { revision } => {
                        prop_assert!(!promotion_gate_closed, "promoted through a closed gate");
                        if !plan.skip_analysis && status.phase != Phase::Promoting {
                            prop_assert!(!checks_failed, "promoted with a failed check");
                        }
                        if let Some(analysed) = &decision.status.canary_revision {
                            prop_assert_eq!(revision, analysed, "promoted a revision that was not analysed");
                        }
                        annotation = Some(revision.clone());
                    }
                    Action::Initialize { primary } => annotation = Some(primary.clone()),
                    _ => {}
                }
            }
            if matches!(status.phase, Phase::Succeeded | Phase::Failed) {
                let latest = world.latest_created.as_ref().map(|r| r.name.clone());
                let is_new = latest != status.primary_revision && latest != status.canary_revision;
                if !is_new {
                    prop_assert_eq!(decision.status.phase, status.phase, "terminal phase left without a new revision");
                }
            }
            status = decision.status;
        }
    }
}
