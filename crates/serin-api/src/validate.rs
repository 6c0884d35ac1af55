//! Validation of a `Canary` and its conversion into an engine [`Plan`], with errors that
//! name the field path.
//!
//! Index correspondence: `plan.metrics[i]` is `spec.analysis.metrics[i]` and
//! `plan.webhooks[i]` is `spec.analysis.webhooks[i]`, so callers find queries and URLs by index.

use std::{fmt, time::Duration};

use serin_core::{Hook, HookKind, MetricCheck, MetricKind, Plan, Strategy, ThresholdRange};

use crate::{Canary, CanaryAnalysis, CanaryMetric, CanaryWebhook};

/// One problem with a Canary, at a field path such as `spec.analysis.stepWeight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A Canary that cannot be rolled out, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Canary: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidCanary {
    /// All problems, in field order.
    pub problems: Vec<Problem>,
}

/// A valid Canary: its plan, and fields that are accepted but have no effect with Knative.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// The engine plan.
    pub plan: Plan,
    /// Ignored fields, with why.
    pub warnings: Vec<Problem>,
}

/// Flagger's default analysis interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Flagger's default progress deadline.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);
/// Default metric window.
pub const DEFAULT_METRIC_WINDOW: Duration = Duration::from_secs(60);
/// Default webhook timeout.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Checker {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn duration(&mut self, path: &str, text: Option<&str>, default: Duration) -> Duration {
        match text.map(str::trim) {
            None | Some("") => default,
            Some(text) => match parse_duration(text) {
                Ok(d) if d.is_zero() => {
                    self.error(path, format!("{text:?} must be longer than zero"));
                    default
                }
                Ok(d) => d,
                Err(e) => {
                    self.error(path, format!("{text:?} is not a duration like 15s, 1m or 1h30m: {e}"));
                    default
                }
            },
        }
    }

    fn weight(&mut self, path: &str, value: i64) -> Option<u8> {
        match u8::try_from(value) {
            Ok(w) if (1..=100).contains(&w) => Some(w),
            _ => {
                self.error(path, format!("{value} is not a weight between 1 and 100"));
                None
            }
        }
    }
}

/// Why a Canary duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// Parses a duration as Flagger does, with Go's `time.ParseDuration`: `15s`, `1m`, `1h30m`,
/// `500ms`, `1.5h` (units `ns`, `us`, `ms`, `s`, `m`, `h`; no days, no spaces). Negative durations
/// are refused.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(DurationError(format!("time: invalid duration {text:?}")));
    }
    let parsed: kube::core::Duration = text.parse().map_err(|e| DurationError(format!("{e}")))?;
    if parsed.is_negative() {
        return Err(DurationError("must not be negative".into()));
    }
    Ok(parsed.into())
}

/// Validates a Canary and converts it into a plan.
pub fn validate(canary: &Canary) -> Result<Validated, InvalidCanary> {
    let mut c = Checker::default();
    let spec = &canary.spec;
    let name = canary.metadata.name.clone().unwrap_or_default();
    let namespace = canary.metadata.namespace.clone().unwrap_or_else(|| "default".into());

    match spec.provider.as_deref() {
        Some("knative") => {}
        None | Some("") => c.error(
            "spec.provider",
            "must be \"knative\" for a Knative Service target (Flagger requires it too)",
        ),
        Some(other) => c.error(
            "spec.provider",
            format!("{other:?} is not supported: Serin routes Knative Services only (provider: knative)"),
        ),
    }
    let target = &spec.target_ref;
    if target.api_version != "serving.knative.dev/v1" {
        c.error(
            "spec.targetRef.apiVersion",
            format!("{:?} must be \"serving.knative.dev/v1\"", target.api_version),
        );
    }
    if target.kind != "Service" {
        c.error(
            "spec.targetRef.kind",
            format!("{:?} must be \"Service\" (a Knative Service)", target.kind),
        );
    }
    if target.name.is_empty() {
        c.error("spec.targetRef.name", "is required");
    }
    if spec.autoscaler_ref.is_some() {
        c.error(
            "spec.autoscalerRef",
            "can't use an autoscaler with a Knative Service: Knative scales revisions itself",
        );
    }
    for (field, value) in [
        ("ingressRef", &spec.ingress_ref),
        ("routeRef", &spec.route_ref),
        ("upstreamRef", &spec.upstream_ref),
        ("service", &spec.service),
    ] {
        if value.is_some() {
            c.warn(
                format!("spec.{field}"),
                "is ignored for Knative: Knative owns the Service's networking",
            );
        }
    }
    let progress_deadline = match spec.progress_deadline_seconds {
        None => DEFAULT_PROGRESS_DEADLINE,
        Some(s) if s > 0 => Duration::from_secs(s.unsigned_abs()),
        Some(s) => {
            c.error("spec.progressDeadlineSeconds", format!("{s} must be positive"));
            DEFAULT_PROGRESS_DEADLINE
        }
    };
    let default_analysis = CanaryAnalysis::default();
    let analysis = match &spec.analysis {
        Some(a) => a,
        None => {
            c.error("spec.analysis", "is required");
            &default_analysis
        }
    };
    let interval = c.duration("spec.analysis.interval", analysis.interval.as_deref(), DEFAULT_INTERVAL);
    let threshold = match analysis.threshold {
        None => 1,
        Some(t) if t <= 0 => 1,
        Some(t) => u32::try_from(t).unwrap_or(u32::MAX),
    };
    let strategy = strategy(&mut c, analysis);
    let metrics = analysis
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| metric(&mut c, i, m))
        .collect();
    let webhooks = analysis
        .webhooks
        .iter()
        .enumerate()
        .map(|(i, w)| webhook(&mut c, i, w))
        .collect();
    for (field, set) in [
        ("primaryReadyThreshold", analysis.primary_ready_threshold.is_some()),
        ("canaryReadyThreshold", analysis.canary_ready_threshold.is_some()),
        ("mirrorWeight", analysis.mirror_weight.is_some()),
    ] {
        if set {
            c.warn(
                format!("spec.analysis.{field}"),
                "is ignored for Knative: it applies to Deployments and meshes only",
            );
        }
    }
    if let Some(server) = spec.metrics_server.as_deref()
        && !is_http_url(server)
    {
        c.warn(
            "spec.metricsServer",
            format!("{server:?} is not an http(s) URL: every built-in metric and inline query check will fail"),
        );
    }
    for (i, alert) in analysis.alerts.iter().enumerate() {
        if !matches!(alert.severity.as_deref(), None | Some("" | "info" | "warn" | "error")) {
            c.error(
                format!("spec.analysis.alerts[{i}].severity"),
                format!(
                    "{:?} is not info, warn or error",
                    alert.severity.as_deref().unwrap_or_default()
                ),
            );
        }
        if alert.provider_ref.name.is_empty() {
            c.error(format!("spec.analysis.alerts[{i}].providerRef.name"), "is required");
        }
    }
    if !c.problems.is_empty() {
        return Err(InvalidCanary { problems: c.problems });
    }
    Ok(Validated {
        plan: Plan {
            canary_name: name,
            namespace,
            target_name: target.name.clone(),
            target_kind: target.kind.clone(),
            interval,
            threshold,
            strategy,
            progress_deadline,
            skip_analysis: spec.skip_analysis.unwrap_or(false) || spec.analysis.is_none(),
            suspend: spec.suspend.unwrap_or(false),
            metrics,
            webhooks,
            judge: serin_core::JudgeSettings::default(),
        },
        warnings: c.warnings,
    })
}

fn strategy(c: &mut Checker, a: &CanaryAnalysis) -> Strategy {
    if a.match_.as_ref().is_some_and(|m| !m.is_empty()) {
        c.error("spec.analysis.match", "A/B testing is not supported for Knative: Knative routes by percentage only, it cannot match headers or cookies");
    }
    if a.mirror == Some(true) {
        c.error(
            "spec.analysis.mirror",
            "traffic mirroring is not supported for Knative: Knative cannot shadow requests",
        );
    }
    if a.session_affinity.is_some() {
        c.error(
            "spec.analysis.sessionAffinity",
            "session affinity is not supported for Knative: Knative routes each request by percentage",
        );
    }
    let promotion_step = match a.step_weight_promotion {
        None | Some(0) => None,
        Some(p) => c.weight("spec.analysis.stepWeightPromotion", p),
    };
    let iterations = a.iterations.filter(|i| *i != 0);
    let chosen = [
        a.step_weight.is_some_and(|s| s != 0),
        a.step_weights.as_ref().is_some_and(|s| !s.is_empty()),
        iterations.is_some(),
    ];
    if chosen.iter().filter(|x| **x).count() > 1 {
        c.error("spec.analysis", "set only one of stepWeight, stepWeights or iterations");
    }
    if let Some(n) = iterations {
        return match u32::try_from(n) {
            Ok(n) if n > 0 => Strategy::BlueGreen { iterations: n },
            _ => {
                c.error("spec.analysis.iterations", format!("{n} must be positive"));
                Strategy::BlueGreen { iterations: 1 }
            }
        };
    }
    if let Some(list) = a.step_weights.as_ref().filter(|s| !s.is_empty()) {
        let mut weights = Vec::with_capacity(list.len());
        for (i, w) in list.iter().enumerate() {
            let Some(w) = c.weight(&format!("spec.analysis.stepWeights[{i}]"), *w) else {
                continue;
            };
            if weights.last().is_some_and(|prev| *prev >= w) {
                c.error(
                    format!("spec.analysis.stepWeights[{i}]"),
                    "weights must be strictly increasing",
                );
            }
            weights.push(w);
        }
        if a.max_weight.is_some() {
            c.warn(
                "spec.analysis.maxWeight",
                "is ignored when stepWeights is set: the last step is the max weight",
            );
        }
        return Strategy::Canary {
            weights,
            promotion_step,
        };
    }
    match a.step_weight {
        Some(s) if s != 0 => {
            let step = c.weight("spec.analysis.stepWeight", s).unwrap_or(100);
            let max = match a.max_weight {
                None | Some(0) => 100,
                Some(m) => c.weight("spec.analysis.maxWeight", m).unwrap_or(100),
            };
            Strategy::Canary {
                weights: Strategy::linear(step, max),
                promotion_step,
            }
        }
        _ => {
            c.error(
                "spec.analysis",
                "one of stepWeight, stepWeights or iterations is required",
            );
            Strategy::Canary {
                weights: vec![100],
                promotion_step,
            }
        }
    }
}

fn metric(c: &mut Checker, i: usize, m: &CanaryMetric) -> MetricCheck {
    let path = format!("spec.analysis.metrics[{i}]");
    let builtin = matches!(m.name.as_str(), "request-success-rate" | "request-duration");
    if builtin && (m.template_ref.is_some() || m.query.is_some()) {
        let own = if m.template_ref.is_some() {
            "templateRef"
        } else {
            "query"
        };
        c.error(
            format!("{path}.name"),
            format!(
                "{:?} is a built-in metric: with {own} Flagger runs both the built-in query and yours against the same bounds; name this metric differently to run only yours, or remove {own} to run the built-in",
                m.name
            ),
        );
    }
    let kind = match m.name.as_str() {
        _ if m.template_ref.is_some() || m.query.is_some() => MetricKind::Custom,
        "request-success-rate" => MetricKind::SuccessRate,
        "request-duration" => MetricKind::Duration,
        "" => {
            c.error(format!("{path}.name"), "is required");
            MetricKind::Custom
        }
        other => {
            c.error(
                path.clone(),
                format!("metric {other:?} is not built in and has neither templateRef nor query"),
            );
            MetricKind::Custom
        }
    };
    if let Some(t) = &m.template_ref
        && t.name.is_empty()
    {
        c.error(format!("{path}.templateRef.name"), "is required");
    }
    let window = c.duration(
        &format!("{path}.interval"),
        m.interval.as_deref(),
        DEFAULT_METRIC_WINDOW,
    );
    let range = match (m.threshold_range, m.threshold) {
        (Some(r), _) => {
            if let (Some(min), Some(max)) = (r.min, r.max)
                && min > max
            {
                c.error(
                    format!("{path}.thresholdRange"),
                    format!("min {min} is greater than max {max}"),
                );
            }
            if r.min.is_some_and(f64::is_nan) || r.max.is_some_and(f64::is_nan) {
                c.error(format!("{path}.thresholdRange"), "bounds must be numbers");
            }
            ThresholdRange { min: r.min, max: r.max }
        }
        // Legacy scalar threshold: a minimum for success rate, a maximum otherwise.
        (None, threshold) => {
            let t = threshold.unwrap_or(0.0);
            match kind {
                MetricKind::SuccessRate => ThresholdRange {
                    min: Some(t),
                    max: None,
                },
                _ => ThresholdRange {
                    min: None,
                    max: Some(t),
                },
            }
        }
    };
    MetricCheck {
        name: m.name.clone(),
        kind,
        range,
        window,
    }
}

fn webhook(c: &mut Checker, i: usize, w: &CanaryWebhook) -> Hook {
    let path = format!("spec.analysis.webhooks[{i}]");
    if w.name.is_empty() {
        c.error(format!("{path}.name"), "is required");
    }
    if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
        c.error(format!("{path}.url"), format!("{:?} is not an http(s) URL", w.url));
    }
    let _ = c.duration(
        &format!("{path}.timeout"),
        w.timeout.as_deref(),
        DEFAULT_WEBHOOK_TIMEOUT,
    );
    if w.retries.is_some_and(|r| r < 0) {
        c.error(format!("{path}.retries"), "must not be negative");
    }
    let kind = match w.type_.as_deref().unwrap_or("") {
        "" | "rollout" => HookKind::Rollout,
        "confirm-rollout" => HookKind::ConfirmRollout,
        "pre-rollout" => HookKind::PreRollout,
        "confirm-traffic-increase" => HookKind::ConfirmTrafficIncrease,
        "confirm-promotion" => HookKind::ConfirmPromotion,
        "post-rollout" => HookKind::PostRollout,
        "rollback" => HookKind::Rollback,
        "event" => HookKind::Event,
        other => {
            c.error(format!("{path}.type"), format!("{other:?} is not a webhook type (confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event)"));
            HookKind::Rollout
        }
    };
    Hook {
        name: w.name.clone(),
        kind,
    }
}

/// The timeout of a webhook (default 10s); validation has already checked it parses.
pub fn webhook_timeout(w: &CanaryWebhook) -> Duration {
    w.timeout
        .as_deref()
        .and_then(|t| parse_duration(t.trim()).ok())
        .unwrap_or(DEFAULT_WEBHOOK_TIMEOUT)
}

/// Whether `text` is an `http://` or `https://` URL with a host (what the Prometheus client takes).
pub fn is_http_url(text: &str) -> bool {
    let rest = text.strip_prefix("http://").or_else(|| text.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}
