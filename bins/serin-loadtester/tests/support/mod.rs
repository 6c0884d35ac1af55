//! Shared by the loadtester's process tests: starting the binary on a free port (and always
//! stopping it), and local targets that count what they receive.

#![allow(dead_code)]

use std::{
    convert::Infallible,
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Kills the child when dropped, so a failing test never leaks a process.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the loadtester with exactly `args`, `env` and `--state-file state`, and waits until
/// it listens on `port`.
pub fn start_at(port: u16, args: &[&str], env: &[(&str, &str)], state: &std::path::Path) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_serin-loadtester"))
        .args(args)
        .arg("--state-file")
        .arg(state)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start loadtester");
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "loadtester did not listen on {port} ({args:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

/// Starts the loadtester server with `args` and `env` on a free loopback port; waits until it
/// listens.
pub fn start_server(args: &[&str], env: &[(&str, &str)]) -> (Running, u16) {
    let port = free_port();
    let state = std::env::temp_dir().join(format!("serin-lt-state-{}-{port}.json", std::process::id()));
    let port_text = port.to_string();
    let all: Vec<&str> = ["--bind", "127.0.0.1", "--port", port_text.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    (start_at(port, &all, env, &state), port)
}

/// `serin-loadtester run ARGS`: its stdout, or the failure with stderr.
pub fn run_load(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_serin-loadtester"))
        .arg("run")
        .args(args)
        .output()
        .expect("run the loadtester");
    assert!(
        out.status.success(),
        "run {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a real tool is installed; under `SERIN_REQUIRE_TOOLS=1` (set by `cargo xtask ci`),
/// a missing tool fails the test instead of skipping it.
pub fn have_tool(tool: &str) -> bool {
    let have = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("SERIN_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{tool} is required (Debian package {tool})"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    have
}

/// What a target saw.
#[derive(Default)]
pub struct Seen {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    /// `VERSION METHOD URI host` of each request.
    pub lines: Mutex<Vec<String>>,
}

/// A local target on its own thread; answers `ok` (or `body`), over TLS when `tls` is given.
pub struct Target {
    pub port: u16,
    pub seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A self-signed certificate for `localhost`: (certificate, key) in DER.
pub fn self_signed() -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    (
        cert.cert.der().clone(),
        rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
    )
}

pub fn start_target(tls: bool, body: &'static [u8]) -> Target {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let seen = Arc::new(Seen::default());
    let seen_in = seen.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let acceptor = tls.then(|| {
                let (cert, key) = self_signed();
                let mut config =
                    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                        .with_safe_default_protocol_versions()
                        .expect("versions")
                        .with_no_client_auth()
                        .with_single_cert(vec![cert], key)
                        .expect("server config");
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                tokio_rustls::TlsAcceptor::from(Arc::new(config))
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            port_tx.send(listener.local_addr().expect("addr").port()).expect("send");
            loop {
                let stream = tokio::select! {
                    _ = &mut stop_rx => return,
                    accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
                };
                seen_in.connections.fetch_add(1, Ordering::Relaxed);
                let seen = seen_in.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            seen.requests.fetch_add(1, Ordering::Relaxed);
                            let host = req
                                .headers()
                                .get("host")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            if let Ok(mut lines) = seen.lines.lock() {
                                lines.push(format!("{:?} {} {} {host}", req.version(), req.method(), req.uri()));
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(body))))
                        }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
    });
    let port = port_rx.recv().expect("target port");
    Target {
        port,
        seen,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}
