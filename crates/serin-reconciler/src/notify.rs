//! Notification: every event Serin records goes through [`record_event`], which writes the
//! Kubernetes event and forwards it to the Canary's `event` webhooks (or, without any, to the
//! global `--event-webhook`), as Flagger forwards every event. Post-rollout hooks run in the
//! background and their outcome is recorded the same way.

use std::{sync::Arc, time::Duration};

use kube::ResourceExt;
use serin_api::Canary;
use serin_core::{Event, HookKind, Phase, Plan, Severity};

use crate::{Context, checks};

/// Records `event` for `canary` and sends it to its event webhooks; `phase` goes in the payload.
pub(crate) async fn record_event(canary: &Canary, ctx: &Context, event: &Event, phase: &str) {
    if ctx.events.record(canary, event).await == crate::events::Recorded::AlreadyThere {
        return;
    }
    let Some(sink) = &ctx.event_sink else { return };
    let millis = (ctx.clock)().as_millis();
    // The spec's own `event` hooks, read from the Canary itself so that events about an
    // invalid Canary (no plan) are forwarded too.
    let hooks: Vec<usize> = canary
        .spec
        .analysis
        .iter()
        .flat_map(|a| a.webhooks.iter().enumerate())
        .filter(|(_, w)| w.type_.as_deref() == Some(HookKind::Event.as_str()))
        .map(|(i, _)| i)
        .collect();
    let calls: Vec<serin_webhook::HookCall> = if hooks.is_empty() {
        ctx.event_webhook
            .iter()
            .map(|url| global_call(canary, url, phase))
            .collect()
    } else {
        hooks
            .into_iter()
            .filter_map(|i| checks::hook_call(canary, i, phase, None))
            .collect()
    };
    for mut call in calls {
        call.payload = call.payload.event(&event.message, event.severity.as_str(), millis);
        sink.send(call);
    }
}

/// A Warning recorded and forwarded, with the Canary's current phase.
pub(crate) async fn warn(canary: &Canary, ctx: &Context, message: String) {
    let phase = canary.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    let event = Event {
        severity: Severity::Warning,
        message,
    };
    record_event(canary, ctx, &event, &phase).await;
}

fn global_call(canary: &Canary, url: &str, phase: &str) -> serin_webhook::HookCall {
    serin_webhook::HookCall {
        name: "events".into(),
        url: url.to_owned(),
        timeout: Duration::from_secs(10),
        retries: 0,
        disable_tls: false,
        payload: serin_webhook::CanaryWebhookPayload {
            name: canary.name_any(),
            namespace: canary.namespace().unwrap_or_default(),
            phase: phase.to_owned(),
            ..Default::default()
        },
    }
}

/// Post-rollout hooks: called in the background; each outcome becomes an event (Flagger's
/// texts), forwarded to the event webhooks like any other.
pub(crate) fn post_rollout(
    canary: &Canary,
    ctx: &Arc<Context>,
    plan: &Plan,
    kind: HookKind,
    phase: Phase,
    revision: Option<&str>,
) {
    for i in plan.hooks_of(kind) {
        let Some(call) = checks::hook_call(canary, i, phase.as_str(), revision) else {
            continue;
        };
        let ctx = ctx.clone();
        let canary = canary.clone();
        tokio::spawn(async move {
            let outcome = ctx.webhooks.call(&call).await;
            let event = if outcome.passed() {
                Event {
                    severity: Severity::Normal,
                    message: format!("Post-rollout check {} passed", call.name),
                }
            } else {
                Event {
                    severity: Severity::Warning,
                    message: format!("Post-rollout hook {} failed {}", call.name, outcome.describe()),
                }
            };
            record_event(&canary, &ctx, &event, phase.as_str()).await;
        });
    }
}
