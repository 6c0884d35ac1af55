//! The loadtester's Prometheus metrics, served on `/metrics`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

use crate::generator::Summary;

/// Labels of request counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Target URL.
    pub target: String,
    /// HTTP status, or `error`.
    pub status: String,
}

/// Labels of per-target series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Target URL.
    pub target: String,
}

/// Labels of task counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// Task type.
    pub kind: String,
    /// `started`, `skipped`, `refused`, `succeeded`, `failed`.
    pub outcome: String,
}

/// All metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<TargetLabels, Histogram>,
    tasks: Family<TaskLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("serin_loadtester");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<TargetLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let tasks = Family::<TaskLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests sent by the load generator, by target and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Response latency of generated requests",
            latency.clone(),
        );
        registry.register("tasks", "Webhook tasks by type and outcome", tasks.clone());
        Metrics {
            registry,
            requests,
            latency,
            tasks,
        }
    }

    /// Records a finished load run.
    pub fn record_run(&self, target: &str, summary: &Summary) {
        for (status, n) in &summary.by_status {
            self.requests
                .get_or_create(&RequestLabels {
                    target: target.to_owned(),
                    status: status.to_string(),
                })
                .inc_by(*n);
        }
        let errors: u64 = summary.errors.values().sum();
        if errors > 0 {
            self.requests
                .get_or_create(&RequestLabels {
                    target: target.to_owned(),
                    status: "error".into(),
                })
                .inc_by(errors);
        }
        let histogram = self.latency.get_or_create(&TargetLabels {
            target: target.to_owned(),
        });
        for micros in &summary.samples_micros {
            histogram.observe(f64::from(*micros) / 1e6);
        }
    }

    /// Counts a task outcome.
    pub fn task(&self, kind: &str, outcome: &str) {
        self.tasks
            .get_or_create(&TaskLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
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
