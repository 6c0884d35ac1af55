//! `cargo bench -p serin-loadtester` (or `cargo xtask bench loadtester`): requests/s of the native
//! generator against a local hyper target, side by side with Debian's `hey` and `wrk` at the
//! same concurrency and duration, in alternating rounds of the same run (medians), with each
//! tool's CPU time per 1,000 requests. Installs hey and wrk with apt-get when missing.

use std::{convert::Infallible, process::Command, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

const SECONDS: u64 = 5;
const CONCURRENCY: u32 = 50;
const ROUNDS: usize = 3;

fn start_target() -> (String, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    let addr = rx.recv().expect("target address");
    (format!("http://{addr}/"), handle)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_tools() {
    if have("hey") && have("wrk") {
        return;
    }
    eprintln!("installing hey and wrk with apt-get (Debian packages)...");
    let _ = Command::new("sh")
        .arg("-c")
        .arg("(apt-get install -y --no-install-recommends hey wrk || (apt-get update && apt-get install -y --no-install-recommends hey wrk)) >/dev/null 2>&1")
        .status();
}

/// CPU time (user + system) of the waited-for children so far.
fn children_cpu() -> Duration {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default()
}

/// One run of a generator: requests/s from its `Requests/sec:` line, and the CPU seconds it
/// spent per 1,000 requests.
fn measure(program: &str, args: &[String]) -> Result<(f64, f64), String> {
    let before = children_cpu();
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let cpu = (children_cpu() - before).as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:").map(|v| v.trim().parse::<f64>()))
        .and_then(Result::ok)
        .ok_or_else(|| format!("{program}: no Requests/sec in output: {}", text.trim()))?;
    let requests = rate * SECONDS as f64;
    Ok((rate, cpu / requests * 1000.0))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    ensure_tools();
    let (url, _target) = start_target();
    let secs = format!("{SECONDS}s");
    let c = CONCURRENCY.to_string();
    let ours_args: Vec<String> = ["run", "-z", &secs, "-c", &c, &url].map(String::from).to_vec();
    let hey_args: Vec<String> = ["-z", &secs, "-c", &c, &url].map(String::from).to_vec();
    let wrk_args: Vec<String> = ["-d", &secs, "-c", &c, "-t", "2", &url].map(String::from).to_vec();
    let tools: [(&str, &str, &[String]); 3] = [
        ("serin-loadtester", env!("CARGO_BIN_EXE_serin-loadtester"), &ours_args),
        ("hey", "hey", &hey_args),
        ("wrk", "wrk", &wrk_args),
    ];
    // Rounds alternate the tools, so a noisy neighbour hurts each alike; medians are reported.
    let mut results: Vec<(Vec<f64>, Vec<f64>, Option<String>)> = vec![(Vec::new(), Vec::new(), None); 3];
    for _round in 0..ROUNDS {
        for (i, (_, program, args)) in tools.iter().enumerate() {
            match measure(program, args) {
                Ok((rate, cpu)) => {
                    results[i].0.push(rate);
                    results[i].1.push(cpu);
                }
                Err(e) => results[i].2 = Some(e),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    println!(
        "load generators against one local hyper target, {ROUNDS} alternating rounds of {SECONDS}s, concurrency {CONCURRENCY} (medians):"
    );
    let mut rates = Vec::new();
    for ((name, _, _), (rate, cpu, error)) in tools.iter().zip(&results) {
        let (r, c) = (median(rate.clone()), median(cpu.clone()));
        match (r, c, error) {
            (Some(r), Some(c), _) => println!("  {name:<18} {r:>10.0} req/s   {c:>6.3} CPU-s per 1,000 requests"),
            (_, _, e) => println!("  {name:<18} unavailable: {}", e.as_deref().unwrap_or("no result")),
        }
        rates.push(r);
    }
    if let (Some(o), Some(h)) = (rates[0], rates[1]) {
        println!("  ratio serin/hey: {:.2}x (goal >= 2x)", o / h);
    }
    if let (Some(o), Some(w)) = (rates[0], rates[2]) {
        println!("  ratio serin/wrk: {:.2}x (goal >= 1x)", o / w);
    }
    let show = |r: Option<f64>| r.map_or("null".into(), |v| format!("{v:.1}"));
    let json = format!(
        "{{\"seconds\":{SECONDS},\"rounds\":{ROUNDS},\"concurrency\":{CONCURRENCY},\"serin\":{},\"hey\":{},\"wrk\":{}}}\n",
        show(rates[0]),
        show(rates[1]),
        show(rates[2]),
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("loadtester.json"), json);
    }
}
