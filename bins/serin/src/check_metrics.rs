//! `serin check-metrics`: runs a Canary's metric queries once against Prometheus and prints each
//! value with its bound and verdict, as the engine would judge it.

use std::path::Path;

use anyhow::{Context, bail};
use serin_api::{CanaryDocument, MetricTemplate, canaries_in, validate};
use serin_core::{MetricKind, Verdict, judge};
use serin_metrics::{PrometheusConfig, PrometheusProvider, QuerySet, QuerySource, Revisions, metric_query, query_all};

/// Options of the subcommand.
pub struct CheckMetrics<'a> {
    /// The Canary file (MetricTemplates referenced by the Canary may be in it too).
    pub file: &'a Path,
    /// Prometheus base URL.
    pub prometheus: &'a str,
    /// The revision to measure (`{{ route }}`).
    pub canary_revision: &'a str,
    /// The primary revision (`{{ primary }}`).
    pub primary_revision: Option<&'a str>,
    /// Built-in query set.
    pub query_set: QuerySet,
}

/// Runs the check; returns whether every metric passed.
pub async fn run(opts: CheckMetrics<'_>) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(opts.file).with_context(|| format!("cannot read {}", opts.file.display()))?;
    let Some(CanaryDocument::Parsed(canary)) = canaries_in(&text)?.into_iter().next() else {
        bail!("{}: no valid Canary found (run `serin validate`)", opts.file.display());
    };
    let plan = validate(&canary)
        .map_err(|e| anyhow::anyhow!("{}: {e}", opts.file.display()))?
        .plan;
    let templates: Vec<MetricTemplate> = serde_saphyr::from_multiple::<serde_json::Value>(&text)?
        .into_iter()
        .filter(|d| d.get("kind").and_then(|k| k.as_str()) == Some("MetricTemplate"))
        .filter_map(|d| serde_json::from_value(d).ok())
        .collect();
    let analysis = canary.spec.analysis.clone().unwrap_or_default();
    let revisions = Revisions {
        canary: opts.canary_revision,
        primary: opts.primary_revision.unwrap_or_default(),
    };
    let mut queries = Vec::new();
    for (i, metric) in plan.metrics.iter().enumerate() {
        let spec = &analysis.metrics[i];
        let variables = spec.template_variables.clone().unwrap_or_default();
        let query = match (&spec.template_ref, &spec.query) {
            (Some(r), _) => {
                let template = templates
                    .iter()
                    .find(|t| t.metadata.name.as_deref() == Some(r.name.as_str()))
                    .with_context(|| {
                        format!(
                            "metric {}: MetricTemplate {} is not in {}",
                            metric.name,
                            r.name,
                            opts.file.display()
                        )
                    })?;
                let ns = r.namespace.clone().unwrap_or_else(|| plan.namespace.clone());
                let name = format!("{}.{ns}", r.name);
                let source = QuerySource::Template {
                    name: &name,
                    text: &template.spec.query,
                };
                metric_query(&plan, metric, source, revisions, &variables)
            }
            (None, Some(q)) => metric_query(&plan, metric, QuerySource::Inline(q), revisions, &variables),
            (None, None) => metric_query(
                &plan,
                metric,
                QuerySource::Builtin(opts.query_set),
                revisions,
                &variables,
            ),
        };
        queries.push(query.with_context(|| format!("metric {}", metric.name))?);
    }
    let provider = PrometheusProvider::new(PrometheusConfig::new(opts.prometheus))?;
    let outcomes = query_all(&provider, &queries).await;
    let mut all_passed = true;
    for ((metric, query), outcome) in plan.metrics.iter().zip(&queries).zip(&outcomes) {
        let j = judge(&plan, metric, outcome, opts.canary_revision);
        let unit = match metric.kind {
            MetricKind::Duration => " (P99)",
            _ => "",
        };
        println!(
            "{}{unit}: {} (bound {}) {:?}",
            metric.name, j.line.observed, j.line.bound, j.line.verdict
        );
        println!("  query: {query}");
        if let Some(message) = j.halt_message {
            println!("  {message}");
        }
        all_passed &= j.line.verdict == Verdict::Pass;
    }
    Ok(all_passed)
}
