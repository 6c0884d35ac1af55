//! One reconcile of one Canary: observe, check, decide (serin-core), act, record.

use std::{sync::Arc, time::Duration};

use kube::{Api, ResourceExt, runtime::controller};
use serin_api::{Canary, validate};
use serin_core::{Action, Decision, Observation, Phase, Plan, Step, Strategy, step};
use serin_knative::{RouterError, Target};

use crate::{
    Context, Error, checks,
    finalizer::{finalize_deletion, has_finalizer, set_finalizer},
    notify::{post_rollout, record_event, warn},
    status::{reject, stalled, write_status},
};

pub(crate) fn key(canary: &Canary) -> String {
    format!("{}/{}", canary.namespace().unwrap_or_default(), canary.name_any())
}

/// Reconciles one Canary.
pub async fn reconcile(canary: Arc<Canary>, ctx: Arc<Context>) -> Result<controller::Action, Error> {
    if ctx.own_writes.cache_behind(&canary) {
        // The watch event of our last status write is on its way and triggers the next
        // reconcile; deciding now would redo the step from the status before it.
        tracing::debug!(canary = %key(&canary), "the Canary cache is behind our last status write; waiting for it");
        ctx.metrics
            .reconciles
            .get_or_create(&crate::metrics::ResultLabels {
                result: "cache_behind".into(),
            })
            .inc();
        return Ok(controller::Action::requeue(crate::own_writes::CACHE_BEHIND_RETRY));
    }
    let started = std::time::Instant::now();
    let result = match reconcile_inner(&canary, &ctx).await {
        // A refusal retried every 2 s would be retried forever: record it once (condition and
        // Warning) and come back much later, or at the next change of the Canary.
        Err(e) if !e.is_transient() => {
            tracing::warn!(canary = %key(&canary), error = %e, "reconcile failed; not retried soon");
            stalled(&canary, &ctx, "PermanentError", &e.to_string()).await;
            Ok(controller::Action::requeue(PERMANENT_ERROR_BACKOFF))
        }
        other => other,
    };
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

/// How long a Canary whose reconcile was refused (403, 422, …) waits before the next attempt,
/// unless it changes first.
pub const PERMANENT_ERROR_BACKOFF: Duration = Duration::from_secs(300);

/// Requeues failed reconciles: soon for transient trouble, later otherwise.
pub fn error_policy(canary: Arc<Canary>, error: &Error, _ctx: Arc<Context>) -> controller::Action {
    tracing::warn!(canary = %key(&canary), %error, "reconcile failed");
    if error.is_transient() {
        controller::Action::requeue(Duration::from_secs(2))
    } else {
        controller::Action::requeue(Duration::from_secs(30))
    }
}

async fn reconcile_inner(canary: &Canary, ctx: &Arc<Context>) -> Result<controller::Action, Error> {
    let namespace = canary.namespace().unwrap_or_default();
    let api: Api<Canary> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Some(shard) = &ctx.config.shard
        && !shard.owns(&namespace, &canary.name_any())
    {
        return Ok(controller::Action::await_change());
    }
    if let crate::shard::Claim::Wait(after) = crate::shard::claim(ctx, canary, &api).await? {
        return Ok(controller::Action::requeue(after));
    }
    if canary.metadata.deletion_timestamp.is_some() {
        return finalize_deletion(canary, ctx, &api).await;
    }
    let revert = canary.spec.revert_on_deletion.unwrap_or(false);
    if revert != has_finalizer(canary) {
        // The finalizer follows the flag: added when it is on, removed when it is switched off.
        set_finalizer(&api, canary, revert).await?;
        return Ok(controller::Action::requeue(Duration::ZERO));
    }
    let mut plan = match validate(canary) {
        Ok(v) => v.plan,
        Err(invalid) => {
            let message = invalid
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            reject(canary, ctx, &api, "InvalidSpec", &format!("invalid Canary: {message}")).await?;
            return Ok(controller::Action::await_change());
        }
    };
    let judge_problem = match crate::judging::settings(canary, ctx).await {
        Ok(settings) => {
            plan.judge = settings;
            None
        }
        Err(problem) => Some(problem),
    };
    ctx.targets.record(&namespace, &canary.name_any(), &plan.target_name);
    if let Some(owner) = earlier_canary_for_same_target(canary, ctx) {
        let message = format!(
            "Knative Service {} is already managed by Canary {owner}; remove one of them",
            plan.target_ref()
        );
        reject(canary, ctx, &api, "DuplicateTarget", &message).await?;
        return Ok(controller::Action::requeue(ctx.config.resync));
    }
    let target = target_of(canary, ctx, &plan);
    let stage = std::time::Instant::now();
    let world = match ctx.router.observe(&target).await {
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
            return Ok(controller::Action::requeue(Duration::from_secs(30)));
        }
        Err(e) => return Err(e.into()),
    };
    ctx.metrics.stage("observe", stage.elapsed());
    let now = (ctx.clock)();
    let previous = canary.status.clone().unwrap_or_default();
    let status = previous.to_rollout();
    if status.phase == Phase::Initializing && !plan.skip_analysis && !plan.metrics.is_empty() {
        check_providers(canary, ctx).await;
    }
    if let Some(due) = status.next_step_at
        && now >= due
    {
        ctx.metrics.step_lag.observe(now.since(due).as_secs_f64());
    }
    let mut obs = Observation::of(world);
    obs.requests = serin_api::requests::operator_requests(canary);
    let stage = std::time::Instant::now();
    let decision = loop {
        match step(&plan, &status, &obs, now) {
            Step::Done(d) => break d,
            Step::Need(request) => {
                let outcomes = checks::run(ctx, canary, &plan, &request).await;
                obs.metrics.extend(outcomes.metrics);
                obs.hooks.extend(outcomes.hooks);
                if outcomes.counts.is_some() {
                    obs.counts = outcomes.counts;
                }
            }
        }
    };
    ctx.metrics.stage("checks", stage.elapsed());
    let stage = std::time::Instant::now();
    execute(canary, ctx, &plan, &target, &decision).await?;
    ctx.metrics.stage("act", stage.elapsed());
    crate::judging::report(canary, ctx, &previous, judge_problem.as_deref()).await;
    let alerts = crate::alerting::prepare(canary, ctx, &plan, &status, &decision).await;
    let stage = std::time::Instant::now();
    let written = write_status(
        canary,
        &api,
        &plan,
        &decision,
        &previous,
        now,
        crate::status::ExtraConditions {
            alerts: alerts.condition.as_ref(),
            judge_problem: judge_problem.as_deref(),
        },
    )
    .await?;
    if let Some(written) = &written {
        ctx.own_writes.wrote(written);
    }
    ctx.metrics.stage("status", stage.elapsed());
    // After the status is written: a step redone after a failed write raises no alert twice,
    // and a request is removed only once the status says it was handled.
    alerts.dispatch(ctx);
    crate::requests::consume(canary, &api, &decision.status).await;
    ctx.metrics.observe_status(
        &plan.target_name,
        &namespace,
        decision.status.phase,
        decision.status.canary_weight,
    );
    count_outcome(ctx, &plan, status.phase, &decision);
    // Counted from the clock after the work, not from `now` (a reconcile that took a second
    // would otherwise make the next step a second late), and less the scheduler's debounce,
    // which kube-runtime adds to every request.
    let requeue = match decision.wake_at {
        Some(at) => Duration::from_millis(u64::try_from(at.as_millis() - (ctx.clock)().as_millis()).unwrap_or(0))
            .saturating_sub(crate::controller::DEBOUNCE),
        None => ctx.config.resync,
    };
    tracing::info!(canary = %key(canary), phase = decision.status.phase.as_str(), weight = decision.status.canary_weight, summary = %decision.explanation.summary, next_in = ?requeue, "reconciled");
    Ok(controller::Action::requeue(requeue))
}

/// The annotation that turns the `primary` / `canary` traffic tags off (`"false"`) or on for one
/// Canary, whatever `--traffic-tags` says.
pub const TRAFFIC_TAGS_ANNOTATION: &str = "serin.dev/traffic-tags";

/// The routed Service of a Canary, with its tag layout.
pub(crate) fn target_of(canary: &Canary, ctx: &Context, plan: &Plan) -> Target {
    let tags = match canary.annotations().get(TRAFFIC_TAGS_ANNOTATION).map(String::as_str) {
        Some("false") => false,
        Some("true") => true,
        _ => ctx.config.traffic_tags,
    };
    Target {
        namespace: plan.namespace.clone(),
        name: plan.target_name.clone(),
        tags,
    }
}

/// Flagger's provider check while initializing: an event either way, never a failure.
async fn check_providers(canary: &Canary, ctx: &Context) {
    let event = match checks::providers_available(ctx, canary).await {
        Ok(()) => serin_core::Event {
            severity: serin_core::Severity::Normal,
            message: "all the metrics providers are available!".into(),
        },
        Err(e) => serin_core::Event {
            severity: serin_core::Severity::Warning,
            message: format!("Error checking metric providers: {e}"),
        },
    };
    record_event(canary, ctx, &event, Phase::Initializing.as_str()).await;
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

/// Executes the engine's actions in order; a routing failure becomes a Warning and the error.
pub(crate) async fn execute(
    canary: &Canary,
    ctx: &Arc<Context>,
    plan: &Plan,
    target: &Target,
    decision: &Decision,
) -> Result<(), Error> {
    for action in &decision.actions {
        let result = match action {
            Action::Initialize { primary } => ctx.router.initialize(target, primary).await,
            Action::SetTraffic(split) => ctx.router.set_split(target, split).await,
            Action::Promote { revision } => ctx.router.promote(target, revision).await,
            Action::Release { pin } => ctx.router.release(target, pin.clone()).await,
            Action::Event(e) => {
                record_event(canary, ctx, e, decision.status.phase.as_str()).await;
                Ok(())
            }
            Action::RecordMetric { name, value } => {
                let labels = crate::metrics::MetricLabels {
                    name: plan.target_name.clone(),
                    namespace: plan.namespace.clone(),
                    metric: name.clone(),
                };
                ctx.metrics.analysis.get_or_create(&labels).set(*value);
                Ok(())
            }
            Action::CallHooks { kind, phase } => {
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
            warn(canary, ctx, e.to_string()).await;
            return Err(e.into());
        }
    }
    Ok(())
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
    if let Some(judge) = decision.status.judge.as_ref().filter(|_| plan.judge.sequential_runs()) {
        let verdict = match judge.outcome.as_deref() {
            Some(outcome) => outcome.to_owned(),
            None if plan.judge.mode == serin_core::JudgeMode::Shadow => judge_shadow_verdict(judge),
            None => "Undecided".to_owned(),
        };
        ctx.metrics
            .judge_verdicts
            .get_or_create(&crate::metrics::JudgeLabels {
                mode: plan.judge.mode.as_str().into(),
                verdict,
            })
            .inc();
    }
}

/// What the shadow judge had concluded when Flagger's rule ended the rollout.
fn judge_shadow_verdict(judge: &serin_core::JudgeState) -> String {
    match judge.announced.as_deref() {
        Some("rollback") => "Regressed".into(),
        Some("verified") => "Verified".into(),
        Some(other) if !other.contains('@') => other.to_owned(),
        _ => "Undecided".into(),
    }
}
