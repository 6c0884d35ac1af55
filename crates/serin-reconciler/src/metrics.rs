//! The controller's Prometheus metrics, with Flagger's names so existing
//! dashboards and alerts keep working, plus Serin's reconcile metrics.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use serin_core::Phase;

/// `name`, `namespace`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CanaryLabels {
    /// Target name (Flagger labels with the target, not the Canary).
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

/// `namespace`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// Namespace.
    pub namespace: String,
}

/// `version`, `mesh_provider`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoLabels {
    /// Serin's version.
    pub version: String,
    /// Always `knative`.
    pub mesh_provider: String,
}

/// `workload`, `namespace`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// `{target}-primary` or `{target}`.
    pub workload: String,
    /// Namespace.
    pub namespace: String,
}

/// `name`, `namespace`, `metric`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    /// Target name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Metric name.
    pub metric: String,
}

/// Outcome counters' labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Target name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// `canary` or `blue-green`.
    pub deployment_strategy: String,
    /// `completed` or `skipped`.
    pub analysis_status: String,
}

/// `result`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: String,
}

/// `stage`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `observe` (the Service and Revisions), `checks` (metrics and webhooks), `act` (traffic
    /// writes and events) or `status` (the status patch).
    pub stage: String,
}

/// Labels of `serin_alerts_sent_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// Provider type (`slack`, `msteams`, …).
    pub provider: String,
    /// `sent`, `failed` or `dropped`.
    pub result: String,
}

/// Labels of `serin_judge_verdict_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JudgeLabels {
    /// `shadow` or `sequential`.
    pub mode: String,
    /// The judge's verdict for a finished rollout: `Verified`, `Regressed`, `InsufficientTraffic`,
    /// `NotProvenSafe`, `NoMetrics`, or `Undecided` (the rollout ended before the judge concluded).
    pub verdict: String,
}

/// Every metric of the controller.
pub struct ControllerMetrics {
    registry: Registry,
    /// `flagger_info`: 1, with the version and `mesh_provider="knative"`.
    pub info: Family<InfoLabels, Gauge>,
    /// `flagger_canary_total`.
    pub total: Family<NamespaceLabels, Gauge>,
    /// Namespaces `total` has a series for.
    namespaces: Mutex<BTreeSet<String>>,
    /// `flagger_canary_status`: 0 Progressing, 2 Failed, 1 otherwise.
    pub status: Family<CanaryLabels, Gauge>,
    /// `flagger_canary_weight`.
    pub weight: Family<WorkloadLabels, Gauge>,
    /// `flagger_canary_metric_analysis`: the last value of each metric.
    pub analysis: Family<MetricLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// `flagger_canary_duration_seconds`: time of one reconcile of a canary.
    pub duration: Family<CanaryLabels, Histogram>,
    /// `flagger_canary_successes_total`.
    pub successes: Family<OutcomeLabels, Counter>,
    /// `flagger_canary_failures_total`.
    pub failures: Family<OutcomeLabels, Counter>,
    /// `serin_reconciles_total`.
    pub reconciles: Family<ResultLabels, Counter>,
    /// `serin_step_lag_seconds`: how late a due step ran (actual minus planned time).
    pub step_lag: Histogram,
    /// `serin_reconcile_stage_seconds`: time spent in each stage of a reconcile.
    pub stages: Family<StageLabels, Histogram>,
    /// `serin_alerts_sent_total`: alert deliveries by provider type and result.
    pub alerts: Family<AlertLabels, Counter>,
    /// `serin_judge_verdict_total`: the sequential judge's verdict per finished rollout.
    pub judge_verdicts: Family<JudgeLabels, Counter>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ControllerMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            mesh_provider: "knative".into(),
        })
        .set(1);
        registry.register(
            "flagger_info",
            "Flagger (here: Serin) version and mesh provider",
            info.clone(),
        );
        let total = Family::<NamespaceLabels, Gauge>::default();
        let status = Family::<CanaryLabels, Gauge>::default();
        let weight = Family::<WorkloadLabels, Gauge>::default();
        let analysis = Family::<MetricLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let duration = Family::<CanaryLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let successes = Family::<OutcomeLabels, Counter>::default();
        let failures = Family::<OutcomeLabels, Counter>::default();
        let reconciles = Family::<ResultLabels, Counter>::default();
        let step_lag = Histogram::new([
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "flagger_canary_total",
            "Number of canaries per namespace",
            total.clone(),
        );
        registry.register(
            "flagger_canary_status",
            "Canary status: 0 progressing, 1 done, 2 failed",
            status.clone(),
        );
        registry.register(
            "flagger_canary_weight",
            "Traffic weight of the primary and the canary",
            weight.clone(),
        );
        registry.register(
            "flagger_canary_metric_analysis",
            "Last value of each analysis metric",
            analysis.clone(),
        );
        registry.register(
            "flagger_canary_duration_seconds",
            "Duration of one canary analysis step",
            duration.clone(),
        );
        registry.register("flagger_canary_successes", "Successful rollouts", successes.clone());
        registry.register("flagger_canary_failures", "Failed rollouts", failures.clone());
        registry.register("serin_reconciles", "Reconciles by result", reconciles.clone());
        registry.register(
            "serin_step_lag_seconds",
            "Actual minus planned time of analysis steps",
            step_lag.clone(),
        );
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        registry.register(
            "serin_reconcile_stage_seconds",
            "Time spent in each stage of a reconcile (observe, checks, act, status)",
            stages.clone(),
        );
        let alerts = Family::<AlertLabels, Counter>::default();
        registry.register(
            "serin_alerts_sent",
            "Alert deliveries by provider type and result",
            alerts.clone(),
        );
        let judge_verdicts = Family::<JudgeLabels, Counter>::default();
        registry.register(
            "serin_judge_verdict",
            "The sequential judge's verdicts of finished rollouts, by mode (shadow: reported, not acted on)",
            judge_verdicts.clone(),
        );
        ControllerMetrics {
            registry,
            info,
            total,
            namespaces: Mutex::default(),
            status,
            weight,
            analysis,
            duration,
            successes,
            failures,
            reconciles,
            step_lag,
            stages,
            alerts,
            judge_verdicts,
        }
    }

    /// Records the time a reconcile stage took.
    pub fn stage(&self, stage: &str, took: std::time::Duration) {
        self.stages
            .get_or_create(&StageLabels { stage: stage.into() })
            .observe(took.as_secs_f64());
    }

    /// Records phase and weights of a canary.
    pub fn observe_status(&self, target: &str, namespace: &str, phase: Phase, canary_weight: u8) {
        let code = match phase {
            Phase::Progressing => 0,
            Phase::Failed => 2,
            _ => 1,
        };
        self.status
            .get_or_create(&CanaryLabels {
                name: target.into(),
                namespace: namespace.into(),
            })
            .set(code);
        let w = |workload: String, v: i64| {
            self.weight
                .get_or_create(&WorkloadLabels {
                    workload,
                    namespace: namespace.into(),
                })
                .set(v)
        };
        w(format!("{target}-primary"), 100 - i64::from(canary_weight));
        w(target.to_owned(), i64::from(canary_weight));
    }

    /// Sets `flagger_canary_total` from Canaries counted per namespace; namespaces counted
    /// before and absent now go to 0.
    pub fn set_canary_totals(&self, counts: &BTreeMap<String, i64>) {
        let mut known = self
            .namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known.extend(counts.keys().cloned());
        for namespace in known.iter() {
            let count = counts.get(namespace).copied().unwrap_or(0);
            self.total
                .get_or_create(&NamespaceLabels {
                    namespace: namespace.clone(),
                })
                .set(count);
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_canary_totals_are_exposed_with_flaggers_names() {
        let metrics = ControllerMetrics::new();
        let text = metrics.encode();
        assert!(
            text.contains(&format!(
                "flagger_info{{version=\"{}\",mesh_provider=\"knative\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        metrics.set_canary_totals(&BTreeMap::from([("test".into(), 2), ("prod".into(), 1)]));
        metrics.set_canary_totals(&BTreeMap::from([("test".into(), 3)]));
        let text = metrics.encode();
        assert!(text.contains("flagger_canary_total{namespace=\"test\"} 3"), "{text}");
        assert!(text.contains("flagger_canary_total{namespace=\"prod\"} 0"), "{text}");
    }
}
