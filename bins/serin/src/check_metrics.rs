//! `serin check-metrics`: runs a Canary's metric queries once against Prometheus and prints each
//! value with its bound and verdict, as the engine would judge it.

use std::path::Path;

use anyhow::{Context, bail};
use serin_api::{CanaryDocument, MetricTemplate, canaries_in, validate};
use serin_core::{MetricKind, Verdict, judge};
use serin_metrics::{
    PrometheusConfig, PrometheusProvider, QueryContext, QuerySet, builtin_query, promql_duration, query_all, render,
};

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
    let mut queries = Vec::new();
    for (i, metric) in plan.metrics.iter().enumerate() {
        let spec = &analysis.metrics[i];
        let template = match (metric.kind, &spec.template_ref, &spec.query) {
            (_, Some(r), _) => templates
                .iter()
                .find(|t| t.metadata.name.as_deref() == Some(r.name.as_str()))
                .map(|t| t.spec.query.clone())
                .with_context(|| {
                    format!(
                        "metric {}: MetricTemplate {} is not in {}",
                        metric.name,
                        r.name,
                        opts.file.display()
                    )
                })?,
            (_, None, Some(q)) => q.clone(),
            (kind, None, None) => builtin_query(kind, opts.query_set).unwrap_or_default().to_owned(),
        };
        let ctx = QueryContext {
            name: plan.canary_name.clone(),
            namespace: plan.namespace.clone(),
            target: plan.target_name.clone(),
            service: plan.target_name.clone(),
            ingress: plan.target_name.clone(),
            route: opts.canary_revision.to_owned(),
            primary: opts.primary_revision.unwrap_or_default().to_owned(),
            interval: promql_duration(metric.window),
            variables: spec.template_variables.clone().unwrap_or_default(),
        };
        queries.push(render(&template, &ctx).with_context(|| format!("metric {}", metric.name))?);
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
