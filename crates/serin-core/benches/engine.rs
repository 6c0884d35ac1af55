//! `cargo bench -p serin-core`: engine steps per second and the time to simulate the seed rollout,
//! reported against the rollout's own (virtual) duration measured in the same run.

use std::time::{Duration, Instant};

use serin_core::{
    Readiness, Time,
    sim::{AllPass, Simulation, example_plan},
};

fn seed_rollout() -> (Simulation<AllPass>, Duration) {
    let mut sim = Simulation::new(example_plan(), AllPass, Time::from_millis(0));
    sim.world.create_revision("podinfo-00001", Readiness::Ready);
    let _ = sim.step_now();
    sim.world.create_revision("podinfo-00002", Readiness::Ready);
    let _ = sim.step_now();
    sim.run_until_idle(Time::from_millis(3_600_000));
    // Detection to promotion, in virtual time.
    let virtual_duration = sim
        .log
        .last()
        .map_or(Duration::ZERO, |(t, _)| t.since(Time::from_millis(0)));
    (sim, virtual_duration)
}

fn main() {
    // Warm up, then measure whole simulated rollouts.
    for _ in 0..100 {
        std::hint::black_box(seed_rollout());
    }
    let runs = 20_000u32;
    let started = Instant::now();
    let mut calls = 0usize;
    let mut virtual_total = Duration::ZERO;
    for _ in 0..runs {
        let (sim, virtual_duration) = std::hint::black_box(seed_rollout());
        calls += sim.engine_calls;
        virtual_total = virtual_duration;
    }
    let elapsed = started.elapsed();
    let per_rollout = elapsed / runs;
    let calls_per_sec = calls as f64 / elapsed.as_secs_f64();
    println!("seed rollout simulated {runs} times in {elapsed:?}");
    println!("  time to simulate one seed rollout: {per_rollout:?} (virtual duration {virtual_total:?})");
    println!(
        "  ratio virtual time / simulation time: {:.0}x faster than real time",
        virtual_total.as_secs_f64() / per_rollout.as_secs_f64()
    );
    println!("  engine calls per second (incl. check re-entries): {calls_per_sec:.0}");
    println!("  engine calls per rollout: {}", calls / runs as usize);
}
