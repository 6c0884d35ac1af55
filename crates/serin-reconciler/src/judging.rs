//! The judge of a Canary: its `judge.serin.dev/mode` annotation (or `--default-judge`) and the
//! `JudgePolicy` it names. A configuration that cannot be used never changes the semantics
//! silently: the Canary is judged by Flagger's rule, with the `JudgeConfigInvalid` condition and
//! a Warning event saying why.

use serin_api::{Canary, CanaryStatus, judge_request, judge_settings};
use serin_core::{Event, JudgeSettings, Severity};

use crate::Context;

/// The judge settings for `canary`, or why they cannot be used.
pub(crate) async fn settings(canary: &Canary, ctx: &Context) -> Result<JudgeSettings, String> {
    let request = judge_request(canary)?;
    let policy = match &request.policy {
        Some(name) => {
            let namespace = canary.metadata.namespace.clone().unwrap_or_default();
            match ctx.config_cache.judge_policy(&ctx.client, &namespace, name).await {
                Ok(policy) => Some(policy.spec),
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    return Err(format!("JudgePolicy {name} not found in namespace {namespace}"));
                }
                Err(e) => return Err(format!("JudgePolicy {name}: {e}")),
            }
        }
        None => None,
    };
    judge_settings(&request, ctx.config.default_judge, policy.as_ref())
}

/// A Warning when the judge configuration became invalid (once, not at every reconcile).
pub(crate) async fn report(canary: &Canary, ctx: &Context, previous: &CanaryStatus, problem: Option<&str>) {
    let Some(problem) = problem else { return };
    let already = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "JudgeConfigInvalid" && c.status == "True" && c.message.as_deref() == Some(problem));
    if already {
        return;
    }
    tracing::warn!(canary = %crate::reconcile::key(canary), %problem, "judge configuration invalid; judging by Flagger's rule");
    let event = Event {
        severity: Severity::Warning,
        message: format!("Judge configuration invalid, judging by Flagger's rule: {problem}"),
    };
    ctx.events.record(canary, &event).await;
}
