//! Notification: Kubernetes events, event webhooks (per-Canary `event` hooks or the global
//! `--event-webhook`) and post-rollout hooks, whose outcome becomes an event in turn.

use std::time::Duration;

use kube::ResourceExt;
use serin_api::Canary;
use serin_core::{Event, HookKind, Phase, Plan, Severity};

use crate::{Context, checks};

pub(crate) async fn record_event(canary: &Canary, ctx: &Context, plan: &Plan, event: &Event, phase: Phase) {
    ctx.events.record(canary, event).await;
    let Some(sink) = &ctx.event_sink else { return };
    let hooks = plan.hooks_of(HookKind::Event);
    let millis = (ctx.clock)().as_millis();
    if hooks.is_empty() {
        if let Some(url) = &ctx.event_webhook
            && let Some(mut call) = global_call(canary, url)
        {
            call.payload = call.payload.event(&event.message, event.severity.as_str(), millis);
            sink.send(call);
        }
        return;
    }
    for i in hooks {
        if let Some(mut call) = checks::hook_call(canary, i, phase.as_str(), None) {
            call.payload = call.payload.event(&event.message, event.severity.as_str(), millis);
            sink.send(call);
        }
    }
}

fn global_call(canary: &Canary, url: &str) -> Option<serin_webhook::HookCall> {
    Some(serin_webhook::HookCall {
        name: "events".into(),
        url: url.to_owned(),
        timeout: Duration::from_secs(10),
        retries: 0,
        disable_tls: false,
        payload: serin_webhook::CanaryWebhookPayload {
            name: canary.name_any(),
            namespace: canary.namespace().unwrap_or_default(),
            phase: canary.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default(),
            ..Default::default()
        },
    })
}

/// Post-rollout hooks: called in the background; their outcome becomes an event.
pub(crate) fn post_rollout(
    canary: &Canary,
    ctx: &Context,
    plan: &Plan,
    kind: HookKind,
    phase: Phase,
    revision: Option<&str>,
) {
    for i in plan.hooks_of(kind) {
        let Some(call) = checks::hook_call(canary, i, phase.as_str(), revision) else {
            continue;
        };
        let webhooks = ctx.webhooks.clone();
        let name = call.name.clone();
        let canary = canary.clone();
        let events = EventTask {
            client: ctx.client.clone(),
            component: ctx.config.component.clone(),
        };
        tokio::spawn(async move {
            let outcome = webhooks.call(&call).await;
            let event = if outcome.passed() {
                Event {
                    severity: Severity::Normal,
                    message: format!("Post-rollout check {name} passed"),
                }
            } else {
                Event {
                    severity: Severity::Warning,
                    message: format!("Post-rollout hook {name} failed {}", outcome.describe()),
                }
            };
            crate::events::EventRecorder::new(events.client, &events.component)
                .record(&canary, &event)
                .await;
        });
    }
}

struct EventTask {
    client: kube::Client,
    component: String,
}
