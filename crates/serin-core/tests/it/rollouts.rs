//! Whole rollouts of the seed's Canary (and variants), with their full event sequences.

use std::{cell::Cell, rc::Rc, time::Duration};

use serin_core::{
    Hook, HookKind, HookOutcome, MetricKind, MetricOutcome, Phase, Readiness, Strategy, sim::example_plan,
};

use crate::support::{Scripted, assert_transcript, at, started};

#[test]
fn seed_promotes_at_75s_with_weights_10_to_50() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    assert_transcript(
        &sim,
        "
        +0 Normal New revision detected! Starting canary analysis of podinfo-00002 for podinfo.test
        +0 Normal Starting canary analysis for podinfo.test
        +0 traffic podinfo-00001 90% / podinfo-00002 10%
        +0 Normal Advance podinfo.test canary weight 10
        +15 metrics
        +15 traffic podinfo-00001 80% / podinfo-00002 20%
        +15 Normal Advance podinfo.test canary weight 20
        +30 metrics
        +30 traffic podinfo-00001 70% / podinfo-00002 30%
        +30 Normal Advance podinfo.test canary weight 30
        +45 metrics
        +45 traffic podinfo-00001 60% / podinfo-00002 40%
        +45 Normal Advance podinfo.test canary weight 40
        +60 metrics
        +60 traffic podinfo-00001 50% / podinfo-00002 50%
        +60 Normal Advance podinfo.test canary weight 50
        +75 metrics
        +75 promote podinfo-00002
        +75 Normal Promoting revision podinfo-00002 to primary of podinfo.test
        +75 Normal Routing all traffic to primary
        +75 Normal Promotion completed! Scaling down podinfo.test
        ",
    );
    assert_eq!(sim.status.phase, Phase::Succeeded);
    assert_eq!(sim.world.traffic, vec![("podinfo-00002".to_owned(), 100)]);
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00002"));
}

#[test]
fn load_test_hook_is_called_at_detection_so_load_flows_before_the_first_check() {
    let calls = Rc::new(Cell::new(Vec::<(u8, Phase)>::new()));
    let seen = calls.clone();
    let responder = Scripted::all_pass().hook(move |_, ctx| {
        let mut v = seen.take();
        v.push((ctx.canary_weight, ctx.phase));
        seen.set(v);
        HookOutcome::Passed
    });
    let mut sim = started(example_plan(), responder, Readiness::Ready);
    let first = calls.take();
    assert_eq!(
        first,
        vec![(0, Phase::Progressing)],
        "load test must start with the first step"
    );
    sim.run_until(crate::support::at(15));
    assert_eq!(calls.take().len(), 1, "and again at the first metric check");
}

#[test]
fn seed_rolls_back_on_errors_at_the_threshold_th_failure() {
    let responder = Scripted::all_pass().metric(|m, _| match m.kind {
        MetricKind::SuccessRate => MetricOutcome::Value(61.39),
        _ => MetricOutcome::Value(20.0),
    });
    let mut sim = started(example_plan(), responder, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    let events = sim.event_messages();
    let halts = events
        .iter()
        .filter(|m| *m == "Halt podinfo.test advancement success rate 61.39% < 99%")
        .count();
    assert_eq!(halts, 15);
    assert_eq!(
        &events[events.len() - 2..],
        [
            "Rolling back podinfo.test failed checks threshold reached 15",
            "Canary failed! Scaling down podinfo.test"
        ]
    );
    // The 15th failed check is at 15 × 15 s, and the rollback happens on that tick.
    let (rollback_time, _) = sim.log.last().expect("log");
    assert_eq!(*rollback_time, at(225));
    assert_eq!(sim.status.phase, Phase::Failed);
    assert_eq!(sim.status.failed_checks, 15);
    assert_eq!(
        sim.world.traffic,
        vec![("podinfo-00001".to_owned(), 100), ("podinfo-00002".to_owned(), 0)]
    );
}

#[test]
fn rollback_on_latency_with_go_duration_messages() {
    let mut plan = example_plan();
    plan.threshold = 2;
    let responder = Scripted::all_pass().metric(|m, _| match m.kind {
        MetricKind::Duration => MetricOutcome::Value(1002.7),
        _ => MetricOutcome::Value(100.0),
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    assert_transcript(
        &sim,
        "
        +0 Normal New revision detected! Starting canary analysis of podinfo-00002 for podinfo.test
        +0 Normal Starting canary analysis for podinfo.test
        +0 traffic podinfo-00001 90% / podinfo-00002 10%
        +0 Normal Advance podinfo.test canary weight 10
        +15 metrics
        +15 Warning Halt podinfo.test advancement request duration 1.002s > 500ms
        +30 metrics
        +30 Warning Halt podinfo.test advancement request duration 1.002s > 500ms
        +30 Warning Rolling back podinfo.test failed checks threshold reached 2
        +30 traffic podinfo-00001 100% / podinfo-00002 0%
        +30 Warning Canary failed! Scaling down podinfo.test
        ",
    );
}

#[test]
fn no_data_is_a_failed_check_with_its_own_reason() {
    let mut plan = example_plan();
    plan.threshold = 1;
    let responder = Scripted::all_pass().metric(|_, _| MetricOutcome::NoData);
    let mut sim = started(plan, responder, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    let events = sim.event_messages();
    assert!(events.contains(&"Halt advancement no values found for request-success-rate: revision podinfo-00002 of podinfo.test received no traffic in the last 1m0s (query returned no data)".to_owned()), "{events:#?}");
    assert_eq!(sim.status.phase, Phase::Failed);
}

#[test]
fn newer_revision_restarts_analysis_and_the_older_is_never_promoted() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    sim.run_until(at(20));
    sim.world.create_revision("podinfo-00003", Readiness::Ready);
    let _ = sim.step_now(); // the watch sees the new revision at once
    assert!(sim.run_until_idle(at(3600)));
    let text = crate::support::transcript(&sim);
    assert!(text.contains("+20 Normal New revision detected! Restarting analysis for podinfo.test\n+20 Normal Starting canary analysis for podinfo.test\n+20 traffic podinfo-00001 90% / podinfo-00003 10%"), "{text}");
    assert!(!text.contains("promote podinfo-00002"), "{text}");
    assert!(text.contains("+95 promote podinfo-00003"), "{text}");
}

#[test]
fn revision_never_ready_is_rolled_back_at_the_progress_deadline() {
    let not_yet = Readiness::NotYet {
        reason: Some("ContainerCreating".into()),
    };
    let mut sim = started(example_plan(), Scripted::all_pass(), not_yet);
    assert!(sim.run_until_idle(at(3600)));
    assert_transcript(
        &sim,
        "
        +0 Normal New revision detected! Starting canary analysis of podinfo-00002 for podinfo.test
        +0 Warning Knative Revision podinfo-00002.test is not ready: ContainerCreating
        +60 Warning Rolling back podinfo.test progress deadline exceeded: revision podinfo-00002 not Ready after 1m0s: ContainerCreating
        +60 traffic podinfo-00001 100% / podinfo-00002 0%
        +60 Warning Canary failed! Scaling down podinfo.test
        ",
    );
}

#[test]
fn failed_revision_is_rolled_back_at_once() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    sim.run_until(at(20));
    sim.world.set_readiness(
        "podinfo-00002",
        Readiness::Failed {
            reason: "ImagePullBackOff".into(),
        },
    );
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Failed);
    assert!(
        sim.event_messages()
            .contains(&"Rolling back podinfo.test revision podinfo-00002 failed: ImagePullBackOff".to_owned())
    );
    assert_eq!(sim.world.traffic[0], ("podinfo-00001".to_owned(), 100));
}

#[test]
fn late_readiness_starts_the_first_step_when_the_revision_becomes_ready() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::NotYet { reason: None });
    sim.now = at(7);
    sim.world.set_readiness("podinfo-00002", Readiness::Ready);
    let _ = sim.step_now();
    assert_eq!(sim.status.canary_weight, 10);
    assert!(sim.run_until_idle(at(3600)));
    assert!(crate::support::transcript(&sim).contains("+82 promote podinfo-00002"));
}

fn gate(name: &str, kind: HookKind) -> Hook {
    Hook {
        name: name.into(),
        kind,
    }
}

#[test]
fn confirm_promotion_gate_holds_then_promotes_when_opened() {
    let mut plan = example_plan();
    plan.webhooks.push(gate("approve", HookKind::ConfirmPromotion));
    let open = Rc::new(Cell::new(false));
    let gate_state = open.clone();
    let responder = Scripted::all_pass().hook(move |h, _| match h.kind {
        HookKind::ConfirmPromotion if !gate_state.get() => HookOutcome::Rejected {
            status: 403,
            body: "Forbidden".into(),
        },
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    sim.run_until(at(120));
    assert_eq!(sim.status.phase, Phase::WaitingPromotion);
    assert_eq!(
        sim.status.canary_weight, 50,
        "status shows the real weight while waiting"
    );
    let waits = sim
        .event_messages()
        .iter()
        .filter(|m| m.contains("waiting for promotion approval approve"))
        .count();
    assert_eq!(waits, 1, "the wait is announced once");
    open.set(true);
    assert!(sim.run_until_idle(at(3600)));
    assert!(
        crate::support::transcript(&sim)
            .contains("+135 Normal Confirm-promotion check approve passed\n+135 promote podinfo-00002")
    );
}

#[test]
fn confirm_rollout_gate_holds_the_revision_in_waiting() {
    let mut plan = example_plan();
    plan.webhooks.insert(0, gate("start", HookKind::ConfirmRollout));
    let open = Rc::new(Cell::new(false));
    let gate_state = open.clone();
    let responder = Scripted::all_pass().hook(move |h, _| match h.kind {
        HookKind::ConfirmRollout if !gate_state.get() => HookOutcome::Rejected {
            status: 403,
            body: "Forbidden".into(),
        },
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    assert_eq!(sim.status.phase, Phase::Waiting);
    sim.run_until(at(40));
    assert_eq!(sim.status.phase, Phase::Waiting);
    assert!(sim.world.traffic == vec![("podinfo-00001".to_owned(), 100)]);
    open.set(true);
    assert!(sim.run_until_idle(at(3600)));
    let text = crate::support::transcript(&sim);
    assert!(
        text.contains("+0 Warning Halt podinfo.test advancement waiting for approval start"),
        "{text}"
    );
    assert!(text.contains("+45 Normal Confirm-rollout check start passed"), "{text}");
    assert!(text.contains("+120 promote podinfo-00002"), "{text}");
}

#[test]
fn rollback_hook_success_rolls_back() {
    let mut plan = example_plan();
    plan.webhooks.push(gate("abort", HookKind::Rollback));
    let responder = Scripted::all_pass().hook(|h, ctx| match h.kind {
        HookKind::Rollback if ctx.canary_weight >= 20 => HookOutcome::Passed,
        HookKind::Rollback => HookOutcome::Rejected {
            status: 404,
            body: String::new(),
        },
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    let events = sim.event_messages();
    assert!(
        events.contains(&"Rolling back podinfo.test manual webhook invoked".to_owned()),
        "{events:#?}"
    );
    assert_eq!(sim.status.phase, Phase::Failed);
}

#[test]
fn skip_analysis_promotes_at_once_with_routing_after_the_primary_swap() {
    let mut plan = example_plan();
    plan.skip_analysis = true;
    let mut sim = started(plan, Scripted::all_pass(), Readiness::Ready);
    assert_eq!(sim.status.phase, Phase::Succeeded);
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00002"));
    assert_eq!(sim.world.traffic, vec![("podinfo-00002".to_owned(), 100)]);
    assert!(sim.run_until_idle(at(3600)));
    assert!(
        sim.event_messages()
            .contains(&"Promotion completed! Canary analysis was skipped for podinfo.test".to_owned())
    );
}

#[test]
fn suspend_freezes_the_analysis_and_resume_continues_where_it_was() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    sim.run_until(at(20));
    assert_eq!(sim.status.canary_weight, 20);
    sim.plan.suspend = true;
    sim.run_until(at(100));
    assert_eq!(sim.status.canary_weight, 20);
    assert!(
        sim.event_messages()
            .contains(&"skipping canary run as object is suspended".to_owned())
    );
    sim.plan.suspend = false;
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.status.phase, Phase::Succeeded);
    assert_eq!(sim.status.primary_revision.as_deref(), Some("podinfo-00002"));
}

#[test]
fn pre_rollout_failure_counts_and_retries_each_interval() {
    let mut plan = example_plan();
    plan.threshold = 3;
    plan.webhooks.push(gate("smoke", HookKind::PreRollout));
    let responder = Scripted::all_pass().hook(|h, _| match h.kind {
        HookKind::PreRollout => HookOutcome::Rejected {
            status: 500,
            body: "smoke test failed".into(),
        },
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    let text = crate::support::transcript(&sim);
    assert!(
        text.contains(
            "+0 Warning Halt podinfo.test advancement pre-rollout check smoke failed status 500: smoke test failed"
        ),
        "{text}"
    );
    assert!(
        text.contains("+30 Warning Rolling back podinfo.test failed checks threshold reached 3"),
        "{text}"
    );
    assert!(!text.contains("Advance"), "{text}");
}

#[test]
fn blue_green_keeps_the_canary_at_zero_then_routes_all_traffic_to_it_for_one_interval_like_flagger() {
    let mut plan = example_plan();
    plan.strategy = Strategy::BlueGreen { iterations: 3 };
    let mut sim = started(plan, Scripted::all_pass(), Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    // Flagger's flow: iterations 1..n (the first without metrics), all traffic to the canary for
    // one analysed interval, then promotion: n + 1 metric checks.
    assert_transcript(
        &sim,
        "
        +0 Normal New revision detected! Starting canary analysis of podinfo-00002 for podinfo.test
        +0 Normal Starting canary analysis for podinfo.test
        +0 traffic podinfo-00001 100% / podinfo-00002 0%
        +0 Normal Advance podinfo.test canary iteration 1/3
        +15 metrics
        +15 Normal Advance podinfo.test canary iteration 2/3
        +30 metrics
        +30 Normal Advance podinfo.test canary iteration 3/3
        +45 metrics
        +45 Normal Routing all traffic to canary
        +45 traffic podinfo-00001 0% / podinfo-00002 100%
        +60 metrics
        +60 promote podinfo-00002
        +60 Normal Promoting revision podinfo-00002 to primary of podinfo.test
        +60 Normal Routing all traffic to primary
        +60 Normal Promotion completed! Scaling down podinfo.test
        ",
    );
}

#[test]
fn blue_green_rolls_back_from_the_all_traffic_interval_when_its_analysis_fails() {
    let mut plan = example_plan();
    plan.strategy = Strategy::BlueGreen { iterations: 2 };
    plan.threshold = 1;
    let responder = Scripted::all_pass().metric(|m, ctx| match (m.kind, ctx.canary_weight) {
        (MetricKind::SuccessRate, 100) => MetricOutcome::Value(80.0),
        _ => MetricOutcome::Value(crate::support::passing(m)),
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.status.phase, Phase::Failed);
    assert_eq!(sim.world.traffic[0], ("podinfo-00001".to_owned(), 100));
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00001"));
}

#[test]
fn step_weight_promotion_ramps_the_analysed_revision_to_100() {
    let mut plan = example_plan();
    plan.strategy = Strategy::Canary {
        weights: Strategy::linear(10, 50),
        promotion_step: Some(25),
    };
    let mut sim = started(plan, Scripted::all_pass(), Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    let text = crate::support::transcript(&sim);
    assert!(
        text.contains("+75 traffic podinfo-00001 25% / podinfo-00002 75%"),
        "{text}"
    );
    assert!(text.contains("+90 promote podinfo-00002"), "{text}");
}

#[test]
fn traffic_increase_gate_halts_without_counting_a_failure() {
    let mut plan = example_plan();
    plan.webhooks.push(gate("more", HookKind::ConfirmTrafficIncrease));
    let responder = Scripted::all_pass().hook(|h, ctx| match h.kind {
        HookKind::ConfirmTrafficIncrease if ctx.canary_weight >= 20 => HookOutcome::TimedOut,
        _ => HookOutcome::Passed,
    });
    let mut sim = started(plan, responder, Readiness::Ready);
    sim.run_until(at(300));
    assert_eq!(sim.status.canary_weight, 20);
    assert_eq!(sim.status.failed_checks, 0);
    assert_eq!(sim.status.phase, Phase::Progressing);
}

#[test]
fn a_failed_rollout_is_not_retried_until_a_newer_revision_appears() {
    let mut plan = example_plan();
    plan.threshold = 1;
    let responder = Scripted::all_pass().metric(|_, _| MetricOutcome::Error("connection refused".into()));
    let mut sim = started(plan, responder, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.status.phase, Phase::Failed);
    let before = sim.log.len();
    let _ = sim.step_now();
    assert_eq!(sim.log.len(), before, "nothing happens for the rolled-back revision");
    assert!(
        sim.event_messages()
            .contains(&"Prometheus query failed for request-success-rate: connection refused".to_owned())
    );
    sim.world.create_revision("podinfo-00003", Readiness::Ready);
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Progressing);
    assert_eq!(sim.status.canary_revision.as_deref(), Some("podinfo-00003"));
    let _ = Duration::ZERO;
}
