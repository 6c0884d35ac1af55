//! `serin dashboard`: the rollout dashboard (`serin_dashboard`) served from this machine,
//! reading the cluster through kubeconfig like the other commands. Every namespace unless
//! `-n` names one.

use std::net::SocketAddr;

use anyhow::Context;

use crate::cluster::Access;

/// Serves until interrupted.
pub async fn run(
    access: &Access,
    listen: SocketAddr,
    allow_actions: bool,
    allowed_hosts: Vec<String>,
) -> anyhow::Result<()> {
    let (client, _) = access.connect().await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        eprintln!("warning: the dashboard listens on {bound}: anyone who can reach it can read every Canary it shows");
    }
    println!(
        "serin dashboard on http://{bound}/ ({}; Ctrl-C stops)",
        if allow_actions {
            "actions allowed"
        } else {
            "read-only; --allow-actions shows the buttons"
        }
    );
    let options = serin_dashboard::Options {
        allow_actions,
        who: crate::requests::who(),
        allowed_hosts: Some(allowed_hosts),
    };
    tokio::select! {
        served = serin_dashboard::run(client, access.namespace.as_deref(), listener, options) => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
