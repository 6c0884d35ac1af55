//! Properties of the sequential judge: more canary errors never help the canary, a stored
//! count trace replays the same decision, counters are read as per-series deltas.

use proptest::prelude::*;
use serin_core::{
    Arm, Assessment, Counter, CounterSample, JudgeMode, JudgeState, Observation, RolloutStatus, Time, World,
    sequential::{ArmCounts, Bounds, Ingested, TickCounts, assess},
    sim::example_plan,
};

fn plan() -> serin_core::Plan {
    let mut plan = example_plan();
    plan.judge.mode = JudgeMode::Sequential;
    plan
}

fn state(ticks: Vec<TickCounts>) -> JudgeState {
    JudgeState {
        bounds: Some(Bounds {
            mid_us: Some(100_000),
            tail_us: Some(250_000),
            slo_us: Some(500_000),
            r_bad_milli: 2250,
        }),
        baseline: true,
        ticks,
        ..JudgeState::default()
    }
}

fn arm() -> impl Strategy<Value = ArmCounts> {
    (0u64..400, 0u64..20, 0u64..200, 0u64..10, 0u64..5).prop_map(|(n, e, m, p, s)| ArmCounts {
        requests: n,
        errors: e.min(n),
        timed: n,
        slow_mid: m.min(n),
        slow_tail: p.min(n),
        slow_slo: s.min(n),
    })
}

fn trace() -> impl Strategy<Value = Vec<TickCounts>> {
    prop::collection::vec((arm(), arm(), 0usize..5), 1..40).prop_map(|ticks| {
        ticks
            .into_iter()
            .enumerate()
            .map(|(i, (canary, primary, step))| TickCounts {
                at: Time::from_millis(i as i64 * 15_000),
                weight: [10, 20, 30, 40, 50][step.min(i / 4).min(4)],
                canary,
                primary,
            })
            .collect()
    })
}

/// The assessment of `ticks`, and of the same ticks with the canary's counts of tick `k`
/// (modulo their number) changed by `worsen`.
fn before_and_after(ticks: Vec<TickCounts>, k: usize, worsen: impl FnOnce(&mut ArmCounts)) -> (Assessment, Assessment) {
    let plan = plan();
    let policy = plan.judge.policy.clone();
    let before = assess(&plan, &policy, &state(ticks.clone()));
    let mut worse = ticks;
    let k = k % worse.len();
    worsen(&mut worse[k].canary);
    (before, assess(&plan, &policy, &state(worse)))
}

fn gate(a: &Assessment, name: &str) -> Option<f64> {
    a.gates.iter().find(|g| g.name == name).map(|g| g.log_evidence)
}

proptest! {
    #[test]
    fn more_canary_errors_never_lower_harm_nor_raise_the_error_gate(ticks in trace(), k in 0usize..40, extra in 1u64..50) {
        // The same requests, more of them failing (the exposure share stays what it was).
        let (before, after) = before_and_after(ticks, k, |c| c.errors = (c.errors + extra).min(c.requests));
        let harm = |a: &Assessment| a.harm.iter().find(|h| h.check.name() == "5xx").map(|h| h.log_evidence);
        prop_assert!(harm(&after) >= harm(&before).map(|v| v - 1e-9), "{:?} {:?}", harm(&before), harm(&after));
        prop_assert!(gate(&after, "5xx-slo") <= gate(&before, "5xx-slo").map(|v| v + 1e-9));
    }

    #[test]
    fn more_slow_canary_requests_never_raise_the_tail_gate(ticks in trace(), k in 0usize..40, extra in 1u64..50) {
        let (before, after) = before_and_after(ticks, k, |c| c.slow_tail = (c.slow_tail + extra).min(c.timed));
        prop_assert!(gate(&after, "tail") <= gate(&before, "tail").map(|v| v + 1e-9));
    }

    #[test]
    fn a_stored_status_replays_the_same_decision(ticks in trace()) {
        let plan = plan();
        let status = RolloutStatus {
            phase: serin_core::Phase::Progressing,
            canary_weight: ticks.last().map_or(10, |t| t.weight),
            primary_revision: Some("app-00001".into()),
            canary_revision: Some("app-00002".into()),
            analysis_started_at: Some(Time::from_millis(0)),
            rollout_started_at: Some(Time::from_millis(0)),
            judge: Some(state(ticks)),
            ..RolloutStatus::default()
        };
        let stored = serde_json::to_string(&status).expect("status serializes");
        let replayed: RolloutStatus = serde_json::from_str(&stored).expect("status reads back");
        prop_assert_eq!(&replayed, &status);
        let world = World {
            primary: Some(serin_core::Revision::ready("app-00001")),
            latest_created: Some(serin_core::Revision::ready("app-00002")),
            latest_ready: Some("app-00002".into()),
        };
        let mut obs = Observation::of(world);
        obs.hooks.insert(0, serin_core::HookOutcome::Passed);
        obs.counts = Some(serin_core::CountsOutcome::Read { samples: Vec::new(), calibration: None });
        let now = Time::from_millis(40 * 15_000);
        let a = serin_core::step(&plan, &status, &obs, now);
        let b = serin_core::step(&plan, &replayed, &obs, now);
        prop_assert_eq!(a, b);
    }
}

fn sample(arm: Arm, counter: Counter, series: &str, value: f64) -> CounterSample {
    CounterSample {
        series: series.into(),
        arm,
        counter,
        value,
    }
}

#[test]
fn counters_are_read_as_per_series_deltas_with_resets_and_new_series() {
    let mut state = JudgeState::default();
    let at = |s: i64| Time::from_millis(s * 1000);
    let first = [sample(Arm::Primary, Counter::Requests, "gw-a", 1000.0)];
    assert_eq!(state.ingest(&first, 0, at(0)), Ingested::Baseline);
    let second = [
        sample(Arm::Primary, Counter::Requests, "gw-a", 1100.0),
        // A new series started at zero: all of it is new.
        sample(Arm::Canary, Counter::Requests, "gw-a", 7.0),
        sample(Arm::Primary, Counter::Requests, "gw-b", 30.0),
    ];
    assert_eq!(state.ingest(&second, 10, at(15)), Ingested::Tick);
    assert_eq!(state.ticks[0].primary.requests, 130);
    assert_eq!(state.ticks[0].canary.requests, 7);
    // gw-a restarted: its counter went back to 40, which is all new.
    let third = [
        sample(Arm::Primary, Counter::Requests, "gw-a", 40.0),
        sample(Arm::Canary, Counter::Requests, "gw-a", 17.0),
        sample(Arm::Primary, Counter::Requests, "gw-b", 50.0),
    ];
    assert_eq!(state.ingest(&third, 10, at(30)), Ingested::Tick);
    assert_eq!(state.ticks[1].primary.requests, 60);
    assert_eq!(state.ticks[1].canary.requests, 10);
    assert_eq!(state.ingest(&[], 10, at(45)), Ingested::NoSeries);
    assert_eq!(state.ticks.len(), 2);
}
