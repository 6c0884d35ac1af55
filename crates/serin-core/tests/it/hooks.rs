//! Webhooks in Flagger's order: hooks of one type one at a time in spec order, stopping at the
//! first failure; metrics only after the rollout hooks returned; rollback hooks polled at every
//! analysis step; confirm-traffic-increase asked on the promotion step; the phase Flagger sends.

use std::{cell::RefCell, rc::Rc};

use serin_core::{
    Hook, HookKind, HookOutcome, Observation, Phase, Readiness, Revision, RolloutStatus, Step, World,
    sim::example_plan, step,
};

use crate::support::{Scripted, at, started, transcript};

fn hook(name: &str, kind: HookKind) -> Hook {
    Hook {
        name: name.into(),
        kind,
    }
}

fn refused() -> HookOutcome {
    HookOutcome::Rejected {
        status: 403,
        body: "Forbidden".into(),
    }
}

/// Every hook call, in order: (hook name, weight before the step, phase sent).
type Calls = Rc<RefCell<Vec<(String, u8, Phase)>>>;

fn recording(answer: impl Fn(&Hook, u8) -> HookOutcome + 'static) -> (Scripted, Calls) {
    let calls: Calls = Rc::default();
    let seen = calls.clone();
    let responder = Scripted::all_pass().hook(move |h, ctx| {
        seen.borrow_mut().push((h.name.clone(), ctx.canary_weight, ctx.phase));
        answer(h, ctx.canary_weight)
    });
    (responder, calls)
}

#[test]
fn the_first_request_of_an_analysis_step_is_the_first_rollout_hook_alone() {
    let mut plan = example_plan();
    plan.webhooks.push(hook("acceptance", HookKind::Rollout));
    let status = RolloutStatus {
        phase: Phase::Progressing,
        canary_weight: 10,
        primary_revision: Some("podinfo-00001".into()),
        canary_revision: Some("podinfo-00002".into()),
        analysis_started_at: Some(at(0)),
        next_step_at: Some(at(15)),
        ..RolloutStatus::default()
    };
    let world = World {
        primary: Some(Revision::ready("podinfo-00001")),
        latest_created: Some(Revision::ready("podinfo-00002")),
        latest_ready: Some("podinfo-00002".into()),
    };
    let mut obs = Observation::of(world);
    let Step::Need(first) = step(&plan, &status, &obs, at(15)) else {
        panic!("the step needs its hooks first");
    };
    assert_eq!((first.hooks.as_slice(), first.metrics.as_slice()), (&[0][..], &[][..]));
    obs.hooks.insert(0, HookOutcome::Passed);
    let Step::Need(second) = step(&plan, &status, &obs, at(15)) else {
        panic!("then the second hook");
    };
    assert_eq!(
        (second.hooks.as_slice(), second.metrics.as_slice()),
        (&[1][..], &[][..])
    );
    obs.hooks.insert(1, HookOutcome::Passed);
    let Step::Need(third) = step(&plan, &status, &obs, at(15)) else {
        panic!("then the metrics");
    };
    assert_eq!(
        (third.hooks.as_slice(), third.metrics.as_slice()),
        (&[][..], &[0, 1][..])
    );
}

#[test]
fn a_failing_rollout_hook_stops_the_hooks_after_it_and_the_metrics() {
    let mut plan = example_plan();
    plan.webhooks.push(hook("acceptance", HookKind::Rollout));
    let (responder, calls) = recording(|h, weight| match h.name.as_str() {
        "load-test" if weight == 10 => refused(),
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    calls.borrow_mut().clear();
    sim.log.clear();
    sim.run_until(at(15));
    let names: Vec<String> = calls.borrow().iter().map(|c| c.0.clone()).collect();
    assert_eq!(names, ["load-test"], "acceptance is not called after load-test failed");
    assert!(!transcript(&sim).contains("metrics"), "{}", transcript(&sim));
    assert_eq!(sim.status.failed_checks, 1);
}

#[test]
fn a_refusing_gate_stops_the_gates_after_it() {
    let mut plan = example_plan();
    plan.webhooks.push(hook("first", HookKind::ConfirmPromotion));
    plan.webhooks.push(hook("second", HookKind::ConfirmPromotion));
    let (responder, calls) = recording(|h, _| match h.name.as_str() {
        "first" => refused(),
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    sim.run_until(at(120));
    assert_eq!(sim.status.phase, Phase::WaitingPromotion);
    assert!(calls.borrow().iter().any(|c| c.0 == "first"));
    assert!(!calls.borrow().iter().any(|c| c.0 == "second"));
}

#[test]
fn confirm_traffic_increase_is_asked_on_the_promotion_step_too() {
    let mut plan = example_plan();
    plan.webhooks.push(hook("more", HookKind::ConfirmTrafficIncrease));
    // Refuses only once the canary is at maxWeight: promotion is held, as under Flagger.
    let (responder, _calls) = recording(|h, weight| match (h.kind, weight) {
        (HookKind::ConfirmTrafficIncrease, 50) => refused(),
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    sim.run_until(at(300));
    assert_eq!(sim.status.phase, Phase::Progressing);
    assert_eq!(sim.status.canary_weight, 50);
    assert!(
        transcript(&sim).contains("Warning Halt podinfo.test advancement waiting for traffic increase approval more"),
        "{}",
        transcript(&sim)
    );
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00001"));
}

#[test]
fn rollback_hooks_are_polled_from_the_first_step_with_flaggers_event() {
    let mut plan = example_plan();
    plan.webhooks.push(hook("abort", HookKind::Rollback));
    let (responder, calls) = recording(|h, _| match h.kind {
        HookKind::Rollback => refused(),
        _ => HookOutcome::Passed,
    });
    let sim = started(plan, responder, Readiness::Ready);
    assert_eq!(
        calls.borrow()[0].0,
        "abort",
        "polled at the first step, before anything else"
    );
    let text = transcript(&sim);
    assert!(text.starts_with("+0 Normal New revision detected!"), "{text}");
    assert!(
        text.contains("+0 Normal Rollback hook abort not signaling a rollback"),
        "{text}"
    );
}

#[test]
fn analysis_hooks_are_sent_phase_progressing_even_while_waiting_for_promotion() {
    let mut plan = example_plan();
    plan.webhooks.push(hook("approve", HookKind::ConfirmPromotion));
    plan.webhooks.push(hook("abort", HookKind::Rollback));
    let (responder, calls) = recording(|h, _| match h.kind {
        HookKind::ConfirmPromotion | HookKind::Rollback => refused(),
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    sim.run_until(at(150));
    assert_eq!(sim.status.phase, Phase::WaitingPromotion);
    let calls = calls.borrow();
    let phases = |name: &str| -> Vec<Phase> { calls.iter().filter(|c| c.0 == name).map(|c| c.2).collect() };
    assert!(
        phases("load-test").iter().all(|p| *p == Phase::Progressing),
        "{calls:?}"
    );
    assert!(phases("approve").iter().all(|p| *p == Phase::Progressing), "{calls:?}");
    assert!(
        phases("abort").contains(&Phase::WaitingPromotion),
        "rollback hooks get the current phase: {calls:?}"
    );
}
