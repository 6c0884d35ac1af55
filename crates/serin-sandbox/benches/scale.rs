//! `cargo xtask bench scale` (`cargo bench -p serin-sandbox --bench scale -- N[@INTERVAL]...
//! [--sharded N[@INTERVAL]]`, interval `5s` unless given, e.g. `10000@15s`): N Canaries, each
//! on its own Knative Service, rolled out by real controller processes against the API
//! emulator process (Knative simulator attached, no traffic router), with metrics served by a
//! stub Prometheus in this process (`serin_sandbox::fleet`).
//!
//! Each size runs in two shapes on a fresh fleet: `stress` (every Service changed at once)
//! and `spread` (the changes spread evenly over one interval, as a real cluster sees them).
//! `N@INTERVAL/stress` or `/spread` runs one shape. `--sharded` runs 3 shards of 2 replicas
//! each and kills shard 0's leader mid-run.
//!
//! Reported: the step lag p50/p99 (actual minus planned step time, from the controllers'
//! `serin_step_lag_seconds`), each reconcile stage's p50/p99 (`serin_reconcile_stage_seconds`:
//! observe, checks, act, status), CPU (seconds, and cores during the rollout) and peak RSS of
//! the controllers and, separately, of the emulator, and API requests and writes per step per
//! Canary by verb and resource. Writes `target/bench/scale-N-SHAPE.json`.
//! `SERIN_SCALE_CONTROLLER_ARGS` adds controller flags.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use serin_sandbox::fleet::{Fleet, http_get, proc_stats};

/// Histogram buckets `(le, cumulative count)` of `name` (with `labels` in the line), summed
/// over several controllers' metrics texts.
fn buckets(texts: &[String], name: &str, labels: &str) -> Vec<(f64, f64)> {
    let mut summed: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for text in texts {
        for line in text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}_bucket")) && l.contains(labels))
        {
            let Some(le) = line.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            let count: f64 = line.rsplit(' ').next().and_then(|c| c.parse().ok()).unwrap_or(0.0);
            let entry = summed.entry(le.to_bits()).or_insert((le, 0.0));
            entry.1 += count;
        }
    }
    let mut out: Vec<(f64, f64)> = summed.into_values().collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The value of counter `name` (with `labels` in the line), summed over several controllers'
/// metrics texts.
fn counter(texts: &[String], name: &str, labels: &str) -> f64 {
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The upper bound of the bucket reaching quantile `q`, in seconds; past the last finite bucket,
/// the text `>LAST`. `null` without samples.
fn quantile(buckets: &[(f64, f64)], q: f64) -> Value {
    let Some(total) = buckets.last().map(|b| b.1).filter(|t| *t > 0.0) else {
        return Value::Null;
    };
    match buckets.iter().find(|(_, count)| *count >= q * total) {
        Some((le, _)) if le.is_finite() => json!(le),
        _ => {
            let last = buckets
                .iter()
                .map(|b| b.0)
                .filter(|le| le.is_finite())
                .fold(0.0, f64::max);
            json!(format!(">{last}"))
        }
    }
}

fn extra_args() -> Vec<String> {
    std::env::var("SERIN_SCALE_CONTROLLER_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn interval_of(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or(Duration::from_secs(5))
}

/// One run: `shards` shards of `replicas` controllers each (`shards == 1`: one unsharded
/// controller); with `kill_leader`, shard 0's leader is killed once the rollout is under way.
struct Run {
    n: usize,
    interval: String,
    spread: bool,
    shards: u32,
    replicas: usize,
    kill_leader: bool,
}

async fn run(r: &Run) -> anyhow::Result<Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut fleet = Fleet::start(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root).await?;
    fleet.create(r.n, &r.interval).await?;
    let mut leaders = Vec::new();
    for shard in 0..r.shards {
        for replica in 0..r.replicas {
            let mut args = extra_args();
            if r.shards > 1 {
                let identity = format!("shard{shard}-{replica}");
                args.extend(
                    [
                        "--shard",
                        &format!("{shard}/{}", r.shards),
                        "--identity",
                        &identity,
                        "--lease-duration",
                        "15s",
                    ]
                    .iter()
                    .map(|s| (*s).to_owned()),
                );
            }
            let index = fleet.start_controller(&args)?;
            if replica == 0 {
                leaders.push(index);
                // Let the first replica take the Lease before its standby starts.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let initialized = fleet.wait_all(r.n, "Initialized", Duration::from_secs(600)).await?;
    let controller_pids: Vec<u32> = fleet.controllers.iter().map(|c| c.pid).collect();
    let cpu = |pids: &[u32]| pids.iter().map(|p| proc_stats(*p).0).sum::<f64>();
    let requests_before = fleet.api_requests();
    let (controllers_cpu_before, api_cpu_before) = (cpu(&controller_pids), proc_stats(fleet.api_pid).0);
    let started = Instant::now();
    let spread = if r.spread {
        interval_of(&r.interval)
    } else {
        Duration::ZERO
    };
    fleet.roll_out(r.n, "example.com/app:2", spread).await?;
    let mut failover_seconds = None;
    if r.kill_leader && r.shards > 1 {
        fleet
            .wait_all(r.n / 10, "Progressing", Duration::from_secs(120))
            .await?;
        // Before the kill: the controllers' figures so far count; the killed one's stop here.
        let killed_at = Instant::now();
        fleet.kill_controller(leaders[0]);
        let lease = serin_reconciler::shard::lease_name(&format!("0/{}", r.shards));
        let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(fleet.client.clone(), serin_sandbox::fleet::NAMESPACE);
        while killed_at.elapsed() < Duration::from_secs(60) {
            let holder = leases.get_opt(&lease).await?.and_then(|l| l.spec?.holder_identity);
            if holder.as_deref() == Some("shard0-1") {
                failover_seconds = Some(killed_at.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let succeeded = fleet.wait_all(r.n, "Succeeded", Duration::from_secs(1200)).await?;
    let elapsed = started.elapsed();
    let not_succeeded: Vec<String> = fleet
        .list()
        .await?
        .into_iter()
        .filter(|c| c.data.pointer("/status/phase") != Some(&json!("Succeeded")))
        .take(5)
        .map(|c| format!("{}: {}", c.metadata.name.unwrap_or_default(), c.data["status"]))
        .collect();
    let by_kind: BTreeMap<String, f64> = fleet
        .api_requests()
        .into_iter()
        .map(|(k, v)| {
            let before = requests_before.get(&k).copied().unwrap_or(0);
            (k, v.saturating_sub(before) as f64)
        })
        .filter(|(_, v)| *v > 0.0)
        .collect();
    // Each rollout here: first step at detection, then 2 analysis steps (25%, 50% → promote).
    let steps = (r.n * 3) as f64;
    let requests: f64 = by_kind.values().sum();
    let writes: f64 = by_kind
        .iter()
        .filter(|(k, _)| {
            ["create ", "patch ", "update ", "delete "]
                .iter()
                .any(|v| k.starts_with(v))
        })
        .map(|(_, v)| v)
        .sum();
    let texts: Vec<String> = fleet
        .controllers
        .iter()
        .map(|c| http_get(&c.listen.to_string(), "/metrics"))
        .collect();
    let lag = buckets(&texts, "serin_step_lag_seconds", "");
    let stages: serde_json::Map<String, Value> = ["observe", "checks", "act", "status"]
        .iter()
        .map(|stage| {
            let b = buckets(&texts, "serin_reconcile_stage_seconds", &format!("stage=\"{stage}\""));
            (
                (*stage).to_owned(),
                json!({"p50": quantile(&b, 0.5), "p99": quantile(&b, 0.99)}),
            )
        })
        .collect();
    let rss_mib = |pid: u32| proc_stats(pid).1 as f64 / 1024.0;
    let live: Vec<u32> = controller_pids
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    let controllers_cpu = cpu(&live);
    let api_cpu = proc_stats(fleet.api_pid).0;
    // Advances of one Canary to one weight recorded more than once (two actors, or a step
    // redone after a kill between its traffic write and its status write).
    let mut advances: BTreeMap<(String, String), i32> = BTreeMap::new();
    for (object, message, count) in fleet.events().await? {
        if message.starts_with("Advance ") {
            *advances.entry((object, message)).or_default() += count;
        }
    }
    let repeated_advances = advances.values().filter(|c| **c > 1).count();
    // The fewest writes a rollout here can make with Flagger's event texts: detection (the
    // Progressing status; "New revision detected", the revision not ready yet, "Starting canary
    // analysis"), each traffic step (the Service, the status, "Advance"), and promotion (the
    // Service, the status, Flagger's three promotion events).
    let minimum_writes_per_rollout = 4.0 + 3.0 * 2.0 + 5.0;
    Ok(json!({
        "canaries": r.n,
        "interval": r.interval,
        "shape": if r.spread { "spread" } else { "stress" },
        "shards": r.shards,
        "replicasPerShard": r.replicas,
        "initialized": initialized,
        "succeeded": succeeded,
        "notSucceeded": not_succeeded,
        "rolloutSeconds": elapsed.as_secs_f64(),
        "stepLagP50Seconds": quantile(&lag, 0.5),
        "stepLagP99Seconds": quantile(&lag, 0.99),
        "stageSeconds": stages,
        "controllerCpuSeconds": controllers_cpu,
        "controllerCoresDuringRollout": (controllers_cpu - controllers_cpu_before).max(0.0) / elapsed.as_secs_f64(),
        "controllerPeakRssMiB": live.iter().map(|p| rss_mib(*p)).fold(0.0, f64::max),
        "emulatorCpuSeconds": api_cpu,
        "emulatorCoresDuringRollout": (api_cpu - api_cpu_before) / elapsed.as_secs_f64(),
        "emulatorPeakRssMiB": rss_mib(fleet.api_pid),
        "apiRequestsPerStepPerCanary": requests / steps,
        "apiWritesPerStepPerCanary": writes / steps,
        "apiRequestsPerStepPerCanaryByKind": by_kind.iter().map(|(k, v)| (k.clone(), json!(v / steps))).collect::<serde_json::Map<_, _>>(),
        "failoverSeconds": failover_seconds,
        "repeatedAdvances": repeated_advances,
        "writesPerRollout": writes / r.n as f64,
        "minimumWritesPerRollout": minimum_writes_per_rollout,
        "reconcilesSkippedCacheBehind": counter(&texts, "serin_reconciles_total", "result=\"cache_behind\""),
        "logs": fleet.logs.display().to_string(),
    }))
}

fn print_row(r: &Value) {
    let secs = |v: &Value| match v {
        Value::String(above) => above.clone(),
        other => other.as_f64().map_or("n/a".into(), |v| format!("<={v}")),
    };
    let stage = |s: &str| {
        format!(
            "{}/{}",
            secs(&r["stageSeconds"][s]["p50"]),
            secs(&r["stageSeconds"][s]["p99"])
        )
    };
    let tail = format!(
        "  writes/rollout {:.2} (fewest {}), repeated advances {}, skipped (cache behind) {}{}",
        r["writesPerRollout"].as_f64().unwrap_or(0.0),
        r["minimumWritesPerRollout"],
        r["repeatedAdvances"],
        r["reconcilesSkippedCacheBehind"],
        match r["failoverSeconds"].as_f64() {
            Some(f) => format!(", failover {f:.1}s"),
            None => String::new(),
        }
    );
    println!(
        "{:>7} {:>6} {:>8} {:>6} {:>9} {:>8} {:>8} {:>6.2} {:>7.1} {:>6.2} {:>7.1} {:>7.2} {:>7.2}  observe {} checks {} act {} status {}{}",
        r["canaries"],
        r["interval"].as_str().unwrap_or(""),
        format!(
            "{}{}",
            r["shape"].as_str().unwrap_or(""),
            if r["shards"].as_u64() > Some(1) { "x3" } else { "" }
        ),
        r["succeeded"],
        secs(&r["stepLagP50Seconds"]),
        secs(&r["stepLagP99Seconds"]),
        format!("{:.0}", r["rolloutSeconds"].as_f64().unwrap_or(0.0)),
        r["controllerCoresDuringRollout"].as_f64().unwrap_or(0.0),
        r["controllerPeakRssMiB"].as_f64().unwrap_or(0.0),
        r["emulatorCoresDuringRollout"].as_f64().unwrap_or(0.0),
        r["emulatorPeakRssMiB"].as_f64().unwrap_or(0.0),
        r["apiRequestsPerStepPerCanary"].as_f64().unwrap_or(0.0),
        r["apiWritesPerStepPerCanary"].as_f64().unwrap_or(0.0),
        stage("observe"),
        stage("checks"),
        stage("act"),
        stage("status"),
        tail,
    );
}

fn parse_size(a: &str) -> Option<(usize, String)> {
    let (n, interval) = a.split_once('@').unwrap_or((a, "5s"));
    Some((n.parse().ok()?, interval.to_owned()))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let mut runs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--sharded" {
            if let Some((n, interval)) = args.get(i + 1).and_then(|a| parse_size(a)) {
                runs.push(Run {
                    n,
                    interval,
                    spread: true,
                    shards: 3,
                    replicas: 2,
                    kill_leader: true,
                });
            }
            i += 2;
            continue;
        }
        // `N@INTERVAL/stress` or `/spread` runs one shape only.
        let (size, shapes) = match args[i].split_once('/') {
            Some((size, "stress")) => (size, &[false][..]),
            Some((size, "spread")) => (size, &[true][..]),
            _ => (args[i].as_str(), &[false, true][..]),
        };
        if let Some((n, interval)) = parse_size(size) {
            for &spread in shapes {
                runs.push(Run {
                    n,
                    interval: interval.clone(),
                    spread,
                    shards: 1,
                    replicas: 1,
                    kill_leader: false,
                });
            }
        }
        i += 1;
    }
    if runs.is_empty() {
        runs.push(Run {
            n: 1000,
            interval: "5s".into(),
            spread: false,
            shards: 1,
            replicas: 1,
            kill_leader: false,
        });
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:>7} {:>6} {:>8} {:>6} {:>9} {:>8} {:>8} {:>6} {:>7} {:>6} {:>7} {:>7} {:>7}  stages p50/p99 (s)",
        "canaries",
        "every",
        "shape",
        "done",
        "lag p50",
        "lag p99",
        "took s",
        "ctl c",
        "ctl MiB",
        "api c",
        "api MiB",
        "req/st",
        "wr/st"
    );
    for r in &runs {
        match rt.block_on(run(r)) {
            Ok(result) => {
                print_row(&result);
                let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
                let name = format!(
                    "scale-{}-{}.json",
                    r.n,
                    if r.shards > 1 {
                        "sharded"
                    } else if r.spread {
                        "spread"
                    } else {
                        "stress"
                    }
                );
                if std::fs::create_dir_all(&dir).is_ok() {
                    let _ = std::fs::write(dir.join(name), format!("{result:#}\n"));
                }
            }
            Err(e) => println!("{:>7} failed: {e:#}", r.n),
        }
    }
}
