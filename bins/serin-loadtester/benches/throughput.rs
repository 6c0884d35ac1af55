//! `cargo bench -p serin-loadtester` (or `cargo xtask bench loadtester`): requests/s of the native
//! generator against a local hyper target, side by side with Debian's `hey` and `wrk` at the
//! same concurrency and duration, in the same run. Installs hey and wrk with apt-get when missing.

use std::{convert::Infallible, process::Command, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

const SECONDS: u64 = 5;
const CONCURRENCY: u32 = 50;

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

/// Runs a generator and reads its `Requests/sec:` line.
fn requests_per_second(program: &str, args: &[String]) -> Result<f64, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:").map(|v| v.trim().parse::<f64>()))
        .and_then(Result::ok)
        .ok_or_else(|| format!("{program}: no Requests/sec in output: {}", text.trim()))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    ensure_tools();
    let (url, _target) = start_target();
    let secs = format!("{SECONDS}s");
    let c = CONCURRENCY.to_string();
    let ours = requests_per_second(
        env!("CARGO_BIN_EXE_serin-loadtester"),
        &[
            "run".into(),
            "-z".into(),
            secs.clone(),
            "-c".into(),
            c.clone(),
            url.clone(),
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let hey = requests_per_second("hey", &["-z".into(), secs.clone(), "-c".into(), c.clone(), url.clone()]);
    std::thread::sleep(Duration::from_millis(500));
    let wrk = requests_per_second(
        "wrk",
        &["-d".into(), secs, "-c".into(), c.clone(), "-t".into(), "2".into(), url],
    );
    println!("load generators against one local hyper target, {SECONDS}s each, concurrency {CONCURRENCY}:");
    let show = |name: &str, r: &Result<f64, String>| match r {
        Ok(v) => println!("  {name:<18} {v:>10.0} req/s"),
        Err(e) => println!("  {name:<18} unavailable: {e}"),
    };
    show("serin-loadtester", &ours);
    show("hey", &hey);
    show("wrk", &wrk);
    if let (Ok(o), Ok(h)) = (&ours, &hey) {
        println!("  ratio serin/hey: {:.2}x (goal >= 2x)", o / h);
    }
    if let (Ok(o), Ok(w)) = (&ours, &wrk) {
        println!("  ratio serin/wrk: {:.2}x (goal >= 1x)", o / w);
    }
    let json = format!(
        "{{\"seconds\":{SECONDS},\"concurrency\":{CONCURRENCY},\"serin\":{},\"hey\":{},\"wrk\":{}}}\n",
        ours.as_ref().map_or("null".into(), |v| format!("{v:.1}")),
        hey.as_ref().map_or("null".into(), |v| format!("{v:.1}")),
        wrk.as_ref().map_or("null".into(), |v| format!("{v:.1}")),
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("loadtester.json"), json);
    }
}
