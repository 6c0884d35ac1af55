//! `serin promote`, `abort`, `retry` and `approve`: each writes one request annotation on the
//! Canary (see `serin_api::requests`), which the controller consumes once and announces in an
//! event with who asked. Only RBAC on Canaries is needed, and `kubectl annotate` does the same.

use anyhow::bail;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serin_api::{Canary, requests as keys};

use crate::cluster::{Access, explain};

/// What to ask for.
pub enum Action {
    /// The next step now.
    Promote,
    /// Promotion now.
    PromoteFull,
    /// Rollback now.
    Abort,
    /// Analyse the rolled-back revision again.
    Retry,
    /// Open the named gate.
    Approve(String),
}

impl Action {
    fn key(&self) -> anyhow::Result<String> {
        Ok(match self {
            Action::Promote => keys::PROMOTE.to_owned(),
            Action::PromoteFull => keys::PROMOTE_FULL.to_owned(),
            Action::Abort => keys::ABORT.to_owned(),
            Action::Retry => keys::RETRY.to_owned(),
            Action::Approve(gate) => {
                if keys::gate_kind(gate).is_none() {
                    bail!("--gate {gate:?}: confirm-rollout, confirm-traffic-increase or confirm-promotion");
                }
                format!("{}{gate}", keys::APPROVE_PREFIX)
            }
        })
    }

    /// Why the request cannot apply in `phase`, if it cannot.
    fn refused_in(&self, phase: &str) -> Option<&'static str> {
        let active = matches!(phase, "Progressing" | "WaitingPromotion" | "Promoting" | "Finalising");
        match self {
            Action::Promote | Action::PromoteFull if phase != "Progressing" => {
                Some("only a Progressing rollout can be promoted (a closed gate is opened with `serin approve`)")
            }
            Action::Abort if !active => Some("no rollout is in flight"),
            Action::Retry if phase != "Failed" => Some("only a rolled-back (Failed) rollout can be retried"),
            _ => None,
        }
    }
}

fn who() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "serin".into())
}

/// Writes the request annotation, after checking it applies to the Canary's phase.
pub async fn send(access: &Access, name: &str, action: Action, reason: Option<&str>) -> anyhow::Result<()> {
    let key = action.key()?;
    let (client, namespace) = access.connect().await?;
    let api: Api<Canary> = Api::namespaced(client, &namespace);
    let what = format!("Canary {namespace}/{name}");
    let canary = api.get(name).await.map_err(|e| explain(e, &what))?;
    let phase = canary.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    if let Some(why) = action.refused_in(&phase) {
        bail!("{what} is {}: {why}", if phase.is_empty() { "new" } else { &phase });
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let now = serin_api::rfc3339(serin_core::Time::from_millis(millis));
    let token = match reason {
        Some(reason) => format!("{now} by {}: {reason}", who()),
        None => format!("{now} by {}", who()),
    };
    let patch = serde_json::json!({"metadata": {"annotations": {key.clone(): token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| explain(e, &what))?;
    println!("{key} requested on {what} ({token}); the controller acts at its next reconcile and records an event");
    Ok(())
}
