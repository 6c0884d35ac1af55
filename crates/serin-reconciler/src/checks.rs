//! Running the checks the engine asks for: metric queries and webhook calls, concurrently,
//! each under its own timeout.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serin_api::{Canary, webhook_timeout};
use serin_core::{CheckRequest, CountsOutcome, HookOutcome, MetricOutcome, Plan};
use serin_metrics::{
    CounterScope, MetricsProvider, QuerySource, Revisions, metric_query, outcome, providers::ProviderSettings,
    read_counters,
};
use serin_webhook::{CanaryWebhookPayload, HookCall};

use crate::Context;

/// The payload and call for webhook `index` of a canary.
pub fn hook_call(canary: &Canary, index: usize, phase: &str, revision: Option<&str>) -> Option<HookCall> {
    let spec = canary.spec.analysis.as_ref()?.webhooks.get(index)?;
    Some(HookCall {
        name: spec.name.clone(),
        url: spec.url.clone(),
        timeout: webhook_timeout(spec),
        retries: u32::try_from(spec.retries.unwrap_or(0).max(0)).unwrap_or(0),
        disable_tls: spec.disable_tls.unwrap_or(false),
        payload: CanaryWebhookPayload {
            name: canary.metadata.name.clone().unwrap_or_default(),
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
            phase: phase.to_owned(),
            checksum: revision.map(serin_core::flagger::revision_hash).unwrap_or_default(),
            type_: spec.type_.clone().or_else(|| Some("rollout".into())),
            metadata: spec.metadata.clone().unwrap_or_default(),
        },
    })
}

/// What one round of checks returned.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Metric outcomes by index.
    pub metrics: BTreeMap<usize, MetricOutcome>,
    /// Webhook outcomes by index.
    pub hooks: BTreeMap<usize, HookOutcome>,
    /// The counters, when the sequential judge asked for them.
    pub counts: Option<CountsOutcome>,
}

/// Runs every requested check concurrently and returns the outcomes by index.
pub async fn run(ctx: &Context, canary: &Canary, plan: &Plan, req: &CheckRequest) -> Outcomes {
    let metric_futures = req
        .metrics
        .iter()
        .map(|&i| async move { (i, metric(ctx, canary, plan, req, i).await) });
    let hook_futures = req.hooks.iter().map(|&i| async move {
        let outcome = match hook_call(canary, i, req.phase.as_str(), req.canary_revision.as_deref()) {
            Some(call) => ctx.webhooks.call(&call).await,
            None => HookOutcome::Error(format!("webhook {i} is not in the spec")),
        };
        (i, outcome)
    });
    let counts = async {
        let request = req.counts?;
        Some(counters(ctx, canary, req, request.calibrate).await)
    };
    let (metrics, hooks, counts) = futures::join!(
        futures::future::join_all(metric_futures),
        futures::future::join_all(hook_futures),
        counts
    );
    Outcomes {
        metrics: metrics.into_iter().collect(),
        hooks: hooks.into_iter().collect(),
        counts,
    }
}

/// The sequential judge's counters of both revisions, from the Canary's metrics server.
async fn counters(ctx: &Context, canary: &Canary, req: &CheckRequest, calibrate: bool) -> CountsOutcome {
    let provider = match ctx.provider_for(canary) {
        Ok(p) => p,
        Err(e) => return CountsOutcome::Error(e),
    };
    let namespace = canary.metadata.namespace.clone().unwrap_or_default();
    let scope = CounterScope {
        namespace: &namespace,
        primary: req.primary_revision.as_deref().unwrap_or_default(),
        canary: req.canary_revision.as_deref().unwrap_or_default(),
    };
    let outcome = read_counters(provider.as_ref(), ctx.config.query_set, scope, calibrate).await;
    match &outcome {
        CountsOutcome::Read { samples, calibration } => {
            tracing::debug!(
                series = samples.len(),
                calibrated = calibration.is_some(),
                "counters read"
            );
        }
        CountsOutcome::Error(e) => tracing::warn!(error = %e, "counters could not be read"),
    }
    outcome
}

async fn metric(ctx: &Context, canary: &Canary, plan: &Plan, req: &CheckRequest, index: usize) -> MetricOutcome {
    let Some(check) = plan.metrics.get(index) else {
        return MetricOutcome::Error(format!("metric {index} is not in the plan"));
    };
    let Some(spec) = canary.spec.analysis.as_ref().and_then(|a| a.metrics.get(index)) else {
        return MetricOutcome::Error(format!("metric {index} is not in the spec"));
    };
    let namespace = canary.metadata.namespace.clone().unwrap_or_default();
    let revisions = Revisions {
        canary: req.canary_revision.as_deref().unwrap_or_default(),
        primary: req.primary_revision.as_deref().unwrap_or_default(),
    };
    let variables = spec.template_variables.clone().unwrap_or_default();
    let (rendered, provider) = match (&spec.template_ref, &spec.query) {
        (Some(r), _) => {
            let ns = r.namespace.clone().unwrap_or_else(|| namespace.clone());
            let (text, provider) = match template_provider(ctx, &ns, &r.name, check.window).await {
                Ok(pair) => pair,
                Err(e) => return MetricOutcome::Error(format!("Metric template {}.{ns} error: {e}", r.name)),
            };
            let name = format!("{}.{ns}", r.name);
            let source = QuerySource::Template {
                name: &name,
                text: &text,
            };
            (metric_query(plan, check, source, revisions, &variables), provider)
        }
        (None, query) => {
            let provider = match ctx.provider_for(canary) {
                Ok(p) => p,
                Err(e) => return MetricOutcome::Error(e),
            };
            let source = match query {
                Some(q) => QuerySource::Inline(q),
                None => QuerySource::Builtin(ctx.config.query_set),
            };
            (metric_query(plan, check, source, revisions, &variables), provider)
        }
    };
    let query = match rendered {
        Ok(q) => q,
        Err(e) => return MetricOutcome::Error(e.to_string()),
    };
    let result = provider.query(&query).await;
    tracing::debug!(metric = %check.name, %query, result = ?result, "metric queried");
    outcome(result)
}

/// Flagger's check at initialization that every metrics provider of the Canary answers
/// (`vector(1)` for Prometheus): `Ok` or the first provider's error.
pub async fn providers_available(ctx: &Context, canary: &Canary) -> Result<(), String> {
    let namespace = canary.metadata.namespace.clone().unwrap_or_default();
    let metrics = canary.spec.analysis.iter().flat_map(|a| a.metrics.iter());
    let mut checked_default = false;
    for metric in metrics {
        let provider = match &metric.template_ref {
            Some(r) => {
                let ns = r.namespace.clone().unwrap_or_else(|| namespace.clone());
                let interval = metric
                    .interval
                    .as_deref()
                    .and_then(|i| serin_api::parse_duration(i).ok())
                    .unwrap_or(Duration::from_secs(60));
                template_provider(ctx, &ns, &r.name, interval)
                    .await
                    .map_err(|e| format!("Metric template {}.{ns} error: {e}", r.name))?
                    .1
            }
            None if checked_default => continue,
            None => {
                checked_default = true;
                ctx.provider_for(canary)?
            }
        };
        provider.is_online().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The query and provider of a MetricTemplate (reading its Secret for credentials); `interval`
/// is the metric's, the query window of providers that take one.
async fn template_provider(
    ctx: &Context,
    namespace: &str,
    name: &str,
    interval: Duration,
) -> Result<(String, Arc<dyn MetricsProvider>), String> {
    let template = ctx
        .config_cache
        .metric_template(&ctx.client, namespace, name)
        .await
        .map_err(|e| e.to_string())?;
    let provider = &template.spec.provider;
    let mut settings = ProviderSettings::new(&provider.type_);
    settings.address = provider.address.clone();
    settings.insecure_skip_verify = provider.insecure_skip_verify.unwrap_or(false);
    settings.region = provider.region.clone();
    settings.interval = interval;
    settings.headers = provider.header_pairs();
    if let Some(secret_ref) = &provider.secret_ref {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        let secret = secrets
            .get(&secret_ref.name)
            .await
            .map_err(|e| format!("secret {}: {e}", secret_ref.name))?;
        settings.secret = Some(
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
        );
    }
    Ok((template.spec.query, ctx.provider_from(&settings)?))
}
