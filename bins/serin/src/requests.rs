//! `serin promote`, `abort`, `retry` and `approve`: each writes one request annotation on the
//! Canary (see `serin_api::requests`), which the controller consumes once and announces in an
//! event with who asked. Only RBAC on Canaries is needed, and `kubectl annotate` does the same.

use anyhow::bail;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serin_api::{Canary, requests::Request};

use crate::cluster::{Access, explain};

/// Who is asking, for the request's token.
pub fn who() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "serin".into())
}

/// Writes the request annotation, after checking it applies to the Canary's phase.
pub async fn send(access: &Access, name: &str, request: Request, reason: Option<&str>) -> anyhow::Result<()> {
    let (client, namespace) = access.connect().await?;
    let api: Api<Canary> = Api::namespaced(client, &namespace);
    let what = format!("Canary {namespace}/{name}");
    let canary = api.get(name).await.map_err(|e| explain(e, &what))?;
    let phase = canary.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    if let Some(why) = request.refused_in(&phase) {
        bail!("{what} is {}: {why}", if phase.is_empty() { "new" } else { &phase });
    }
    let (token, patch) = request.patch(serin_api::wall_clock_now(), &who(), reason);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| explain(e, &what))?;
    println!(
        "{} requested on {what} ({token}); the controller acts at its next reconcile and records an event",
        request.annotation()
    );
    Ok(())
}
