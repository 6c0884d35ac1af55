//! One reconcile of one Canary: observe, check, decide (serin-core), act, record.

use std::{sync::Arc, time::Duration};

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};
use serde_json::json;
use serin_api::{Canary, CanaryStatus, LastDecision, rfc3339, validate};
use serin_core::{
    Action as Step, Decision, Event, HookKind, Observation, Phase, Plan, Severity, Step as EngineStep, Strategy, Time,
    finalize, schedule::estimated_promotion, step,
};
use serin_knative::{RouterError, Target};

use crate::{Context, Error, checks};

/// The finalizer Flagger uses for `revertOnDeletion`.
pub const FINALIZER: &str = "finalizer.flagger.app";

fn key(canary: &Canary) -> String {
    format!("{}/{}", canary.namespace().unwrap_or_default(), canary.name_any())
}

/// Reconciles one Canary.
pub async fn reconcile(canary: Arc<Canary>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&canary, &ctx).await;
    let labels = crate::metrics::ResultLabels {
        result: if result.is_ok() { "ok".into() } else { "error".into() },
    };
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let target = canary.spec.target_ref.name.clone();
    ctx.metrics
        .duration
        .get_or_create(&crate::metrics::CanaryLabels {
            name: target,
            namespace: canary.namespace().unwrap_or_default(),
        })
        .observe(started.elapsed().as_secs_f64());
    result
}

/// Requeues failed reconciles: soon for transient trouble, later otherwise.
pub fn error_policy(canary: Arc<Canary>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(canary = %key(&canary), %error, "reconcile failed");
    if error.is_transient() {
        Action::requeue(Duration::from_secs(2))
    } else {
        Action::requeue(Duration::from_secs(30))
    }
}

async fn reconcile_inner(canary: &Canary, ctx: &Context) -> Result<Action, Error> {
    let namespace = canary.namespace().unwrap_or_default();
    let api: Api<Canary> = Api::namespaced(ctx.client.clone(), &namespace);
    let revert = canary.spec.revert_on_deletion.unwrap_or(false);
    let has_finalizer = canary.finalizers().iter().any(|f| f == FINALIZER);
    if canary.metadata.deletion_timestamp.is_some() {
        return finalize_deletion(canary, ctx, &api, has_finalizer).await;
    }
    if revert && !has_finalizer {
        let mut finalizers = canary.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        api.patch(
            &canary.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
        )
        .await?;
        return Ok(Action::requeue(Duration::ZERO));
    }
    let plan = match validate(canary) {
        Ok(v) => v.plan,
        Err(invalid) => {
            let message = invalid
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            reject(canary, ctx, &api, "InvalidSpec", &format!("invalid Canary: {message}")).await?;
            return Ok(Action::await_change());
        }
    };
    ctx.targets.record(&namespace, &canary.name_any(), &plan.target_name);
    if let Some(owner) = earlier_canary_for_same_target(canary, ctx) {
        let message = format!(
            "Knative Service {} is already managed by Canary {owner}; remove one of them",
            plan.target_ref()
        );
        reject(canary, ctx, &api, "DuplicateTarget", &message).await?;
        return Ok(Action::requeue(ctx.config.resync));
    }
    let target = Target {
        namespace: namespace.clone(),
        name: plan.target_name.clone(),
    };
    let observed = match ctx.router.observe(&target).await {
        Ok(o) => o,
        Err(RouterError::NotFound(service)) => {
            reject(
                canary,
                ctx,
                &api,
                "TargetNotFound",
                &format!("Knative Service {service} not found"),
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = &observed.routes_rejected {
        tracing::warn!(canary = %key(canary), %reason, "Knative reports the routes not ready");
    }
    let now = (ctx.clock)();
    let previous = canary.status.clone().unwrap_or_default();
    let status = previous.to_rollout();
    if let Some(due) = status.next_step_at
        && now >= due
    {
        ctx.metrics.step_lag.observe(now.since(due).as_secs_f64());
    }
    let mut obs = Observation::of(observed.world);
    let decision = loop {
        match step(&plan, &status, &obs, now) {
            EngineStep::Done(d) => break d,
            EngineStep::Need(request) => {
                let (metrics, hooks) = checks::run(ctx, canary, &plan, &request).await;
                obs.metrics.extend(metrics);
                obs.hooks.extend(hooks);
            }
        }
    };
    execute(canary, ctx, &plan, &target, &decision).await?;
    write_status(canary, &api, &plan, &decision, &previous, now).await?;
    ctx.metrics.observe_status(
        &plan.target_name,
        &namespace,
        decision.status.phase,
        decision.status.canary_weight,
    );
    count_outcome(ctx, &plan, status.phase, &decision);
    let requeue = match decision.wake_at {
        Some(at) => Duration::from_millis(u64::try_from(at.as_millis() - now.as_millis()).unwrap_or(0))
            .max(Duration::from_millis(100)),
        None => ctx.config.resync,
    };
    tracing::info!(canary = %key(canary), phase = decision.status.phase.as_str(), weight = decision.status.canary_weight, summary = %decision.explanation.summary, next_in = ?requeue, "reconciled");
    Ok(Action::requeue(requeue))
}

/// The Canary that owns the same target, when it is not this one.
fn earlier_canary_for_same_target(canary: &Canary, ctx: &Context) -> Option<String> {
    let store = ctx.store.get()?;
    let namespace = canary.namespace().unwrap_or_default();
    let mine = (
        canary.metadata.creation_timestamp.clone().map(|t| t.0),
        canary.name_any(),
    );
    ctx.targets
        .canaries(&namespace, &canary.spec.target_ref.name)
        .into_iter()
        .filter(|name| *name != canary.name_any())
        .filter_map(|name| store.get(&kube::runtime::reflector::ObjectRef::new(&name).within(&namespace)))
        .filter(|c| c.spec.target_ref.name == canary.spec.target_ref.name && c.metadata.deletion_timestamp.is_none())
        .find(|c| (c.metadata.creation_timestamp.clone().map(|t| t.0), c.name_any()) < mine)
        .map(|c| key(&c))
}

async fn execute(
    canary: &Canary,
    ctx: &Context,
    plan: &Plan,
    target: &Target,
    decision: &Decision,
) -> Result<(), Error> {
    for action in &decision.actions {
        let result = match action {
            Step::Initialize { primary } => ctx.router.initialize(target, primary).await,
            Step::SetTraffic(split) => ctx.router.set_split(target, split).await,
            Step::Promote { revision } => ctx.router.promote(target, revision).await,
            Step::Revert => ctx.router.revert(target).await,
            Step::Event(e) => {
                record_event(canary, ctx, plan, e, decision.status.phase).await;
                Ok(())
            }
            Step::RecordMetric { name, value } => {
                let labels = crate::metrics::MetricLabels {
                    name: plan.target_name.clone(),
                    namespace: plan.namespace.clone(),
                    metric: name.clone(),
                };
                ctx.metrics.analysis.get_or_create(&labels).set(*value);
                Ok(())
            }
            Step::CallHooks { kind, phase } => {
                post_rollout(
                    canary,
                    ctx,
                    plan,
                    *kind,
                    *phase,
                    decision.status.canary_revision.as_deref(),
                );
                Ok(())
            }
        };
        if let Err(e) = result {
            let message = format!("{e}");
            ctx.events
                .record(
                    canary,
                    &Event {
                        severity: Severity::Warning,
                        message,
                    },
                )
                .await;
            return Err(e.into());
        }
    }
    Ok(())
}

async fn record_event(canary: &Canary, ctx: &Context, plan: &Plan, event: &Event, phase: Phase) {
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
fn post_rollout(canary: &Canary, ctx: &Context, plan: &Plan, kind: HookKind, phase: Phase, revision: Option<&str>) {
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

fn count_outcome(ctx: &Context, plan: &Plan, before: Phase, decision: &Decision) {
    let after = decision.status.phase;
    if after == before || !matches!(after, Phase::Succeeded | Phase::Failed) {
        return;
    }
    let labels = crate::metrics::OutcomeLabels {
        name: plan.target_name.clone(),
        namespace: plan.namespace.clone(),
        deployment_strategy: match plan.strategy {
            Strategy::Canary { .. } => "canary".into(),
            Strategy::BlueGreen { .. } => "blue-green".into(),
        },
        analysis_status: if plan.skip_analysis {
            "skipped".into()
        } else {
            "completed".into()
        },
    };
    if after == Phase::Succeeded {
        ctx.metrics.successes.get_or_create(&labels).inc();
    } else {
        ctx.metrics.failures.get_or_create(&labels).inc();
    }
}

async fn write_status(
    canary: &Canary,
    api: &Api<Canary>,
    plan: &Plan,
    decision: &Decision,
    previous: &CanaryStatus,
    now: Time,
) -> Result<(), Error> {
    let mut status = previous.clone();
    status.apply_rollout(&decision.status, &plan.target_kind, now);
    status.observed_generation = canary.metadata.generation;
    let phase = decision.status.phase;
    // A quiet reconcile keeps the decision before it instead of replacing it with "nothing to
    // do": a finished rollout keeps what finished it (the rollback reason, the promotion), and an
    // analysis on schedule keeps its last step (no status write, so no echo, between steps).
    let quiet = decision.actions.is_empty()
        && previous.phase.as_deref() == Some(phase.as_str())
        && (!phase.is_active() || decision.explanation.on_schedule);
    if !quiet || previous.last_decision.is_none() {
        status.last_decision = Some(LastDecision::from(&decision.explanation));
    }
    let summary = status
        .last_decision
        .as_ref()
        .map(|d| d.summary.clone())
        .unwrap_or_default();
    status.estimated_promotion_at = estimated_promotion(plan, &decision.status, now).map(rfc3339);
    let (ready, reason) = match phase {
        Phase::Initialized | Phase::Succeeded => ("True", phase.as_str()),
        Phase::Failed => ("False", "RolloutFailed"),
        _ => ("Unknown", phase.as_str()),
    };
    status.set_condition("Ready", ready, reason, &summary, now);
    let reconciling = if phase.is_active() || matches!(phase, Phase::Waiting | Phase::Initializing) {
        "True"
    } else {
        "False"
    };
    let doing = if quiet {
        summary.as_str()
    } else {
        decision.explanation.summary.as_str()
    };
    status.set_condition("Reconciling", reconciling, phase.as_str(), doing, now);
    status.set_condition("Stalled", "False", "Valid", "the Canary is valid", now);
    if !status.differs_ignoring_timestamps(previous) {
        return Ok(());
    }
    patch_status(api, canary, previous, &status).await
}

/// Writes `status` as a merge patch against `previous`: cleared fields are sent as `null`, so
/// nothing stale survives (a plain merge of the new status would keep them).
async fn patch_status(
    api: &Api<Canary>,
    canary: &Canary,
    previous: &CanaryStatus,
    status: &CanaryStatus,
) -> Result<(), Error> {
    let old = serde_json::to_value(previous).unwrap_or_default();
    let new = serde_json::to_value(status).unwrap_or_default();
    let patch = json!({"status": merge_diff(&old, &new)});
    api.patch_status(&canary.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// The JSON merge patch that turns `old` into `new`.
pub fn merge_diff(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    match (old, new) {
        (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) if ov.is_object() && v.is_object() => {
                        patch.insert(k.clone(), merge_diff(ov, v));
                    }
                    _ => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), serde_json::Value::Null);
            }
            serde_json::Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// Marks an unusable Canary (invalid, duplicate, missing target): conditions, a Warning event
/// once, nothing routed.
async fn reject(canary: &Canary, ctx: &Context, api: &Api<Canary>, reason: &str, message: &str) -> Result<(), Error> {
    let previous = canary.status.clone().unwrap_or_default();
    let now = (ctx.clock)();
    let mut status = previous.clone();
    status.observed_generation = canary.metadata.generation;
    status.set_condition("Ready", "False", reason, message, now);
    status.set_condition("Promoted", "False", reason, message, now);
    status.set_condition("Stalled", "True", reason, message, now);
    status.set_condition("Reconciling", "False", reason, message, now);
    if status.differs_ignoring_timestamps(&previous) {
        ctx.events
            .record(
                canary,
                &Event {
                    severity: Severity::Warning,
                    message: message.to_owned(),
                },
            )
            .await;
        patch_status(api, canary, &previous, &status).await?;
    }
    tracing::warn!(canary = %key(canary), %message, "Canary not usable");
    Ok(())
}

async fn finalize_deletion(
    canary: &Canary,
    ctx: &Context,
    api: &Api<Canary>,
    has_finalizer: bool,
) -> Result<Action, Error> {
    if !has_finalizer {
        return Ok(Action::await_change());
    }
    if let Ok(plan) = validate(canary).map(|v| v.plan) {
        let decision = finalize(
            &plan,
            &canary.status.clone().unwrap_or_default().to_rollout(),
            (ctx.clock)(),
        );
        let target = Target {
            namespace: plan.namespace.clone(),
            name: plan.target_name.clone(),
        };
        match execute(canary, ctx, &plan, &target, &decision).await {
            Ok(()) | Err(Error::Router(RouterError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    let finalizers: Vec<String> = canary
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    api.patch(
        &canary.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
    )
    .await?;
    Ok(Action::await_change())
}
