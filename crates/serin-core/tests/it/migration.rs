//! Adopting a Canary in every phase Flagger can leave behind: its status has Flagger's hashes
//! (`lastAppliedSpec`, `lastPromotedSpec`) and no revision names, the Service has Flagger's
//! annotation and traffic layout. A revision Flagger already handled is never analysed again.

use serin_core::{
    FlaggerRecord, Phase, Readiness, RolloutStatus,
    flagger::revision_hash,
    sim::{Simulation, example_plan},
};

use crate::support::{Scripted, T0, assert_transcript, at};

/// A world Flagger managed: `podinfo-00001` primary (annotation), `latest` the newest revision,
/// traffic in Flagger's layout with `weight` on `latestRevision`; the status as Flagger wrote it.
fn flagger_left(
    phase: Phase,
    primary: &str,
    latest: &str,
    weight: u8,
    applied: &str,
    promoted: &str,
) -> Simulation<Scripted> {
    let mut sim = Simulation::new(example_plan(), Scripted::all_pass(), T0);
    for name in ["podinfo-00001", "podinfo-00002", "podinfo-00003"] {
        sim.world.create_revision(name, Readiness::Ready);
        if name == latest {
            break;
        }
    }
    sim.world.primary = Some(primary.to_owned());
    sim.world.traffic = vec![(latest.to_owned(), weight), (primary.to_owned(), 100 - weight)];
    sim.status = RolloutStatus {
        phase,
        canary_weight: weight,
        flagger: FlaggerRecord {
            last_applied: Some(revision_hash(applied)),
            last_promoted: Some(revision_hash(promoted)),
        },
        ..RolloutStatus::default()
    };
    sim
}

#[test]
fn failed_revision_flagger_rolled_back_is_not_analysed_again() {
    let mut sim = flagger_left(
        Phase::Failed,
        "podinfo-00001",
        "podinfo-00002",
        0,
        "podinfo-00002",
        "podinfo-00001",
    );
    let _ = sim.step_now();
    assert!(sim.run_until_idle(at(3600)));
    assert_transcript(
        &sim,
        "+0 Normal Adopted podinfo.test in phase Failed from a status Serin did not write (Flagger's): primary revision podinfo-00001; revision podinfo-00002 was rolled back and is not analysed again; a newer revision will be",
    );
    assert_eq!(sim.status.phase, Phase::Failed);
    assert_eq!(sim.status.primary_revision.as_deref(), Some("podinfo-00001"));
    assert_eq!(sim.status.canary_revision.as_deref(), Some("podinfo-00002"));
    assert_eq!(sim.status.flagger, FlaggerRecord::default(), "read once, then dropped");
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00001"));

    // A newer revision is rolled out as usual.
    sim.log.clear();
    sim.world.create_revision("podinfo-00003", Readiness::Ready);
    let _ = sim.step_now();
    assert!(
        sim.event_messages()[0].starts_with("New revision detected! Starting canary analysis of podinfo-00003"),
        "{:?}",
        sim.event_messages()
    );
    assert!(sim.run_until_idle(at(7200)));
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00003"));
}

#[test]
fn failed_status_without_any_record_does_not_analyse_the_latest_revision() {
    let mut sim = flagger_left(Phase::Failed, "podinfo-00001", "podinfo-00002", 0, "x", "x");
    sim.status.flagger = FlaggerRecord::default();
    let _ = sim.step_now();
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00001"));
    assert_eq!(sim.status.phase, Phase::Failed);
}

#[test]
fn succeeded_with_a_revision_flagger_never_saw_rolls_it_out() {
    let mut sim = flagger_left(
        Phase::Succeeded,
        "podinfo-00001",
        "podinfo-00002",
        0,
        "podinfo-00001",
        "podinfo-00001",
    );
    let _ = sim.step_now();
    let events = sim.event_messages();
    assert_eq!(
        events[0],
        "Adopted podinfo.test in phase Succeeded from a status Serin did not write (Flagger's): primary revision podinfo-00001; revision podinfo-00002 is new and will be rolled out"
    );
    assert!(events[1].starts_with("New revision detected! Starting canary analysis of podinfo-00002"));
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00002"));
    assert_eq!(sim.status.phase, Phase::Succeeded);
}

#[test]
fn succeeded_and_up_to_date_changes_nothing() {
    let mut sim = flagger_left(
        Phase::Succeeded,
        "podinfo-00002",
        "podinfo-00002",
        0,
        "podinfo-00002",
        "podinfo-00002",
    );
    let decision = sim.step_now();
    assert!(
        decision
            .actions
            .iter()
            .all(|a| matches!(a, serin_core::Action::Event(_)))
    );
    assert_eq!(sim.status.phase, Phase::Succeeded);
    assert_eq!(sim.status.primary_revision.as_deref(), Some("podinfo-00002"));
    assert_eq!(sim.wake_at, None);
}

#[test]
fn initialized_after_flagger_took_over_waits_for_a_new_revision() {
    let mut sim = flagger_left(
        Phase::Initialized,
        "podinfo-00001",
        "podinfo-00001",
        0,
        "podinfo-00001",
        "podinfo-00001",
    );
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Initialized);
    assert_eq!(sim.status.primary_revision.as_deref(), Some("podinfo-00001"));
    assert_eq!(sim.wake_at, None);
}

#[test]
fn progressing_restarts_from_100_percent_primary_with_a_fresh_analysis() {
    let mut sim = flagger_left(
        Phase::Progressing,
        "podinfo-00001",
        "podinfo-00002",
        30,
        "podinfo-00002",
        "podinfo-00001",
    );
    sim.status.failed_checks = 3;
    let _ = sim.step_now();
    assert_transcript(
        &sim,
        "
        +0 initialize podinfo-00001
        +0 Normal Adopted podinfo.test in phase Progressing from a status Serin did not write (Flagger's): primary revision podinfo-00001; the analysis was under way: 100% back on the primary, and the analysis of podinfo-00002 starts again
        +0 Normal Starting canary analysis for podinfo.test
        +0 traffic podinfo-00001 90% / podinfo-00002 10%
        +0 Normal Advance podinfo.test canary weight 10
        ",
    );
    assert_eq!(sim.status.failed_checks, 0, "a fresh analysis");
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.world.primary.as_deref(), Some("podinfo-00002"));
}

#[test]
fn waiting_promotion_restarts_like_progressing() {
    let mut sim = flagger_left(
        Phase::WaitingPromotion,
        "podinfo-00001",
        "podinfo-00002",
        50,
        "podinfo-00002",
        "podinfo-00001",
    );
    let _ = sim.step_now();
    assert_eq!(sim.world.traffic[0], ("podinfo-00001".to_owned(), 90));
    assert_eq!(sim.status.phase, Phase::Progressing);
}

#[test]
fn promoting_and_finalising_complete_the_promotion_flagger_started() {
    for phase in [Phase::Promoting, Phase::Finalising] {
        // Flagger's Promote already moved the annotation to the analysed revision.
        let mut sim = flagger_left(
            phase,
            "podinfo-00002",
            "podinfo-00002",
            0,
            "podinfo-00002",
            "podinfo-00001",
        );
        let _ = sim.step_now();
        let events = sim.event_messages();
        assert!(
            events.contains(&"Promotion completed! Scaling down podinfo.test".to_owned()),
            "{events:?}"
        );
        assert_eq!(sim.world.traffic, vec![("podinfo-00002".to_owned(), 100)]);
        assert_eq!(sim.status.phase, Phase::Succeeded);
        assert_eq!(sim.wake_at, None);
    }
}

#[test]
fn waiting_asks_confirm_rollout_again() {
    let mut sim = flagger_left(
        Phase::Waiting,
        "podinfo-00001",
        "podinfo-00002",
        0,
        "podinfo-00001",
        "podinfo-00001",
    );
    sim.plan.webhooks.push(serin_core::Hook {
        name: "gate".into(),
        kind: serin_core::HookKind::ConfirmRollout,
    });
    sim.responder = Scripted::all_pass().hook(|h, _| match h.kind {
        serin_core::HookKind::ConfirmRollout => serin_core::HookOutcome::Rejected {
            status: 403,
            body: "Forbidden".into(),
        },
        _ => serin_core::HookOutcome::Passed,
    });
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Waiting);
    assert_eq!(sim.world.traffic[1], ("podinfo-00001".to_owned(), 100));
}

#[test]
fn initializing_or_no_annotation_starts_over() {
    let mut sim = flagger_left(
        Phase::Succeeded,
        "podinfo-00001",
        "podinfo-00002",
        0,
        "podinfo-00002",
        "podinfo-00001",
    );
    sim.world.primary = None;
    let _ = sim.step_now();
    assert_eq!(sim.status.phase, Phase::Initialized);
    assert_eq!(sim.status.primary_revision.as_deref(), Some("podinfo-00002"));
}
