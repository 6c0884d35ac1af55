//! The sequential judge's queries: raw cumulative counters of both revisions, without `rate()`
//! or `sum()`, one query per family (requests by code, latency buckets), and the primary's
//! latency histogram over the last hour for calibration. The engine computes per-series deltas;
//! this module only reads and labels what Prometheus holds (`docs/judgement.md`, "What it queries").

use serin_core::{Arm, Counter, CounterSample, CountsOutcome, LatencyHistogram};

use crate::{MetricsProvider, QuerySet, Series};

/// The revisions and namespace the counters are read for.
#[derive(Debug, Clone, Copy)]
pub struct CounterScope<'a> {
    /// Namespace of the Service.
    pub namespace: &'a str,
    /// The primary revision.
    pub primary: &'a str,
    /// The revision under analysis.
    pub canary: &'a str,
}

/// How one query set names things.
struct Family {
    /// Requests by code, both revisions.
    requests: String,
    /// Latency buckets, both revisions.
    buckets: String,
    /// The primary's buckets over the last hour, summed by `le`.
    calibration: String,
    /// The label holding the revision, and how to read the revision from its value.
    revision_label: &'static str,
    /// Labels telling a 5xx.
    is_error: fn(&Series) -> bool,
    /// Microseconds per unit of `le`.
    le_micros: f64,
}

fn family(set: QuerySet, s: CounterScope<'_>) -> Family {
    let (ns, pri, can) = (s.namespace, s.primary, s.canary);
    match set {
        QuerySet::Kourier => {
            let selector = format!(r#"envoy_cluster_name=~"{ns}/({pri}|{can})""#);
            Family {
                requests: format!("envoy_cluster_upstream_rq{{{selector}}}"),
                buckets: format!("envoy_cluster_upstream_rq_time_bucket{{{selector}}}"),
                calibration: format!(
                    r#"sum by (le) (increase(envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name="{ns}/{pri}"}}[1h]))"#
                ),
                revision_label: "envoy_cluster_name",
                is_error: |s| s.labels.get("envoy_response_code").is_some_and(|c| c.starts_with('5')),
                le_micros: 1000.0,
            }
        }
        QuerySet::QueueProxyOpenCensus => {
            let selector = format!(r#"namespace_name="{ns}",revision_name=~"{pri}|{can}""#);
            Family {
                requests: format!("revision_request_count{{{selector}}}"),
                buckets: format!("revision_request_latencies_bucket{{{selector}}}"),
                calibration: format!(
                    r#"sum by (le) (increase(revision_request_latencies_bucket{{namespace_name="{ns}",revision_name="{pri}"}}[1h]))"#
                ),
                revision_label: "revision_name",
                is_error: |s| s.labels.get("response_code_class").is_some_and(|c| c == "5xx"),
                le_micros: 1000.0,
            }
        }
        QuerySet::QueueProxyOtel => {
            let joined = |metric: &str, revisions: &str| {
                format!(
                    r#"({metric} * on (job, instance) group_left (kn_revision_name) target_info{{k8s_namespace_name="{ns}",kn_revision_name=~"{revisions}"}}) or {metric}{{k8s_namespace_name="{ns}",kn_revision_name=~"{revisions}"}}"#
                )
            };
            let both = format!("{pri}|{can}");
            Family {
                requests: joined("kn_serving_invocation_duration_seconds_count", &both),
                buckets: joined("kn_serving_invocation_duration_seconds_bucket", &both),
                calibration: format!(
                    "sum by (le) (increase(({})[1h:1m]))",
                    joined("kn_serving_invocation_duration_seconds_bucket", pri)
                ),
                revision_label: "kn_revision_name",
                is_error: |s| {
                    s.labels
                        .get("http_response_status_code")
                        .is_some_and(|c| c.starts_with('5'))
                },
                le_micros: 1_000_000.0,
            }
        }
    }
}

/// The queries of a reading, for `serin check-metrics` and logs: requests, buckets, calibration.
pub fn counter_queries(set: QuerySet, scope: CounterScope<'_>) -> [String; 3] {
    let f = family(set, scope);
    [f.requests, f.buckets, f.calibration]
}

fn arm_of(series: &Series, label: &str, scope: CounterScope<'_>) -> Option<Arm> {
    let value = series.labels.get(label)?;
    let revision = value.rsplit('/').next().unwrap_or(value);
    if revision == scope.canary {
        Some(Arm::Canary)
    } else if revision == scope.primary {
        Some(Arm::Primary)
    } else {
        None
    }
}

/// A series' identity: its labels, without the value.
fn identity(series: &Series) -> String {
    series
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "le" && k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn le_micros(series: &Series, per_unit: f64) -> Option<u64> {
    let le = series.labels.get("le")?;
    if le == "+Inf" {
        return Some(u64::MAX);
    }
    let v: f64 = le.parse().ok()?;
    Some((v * per_unit).round() as u64)
}

/// Reads the counters of both revisions (and the calibration when asked).
pub async fn read_counters(
    provider: &dyn MetricsProvider,
    set: QuerySet,
    scope: CounterScope<'_>,
    calibrate: bool,
) -> CountsOutcome {
    let f = family(set, scope);
    let (requests, buckets) = futures::join!(provider.query_series(&f.requests), provider.query_series(&f.buckets));
    let (requests, buckets) = match (requests, buckets) {
        (Ok(r), Ok(b)) => (r, b),
        (Err(e), _) | (_, Err(e)) => return CountsOutcome::Error(e.to_string()),
    };
    let mut samples = Vec::new();
    for s in &requests {
        let Some(arm) = arm_of(s, f.revision_label, scope) else {
            continue;
        };
        let series = identity(s);
        samples.push(CounterSample {
            series: series.clone(),
            arm,
            counter: Counter::Requests,
            value: s.value,
        });
        if (f.is_error)(s) {
            samples.push(CounterSample {
                series,
                arm,
                counter: Counter::Errors,
                value: s.value,
            });
        }
    }
    for s in &buckets {
        let (Some(arm), Some(le_micros)) = (arm_of(s, f.revision_label, scope), le_micros(s, f.le_micros)) else {
            continue;
        };
        samples.push(CounterSample {
            series: identity(s),
            arm,
            counter: Counter::LatencyAtMost { le_micros },
            value: s.value,
        });
    }
    let calibration = if calibrate {
        match provider.query_series(&f.calibration).await {
            Ok(series) => {
                let mut buckets: Vec<(u64, f64)> = series
                    .iter()
                    .filter_map(|s| Some((le_micros(s, f.le_micros)?, s.value)))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                buckets.sort_by_key(|(le, _)| *le);
                (!buckets.is_empty()).then_some(LatencyHistogram { buckets })
            }
            Err(e) => {
                tracing::debug!(error = %e, "calibration query failed; the judge calibrates on the counters' lifetime");
                None
            }
        }
    } else {
        None
    };
    CountsOutcome::Read { samples, calibration }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], value: f64) -> Series {
        Series {
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            value,
        }
    }

    #[test]
    fn kourier_series_are_told_apart_by_cluster_name_and_code() {
        let scope = CounterScope {
            namespace: "test",
            primary: "app-00001",
            canary: "app-00002",
        };
        let s = series(
            &[("envoy_cluster_name", "test/app-00002"), ("envoy_response_code", "503")],
            4.0,
        );
        assert_eq!(arm_of(&s, "envoy_cluster_name", scope), Some(Arm::Canary));
        assert!((family(QuerySet::Kourier, scope).is_error)(&s));
        let other = series(&[("envoy_cluster_name", "test/app-00003")], 1.0);
        assert_eq!(arm_of(&other, "envoy_cluster_name", scope), None);
        let bucket = series(&[("le", "250")], 1.0);
        assert_eq!(le_micros(&bucket, 1000.0), Some(250_000));
        let otel = series(&[("le", "0.25")], 1.0);
        assert_eq!(le_micros(&otel, 1_000_000.0), Some(250_000));
        assert_eq!(le_micros(&series(&[("le", "+Inf")], 1.0), 1.0), Some(u64::MAX));
    }
}
