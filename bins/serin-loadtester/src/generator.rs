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
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri, header};
use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    connector::{Connector, Sender, TlsTarget},
    hey::LoadSpec,
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
    fn add(&mut self, seconds: f64) {
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

struct Prepared {
    connector: Connector,
    /// Request target: origin-form, or absolute-form through an `http://` proxy.
    uri: Uri,
    method: Method,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    body: Bytes,
    timeout: Option<Duration>,
    interval: Option<Duration>,
    keep_alive: bool,
}

#[derive(Default)]
struct WorkerStats {
    by_status: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    socket_errors: SocketErrors,
    samples: Vec<u32>,
    bytes: u64,
    dial: Phase,
    wait: Phase,
    read: Phase,
    responses: u64,
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
        headers,
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
    let workers: Vec<_> = (0..spec.workers)
        .map(|_| tokio::spawn(worker(prepared.clone(), deadline, remaining.clone())))
        .collect();
    let mut summary = Summary::default();
    for handle in workers {
        let stats = handle.await.unwrap_or_default();
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

/// One request's failure, with the wrk kind it counts as.
struct Failure {
    kind: fn(&mut SocketErrors) -> &mut u64,
    text: String,
}

impl Failure {
    fn new(kind: fn(&mut SocketErrors) -> &mut u64, text: impl Into<String>) -> Self {
        Failure {
            kind,
            text: text.into(),
        }
    }
}

async fn worker(p: Arc<Prepared>, deadline: Option<Instant>, remaining: Arc<AtomicI64>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut connection: Option<Sender> = None;
    let mut ticker = p.interval.map(|every| {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    loop {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || remaining.fetch_sub(1, Ordering::Relaxed) <= 0 {
            break;
        }
        let mut request = Request::builder().method(p.method.clone()).uri(p.uri.clone());
        for (k, v) in &p.headers {
            request = request.header(k, v);
        }
        let Ok(request) = request.body(Full::new(p.body.clone())) else {
            break;
        };
        let sent = Instant::now();
        let mut dial = 0.0;
        let mut timing = (0.0, 0.0);
        let exchange = async {
            let mut sender = match connection.take() {
                Some(s) if !s.is_closed() => s,
                _ => {
                    let s = p
                        .connector
                        .connect()
                        .await
                        .map_err(|e| Failure::new(|e| &mut e.connect, e.to_string()))?;
                    dial = sent.elapsed().as_secs_f64();
                    s
                }
            };
            let asked = Instant::now();
            let response = sender.send(request).await.map_err(|e| {
                let kind: fn(&mut SocketErrors) -> &mut u64 = if e.is_body_write_aborted() {
                    |e| &mut e.write
                } else {
                    |e| &mut e.read
                };
                Failure::new(kind, error_text(&e))
            })?;
            let status = response.status().as_u16();
            let headed = Instant::now();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| Failure::new(|e| &mut e.read, error_text(&e)))?;
            timing = ((headed - asked).as_secs_f64(), headed.elapsed().as_secs_f64());
            if p.keep_alive {
                connection = Some(sender);
            }
            Ok::<(u16, usize), Failure>((status, body.to_bytes().len()))
        };
        let result = match p.timeout {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .unwrap_or_else(|_| Err(Failure::new(|e| &mut e.timeout, "request timed out"))),
            None => exchange.await,
        };
        match result {
            Ok((status, size)) => {
                *stats.by_status.entry(status).or_default() += 1;
                stats.responses += 1;
                stats
                    .samples
                    .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                stats.bytes += size as u64;
                stats.dial.add(dial);
                stats.wait.add(timing.0);
                stats.read.add(timing.1);
            }
            Err(failure) => {
                *(failure.kind)(&mut stats.socket_errors) += 1;
                *stats.errors.entry(failure.text).or_default() += 1;
                // Do not spin on a target that refuses connections.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stats
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    if let Some(source) = e.source() {
        text.push_str(": ");
        text.push_str(&source.to_string());
    }
    text
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
