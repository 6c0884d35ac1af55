//! Requests people make (`serin promote`, `abort`, `retry`, `approve`): each moves a seed
//! rollout as documented, once per token, within the traffic invariants.

use std::time::Duration;

use serin_core::{
    HookKind, HookOutcome, MetricKind, MetricOutcome, OperatorRequest, Phase, Readiness, RequestAction, Strategy,
    sim::example_plan,
};

use crate::support::{Scripted, at, passing, started, transcript};

fn request(key: &str, token: &str, action: RequestAction) -> OperatorRequest {
    OperatorRequest {
        key: key.into(),
        token: token.into(),
        action,
    }
}

fn failing_success_rate() -> Scripted {
    Scripted::all_pass().metric(|m, _| match m.kind {
        MetricKind::SuccessRate => MetricOutcome::Value(90.0),
        _ => MetricOutcome::Value(passing(m)),
    })
}

#[test]
fn promote_passes_the_step_even_while_a_check_fails_one_weight_at_a_time_and_once_per_token() {
    let mut sim = started(example_plan(), failing_success_rate(), Readiness::Ready);
    sim.run_until(at(20));
    assert_eq!(sim.status.canary_weight, 10);
    assert_eq!(sim.status.failed_checks, 1);
    sim.requests = vec![request(
        "serin.dev/promote",
        "t1 by alice",
        RequestAction::Promote { full: false },
    )];
    let _ = sim.step_now();
    assert_eq!(sim.status.canary_weight, 20, "{}", transcript(&sim));
    assert_eq!(sim.status.failed_checks, 1, "no analysis, no failure counted");
    assert!(
        transcript(&sim).contains("Normal The next step of podinfo.test requested by alice"),
        "{}",
        transcript(&sim)
    );
    // The same token again: nothing.
    let _ = sim.step_now();
    assert_eq!(sim.status.canary_weight, 20);
    // A new token: the next weight, never past maxWeight before promotion.
    for (i, expected) in [(2, 30), (3, 40), (4, 50)] {
        sim.requests = vec![request(
            "serin.dev/promote",
            &format!("t{i} by alice"),
            RequestAction::Promote { full: false },
        )];
        let _ = sim.step_now();
        assert_eq!(sim.status.canary_weight, expected);
    }
    sim.requests = vec![request(
        "serin.dev/promote",
        "t5 by alice",
        RequestAction::Promote { full: false },
    )];
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Succeeded, "{}", transcript(&sim));
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00002"));
}

#[test]
fn promote_full_goes_straight_to_promotion_through_the_promotion_gate() {
    let mut plan = example_plan();
    plan.webhooks.push(serin_core::Hook {
        name: "gate".into(),
        kind: HookKind::ConfirmPromotion,
    });
    let responder = Scripted::all_pass().hook(|h, _| match h.kind {
        HookKind::ConfirmPromotion => HookOutcome::Rejected {
            status: 403,
            body: "closed".into(),
        },
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    sim.run_until(at(20));
    sim.requests = vec![request(
        "serin.dev/promote-full",
        "t1 by bob",
        RequestAction::Promote { full: true },
    )];
    let _ = sim.step_now();
    assert_eq!(
        sim.status.phase,
        Phase::WaitingPromotion,
        "the closed gate holds it: {}",
        transcript(&sim)
    );
    // Opening the gate by hand promotes at the next step.
    sim.requests.push(request(
        "serin.dev/approve-confirm-promotion",
        "t2 by bob",
        RequestAction::Approve {
            gate: HookKind::ConfirmPromotion,
        },
    ));
    sim.run_until(at(200));
    assert_eq!(sim.status.phase, Phase::Succeeded, "{}", transcript(&sim));
    assert!(transcript(&sim).contains("Gate confirm-promotion of podinfo.test approved by bob"));
}

#[test]
fn abort_rolls_back_at_once_also_during_the_promotion_ramp() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    sim.run_until(at(35));
    sim.requests = vec![request(
        "serin.dev/abort",
        "t1 by carol: errors in logs",
        RequestAction::Abort,
    )];
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Failed, "{}", transcript(&sim));
    assert_eq!(
        sim.world.traffic,
        vec![("podinfo-00001".to_owned(), 100), ("podinfo-00002".to_owned(), 0)]
    );
    assert!(transcript(&sim).contains("Warning Abort of podinfo.test requested by carol: errors in logs"));

    let mut plan = example_plan();
    plan.strategy = Strategy::Canary {
        weights: Strategy::linear(10, 50),
        promotion_step: Some(20),
    };
    let mut sim = started(plan, Scripted::all_pass(), Readiness::Ready);
    while sim.status.phase != Phase::Promoting {
        let wake = sim.wake_at.expect("scheduled");
        sim.run_until(wake);
    }
    assert!(sim.status.canary_weight > 50);
    sim.requests = vec![request("serin.dev/abort", "t1 by carol", RequestAction::Abort)];
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Failed);
    assert_eq!(
        sim.world.traffic,
        vec![("podinfo-00001".to_owned(), 100), ("podinfo-00002".to_owned(), 0)]
    );
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00001"));
}

#[test]
fn retry_analyses_the_rolled_back_revision_again_and_old_tokens_never_fire_again() {
    let mut failing = true;
    let responder = Scripted::all_pass().metric(move |m, ctx| {
        if ctx.now >= at(600) {
            failing = false;
        }
        match m.kind {
            MetricKind::SuccessRate if failing => MetricOutcome::Value(90.0),
            _ => MetricOutcome::Value(passing(m)),
        }
    });
    let mut sim = started(example_plan(), responder, Readiness::Ready);
    sim.run_until(at(500));
    assert_eq!(sim.status.phase, Phase::Failed);
    sim.now = at(600);
    sim.requests = vec![request("serin.dev/retry", "t1 by dan", RequestAction::Retry)];
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Progressing, "{}", transcript(&sim));
    assert_eq!(sim.status.canary_revision.as_deref(), Some("podinfo-00002"));
    assert_eq!(sim.status.failed_checks, 0);
    sim.run_until(at(800));
    assert_eq!(sim.status.phase, Phase::Succeeded, "{}", transcript(&sim));
    // A later rollout: the retry token stays handled.
    sim.world.create_revision("podinfo-00003", Readiness::Ready);
    let _ = sim.step_now();
    sim.run_until(at(1000));
    assert_eq!(sim.status.phase, Phase::Succeeded);
    assert_eq!(
        transcript(&sim)
            .matches("Retry of podinfo.test requested by dan")
            .count(),
        1
    );
    let _ = Duration::ZERO;
}

#[test]
fn a_request_that_does_not_apply_is_recorded_and_explained() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    sim.run_until(at(200));
    assert_eq!(sim.status.phase, Phase::Succeeded);
    sim.requests = vec![request("serin.dev/abort", "t1 by erin", RequestAction::Abort)];
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Succeeded);
    assert!(
        transcript(&sim).contains("Nothing to abort for podinfo.test (requested by erin): phase is Succeeded"),
        "{}",
        transcript(&sim)
    );
    assert_eq!(
        sim.status.handled_requests.get("serin.dev/abort").map(String::as_str),
        Some("t1 by erin")
    );
}
