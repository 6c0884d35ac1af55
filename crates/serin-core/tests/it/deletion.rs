//! `revertOnDeletion`: deleting a Canary never sends users to a revision that is not the primary.

use serin_core::{MetricKind, MetricOutcome, Phase, Readiness, sim::example_plan};

use crate::support::{Scripted, assert_transcript, at, started};

const HOW_TO_FOLLOW: &str = "to follow the latest revision again, run kubectl patch ksvc podinfo -n test --type merge -p '{\"spec\":{\"traffic\":[{\"latestRevision\":true,\"percent\":100}]}}'";

#[test]
fn deleting_after_a_rollback_keeps_100_percent_on_the_primary() {
    let failing = Scripted::all_pass().metric(|m, _| match m.kind {
        MetricKind::SuccessRate => MetricOutcome::Value(50.0),
        _ => MetricOutcome::Value(1.0),
    });
    let mut sim = started(example_plan(), failing, Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.status.phase, Phase::Failed);
    sim.log.clear();
    let decision = sim.delete();
    assert_transcript(
        &sim,
        &format!(
            "
            +3600 Normal Terminating canary podinfo.test
            +3600 release: podinfo-00001 pinned at 100%
            +3600 Warning Canary podinfo.test deleted: traffic stays pinned to primary revision podinfo-00001 because the latest Ready revision podinfo-00002 is not the primary; {HOW_TO_FOLLOW}
            +3600 Normal Terminated canary podinfo.test
            "
        ),
    );
    assert_eq!(sim.world.traffic, vec![("podinfo-00001".to_owned(), 100)]);
    assert_eq!(sim.world.primary, None, "the annotation is dropped");
    assert_eq!(decision.status.phase, Phase::Terminating);
}

#[test]
fn deleting_mid_analysis_keeps_100_percent_on_the_primary() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    sim.run_until(at(30));
    assert_eq!(sim.status.canary_weight, 30);
    let _ = sim.delete();
    assert_eq!(sim.world.traffic, vec![("podinfo-00001".to_owned(), 100)]);
}

#[test]
fn deleting_after_a_promotion_hands_routing_back_to_knative() {
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::Ready);
    assert!(sim.run_until_idle(at(3600)));
    assert_eq!(sim.status.phase, Phase::Succeeded);
    sim.log.clear();
    let _ = sim.delete();
    assert_transcript(
        &sim,
        "
        +3600 Normal Terminating canary podinfo.test
        +3600 release: latestRevision 100%
        +3600 Normal Terminated canary podinfo.test
        ",
    );
    assert_eq!(sim.world.traffic, vec![("podinfo-00002".to_owned(), 100)]);
}

#[test]
fn deleting_while_a_newer_revision_is_not_ready_hands_back_to_knative() {
    // The latest *Ready* revision is the primary: Knative's default keeps serving it until the
    // newer one is Ready, exactly as without any canary controller.
    let mut sim = started(example_plan(), Scripted::all_pass(), Readiness::NotYet { reason: None });
    let _ = sim.delete();
    assert_eq!(sim.world.traffic, vec![("podinfo-00001".to_owned(), 100)]);
    assert!(sim.event_messages().iter().all(|m| !m.contains("pinned")));
}
