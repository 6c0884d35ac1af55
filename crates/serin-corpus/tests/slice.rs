//! A seeded slice of the judge corpus, run by `cargo test`: 100 runs on a few cells, with
//! bounds loose enough never to flake and tight enough to catch a broken judge.

use serin_core::JudgeMode;
use serin_corpus::{Summary, Verdict, run, run_cell, scenarios};

fn scenario(id: &str) -> serin_corpus::Scenario {
    scenarios()
        .into_iter()
        .find(|s| s.id == id)
        .expect("scenario in the corpus")
}

#[test]
fn the_sequential_judge_rolls_back_a_one_point_error_regression_at_100_rps() {
    let s = scenario("S10");
    let summary = Summary::of(&s, &run_cell(&s, JudgeMode::Sequential, 100, 1, 2));
    assert!(summary.false_promotion_pct <= 3.0, "{summary:?}");
    assert_eq!(summary.stuck_pct, 0.0, "{summary:?}");
    assert!(summary.t90_min <= 5.0, "{summary:?}");
}

#[test]
fn the_sequential_judge_promotes_a_healthy_canary_at_100_rps_verified() {
    let s = scenario("S12");
    let summary = Summary::of(&s, &run_cell(&s, JudgeMode::Sequential, 100, 1, 2));
    assert!(summary.false_rollback_pct <= 3.0, "{summary:?}");
    assert_eq!(summary.stuck_pct, 0.0, "{summary:?}");
    assert!(summary.unverified_pct <= 10.0, "{summary:?}");
    assert!(summary.t90_min <= 8.0, "{summary:?}");
}

#[test]
fn the_sequential_judge_catches_a_tail_regression_flaggers_rule_promotes() {
    let s = scenario("S11");
    let sequential = Summary::of(&s, &run_cell(&s, JudgeMode::Sequential, 100, 7, 2));
    let flagger = Summary::of(&s, &run_cell(&s, JudgeMode::Flagger, 100, 7, 2));
    assert!(sequential.false_promotion_pct <= 3.0, "{sequential:?}");
    assert!(
        flagger.false_promotion_pct >= 50.0,
        "the corpus lost its tail regression: {flagger:?}"
    );
}

#[test]
fn at_a_fifth_of_a_request_per_second_a_healthy_canary_is_promoted_unverified_at_the_deadline() {
    let s = scenario("S2");
    let results = run_cell(&s, JudgeMode::Sequential, 30, 3, 2);
    let summary = Summary::of(&s, &results);
    assert_eq!(summary.stuck_pct, 0.0, "{summary:?}");
    assert!(summary.false_rollback_pct <= 5.0, "{summary:?}");
    assert!(summary.unverified_pct >= 90.0, "{summary:?}");
    assert!(results.iter().all(|r| r.minutes <= 46.0), "{results:?}");
}

#[test]
fn shadow_mode_decides_exactly_as_flaggers_rule() {
    for id in ["S1", "S4", "S8"] {
        let s = scenario(id);
        for seed in 0..20 {
            let flagger = run(&s, JudgeMode::Flagger, seed);
            let shadow = run(&s, JudgeMode::Shadow, seed);
            assert_eq!(flagger, shadow, "{id} seed {seed}");
        }
    }
}

#[test]
fn runs_are_reproducible_from_their_seed() {
    let s = scenario("S6");
    let a = run(&s, JudgeMode::Sequential, 42);
    let b = run(&s, JudgeMode::Sequential, 42);
    assert_eq!(a, b);
    assert_ne!(a.verdict, Verdict::Stuck);
}

#[test]
fn on_healthy_canaries_false_rollbacks_stay_near_alpha() {
    // α = 1% per rollout; 200 runs of two healthy cells, bound at 3% so that chance never fails it.
    for id in ["S1", "S8"] {
        let s = scenario(id);
        let summary = Summary::of(&s, &run_cell(&s, JudgeMode::Sequential, 200, 11, 2));
        assert!(summary.false_rollback_pct <= 3.0, "{id}: {summary:?}");
        assert_eq!(summary.stuck_pct, 0.0, "{id}: {summary:?}");
    }
}
