//! Built-in Knative metrics: `request-success-rate` (percent of non-5xx responses) and
//! `request-duration` (P99 in milliseconds), in three query sets.
//!
//! - [`QuerySet::Kourier`] (default): Flagger's queries over Kourier's Envoy metrics, verbatim.
//!   Needs Prometheus to scrape the Kourier gateway.
//! - [`QuerySet::QueueProxyOpenCensus`]: Knative's queue-proxy metrics before 1.19
//!   (`revision_request_count`, `revision_request_latencies_bucket` in milliseconds), which do not
//!   depend on the ingress.
//! - [`QuerySet::QueueProxyOtel`]: Knative 1.19 and later, whose queue-proxy records the
//!   OpenTelemetry histogram `kn.serving.invocation.duration` in seconds; exported to Prometheus
//!   as `kn_serving_invocation_duration_seconds_*`, with the revision (`kn_revision_name`) and
//!   namespace (`k8s_namespace_name`) on `target_info` only: the queries join on
//!   (job, instance), and fall back to the same labels on the series themselves when a collector
//!   promotes them. Tested against a real Prometheus scraping both shapes.

use serin_core::MetricKind;

/// Which metric names the built-in queries read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuerySet {
    /// Kourier/Envoy (Flagger's queries).
    #[default]
    Kourier,
    /// queue-proxy, Knative before 1.19.
    QueueProxyOpenCensus,
    /// queue-proxy, Knative 1.19 and later.
    QueueProxyOtel,
}

impl std::str::FromStr for QuerySet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kourier" => Ok(QuerySet::Kourier),
            "queue-proxy" | "queue-proxy-opencensus" => Ok(QuerySet::QueueProxyOpenCensus),
            "queue-proxy-otel" => Ok(QuerySet::QueueProxyOtel),
            other => Err(format!(
                "unknown query set {other:?}: kourier, queue-proxy-opencensus or queue-proxy-otel"
            )),
        }
    }
}

const KOURIER_SUCCESS_RATE: &str = r#"
sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}/{{ route }}",envoy_response_code!~"5.*"}[{{ interval }}]))
/
sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}/{{ route }}",}[{{ interval }}]))
* 100
"#;

const KOURIER_DURATION: &str = r#"
histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}/{{ route }}",}[{{ interval }}])) by (le))
"#;

const OPENCENSUS_SUCCESS_RATE: &str = r#"
sum(rate(revision_request_count{namespace_name="{{ namespace }}",revision_name="{{ route }}",response_code_class!="5xx"}[{{ interval }}]))
/
sum(rate(revision_request_count{namespace_name="{{ namespace }}",revision_name="{{ route }}"}[{{ interval }}]))
* 100
"#;

const OPENCENSUS_DURATION: &str = r#"
histogram_quantile(0.99, sum(rate(revision_request_latencies_bucket{namespace_name="{{ namespace }}",revision_name="{{ route }}"}[{{ interval }}])) by (le))
"#;

// Knative's exporter puts the revision and namespace on `target_info` only (resource
// attributes), so the request series are joined to it on (job, instance); where a collector or
// the scrape promotes them onto the series, the direct form answers instead (`or`).
const OTEL_SUCCESS_RATE: &str = r#"
(
  sum(rate(kn_serving_invocation_duration_seconds_count{http_response_status_code!~"5.."}[{{ interval }}]) * on (job, instance) group_left (kn_revision_name) target_info{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}"})
  or
  sum(rate(kn_serving_invocation_duration_seconds_count{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}",http_response_status_code!~"5.."}[{{ interval }}]))
)
/
(
  sum(rate(kn_serving_invocation_duration_seconds_count[{{ interval }}]) * on (job, instance) group_left (kn_revision_name) target_info{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}"})
  or
  sum(rate(kn_serving_invocation_duration_seconds_count{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}"}[{{ interval }}]))
)
* 100
"#;

const OTEL_DURATION: &str = r#"
histogram_quantile(0.99,
  sum by (le) (rate(kn_serving_invocation_duration_seconds_bucket[{{ interval }}]) * on (job, instance) group_left (kn_revision_name) target_info{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}"})
  or
  sum by (le) (rate(kn_serving_invocation_duration_seconds_bucket{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}"}[{{ interval }}]))
) * 1000
"#;

/// Where a query set finds a revision's series: (what it means, a query template counting the
/// revision's series that way). `serin check-metrics` runs them to say which one answers.
pub fn label_probes(set: QuerySet) -> &'static [(&'static str, &'static str)] {
    match set {
        QuerySet::Kourier => &[(
            "envoy_cluster_name=\"NAMESPACE/REVISION\" on envoy_cluster_upstream_rq",
            r#"count(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}/{{ route }}"})"#,
        )],
        QuerySet::QueueProxyOpenCensus => &[(
            "namespace_name, revision_name on revision_request_count",
            r#"count(revision_request_count{namespace_name="{{ namespace }}",revision_name="{{ route }}"})"#,
        )],
        QuerySet::QueueProxyOtel => &[
            (
                "k8s_namespace_name, kn_revision_name on target_info, joined on (job, instance)",
                r#"count(kn_serving_invocation_duration_seconds_count * on (job, instance) group_left (kn_revision_name) target_info{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}"})"#,
            ),
            (
                "k8s_namespace_name, kn_revision_name promoted onto kn_serving_invocation_duration_seconds_count",
                r#"count(kn_serving_invocation_duration_seconds_count{k8s_namespace_name="{{ namespace }}",kn_revision_name="{{ route }}"})"#,
            ),
        ],
    }
}

/// The query template of a built-in metric, or `None` for custom metrics.
pub fn builtin_query(kind: MetricKind, set: QuerySet) -> Option<&'static str> {
    Some(match (kind, set) {
        (MetricKind::SuccessRate, QuerySet::Kourier) => KOURIER_SUCCESS_RATE,
        (MetricKind::Duration, QuerySet::Kourier) => KOURIER_DURATION,
        (MetricKind::SuccessRate, QuerySet::QueueProxyOpenCensus) => OPENCENSUS_SUCCESS_RATE,
        (MetricKind::Duration, QuerySet::QueueProxyOpenCensus) => OPENCENSUS_DURATION,
        (MetricKind::SuccessRate, QuerySet::QueueProxyOtel) => OTEL_SUCCESS_RATE,
        (MetricKind::Duration, QuerySet::QueueProxyOtel) => OTEL_DURATION,
        (MetricKind::Custom, _) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueryContext, render};

    #[test]
    fn kourier_queries_render_like_flaggers_unit_test() {
        let ctx = QueryContext {
            namespace: "default".into(),
            route: "podinfo-00001".into(),
            interval: "1m".into(),
            ..QueryContext::default()
        };
        let q = render(
            "builtin",
            builtin_query(MetricKind::SuccessRate, QuerySet::Kourier).expect("builtin"),
            &ctx,
        )
        .expect("renders");
        assert_eq!(
            q,
            r#"sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"default/podinfo-00001",envoy_response_code!~"5.*"}[1m])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"default/podinfo-00001",}[1m])) * 100"#
        );
        let q = render(
            "builtin",
            builtin_query(MetricKind::Duration, QuerySet::Kourier).expect("builtin"),
            &ctx,
        )
        .expect("renders");
        assert_eq!(
            q,
            r#"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"default/podinfo-00001",}[1m])) by (le))"#
        );
    }
}
