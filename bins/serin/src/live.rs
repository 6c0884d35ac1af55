//! The live view of `serin get canary NAME -w` on a terminal: one frame redrawn in place at
//! each change of the Canary (a watch, not a poll). It shows the plan's steps with the current
//! one marked, why the rollout is where it is, each check of the last decision with its value,
//! bound and verdict, the gates opened by hand, the judge's evidence, the ETA and recent events.
//! Everything shown is the controller's own data (status) or the engine's (the plan from the
//! spec); the view decides nothing.

use k8s_openapi::api::core::v1::Event;
use kube::{Api, api::ListParams};
use serin_api::{Canary, validate};
use serin_core::{Strategy, go_duration};

/// Clears the terminal and puts the cursor at the top left.
pub const CLEAR: &str = "\x1b[H\x1b[2J";

/// The steps line: `10 → [20] → 30 → 40 → 50 → promote`, the current weight in brackets.
fn steps(canary: &Canary, weight: i64, phase: &str) -> Option<String> {
    let plan = validate(canary).ok()?.plan;
    let Strategy::Canary { weights, .. } = &plan.strategy else {
        return Some(format!("blue/green, interval {}", go_duration(plan.interval)));
    };
    let mut parts: Vec<String> = weights
        .iter()
        .map(|w| {
            if i64::from(*w) == weight && phase != "Succeeded" && phase != "Failed" {
                format!("[{w}%]")
            } else {
                format!("{w}%")
            }
        })
        .collect();
    parts.push(if phase == "Succeeded" {
        "[promoted]".into()
    } else {
        "promote".into()
    });
    Some(format!(
        "{}   (every {})",
        parts.join(" → "),
        go_duration(plan.interval)
    ))
}

/// One frame of the live view.
pub fn frame(canary: &Canary, events: &[String]) -> String {
    let s = canary.status.clone().unwrap_or_default();
    let name = canary.metadata.name.clone().unwrap_or_default();
    let namespace = canary.metadata.namespace.clone().unwrap_or_default();
    let phase = s.phase.clone().unwrap_or_else(|| "-".into());
    let weight = s.canary_weight.unwrap_or(0);
    let threshold = canary.spec.analysis.as_ref().and_then(|a| a.threshold).unwrap_or(0);
    let mut out = format!(
        "Canary {namespace}/{name}   {phase}   weight {weight}%   {} → {}\n",
        s.primary_revision.as_deref().unwrap_or("-"),
        s.canary_revision.as_deref().unwrap_or("-"),
    );
    if let Some(steps) = steps(canary, weight, &phase) {
        out.push_str(&format!("Steps:     {steps}\n"));
    }
    out.push_str(&format!(
        "Next step: {}   ETA: {}   Failed checks: {}/{threshold}\n",
        s.next_step_at.as_deref().unwrap_or("-"),
        s.estimated_promotion_at.as_deref().unwrap_or("-"),
        s.failed_checks.unwrap_or(0),
    ));
    if let Some(d) = &s.last_decision {
        out.push_str(&format!("Why:       {}\n", d.summary));
        if !d.checks.is_empty() {
            out.push_str("Checks:\n");
            for check in &d.checks {
                out.push_str(&format!("  {check}\n"));
            }
        }
    }
    if !s.approved_gates.is_empty() {
        out.push_str(&format!("Gates opened by hand: {}\n", s.approved_gates.join(", ")));
    }
    if let Some(evidence) = s.judge.as_ref().and_then(|j| j.get("summary")).and_then(|v| v.as_str()) {
        out.push_str(&format!("Evidence:  {evidence}\n"));
    }
    let unusual: Vec<String> = s
        .conditions
        .iter()
        .filter(|c| {
            !matches!(c.type_.as_str(), "Promoted" | "Ready" | "Reconciling" | "Stalled")
                || c.status == "False" && c.type_ == "Ready"
        })
        .map(|c| format!("{}={} ({})", c.type_, c.status, c.reason.as_deref().unwrap_or_default()))
        .collect();
    if !unusual.is_empty() {
        out.push_str(&format!("Conditions: {}\n", unusual.join(", ")));
    }
    if !events.is_empty() {
        out.push_str("Recent events:\n");
        for e in events {
            out.push_str(&format!("  {e}\n"));
        }
    }
    out
}

/// The last `n` events of the Canary, oldest first: `Type Message`.
pub async fn recent_events(client: &kube::Client, namespace: &str, name: &str, n: usize) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let Ok(list) = api.list(&params).await else {
        return Vec::new();
    };
    let mut events: Vec<(String, String)> = list
        .items
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("Canary"))
        .map(|e| {
            let when = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .unwrap_or_default();
            (
                when,
                format!("{:<7} {}", e.type_.unwrap_or_default(), e.message.unwrap_or_default()),
            )
        })
        .collect();
    // By time; events of the same second keep the API's (creation) order.
    events.sort_by(|a, b| a.0.cmp(&b.0));
    let skip = events.len().saturating_sub(n);
    events.into_iter().skip(skip).map(|(_, line)| line).collect()
}
