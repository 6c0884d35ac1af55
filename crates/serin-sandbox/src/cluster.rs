//! Every sandbox component as a real process on loopback: the API emulator with the Knative
//! simulator and traffic router (`serin-sandbox kube-api --knative`), Prometheus, the
//! loadtester (reachable as `flagger-loadtester.test`) and the controller. Free ports, readiness
//! polled with deadlines, and everything killed on drop.

use std::{
    fs::File,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::prometheus::Prometheus;

/// Paths of the three binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `serin-sandbox`.
    pub sandbox: PathBuf,
    /// `serin-controller`.
    pub controller: PathBuf,
    /// `serin-loadtester`.
    pub loadtester: PathBuf,
}

impl Binaries {
    /// The binaries in `dir` (a cargo target profile directory).
    pub fn in_dir(dir: &Path) -> anyhow::Result<Binaries> {
        let b = Binaries {
            sandbox: dir.join("serin-sandbox"),
            controller: dir.join("serin-controller"),
            loadtester: dir.join("serin-loadtester"),
        };
        for p in [&b.sandbox, &b.controller, &b.loadtester] {
            if !p.is_file() {
                bail!(
                    "{} is not built: run `cargo build -p serin-sandbox -p serin-controller -p serin-loadtester`",
                    p.display()
                );
            }
        }
        Ok(b)
    }
}

/// A child process killed (SIGKILL) on drop.
pub(crate) struct Managed {
    pub(crate) name: String,
    pub(crate) child: Child,
}

impl Drop for Managed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `N` distinct free loopback ports: all are held open until every one is chosen (one at a time,
/// the system may hand out a port it just released, and two components then collide).
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Polls `GET path` on `addr` until it answers 200, or fails after `limit`. It blocks: called
/// from a multi-threaded tokio runtime (the async tests, the demo), it tells the runtime so
/// (`block_in_place`) and other tasks move to the other workers meanwhile.
pub fn wait_http(addr: &str, path: &str, limit: Duration) -> anyhow::Result<()> {
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_threaded {
        tokio::task::block_in_place(|| poll_http(addr, path, limit))
    } else {
        poll_http(addr, path, limit)
    }
}

fn poll_http(addr: &str, path: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("http://{addr}{path} did not answer 200 within {limit:?}")
}

/// The running sandbox.
pub struct Cluster {
    /// Kubernetes API URL.
    pub api_url: String,
    /// Traffic router (where `*.test` hosts go).
    pub router: SocketAddr,
    /// Router metrics (`/stats/prometheus`).
    pub router_admin: SocketAddr,
    /// Loadtester address.
    pub loadtester: SocketAddr,
    /// Controller `/metrics` address.
    pub controller_listen: SocketAddr,
    /// Prometheus.
    pub prometheus: Prometheus,
    /// Where process logs go.
    pub logs: PathBuf,
    bins: Binaries,
    controller_args: Vec<String>,
    controllers: Vec<Managed>,
    _others: Vec<Managed>,
}

pub(crate) fn spawn(name: &str, program: &Path, args: &[String], logs: &Path) -> anyhow::Result<Managed> {
    let log = File::create(logs.join(format!("{name}.log")))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    Ok(Managed {
        name: name.to_owned(),
        child,
    })
}

impl Cluster {
    /// Starts the API emulator (with Serin's and Knative's CRDs from `root`), Prometheus and the
    /// loadtester; the controller starts with [`Cluster::start_controller`].
    pub fn start(bins: Binaries, root: &Path, controller_args: Vec<String>) -> anyhow::Result<Cluster> {
        let logs = std::env::temp_dir().join(format!("serin-sandbox-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&logs)?;
        let [api_port, router_port, admin_port, lt_port] = free_ports::<4>()?;
        let router: SocketAddr = format!("127.0.0.1:{router_port}").parse()?;
        let loadtester: SocketAddr = format!("127.0.0.1:{lt_port}").parse()?;
        let state = logs.join("gates.json");
        let lt = spawn(
            "loadtester",
            &bins.loadtester,
            &[
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                lt_port.to_string(),
                "--resolve".into(),
                format!(".test={router}"),
                "--state-file".into(),
                state.display().to_string(),
            ],
            &logs,
        )?;
        let api = spawn(
            "kube-api",
            &bins.sandbox,
            &[
                "kube-api".into(),
                "--port".into(),
                api_port.to_string(),
                "--crds".into(),
                root.join("deploy/crds").display().to_string(),
                "--knative".into(),
                "--router-port".into(),
                router_port.to_string(),
                "--router-admin-port".into(),
                admin_port.to_string(),
                "--route".into(),
                format!("flagger-loadtester.test={loadtester}"),
            ],
            &logs,
        )?;
        let api_addr = format!("127.0.0.1:{api_port}");
        wait_http(&api_addr, "/version", Duration::from_secs(30))
            .with_context(|| format!("kube-api (log {})", logs.join("kube-api.log").display()))?;
        wait_http(&loadtester.to_string(), "/healthz", Duration::from_secs(30)).context("loadtester")?;
        wait_http(
            &format!("127.0.0.1:{admin_port}"),
            "/stats/prometheus",
            Duration::from_secs(30),
        )
        .context("traffic router")?;
        let prometheus = Prometheus::start(&[format!("127.0.0.1:{admin_port}")])?;
        let controller_listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        Ok(Cluster {
            api_url: format!("http://{api_addr}"),
            router,
            router_admin: format!("127.0.0.1:{admin_port}").parse()?,
            loadtester,
            controller_listen,
            prometheus,
            logs,
            bins,
            controller_args,
            controllers: Vec::new(),
            _others: vec![lt, api],
        })
    }

    /// Writes a kubeconfig for this sandbox's API (namespace `test`) into the logs directory,
    /// for `serin` and `kubectl`; returns its path.
    pub fn write_kubeconfig(&self) -> anyhow::Result<PathBuf> {
        let path = self.logs.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox\n    namespace: test\ncurrent-context: sandbox\nusers:\n- name: sandbox\n  user: {{}}\n",
            self.api_url
        );
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Starts (or restarts) the controller against the sandbox and waits for `/healthz`.
    pub fn start_controller(&mut self) -> anyhow::Result<()> {
        let listen = self.controller_listen;
        self.start_replica(listen, &[])
    }

    /// Starts another controller process listening on `listen`, with extra arguments.
    pub fn start_replica(&mut self, listen: SocketAddr, extra: &[&str]) -> anyhow::Result<()> {
        let n = self.controllers.len();
        let mut args = vec![
            "--kube-server".into(),
            self.api_url.clone(),
            "--metrics-server".into(),
            self.prometheus.url.clone(),
            "--listen".into(),
            listen.to_string(),
            "--resolve".into(),
            format!("flagger-loadtester.test={}", self.router),
            "--log-level".into(),
            "info,serin_reconciler=debug".into(),
        ];
        args.extend(self.controller_args.iter().cloned());
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let c = spawn(&format!("controller-{n}"), &self.bins.controller, &args, &self.logs)?;
        self.controllers.push(c);
        wait_http(&listen.to_string(), "/healthz", Duration::from_secs(30)).context("controller")
    }

    /// Kills controller number `index` (in start order) with SIGKILL.
    pub fn kill_replica(&mut self, index: usize) {
        if let Some(c) = self.controllers.get_mut(index) {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }

    /// Sets the API emulator's faults over its admin endpoint.
    pub fn set_faults(&self, faults: &crate::kube_api::Faults) -> anyhow::Result<()> {
        let addr = self.api_url.trim_start_matches("http://");
        let body = serde_json::to_string(faults)?;
        let mut stream = TcpStream::connect(addr)?;
        write!(
            stream,
            "PUT /_sandbox/faults HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        if !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200") {
            bail!("setting faults failed: {answer}");
        }
        Ok(())
    }

    /// How many API requests the emulator has failed by injection so far.
    pub fn injected_faults(&self) -> anyhow::Result<u64> {
        let addr = self.api_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr)?;
        write!(stream, "GET /_sandbox/injected HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(body).with_context(|| format!("answer: {answer}"))?;
        value["injected"].as_u64().context("no injected count")
    }

    /// Kills the running controller with SIGKILL.
    pub fn kill_controller(&mut self) {
        if let Some(c) = self.controllers.last_mut() {
            let _ = c.child.kill();
            let _ = c.child.wait();
            tracing::info!(name = %c.name, "controller killed");
        }
    }

    /// A kube client for the sandbox API.
    pub fn client(&self) -> anyhow::Result<kube::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(kube::Client::try_from(kube::Config::new(
            self.api_url.parse::<http::Uri>()?,
        ))?)
    }
}
