//! The seed tutorial, driven against a [`Cluster`]: apply the podinfo Service and its Canary,
//! patch the image to 6.0.1 (promotion) and 6.0.2 (rollback), and print what a user of the
//! tutorial sees: events as `kubectl describe` lists them and the `kubectl get canaries` table.

use std::{collections::BTreeSet, path::Path, time::Duration};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Event;
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};

use crate::cluster::Cluster;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 6.0.1 is promoted.
    Promote,
    /// 6.0.2 is rolled back.
    Rollback,
    /// Both, in order.
    All,
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The Canaries of the tutorial's `test` namespace.
pub fn canaries(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "test",
        &resource("flagger.app", "v1beta1", "Canary", "canaries"),
    )
}

/// The seed Canary, with CI timings when `fast` (steps of 10 up to 50 kept).
pub fn seed_canary(root: &Path, fast: bool) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(root.join("testdata/seed/podinfo-canary.yaml"))?;
    let mut canary: Value = serde_saphyr::from_str(&text)?;
    if fast {
        canary["spec"]["analysis"]["interval"] = json!("3s");
        canary["spec"]["analysis"]["threshold"] = json!(5);
        if let Some(metrics) = canary["spec"]["analysis"]["metrics"].as_array_mut() {
            for m in metrics {
                m["interval"] = json!("10s");
            }
        }
    }
    Ok(canary)
}

/// Prints new events and table rows, and checks every traffic split it sees.
pub struct Observer {
    client: Client,
    seen: BTreeSet<String>,
    last_row: String,
    /// Every (primary %, canary %) split seen in `status.traffic`, in order.
    pub splits: Vec<Vec<(String, i64)>>,
    /// Messages of all events printed.
    pub events: Vec<String>,
    quiet: bool,
}

impl Observer {
    /// An observer printing to stdout (or not).
    pub fn new(client: Client, quiet: bool) -> Self {
        Observer {
            client,
            seen: BTreeSet::new(),
            last_row: String::new(),
            splits: Vec::new(),
            events: Vec::new(),
            quiet,
        }
    }

    /// The Canary as the API has it.
    pub async fn canary(&self) -> anyhow::Result<Value> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            "test",
            &resource("flagger.app", "v1beta1", "Canary", "canaries"),
        );
        Ok(serde_json::to_value(api.get("podinfo").await?)?)
    }

    /// One observation round.
    pub async fn poll(&mut self) -> anyhow::Result<Value> {
        let canary = self.canary().await?;
        let row = format!(
            "{:<11} {:<9} {:<13} {:<8} {}",
            "test",
            "podinfo",
            canary.pointer("/status/phase").and_then(Value::as_str).unwrap_or(""),
            canary
                .pointer("/status/canaryWeight")
                .map(|w| w.to_string())
                .unwrap_or_default(),
            canary
                .pointer("/status/lastTransitionTime")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        if row != self.last_row && !self.quiet {
            println!("    NAMESPACE   NAME      STATUS        WEIGHT   LASTTRANSITIONTIME\n    {row}");
        }
        self.last_row = row;
        let services: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            "test",
            &resource("serving.knative.dev", "v1", "Service", "services"),
        );
        let ksvc = serde_json::to_value(services.get("podinfo").await?)?;
        let split: Vec<(String, i64)> = ksvc
            .pointer("/status/traffic")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    t["revisionName"].as_str()?.to_owned(),
                    t["percent"].as_i64().unwrap_or(0),
                ))
            })
            .collect();
        if self.splits.last() != Some(&split) {
            self.splits.push(split);
        }
        // Events after the Canary: every event recorded before the status this read saw is in
        // the list (the controller records a step's events before writing its status).
        let events: Api<Event> = Api::namespaced(self.client.clone(), "test");
        let mut list = events
            .list(&ListParams::default().fields("involvedObject.kind=Canary,involvedObject.name=podinfo"))
            .await?
            .items;
        list.sort_by_key(|e| {
            e.metadata
                .resource_version
                .clone()
                .and_then(|rv| rv.parse::<u64>().ok())
                .unwrap_or(0)
        });
        for e in list {
            let key = format!(
                "{}/{}",
                e.metadata.name.clone().unwrap_or_default(),
                e.count.unwrap_or(1)
            );
            if self.seen.insert(key) {
                let message = e.message.clone().unwrap_or_default();
                if !self.quiet {
                    println!("  {:<8} Synced  serin  {message}", e.type_.clone().unwrap_or_default());
                }
                self.events.push(message);
            }
        }
        Ok(canary)
    }

    /// Polls until the canary weight is at least `at_least`.
    pub async fn wait_weight(&mut self, at_least: i64, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let canary = self.poll().await?;
            if canary
                .pointer("/status/canaryWeight")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                >= at_least
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("never reached weight {at_least} within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the phase is one of `phases`; returns it.
    pub async fn wait_phase(&mut self, phases: &[&str], limit: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let canary = self.poll().await?;
            let phase = canary
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if phases.contains(&phase.as_str()) {
                return Ok(phase);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("Canary still {phase:?} after {limit:?}, expected one of {phases:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Every split sums to 100 and the canary never has more than `max` percent before promotion.
pub fn check_splits(splits: &[Vec<(String, i64)>], max: i64) -> Result<(), String> {
    for s in splits {
        let sum: i64 = s.iter().map(|(_, p)| p).sum();
        if !s.is_empty() && sum != 100 {
            return Err(format!("a split summed to {sum}: {s:?}"));
        }
        if let [_, (_, canary)] = s.as_slice()
            && *canary > max
        {
            return Err(format!("the canary got {canary}% (max {max}): {s:?}"));
        }
    }
    Ok(())
}

/// Applies the seed's Service and Canary and waits for `Initialized`.
pub async fn install_seed(client: &Client, root: &Path, fast: bool, observer: &mut Observer) -> anyhow::Result<()> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "test"}}))?;
    let _ = namespaces.create(&PostParams::default(), &ns).await;
    let ksvc: DynamicObject =
        serde_saphyr::from_str(&std::fs::read_to_string(root.join("testdata/seed/podinfo-ksvc.yaml"))?)?;
    let services: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "test",
        &resource("serving.knative.dev", "v1", "Service", "services"),
    );
    services
        .create(&PostParams::default(), &ksvc)
        .await
        .context("create the podinfo Service")?;
    let canary: DynamicObject = serde_json::from_value(seed_canary(root, fast)?)?;
    let canaries: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "test",
        &resource("flagger.app", "v1beta1", "Canary", "canaries"),
    );
    canaries
        .create(&PostParams::default(), &canary)
        .await
        .context("create the podinfo Canary")?;
    observer.wait_phase(&["Initialized"], Duration::from_secs(60)).await?;
    Ok(())
}

/// The tutorial's image patch.
pub async fn set_image(client: &Client, tag: &str) -> anyhow::Result<()> {
    let services: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "test",
        &resource("serving.knative.dev", "v1", "Service", "services"),
    );
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("ghcr.io/stefanprodan/podinfo:{tag}")}
    ]))?;
    services
        .patch("podinfo", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    Ok(())
}

/// Runs the demo on a started cluster (controller included); returns whether every scenario
/// ended as expected.
///
/// With `screenshots`, the dashboard is served too, and headless Chromium saves pictures of it
/// during and after each rollout into that directory.
pub async fn run(
    cluster: &Cluster,
    root: &Path,
    scenario: Scenario,
    fast: bool,
    judge: &str,
    screenshots: Option<&Path>,
) -> anyhow::Result<bool> {
    let client = cluster.client()?;
    let dashboard = match screenshots {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let dashboard = crate::browser::Dashboard::start(client.clone(), false).await?;
            println!("dashboard: {}/ (screenshots into {})", dashboard.url, dir.display());
            Some((dashboard, dir))
        }
        None => None,
    };
    let mut observer = Observer::new(client.clone(), false);
    println!(
        "$ kubectl apply -f podinfo-ksvc.yaml -f podinfo-canary.yaml{}",
        if fast {
            "   (--fast: interval 3s, threshold 5, metric window 10s)"
        } else {
            ""
        }
    );
    install_seed(&client, root, fast, &mut observer).await?;
    if judge != "flagger" {
        use_judge(&client, root, fast, judge).await?;
    }
    let limit = if fast {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(900)
    };
    let mut ok = true;
    let runs: &[(&str, &str, &str)] = match scenario {
        Scenario::Promote => &[("6.0.1", "podinfo-00002", "Succeeded")],
        Scenario::Rollback => &[("6.0.2", "podinfo-00002", "Failed")],
        Scenario::All => &[
            ("6.0.1", "podinfo-00002", "Succeeded"),
            ("6.0.2", "podinfo-00003", "Failed"),
        ],
    };
    for (tag, revision, expected) in runs {
        println!(
            "\n$ kubectl -n test patch services.serving podinfo --type=json \\\n  -p '[{{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\": \"ghcr.io/stefanprodan/podinfo:{tag}\"}}]'"
        );
        observer.splits.clear();
        let started = tokio::time::Instant::now();
        let capture = dashboard.as_ref().map(|(d, dir)| {
            let outcome = if *expected == "Succeeded" {
                "promote"
            } else {
                "rollback"
            };
            // Flagger's rule keeps the plain names; another judge's pictures are named after it.
            let prefix = if judge == "flagger" {
                outcome.to_owned()
            } else {
                format!("{judge}-{outcome}")
            };
            crate::browser::Screenshots::start(client.clone(), &d.url, dir, &prefix)
        });
        set_image(&client, tag).await?;
        observer.wait_phase(&["Progressing"], Duration::from_secs(60)).await?;
        let phase = observer.wait_phase(&["Succeeded", "Failed"], limit).await?;
        if let Some(capture) = capture {
            capture.finish().await;
        }
        let traffic = check_splits(&observer.splits, 50);
        let passed = phase == *expected && traffic.is_ok();
        ok &= passed;
        println!(
            "\nverdict: {} {revision} ({tag}) ended {phase} after {:.0}s (expected {expected}); traffic {}",
            if passed { "PASS" } else { "FAIL" },
            started.elapsed().as_secs_f64(),
            traffic
                .err()
                .unwrap_or_else(|| "always summed to 100 with the canary at most 50%".into())
        );
    }
    Ok(ok)
}

/// Puts the Canary under `judge` (`judge.serin.dev/mode`), with the load test raised to
/// 100 req/s: the sequential judge decides on evidence, and at the seed's 10 req/s a verified
/// promotion takes 10–30 minutes.
pub async fn use_judge(client: &Client, root: &Path, fast: bool, judge: &str) -> anyhow::Result<()> {
    let mut webhooks = seed_canary(root, fast)?["spec"]["analysis"]["webhooks"].clone();
    webhooks[0]["metadata"]["cmd"] = json!("hey -z 1m -q 50 -c 2 http://podinfo.test");
    println!(
        "\n$ kubectl -n test annotate canary podinfo judge.serin.dev/mode={judge}\n  (and the load test raised to 100 req/s: hey -z 1m -q 50 -c 2)"
    );
    canaries(client)
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"judge.serin.dev/mode": judge}},
                "spec": {"analysis": {"webhooks": webhooks}},
            })),
        )
        .await
        .context("annotate the Canary")?;
    Ok(())
}

/// Rolls out image `tag`: waits until the new revision is picked up (`status.canaryRevision`
/// changes), then until Succeeded or Failed; returns the phase and this rollout's events.
pub async fn rollout(
    observer: &mut Observer,
    client: &Client,
    tag: &str,
    limit: Duration,
) -> anyhow::Result<(String, Vec<String>)> {
    let before = observer.events.len();
    let analysed = |c: &Value| c.pointer("/status/canaryRevision").cloned();
    let previous = analysed(&observer.canary().await?);
    observer.splits.clear();
    set_image(client, tag).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while analysed(&observer.poll().await?) == previous {
        if tokio::time::Instant::now() > deadline {
            bail!("the new revision of {tag} was never picked up");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let phase = observer.wait_phase(&["Succeeded", "Failed"], limit).await?;
    check_splits(&observer.splits, 50).map_err(|e| anyhow::anyhow!(e))?;
    Ok((phase, observer.events[before..].to_vec()))
}

/// A started sandbox (controller included) with the seed's Service and Canary installed and
/// `Initialized`, for end-to-end tests; the three binaries are beside `sandbox_exe` (a test's
/// `env!("CARGO_BIN_EXE_serin-sandbox")`).
pub async fn seeded_cluster(
    sandbox_exe: &Path,
    root: &Path,
    fast: bool,
) -> anyhow::Result<(Cluster, Client, Observer)> {
    let bin_dir = sandbox_exe.parent().context("the sandbox binary has no directory")?;
    let bins = crate::cluster::Binaries::in_dir(bin_dir)?;
    let start_root = root.to_path_buf();
    let mut cluster = tokio::task::spawn_blocking(move || Cluster::start(bins, &start_root, Vec::new())).await??;
    cluster.start_controller()?;
    let client = cluster.client()?;
    let mut observer = Observer::new(client.clone(), true);
    install_seed(&client, root, fast, &mut observer)
        .await
        .with_context(|| format!("logs in {}", cluster.logs.display()))?;
    Ok((cluster, client, observer))
}
