//! Which alerts a decision raises, as Flagger raises them: a pure function of the status before
//! and after a step and the step's events. Sending them (providers, queues, retries) is the
//! caller's.
//!
//! Flagger's messages and severities: a new revision (`info`, with the Canary's settings), a
//! promotion (`info`), waiting for approval (`warn`), a rollback (`error`, or `warn` for a
//! manual rollback webhook), the first initialization (`info`). Unlike Flagger, which repeats
//! "waiting for approval" at every interval while a gate stays closed, Serin alerts once per
//! wait; and a rollback alert carries the checks that made it.

use serde::{Deserialize, Serialize};

use crate::{Event, Phase, Plan, RolloutStatus, Strategy};

/// Flagger's alert severities (`spec.analysis.alerts[].severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    /// Every alert.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl AlertSeverity {
    /// The severity's name in a Canary (`info`, `warn`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warn => "warn",
            AlertSeverity::Error => "error",
        }
    }

    /// Flagger's rule for an alert subscribed at `self`: `info` receives everything, `warn`
    /// receives warnings and errors, `error` only errors.
    pub fn receives(self, alert: AlertSeverity) -> bool {
        match self {
            AlertSeverity::Info => true,
            AlertSeverity::Warn => alert != AlertSeverity::Info,
            AlertSeverity::Error => alert == AlertSeverity::Error,
        }
    }
}

/// One alert: Flagger's message, its severity, and name/value fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Severity.
    pub severity: AlertSeverity,
    /// Flagger's message text.
    pub message: String,
    /// Fields (`Target`, `Failed checks threshold`, `Revision`, `Reason`…).
    pub fields: Vec<(String, String)>,
}

/// Flagger's metadata fields: target, threshold, progress deadline, traffic routing.
fn metadata(plan: &Plan) -> Vec<(String, String)> {
    let routing = match &plan.strategy {
        Strategy::Canary { weights, .. } => {
            let steps: Vec<String> = weights.iter().map(u8::to_string).collect();
            format!("Weight steps: {} max: {}", steps.join(","), plan.max_weight())
        }
        Strategy::BlueGreen { .. } => "Blue/Green".to_owned(),
    };
    vec![
        (
            "Target".into(),
            format!("{}/{}.{}", plan.target_kind, plan.target_name, plan.namespace),
        ),
        ("Failed checks threshold".into(), plan.threshold.to_string()),
        (
            "Progress deadline".into(),
            format!("{}s", plan.progress_deadline.as_secs()),
        ),
        ("Traffic routing".into(), routing),
    ]
}

/// The alerts of one decision.
pub fn alerts(plan: &Plan, before: &RolloutStatus, after: &RolloutStatus, events: &[Event]) -> Vec<Alert> {
    let revision = after
        .canary_revision
        .clone()
        .or_else(|| before.canary_revision.clone())
        .map(|r| ("Revision".to_owned(), r));
    let alert = |severity, message: &str, mut fields: Vec<(String, String)>| {
        fields.extend(revision.clone());
        Alert {
            severity,
            message: message.to_owned(),
            fields,
        }
    };
    let entered = |phase: Phase| after.phase == phase && before.phase != phase;
    let analysing = |p: Phase| {
        matches!(
            p,
            Phase::Waiting | Phase::Progressing | Phase::WaitingPromotion | Phase::Promoting
        )
    };
    let mut out = Vec::new();
    if before.phase == Phase::Initializing && after.phase == Phase::Initialized {
        out.push(Alert {
            severity: AlertSeverity::Info,
            message: format!("New {} detected, initialization completed.", plan.target_kind),
            fields: metadata(plan),
        });
    }
    let new_revision = after.canary_revision.is_some() && after.canary_revision != before.canary_revision;
    if matches!(after.phase, Phase::Waiting | Phase::Progressing) && (new_revision || !analysing(before.phase)) {
        out.push(alert(
            AlertSeverity::Info,
            "New revision detected, progressing canary analysis.",
            metadata(plan),
        ));
    }
    if entered(Phase::Waiting) {
        out.push(alert(
            AlertSeverity::Warn,
            "Canary is waiting for approval.",
            Vec::new(),
        ));
    }
    if entered(Phase::WaitingPromotion) {
        out.push(alert(
            AlertSeverity::Warn,
            "Canary promotion is waiting for approval.",
            Vec::new(),
        ));
    }
    if entered(Phase::Succeeded) {
        out.push(alert(
            AlertSeverity::Info,
            "Canary analysis completed successfully, promotion finished.",
            Vec::new(),
        ));
    }
    if entered(Phase::Failed) {
        out.push(rollback(plan, after, events, revision.clone()));
    }
    out
}

/// The rollback alert: Flagger's message for the cause, and the checks that failed.
fn rollback(plan: &Plan, after: &RolloutStatus, events: &[Event], revision: Option<(String, String)>) -> Alert {
    let rolling_back = events.iter().find(|e| e.message.starts_with("Rolling back"));
    let manual = rolling_back.is_some_and(|e| e.message.ends_with("manual webhook invoked"));
    let message = match rolling_back {
        _ if manual => "Rolling back manual webhook invoked".to_owned(),
        Some(e) if e.message.contains("progress deadline exceeded") || e.message.contains(" failed: ") => {
            let cause = e
                .message
                .split_once(&plan.canary_ref())
                .map_or(e.message.as_str(), |(_, rest)| rest.trim());
            format!("Progress deadline exceeded {cause}")
        }
        _ => format!("Failed checks threshold reached {}", after.failed_checks),
    };
    let mut fields: Vec<(String, String)> = revision.into_iter().collect();
    let halts: Vec<&str> = events
        .iter()
        .filter(|e| e.message.starts_with("Halt "))
        .map(|e| e.message.as_str())
        .collect();
    if !halts.is_empty() {
        fields.push(("Reason".into(), halts.join("\n")));
    }
    Alert {
        severity: if manual {
            AlertSeverity::Warn
        } else {
            AlertSeverity::Error
        },
        message,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Severity, sim::example_plan};

    fn status(phase: Phase, revision: Option<&str>, failed_checks: u32) -> RolloutStatus {
        RolloutStatus {
            phase,
            canary_revision: revision.map(str::to_owned),
            failed_checks,
            ..RolloutStatus::default()
        }
    }

    fn messages(alerts: &[Alert]) -> Vec<(AlertSeverity, &str)> {
        alerts.iter().map(|a| (a.severity, a.message.as_str())).collect()
    }

    #[test]
    fn flaggers_alerts_once_per_transition() {
        let plan = example_plan();
        let none: &[Event] = &[];
        let succeeded = status(Phase::Succeeded, None, 0);
        let progressing = status(Phase::Progressing, Some("app-00002"), 0);
        assert_eq!(
            messages(&alerts(&plan, &succeeded, &progressing, none)),
            [(
                AlertSeverity::Info,
                "New revision detected, progressing canary analysis."
            )]
        );
        assert!(
            alerts(&plan, &progressing, &progressing, none).is_empty(),
            "no alert between steps"
        );
        let waiting = status(Phase::Waiting, Some("app-00002"), 0);
        assert_eq!(
            messages(&alerts(&plan, &waiting, &waiting, none)),
            [],
            "a wait that goes on is not repeated (Flagger repeats it every interval)"
        );
        assert_eq!(
            messages(&alerts(
                &plan,
                &progressing,
                &status(Phase::Succeeded, Some("app-00002"), 0),
                none
            )),
            [(
                AlertSeverity::Info,
                "Canary analysis completed successfully, promotion finished."
            )]
        );
        let new = alerts(&plan, &succeeded, &progressing, none);
        assert!(
            new[0]
                .fields
                .iter()
                .any(|(k, v)| k == "Traffic routing" && v.starts_with("Weight steps: "))
        );
        assert!(new[0].fields.contains(&("Revision".to_owned(), "app-00002".to_owned())));
    }

    #[test]
    fn a_rollback_alert_names_the_checks_that_failed() {
        let plan = example_plan();
        let events = [
            Event {
                severity: Severity::Warning,
                message: "Halt app.test advancement success rate 80.00% < 99%".into(),
            },
            Event {
                severity: Severity::Warning,
                message: "Rolling back app.test failed checks threshold reached 5".into(),
            },
        ];
        let failed = alerts(
            &plan,
            &status(Phase::Progressing, Some("app-00002"), 4),
            &status(Phase::Failed, Some("app-00002"), 5),
            &events,
        );
        assert_eq!(
            messages(&failed),
            [(AlertSeverity::Error, "Failed checks threshold reached 5")]
        );
        assert!(failed[0].fields.contains(&(
            "Reason".to_owned(),
            "Halt app.test advancement success rate 80.00% < 99%".to_owned()
        )));
    }

    #[test]
    fn severities_are_received_as_in_flagger() {
        use AlertSeverity::*;
        assert!(Info.receives(Info) && Info.receives(Warn) && Info.receives(Error));
        assert!(!Warn.receives(Info) && Warn.receives(Warn) && Warn.receives(Error));
        assert!(!Error.receives(Info) && !Error.receives(Warn) && Error.receives(Error));
    }
}
