//! `serin check-metrics`: runs a Canary's metric queries once and prints each value with its
//! bound and verdict, as the engine would judge it. Built-in and inline queries go to
//! `--prometheus`; a MetricTemplate's go to its own provider (any type), with its Secret read
//! from the same file (`data` or `stringData`).

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use serin_api::{CanaryDocument, MetricTemplate, canaries_in, validate};
use serin_core::{MetricKind, Verdict, judge};
use serin_metrics::{
    MetricsProvider, PrometheusConfig, PrometheusProvider, QuerySet, QuerySource, Revisions, metric_query, outcome,
    providers::{ProviderSettings, build_provider},
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
    let docs = serde_saphyr::from_multiple::<serde_json::Value>(&text)?;
    let templates: Vec<MetricTemplate> = docs
        .iter()
        .filter(|d| d.get("kind").and_then(|k| k.as_str()) == Some("MetricTemplate"))
        .filter_map(|d| serde_json::from_value(d.clone()).ok())
        .collect();
    let prometheus: Arc<dyn MetricsProvider> =
        Arc::new(PrometheusProvider::new(PrometheusConfig::new(opts.prometheus))?);
    let analysis = canary.spec.analysis.clone().unwrap_or_default();
    let revisions = Revisions {
        canary: opts.canary_revision,
        primary: opts.primary_revision.unwrap_or_default(),
    };
    let mut queries = Vec::new();
    let mut providers = Vec::new();
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
                let settings = template_settings(template, &docs, &ns, metric.window)
                    .with_context(|| format!("metric {}", metric.name))?;
                providers.push(
                    build_provider(&settings)
                        .map_err(|e| anyhow::anyhow!("metric {}: MetricTemplate {}: {e}", metric.name, r.name))?,
                );
                let name = format!("{}.{ns}", r.name);
                let source = QuerySource::Template {
                    name: &name,
                    text: &template.spec.query,
                };
                metric_query(&plan, metric, source, revisions, &variables)
            }
            (None, Some(q)) => {
                providers.push(prometheus.clone());
                metric_query(&plan, metric, QuerySource::Inline(q), revisions, &variables)
            }
            (None, None) => {
                providers.push(prometheus.clone());
                metric_query(
                    &plan,
                    metric,
                    QuerySource::Builtin(opts.query_set),
                    revisions,
                    &variables,
                )
            }
        };
        queries.push(query.with_context(|| format!("metric {}", metric.name))?);
    }
    let outcomes = futures::future::join_all(
        queries
            .iter()
            .zip(&providers)
            .map(|(q, p)| async move { outcome(p.query(q).await) }),
    )
    .await;
    let builtin = analysis
        .metrics
        .iter()
        .any(|m| m.template_ref.is_none() && m.query.is_none());
    if builtin {
        println!("built-in queries: {:?}", opts.query_set);
        let ctx = serin_metrics::QueryContext {
            namespace: plan.namespace.clone(),
            route: opts.canary_revision.to_owned(),
            ..serin_metrics::QueryContext::default()
        };
        let mut found = false;
        for (meaning, template) in serin_metrics::label_probes(opts.query_set) {
            let probe = serin_metrics::render("probe", template, &ctx)?;
            if let Ok(serin_metrics::QueryValue::Value(n) | serin_metrics::QueryValue::LastOf(n, _)) =
                prometheus.query(&probe).await
            {
                println!("  {} series of {} found by {meaning}", n, opts.canary_revision);
                found = true;
                break;
            }
        }
        if !found {
            println!(
                "  no series of {} found by any of: {}",
                opts.canary_revision,
                serin_metrics::label_probes(opts.query_set)
                    .iter()
                    .map(|(m, _)| *m)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    if builtin && let Some(primary) = opts.primary_revision {
        sequential_view(
            &plan,
            prometheus.as_ref(),
            opts.query_set,
            primary,
            opts.canary_revision,
        )
        .await;
    }
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

/// A template's provider settings, with its Secret's data from the file's Secrets.
/// What the sequential judge (`judge.serin.dev/mode: sequential`) reads: the raw counters of
/// both revisions, their totals, and the bounds it would calibrate from the primary's last hour.
async fn sequential_view(
    plan: &serin_core::Plan,
    prometheus: &dyn MetricsProvider,
    set: QuerySet,
    primary: &str,
    canary: &str,
) {
    use serin_core::{Arm, Counter, CountsOutcome, sequential::Bounds};
    let scope = serin_metrics::CounterScope {
        namespace: &plan.namespace,
        primary,
        canary,
    };
    println!("sequential judge (counters, no rate()):");
    for query in serin_metrics::counter_queries(set, scope) {
        println!("  query: {query}");
    }
    match serin_metrics::read_counters(prometheus, set, scope, true).await {
        CountsOutcome::Error(e) => println!("  the counters could not be read: {e}"),
        CountsOutcome::Read { samples, calibration } => {
            for (arm, name) in [(Arm::Primary, primary), (Arm::Canary, canary)] {
                let of = |counter: Counter| -> f64 {
                    samples
                        .iter()
                        .filter(|s| s.arm == arm && s.counter == counter)
                        .map(|s| s.value)
                        .sum()
                };
                let series = samples
                    .iter()
                    .filter(|s| s.arm == arm)
                    .map(|s| &s.series)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                println!(
                    "  {name}: {series} series, {:.0} requests, {:.0} 5xx (since the counters started)",
                    of(Counter::Requests),
                    of(Counter::Errors)
                );
            }
            let histogram = calibration.unwrap_or_else(|| serin_core::sequential::lifetime_histogram(&samples));
            let bounds = Bounds::calibrate(plan, &plan.judge.policy, Some(&histogram));
            let ms = |b: Option<u64>| b.map_or("none".to_owned(), |us| format!("{}ms", us as f64 / 1000.0));
            println!(
                "  bounds from {primary}: mid {}, tail {}, SLO {}; a tail {:.2}× the primary's is a regression",
                ms(bounds.mid_us),
                ms(bounds.tail_us),
                ms(bounds.slo_us),
                f64::from(bounds.r_bad_milli) / 1000.0
            );
        }
    }
}

fn template_settings(
    template: &MetricTemplate,
    docs: &[serde_json::Value],
    namespace: &str,
    interval: Duration,
) -> anyhow::Result<ProviderSettings> {
    let provider = &template.spec.provider;
    let mut settings = ProviderSettings::new(&provider.type_);
    settings.address = provider.address.clone();
    settings.region = provider.region.clone();
    settings.insecure_skip_verify = provider.insecure_skip_verify.unwrap_or(false);
    settings.interval = interval;
    settings.headers = provider.header_pairs();
    if let Some(r) = &provider.secret_ref {
        let secret = docs
            .iter()
            .find(|d| {
                d["kind"] == "Secret"
                    && d.pointer("/metadata/name").and_then(|v| v.as_str()) == Some(r.name.as_str())
                    && d.pointer("/metadata/namespace")
                        .and_then(|v| v.as_str())
                        .unwrap_or(namespace)
                        == namespace
            })
            .with_context(|| format!("Secret {namespace}/{} is not in the file", r.name))?;
        let mut data = BTreeMap::new();
        for (k, v) in secret["data"].as_object().into_iter().flatten() {
            let decoded = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                v.as_str().unwrap_or_default(),
            )
            .with_context(|| format!("Secret {}: data.{k} is not base64", r.name))?;
            data.insert(k.clone(), String::from_utf8_lossy(&decoded).into_owned());
        }
        for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
            data.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
        settings.secret = Some(data);
    }
    Ok(settings)
}
