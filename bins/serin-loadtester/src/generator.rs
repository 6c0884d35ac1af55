//! The native load generator: a fixed pool of workers, each on its own keep-alive connection
//! (HTTP/1.1, or HTTP/2 over TLS with `-h2`), with hey's and wrk's request accounting: every
//! started request ends counted once, as a response by status or as an error by kind.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hyper::{Method, Uri, header};
use tokio::time::Instant;

use crate::{
    connector::{Connector, TlsTarget},
    hey::LoadSpec,
    worker::worker,
};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The URL does not parse.
    #[error("invalid URL {0:?}: {1}")]
    Url(String, String),
    /// The method does not parse.
    #[error("invalid method {0:?}")]
    Method(String),
    /// A header does not parse.
    #[error("invalid header {0:?}")]
    Header(String),
    /// TLS cannot be set up for the target.
    #[error("tls: {0}")]
    Tls(String),
    /// A load thread could not start.
    #[error("cannot start a load thread: {0}")]
    Runtime(String),
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latencies {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

/// Sum, count and bounds of one phase of the requests (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phase {
    /// Total time.
    pub sum: f64,
    /// Shortest.
    pub min: f64,
    /// Longest.
    pub max: f64,
    /// Samples.
    pub count: u64,
}

impl Phase {
    pub(crate) fn add(&mut self, seconds: f64) {
        self.min = if self.count == 0 {
            seconds
        } else {
            self.min.min(seconds)
        };
        self.max = self.max.max(seconds);
        self.sum += seconds;
        self.count += 1;
    }

    fn merge(&mut self, other: &Phase) {
        if other.count == 0 {
            return;
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count += other.count;
    }

    /// Mean, 0 without samples.
    pub fn average(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// Requests that got no response, by the socket operation that failed (wrk's accounting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketErrors {
    /// Connecting (TCP, proxy, TLS or the HTTP handshake).
    pub connect: u64,
    /// Reading the response.
    pub read: u64,
    /// Writing the request.
    pub write: u64,
    /// The per-request timeout.
    pub timeout: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Requests answered with a status.
    pub responses: u64,
    /// Responses by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no response, by error.
    pub errors: BTreeMap<String, u64>,
    /// The same errors by kind.
    pub socket_errors: SocketErrors,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency percentiles of responses.
    pub latencies: Latencies,
    /// Every response latency in microseconds, sorted (for histograms and distributions).
    pub samples_micros: Vec<u32>,
    /// Response body bytes read.
    pub bytes: u64,
    /// Connection set-up (TCP, proxy, TLS), one sample per request: zero on a reused connection.
    pub dial: Phase,
    /// From sending the request to the response's head.
    pub wait: Phase,
    /// Reading the response body.
    pub read: Phase,
    /// Responses received by each worker.
    pub per_worker: Vec<u64>,
    /// TLS connections whose certificate did not verify against the system roots (accepted
    /// anyway, as hey and wrk do).
    pub unverified_tls: u64,
}

impl Summary {
    /// Requests sent (responses and errors).
    pub fn total(&self) -> u64 {
        self.responses + self.errors.values().sum::<u64>()
    }

    /// Responses per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.responses as f64 / secs } else { 0.0 }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::report::hey(self))
    }
}

/// A spec made ready to send.
pub(crate) struct Prepared {
    pub(crate) connector: Connector,
    /// Request target: origin-form, or absolute-form through an `http://` proxy.
    pub(crate) uri: Uri,
    pub(crate) method: Method,
    pub(crate) headers: header::HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) timeout: Option<Duration>,
    pub(crate) interval: Option<Duration>,
    pub(crate) keep_alive: bool,
}

fn prepare(spec: &LoadSpec) -> Result<Prepared, GeneratorError> {
    let url_error = |e: String| GeneratorError::Url(spec.url.clone(), e);
    let uri: Uri = spec
        .url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| url_error(e.to_string()))?;
    let Some(host) = uri.host().map(str::to_owned) else {
        return Err(url_error("no host".into()));
    };
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => return Err(url_error(format!("unsupported scheme {other:?}"))),
    };
    let default_port = if https { 443 } else { 80 };
    let target = spec
        .connect_to
        .clone()
        .unwrap_or_else(|| format!("{host}:{}", uri.port_u16().unwrap_or(default_port)));
    let mut host_header = host.clone();
    if let Some(port) = uri.port_u16() {
        host_header.push_str(&format!(":{port}"));
    }
    let through_proxy = spec.proxy.is_some() && !https;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request_target: Uri = if through_proxy {
        format!("http://{host_header}{path}").parse()
    } else {
        path.parse()
    }
    .map_err(|e: hyper::http::uri::InvalidUri| url_error(e.to_string()))?;
    let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| GeneratorError::Method(spec.method.clone()))?;
    let mut headers = vec![(
        header::HOST,
        header::HeaderValue::from_str(&host_header).map_err(|_| GeneratorError::Header(host_header.clone()))?,
    )];
    let pairs = spec
        .headers
        .iter()
        .cloned()
        .chain(spec.content_type.iter().map(|t| ("content-type".to_owned(), t.clone())));
    for (k, v) in pairs {
        let name = header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| GeneratorError::Header(k.clone()))?;
        let value = header::HeaderValue::from_str(&v).map_err(|_| GeneratorError::Header(format!("{k}: {v}")))?;
        if name == header::HOST {
            // The user's Host header replaces the one taken from the URL.
            headers.retain(|(n, _)| *n != header::HOST);
        }
        headers.push((name, value));
    }
    if !spec.keep_alive {
        headers.push((header::CONNECTION, header::HeaderValue::from_static("close")));
    }
    // As in hey, HTTP/2 is negotiated over TLS only (ALPN); plain http:// stays HTTP/1.1.
    let tls = if https {
        // hey sends the Host header's name as SNI.
        let sni = headers
            .iter()
            .find(|(n, _)| *n == header::HOST)
            .and_then(|(_, v)| v.to_str().ok())
            .map(|v| {
                v.rsplit_once(':')
                    .map_or(v, |(h, _)| h)
                    .trim_matches(['[', ']'])
                    .to_owned()
            })
            .unwrap_or(host);
        Some(TlsTarget::new(&sni, spec.h2).map_err(|e| GeneratorError::Tls(e.to_string()))?)
    } else {
        None
    };
    Ok(Prepared {
        connector: Connector {
            target,
            proxy: spec.proxy.clone(),
            tls,
        },
        uri: request_target,
        method,
        headers: headers.into_iter().collect(),
        body: Bytes::from(spec.body.clone().unwrap_or_default()),
        timeout: spec.timeout,
        interval: spec.qps_per_worker.map(|q| Duration::from_secs_f64(1.0 / q)),
        keep_alive: spec.keep_alive,
    })
}

/// Runs the load described by `spec` and returns its summary.
pub async fn run(spec: &LoadSpec) -> Result<Summary, GeneratorError> {
    let prepared = Arc::new(prepare(spec)?);
    let started = Instant::now();
    let deadline = spec.duration.map(|d| started + d);
    let budget = spec.requests.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let remaining = Arc::new(AtomicI64::new(budget));
    // One single-threaded runtime per core, like wrk's threads: a worker, its connection and
    // their wake-ups stay on one thread, and the load does not compete with the caller's runtime.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(spec.workers.max(1));
    let mut results = Vec::with_capacity(threads);
    for t in 0..threads {
        let count = (t..spec.workers).step_by(threads).count();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (prepared, remaining) = (prepared.clone(), remaining.clone());
        std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                let stats = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    // A task per worker: a wake-up polls that worker only (`join_all` would
                    // poll every one of them).
                    Ok(rt) => rt.block_on(async {
                        let tasks: Vec<_> = (0..count)
                            .map(|_| tokio::spawn(worker(prepared.clone(), deadline, remaining.clone())))
                            .collect();
                        let mut all = Vec::with_capacity(count);
                        for task in tasks {
                            all.push(task.await.unwrap_or_default());
                        }
                        all
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a load runtime");
                        Vec::new()
                    }
                };
                let _ = tx.send(stats);
            })
            .map_err(|e| GeneratorError::Runtime(e.to_string()))?;
        results.push(rx);
    }
    let mut summary = Summary::default();
    for stats in futures::future::join_all(results)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap_or_default())
    {
        for (k, v) in stats.by_status {
            *summary.by_status.entry(k).or_default() += v;
        }
        for (k, v) in stats.errors {
            *summary.errors.entry(k).or_default() += v;
        }
        let e = stats.socket_errors;
        summary.socket_errors.connect += e.connect;
        summary.socket_errors.read += e.read;
        summary.socket_errors.write += e.write;
        summary.socket_errors.timeout += e.timeout;
        summary.samples_micros.extend(stats.samples);
        summary.bytes += stats.bytes;
        summary.dial.merge(&stats.dial);
        summary.wait.merge(&stats.wait);
        summary.read.merge(&stats.read);
        summary.per_worker.push(stats.responses);
    }
    summary.elapsed = started.elapsed();
    summary.responses = summary.by_status.values().sum();
    summary.latencies = percentiles(&mut summary.samples_micros);
    summary.unverified_tls = prepared
        .connector
        .tls
        .as_ref()
        .map_or(0, |t| t.unverified.load(Ordering::Relaxed));
    Ok(summary)
}

fn percentiles(samples: &mut [u32]) -> Latencies {
    if samples.is_empty() {
        return Latencies::default();
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        Duration::from_micros(u64::from(samples[i.min(samples.len() - 1)]))
    };
    Latencies {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: at(1.0),
    }
}
