//! `cargo xtask demo`: the seed tutorial's two scenarios (promotion of 6.0.1, rollback of
//! 6.0.2), driven through the real engine and the real Canary parser in virtual time.
//!
//! This is the engine-only demo (`--simulated`): Kubernetes, Knative, Prometheus and the
//! loadtester are simulated in-process (`serin_core::sim`), so it runs in a second with nothing
//! installed. The default `cargo xtask demo` runs every component as a real process.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};
use serin_api::{CanaryDocument, canaries_in, rfc3339, validate};
use serin_core::{
    Hook, HookOutcome, MetricCheck, MetricKind, MetricOutcome, Phase, Plan, Readiness, Time,
    sim::{AllPass, CheckContext, Happening, Responder, Simulation},
};

/// Answers like the tutorial's world: podinfo 6.0.2 (`podinfo-00003`) answers 500 to a share
/// of requests, everything else is healthy.
struct Tutorial;

impl Responder for Tutorial {
    fn metric(&mut self, metric: &MetricCheck, ctx: &CheckContext) -> MetricOutcome {
        match (metric.kind, ctx.canary_revision.as_deref()) {
            (MetricKind::SuccessRate, Some("podinfo-00003")) => MetricOutcome::Value(61.39),
            (MetricKind::SuccessRate, _) => MetricOutcome::Value(100.0),
            (MetricKind::Duration, _) => MetricOutcome::Value(12.0),
            (MetricKind::Custom, _) => AllPass.metric(metric, ctx),
        }
    }

    fn hook(&mut self, hook: &Hook, ctx: &CheckContext) -> HookOutcome {
        AllPass.hook(hook, ctx)
    }
}

fn seed_plan(root: &Path, fast: bool) -> anyhow::Result<Plan> {
    let path = root.join("testdata/seed/podinfo-canary.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let Some(CanaryDocument::Parsed(canary)) = canaries_in(&text)?.into_iter().next() else {
        bail!("{} holds no valid Canary", path.display());
    };
    let mut plan = validate(&canary)?.plan;
    if fast {
        plan.interval = Duration::from_secs(2);
        plan.threshold = 3;
    }
    Ok(plan)
}

fn table(sim: &Simulation<Tutorial>) -> String {
    let s = &sim.status;
    format!(
        "NAMESPACE   NAME      STATUS        WEIGHT   LASTTRANSITIONTIME\n{:<11} {:<9} {:<13} {:<8} {}",
        sim.plan.namespace,
        sim.plan.canary_name,
        s.phase.as_str(),
        s.canary_weight,
        s.last_transition_at.map(rfc3339).unwrap_or_default()
    )
}

/// Runs one scenario from the current state: creates `revision`, steps until settled,
/// prints events as they happen and the table at each change.
fn scenario(sim: &mut Simulation<Tutorial>, image: &str, revision: &str, expect: Phase) -> bool {
    println!("\n$ kubectl -n test patch services.serving podinfo --type=json \\");
    println!(
        "  -p '[{{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\": \"ghcr.io/stefanprodan/podinfo:{image}\"}}]'"
    );
    let start = sim.now;
    let seen = sim.log.len();
    sim.world.create_revision(revision, Readiness::Ready);
    let _ = sim.step_now();
    sim.run_until_idle(start + Duration::from_secs(3600));
    println!("\nEvents (kubectl -n test describe canary/podinfo):");
    println!("  Type     Reason  Age    From   Message");
    for (t, h) in &sim.log[seen..] {
        match h {
            Happening::Event(e) => println!(
                "  {:<8} Synced  +{:<4}  serin  {}",
                e.severity.as_str(),
                format!("{}s", t.since(start).as_secs()),
                e.message
            ),
            Happening::Traffic(split) => println!(
                "           spec.traffic: {} {}% / {} {}%",
                split.primary,
                split.primary_weight(),
                split.canary,
                split.canary_weight
            ),
            _ => {}
        }
    }
    println!("\n$ kubectl get canaries --all-namespaces\n{}", table(sim));
    let ok = sim.status.phase == expect;
    println!(
        "\nverdict: {} {revision} ({image}) ended {} after {}s (expected {})",
        if ok { "PASS" } else { "FAIL" },
        sim.status.phase.as_str(),
        sim.status.last_transition_at.map_or(0, |t| t.since(start).as_secs()),
        expect.as_str()
    );
    ok
}

/// `cargo xtask demo --simulated [--scenario promote|rollback|all] [--fast]`.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let fast = args.iter().any(|a| a == "--fast");
    let which = args
        .iter()
        .position(|a| a == "--scenario")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or("all");
    if !matches!(which, "promote" | "rollback" | "all") {
        bail!("--scenario must be promote, rollback or all");
    }
    if args.iter().any(|a| a == "--keep") {
        bail!("--keep needs the real sandbox: run `cargo xtask demo --keep` without --simulated");
    }
    println!("Serin demo (--simulated): the seed tutorial (testdata/seed) driven through serin-core in virtual time.");
    println!(
        "Knative, Prometheus and the loadtester are simulated in-process; run without --simulated for real processes."
    );
    let plan = seed_plan(root, fast)?;
    let mut sim = Simulation::new(plan, Tutorial, Time::from_millis(1_763_300_000_000));
    println!("\n$ kubectl apply -f podinfo-ksvc.yaml -f podinfo-canary.yaml");
    sim.world.create_revision("podinfo-00001", Readiness::Ready);
    let _ = sim.step_now();
    for e in sim.event_messages() {
        println!("  Normal   Synced  serin  {e}");
    }
    println!("{}", table(&sim));
    let mut ok = sim.status.phase == Phase::Initialized;
    if matches!(which, "promote" | "all") {
        ok &= scenario(&mut sim, "6.0.1", "podinfo-00002", Phase::Succeeded);
    }
    if matches!(which, "rollback" | "all") {
        sim.now = sim.now + Duration::from_secs(60);
        ok &= scenario(&mut sim, "6.0.2", "podinfo-00003", Phase::Failed);
    }
    if !ok {
        bail!("a scenario did not end as expected");
    }
    Ok(())
}
