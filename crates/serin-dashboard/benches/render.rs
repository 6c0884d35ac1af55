//! `cargo bench -p serin-dashboard` (`cargo xtask bench dashboard`): what one live update costs
//! with a fleet of 10,000 Canaries. Each change of the store re-renders the `<main>` of every
//! open page; the figures are the time and bytes of one render of the list's first page
//! against the same list with every row on one page (the baseline, measured in the same run),
//! and of one Canary's page (its timeline includes a simulated projection of the plan ahead).

use std::{collections::BTreeMap, time::Instant};

use serin_api::{Canary, CanaryStatus, LastDecision, MetricReading};
use serin_core::Time;
use serin_dashboard::{
    History,
    list::{ListQuery, list_main, list_page},
    pages::canary_main,
    store::Key,
};

const FLEET: usize = 10_000;

fn canary(i: usize) -> (Key, History) {
    let yaml = format!(
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {{ name: app-{i:05}, namespace: ns-{} }}\nspec:\n  provider: knative\n  targetRef: {{ apiVersion: serving.knative.dev/v1, kind: Service, name: app-{i:05} }}\n  analysis: {{ interval: 15s, threshold: 5, maxWeight: 50, stepWeight: 10 }}\n",
        i % 20
    );
    let Some(serin_api::CanaryDocument::Parsed(c)) = serin_api::canaries_in(&yaml)
        .ok()
        .and_then(|docs| docs.into_iter().next())
    else {
        panic!("the benchmark's Canary parses");
    };
    let mut c: Canary = *c;
    let mut h = History::default();
    for (step, weight) in [0, 10, 20, 30].into_iter().enumerate() {
        let at = |secs: i64| format!("2026-12-02T10:{:02}:{:02}Z", secs / 60, secs % 60);
        let secs = step as i64 * 15;
        c.status = Some(CanaryStatus {
            phase: Some(
                if i.is_multiple_of(3) {
                    "Progressing"
                } else {
                    "Succeeded"
                }
                .into(),
            ),
            canary_weight: Some(weight),
            primary_revision: Some(format!("app-{i:05}-00001")),
            canary_revision: Some(format!("app-{i:05}-00002")),
            rollout_started_at: Some(at(0)),
            analysis_started_at: Some(at(0)),
            next_step_at: Some(at(secs + 15)),
            estimated_promotion_at: Some(at(75)),
            last_decision: Some(LastDecision {
                summary: format!("analysis passed; {weight}% of traffic to revision app-{i:05}-00002"),
                metrics: vec![MetricReading {
                    name: "request-success-rate".into(),
                    value: 99.5,
                    min: Some(99.0),
                    passed: true,
                    unit: "%".into(),
                    ..Default::default()
                }],
                checks: vec!["webhook load-test (rollout): 200 OK (2xx) Pass".into()],
                at: Some(at(secs)),
            }),
            ..Default::default()
        });
        h.observe(c.clone(), Time::from_millis(1_796_205_600_000 + secs * 1000));
    }
    let key = (
        c.metadata.namespace.clone().unwrap_or_default(),
        c.metadata.name.clone().unwrap_or_default(),
    );
    (key, h)
}

/// The mean time of `runs` calls of `render` and the size of its output.
fn measure(runs: u32, render: impl Fn() -> String) -> (f64, usize) {
    let bytes = std::hint::black_box(render()).len();
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(render());
    }
    (started.elapsed().as_secs_f64() / f64::from(runs), bytes)
}

fn main() {
    let all: BTreeMap<Key, History> = (0..FLEET).map(canary).collect();
    let now = Time::from_millis(1_796_205_650_000);
    let query = ListQuery::default();
    let (paged, paged_bytes) = measure(50, || list_main(&all, &query, now));
    let (every, every_bytes) = measure(5, || list_page(&all, &query, now, usize::MAX));
    let one = all.values().next().cloned().unwrap_or_default();
    let planned = canary_main(&one, now, None);
    assert!(
        planned.contains(r#"data-planned="2""#),
        "the measured page draws the plan ahead"
    );
    let (page, page_bytes) = measure(200, || canary_main(&one, now, None));
    println!("dashboard render, {FLEET} Canaries (one live update of one open page):");
    println!(
        "  list, every row (baseline): {:>8.2} ms  {:>9} bytes",
        every * 1e3,
        every_bytes
    );
    println!(
        "  list, first page of 50:     {:>8.2} ms  {:>9} bytes  ({:.0}x faster, {:.0}x smaller)",
        paged * 1e3,
        paged_bytes,
        every / paged,
        every_bytes as f64 / paged_bytes as f64
    );
    println!(
        "  one Canary's page:          {:>8.2} ms  {:>9} bytes  (with the plan ahead simulated)",
        page * 1e3,
        page_bytes
    );
}
