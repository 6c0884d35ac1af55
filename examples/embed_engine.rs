//! Embedding the engine in a controller of your own: your own `Router` (here, in memory) and
//! `MetricsProvider` (here, a closure over the traffic), driving `serin-core` with a clock you
//! control. Run with `cargo run -p serin-examples --example embed_engine`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::bail;
use async_trait::async_trait;
use serin_core::{
    Action, HookOutcome, MetricCheck, MetricKind, Observation, Plan, Readiness, Revision, RolloutStatus, Step,
    Strategy, ThresholdRange, Time, TrafficSplit, World, step,
};
use serin_knative::{Router, RouterError, Target};
use serin_metrics::{MetricsProvider, QueryError, QueryValue};

/// A router that keeps the split in memory: revision → percent.
#[derive(Default)]
struct InMemoryRouter {
    revisions: Mutex<Vec<String>>,
    primary: Mutex<Option<String>>,
    split: Mutex<BTreeMap<String, u8>>,
}

#[async_trait]
impl Router for InMemoryRouter {
    async fn observe(&self, _: &Target) -> Result<World, RouterError> {
        let revisions = self.revisions.lock().map(|r| r.clone()).unwrap_or_default();
        let primary = self.primary.lock().ok().and_then(|p| p.clone());
        Ok(World {
            primary: primary.as_deref().map(Revision::ready),
            latest_created: revisions.last().map(|r| Revision {
                name: r.clone(),
                readiness: Readiness::Ready,
            }),
            latest_ready: revisions.last().cloned(),
        })
    }

    async fn initialize(&self, _: &Target, primary: &str) -> Result<(), RouterError> {
        self.promote(&Target::new("", ""), primary).await
    }

    async fn set_split(&self, _: &Target, split: &TrafficSplit) -> Result<(), RouterError> {
        if let Ok(mut s) = self.split.lock() {
            *s = BTreeMap::from([
                (split.primary.clone(), split.primary_weight()),
                (split.canary.clone(), split.canary_weight),
            ]);
        }
        Ok(())
    }

    async fn promote(&self, _: &Target, revision: &str) -> Result<(), RouterError> {
        if let (Ok(mut p), Ok(mut s)) = (self.primary.lock(), self.split.lock()) {
            *p = Some(revision.to_owned());
            *s = BTreeMap::from([(revision.to_owned(), 100)]);
        }
        Ok(())
    }

    async fn release(&self, _: &Target, _: Option<String>) -> Result<(), RouterError> {
        Ok(())
    }
}

/// Metrics from a function of the query: your monitoring system goes here.
struct FnProvider(Box<dyn Fn(&str) -> f64 + Send + Sync>);

#[async_trait]
impl MetricsProvider for FnProvider {
    async fn query(&self, query: &str) -> Result<QueryValue, QueryError> {
        Ok(QueryValue::Value((self.0)(query)))
    }
}

fn plan() -> Plan {
    Plan {
        canary_name: "shop".into(),
        namespace: "prod".into(),
        target_name: "shop".into(),
        target_kind: "Service".into(),
        interval: Duration::from_secs(30),
        threshold: 3,
        strategy: Strategy::Canary {
            weights: vec![5, 25, 50],
            promotion_step: None,
        },
        progress_deadline: Duration::from_secs(300),
        skip_analysis: false,
        suspend: false,
        metrics: vec![MetricCheck {
            name: "error-budget".into(),
            kind: MetricKind::Custom,
            range: ThresholdRange {
                min: None,
                max: Some(1.0),
            },
            window: Duration::from_secs(60),
        }],
        webhooks: Vec::new(),
        judge: Default::default(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let router = Arc::new(InMemoryRouter::default());
    let metrics = FnProvider(Box::new(|_query| 0.2));
    let target = Target::new("prod", "shop");
    router
        .revisions
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .push("shop-v1".into());
    let plan = plan();
    let mut status = RolloutStatus::default();
    let mut now = Time::from_millis(0);
    for tick in 0..20 {
        if tick == 1 {
            router
                .revisions
                .lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                .push("shop-v2".into());
        }
        let mut obs = Observation::of(router.observe(&target).await?);
        let decision = loop {
            match step(&plan, &status, &obs, now) {
                Step::Done(d) => break d,
                Step::Need(request) => {
                    for i in request.metrics {
                        let v = metrics.query("error_budget_burn").await;
                        obs.metrics.insert(i, serin_metrics::outcome(v));
                    }
                    for i in request.hooks {
                        obs.hooks.insert(i, HookOutcome::Passed);
                    }
                }
            }
        };
        for action in &decision.actions {
            match action {
                Action::Initialize { primary } => router.initialize(&target, primary).await?,
                Action::SetTraffic(split) => router.set_split(&target, split).await?,
                Action::Promote { revision } => router.promote(&target, revision).await?,
                Action::Event(e) => println!(
                    "[{:>4}s] {:<7} {}",
                    now.as_millis() / 1000,
                    e.severity.as_str(),
                    e.message
                ),
                _ => {}
            }
        }
        status = decision.status;
        match decision.wake_at {
            Some(at) => now = at,
            None if status.primary_revision.as_deref() == Some("shop-v2") => break,
            None => now = now + Duration::from_secs(1),
        }
    }
    let split = router.split.lock().map(|s| s.clone()).unwrap_or_default();
    println!("final split: {split:?}");
    if split.get("shop-v2") != Some(&100) {
        bail!("shop-v2 was not promoted");
    }
    Ok(())
}
