//! `serin get` and `serin pause` / `serin resume`: a cluster's Canaries through kubeconfig,
//! as kubectl finds it (`KUBECONFIG`, `--kubeconfig`, `--context`, `-n`), with clear messages
//! for no cluster, no CRD, no permission and no such Canary.

use std::path::PathBuf;

use anyhow::{Context, bail};
use kube::{
    Api, Client, Config,
    api::{ListParams, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serin_api::{Canary, CanaryStatus};

/// Where the cluster is.
#[derive(Debug, Clone, clap::Args)]
pub struct Access {
    /// Path to the kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace (default: the context's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

impl Access {
    /// A client and the namespace to use.
    pub async fn connect(&self) -> anyhow::Result<(Client, String)> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(file, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .context("no cluster: set KUBECONFIG or --kubeconfig (and --context) as for kubectl")?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        Ok((Client::try_from(config)?, namespace))
    }
}

/// A kube error in an operator's words.
pub(crate) fn explain(e: kube::Error, what: &str) -> anyhow::Error {
    match &e {
        kube::Error::Api(s)
            if s.code == 404
                && s.reason == "NotFound"
                && s.message.contains("the server could not find the requested resource") =>
        {
            anyhow::anyhow!("the Canary CRD is not installed in this cluster (kubectl apply -k deploy/crds)")
        }
        kube::Error::Api(s) if s.code == 404 => anyhow::anyhow!("{what} not found"),
        kube::Error::Api(s) if s.code == 403 => anyhow::anyhow!("no permission: {}", s.message),
        _ => anyhow::Error::new(e).context(format!("cannot read {what}")),
    }
}

/// One line of `serin get canaries`.
fn row(c: &Canary) -> [String; 7] {
    let s = c.status.clone().unwrap_or_default();
    let threshold = c.spec.analysis.as_ref().and_then(|a| a.threshold).unwrap_or(0);
    [
        c.metadata.namespace.clone().unwrap_or_default(),
        c.metadata.name.clone().unwrap_or_default(),
        s.phase.clone().unwrap_or_else(|| "-".into()),
        s.canary_weight.map_or("-".into(), |w| w.to_string()),
        format!(
            "{} → {}",
            s.primary_revision.as_deref().unwrap_or("-"),
            s.canary_revision.as_deref().unwrap_or("-")
        ),
        format!("{}/{threshold}", s.failed_checks.unwrap_or(0)),
        s.estimated_promotion_at.clone().unwrap_or_else(|| "-".into()),
    ]
}

/// `serin get canaries`: one line per Canary.
pub async fn list(access: &Access, all_namespaces: bool) -> anyhow::Result<()> {
    let (client, namespace) = access.connect().await?;
    let api: Api<Canary> = if all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, &namespace)
    };
    let canaries = api
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, "Canaries"))?;
    let header = [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "WEIGHT",
        "PRIMARY → CANARY",
        "FAILED",
        "ETA",
    ]
    .map(String::from);
    let rows: Vec<[String; 7]> = std::iter::once(header).chain(canaries.items.iter().map(row)).collect();
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    if canaries.items.is_empty() {
        eprintln!(
            "no Canaries in {}",
            if all_namespaces { "any namespace" } else { &namespace }
        );
    }
    Ok(())
}

/// The detail view of one Canary's status: what it is doing and why.
pub fn detail(name: &str, namespace: &str, s: &CanaryStatus, threshold: i64) -> String {
    let mut out = format!(
        "Canary {namespace}/{name}\n  Phase:     {}\n  Weight:    {}%\n  Primary:   {}\n  Canary:    {}\n  Failed:    {}/{threshold} checks\n",
        s.phase.as_deref().unwrap_or("-"),
        s.canary_weight.unwrap_or(0),
        s.primary_revision.as_deref().unwrap_or("-"),
        s.canary_revision.as_deref().unwrap_or("-"),
        s.failed_checks.unwrap_or(0),
    );
    if let Some(at) = &s.next_step_at {
        out.push_str(&format!("  Next step: {at}\n"));
    }
    if let Some(eta) = &s.estimated_promotion_at {
        out.push_str(&format!("  ETA:       {eta}\n"));
    }
    if let Some(d) = &s.last_decision {
        out.push_str(&format!("  Decision:  {}\n", d.summary));
        for check in &d.checks {
            out.push_str(&format!("    {check}\n"));
        }
    }
    for c in &s.conditions {
        out.push_str(&format!(
            "  {:<12} {:<7} {}\n",
            c.type_,
            c.status,
            c.message.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// `serin get canary NAME`.
pub async fn show(access: &Access, name: &str, output: crate::Output) -> anyhow::Result<()> {
    let (client, namespace) = access.connect().await?;
    let api: Api<Canary> = Api::namespaced(client, &namespace);
    let canary = api
        .get(name)
        .await
        .map_err(|e| explain(e, &format!("Canary {namespace}/{name}")))?;
    match output {
        crate::Output::Json => {
            println!("{}", serde_json::to_string_pretty(&canary)?);
            return Ok(());
        }
        crate::Output::Yaml => {
            print!("{}", serde_saphyr::to_string(&canary)?);
            return Ok(());
        }
        crate::Output::Text => {}
    }
    let threshold = canary.spec.analysis.as_ref().and_then(|a| a.threshold).unwrap_or(0);
    print!(
        "{}",
        detail(name, &namespace, &canary.status.clone().unwrap_or_default(), threshold)
    );
    Ok(())
}

/// One appendable line per change of a Canary's rollout: time, phase, weight, revisions,
/// failed checks and the last decision.
pub fn watch_line(s: &CanaryStatus, threshold: i64) -> String {
    format!(
        "{} {} weight {}% {} → {} failed {}/{threshold}: {}",
        s.last_transition_time.as_deref().unwrap_or("-"),
        s.phase.as_deref().unwrap_or("-"),
        s.canary_weight.unwrap_or(0),
        s.primary_revision.as_deref().unwrap_or("-"),
        s.canary_revision.as_deref().unwrap_or("-"),
        s.failed_checks.unwrap_or(0),
        s.last_decision.as_ref().map_or("", |d| d.summary.as_str()),
    )
}

/// `serin get canary NAME -w`: a line each time the rollout changes (a watch, not a poll),
/// until interrupted.
pub async fn watch(access: &Access, name: &str) -> anyhow::Result<()> {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let (client, namespace) = access.connect().await?;
    let api: Api<Canary> = Api::namespaced(client.clone(), &namespace);
    api.get(name)
        .await
        .map_err(|e| explain(e, &format!("Canary {namespace}/{name}")))?;
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, config).applied_objects());
    let live = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last = String::new();
    while let Some(canary) = stream.next().await {
        let canary = canary.map_err(|e| anyhow::anyhow!("watch of Canary {namespace}/{name} failed: {e}"))?;
        let threshold = canary.spec.analysis.as_ref().and_then(|a| a.threshold).unwrap_or(0);
        let shown = if live {
            let events = crate::live::recent_events(&client, &namespace, name, 6).await;
            crate::live::frame(&canary, &events)
        } else {
            watch_line(&canary.status.clone().unwrap_or_default(), threshold)
        };
        if shown != last {
            if live {
                print!("{}{shown}", crate::live::CLEAR);
                std::io::Write::flush(&mut std::io::stdout())?;
            } else {
                println!("{shown}");
            }
            last = shown;
        }
    }
    Ok(())
}

/// `serin pause` / `serin resume`: `spec.suspend`, as `kubectl patch` would set it.
pub async fn suspend(access: &Access, name: &str, suspend: bool) -> anyhow::Result<()> {
    let (client, namespace) = access.connect().await?;
    let api: Api<Canary> = Api::namespaced(client, &namespace);
    let patch = serin_api::requests::suspend_patch(suspend);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| explain(e, &format!("Canary {namespace}/{name}")))?;
    if suspend {
        println!("canary {namespace}/{name} paused (spec.suspend: true); `serin resume {name}` continues it");
    } else {
        println!("canary {namespace}/{name} resumed");
    }
    Ok(())
}

/// Refuses flags that make no sense together.
pub fn check_scope(all_namespaces: bool, access: &Access) -> anyhow::Result<()> {
    if all_namespaces && access.namespace.is_some() {
        bail!("use either -A or -n, not both");
    }
    Ok(())
}
