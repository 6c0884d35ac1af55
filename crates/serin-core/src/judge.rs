//! Judgement of metric outcomes against their bounds, with Flagger's messages.

use std::time::Duration;

use crate::{CheckVerdict, MetricCheck, MetricKind, MetricOutcome, Plan, ThresholdRange, Verdict, time::go_duration};

/// The result of judging one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The explanation line.
    pub line: CheckVerdict,
    /// The event message when it did not pass.
    pub halt_message: Option<String>,
}

/// Judges one metric outcome. `canary` is the revision under analysis.
pub fn judge(plan: &Plan, metric: &MetricCheck, outcome: &MetricOutcome, canary: &str) -> Judgement {
    let check = format!("metric {}", metric.name);
    let bound = describe_range(metric.kind, metric.range);
    let window = go_duration(metric.window);
    let no_data = |why: &str| {
        let message = match metric.kind {
            MetricKind::Custom => format!(
                "Halt advancement no values found for metric {}: {why} for revision {canary} of {}",
                metric.name,
                plan.target_ref()
            ),
            _ => format!(
                "Halt advancement no values found for {}: revision {canary} of {} received no traffic in the last {window} ({why})",
                metric.name,
                plan.target_ref()
            ),
        };
        Judgement {
            line: CheckVerdict {
                check: check.clone(),
                observed: why.to_owned(),
                bound: bound.clone(),
                verdict: Verdict::NoData,
                measured: None,
            },
            halt_message: Some(message),
        }
    };
    match outcome {
        MetricOutcome::NoData => no_data("query returned no data"),
        MetricOutcome::NaN => no_data("query returned NaN"),
        MetricOutcome::Error(err) => Judgement {
            line: CheckVerdict {
                check: check.clone(),
                observed: format!("error: {err}"),
                bound,
                verdict: Verdict::Error,
                measured: None,
            },
            halt_message: Some(format!("Prometheus query failed for {}: {err}", metric.name)),
        },
        MetricOutcome::Value(v) => judge_value(plan, metric, *v, check, bound),
        MetricOutcome::LastOf { value, series } => {
            let mut judgement = judge_value(plan, metric, *value, check, bound);
            judgement.line.observed = format!(
                "{} (the last of {series} series, as Flagger reads it; aggregate the query to one series to judge them all)",
                judgement.line.observed
            );
            judgement
        }
    }
}

fn judge_value(plan: &Plan, metric: &MetricCheck, raw: f64, check: String, bound: String) -> Judgement {
    // Flagger truncates durations to whole milliseconds before comparing.
    let value = match metric.kind {
        MetricKind::Duration => raw.trunc(),
        _ => raw,
    };
    let observed = describe_value(metric.kind, value);
    let failure = match (metric.range.min, metric.range.max) {
        (Some(min), _) if value < min => Some(('<', min)),
        (_, Some(max)) if value > max => Some(('>', max)),
        _ => None,
    };
    let halt_message = failure.map(|(op, limit)| {
        let who = plan.canary_ref();
        match metric.kind {
            MetricKind::SuccessRate => {
                format!("Halt {who} advancement success rate {value:.2}% {op} {limit}%")
            }
            MetricKind::Duration => format!(
                "Halt {who} advancement request duration {} {op} {}",
                go_duration(millis(value)),
                go_duration(millis(limit))
            ),
            MetricKind::Custom => {
                format!("Halt {who} advancement {} {value:.2} {op} {limit}", metric.name)
            }
        }
    });
    let verdict = if halt_message.is_some() {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    Judgement {
        line: CheckVerdict {
            check,
            observed,
            bound,
            verdict,
            measured: Some(crate::Measured {
                value,
                min: metric.range.min,
                max: metric.range.max,
                unit: match metric.kind {
                    MetricKind::SuccessRate => "%",
                    MetricKind::Duration => "ms",
                    MetricKind::Custom => "",
                }
                .to_owned(),
            }),
        },
        halt_message,
    }
}

fn millis(value: f64) -> Duration {
    if value.is_finite() && value > 0.0 {
        Duration::from_millis(value as u64)
    } else {
        Duration::ZERO
    }
}

fn describe_value(kind: MetricKind, value: f64) -> String {
    match kind {
        MetricKind::SuccessRate => format!("{value:.2}%"),
        MetricKind::Duration => go_duration(millis(value)),
        MetricKind::Custom => format!("{value:.2}"),
    }
}

fn describe_range(kind: MetricKind, range: ThresholdRange) -> String {
    let unit = |v: f64| match kind {
        MetricKind::SuccessRate => format!("{v}%"),
        MetricKind::Duration => go_duration(millis(v)),
        MetricKind::Custom => format!("{v}"),
    };
    match (range.min, range.max) {
        (Some(min), Some(max)) => format!("{} <= value <= {}", unit(min), unit(max)),
        (Some(min), None) => format!(">= {}", unit(min)),
        (None, Some(max)) => format!("<= {}", unit(max)),
        (None, None) => "any value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::example_plan;

    #[test]
    fn the_last_of_several_series_is_judged_and_the_explanation_says_so() {
        let plan = example_plan();
        let success_rate = &plan.metrics[0];
        let passing = judge(
            &plan,
            success_rate,
            &MetricOutcome::LastOf { value: 99.5, series: 3 },
            "podinfo-00002",
        );
        assert_eq!(passing.halt_message, None);
        assert_eq!(
            passing.line.observed,
            "99.50% (the last of 3 series, as Flagger reads it; aggregate the query to one series to judge them all)"
        );
        let failing = judge(
            &plan,
            success_rate,
            &MetricOutcome::LastOf { value: 90.0, series: 2 },
            "podinfo-00002",
        );
        assert_eq!(
            failing.halt_message.as_deref(),
            Some("Halt podinfo.test advancement success rate 90.00% < 99%")
        );
    }
}
