//! The native load generator: a fixed pool of workers on one keep-alive HTTP/1 client.

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
use hyper::{Method, Request, Uri, client::conn::http1::SendRequest, header};
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpStream,
    time::{Instant, MissedTickBehavior},
};

use crate::hey::LoadSpec;

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

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Requests answered with a status.
    pub responses: u64,
    /// Responses by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no response, by error.
    pub errors: BTreeMap<String, u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency percentiles of responses.
    pub latencies: Latencies,
    /// Every response latency, in microseconds (for histograms).
    pub samples_micros: Vec<u32>,
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
        writeln!(f, "Summary:")?;
        writeln!(f, "  Total:        {:.4} secs", self.elapsed.as_secs_f64())?;
        writeln!(f, "  Requests/sec: {:.4}", self.rate())?;
        writeln!(f, "  Requests:     {}", self.total())?;
        writeln!(
            f,
            "Latency: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            self.latencies.p50, self.latencies.p90, self.latencies.p99, self.latencies.max
        )?;
        writeln!(f, "Status code distribution:")?;
        for (status, n) in &self.by_status {
            writeln!(f, "  [{status}] {n} responses")?;
        }
        if !self.errors.is_empty() {
            writeln!(f, "Error distribution:")?;
            for (e, n) in &self.errors {
                writeln!(f, "  [{n}] {e}")?;
            }
        }
        Ok(())
    }
}

struct Prepared {
    /// `host:port` to connect to.
    authority: String,
    /// Origin-form request target (path and query).
    uri: Uri,
    method: Method,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    body: Bytes,
    timeout: Option<Duration>,
    interval: Option<Duration>,
}

#[derive(Default)]
struct WorkerStats {
    by_status: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    samples: Vec<u32>,
}

fn prepare(spec: &LoadSpec) -> Result<Prepared, GeneratorError> {
    let uri: Uri = spec
        .url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| GeneratorError::Url(spec.url.clone(), e.to_string()))?;
    if uri.host().is_none() {
        return Err(GeneratorError::Url(spec.url.clone(), "no host".into()));
    }
    let authority = spec
        .connect_to
        .clone()
        .unwrap_or_else(|| format!("{}:{}", uri.host().unwrap_or_default(), uri.port_u16().unwrap_or(80)));
    let mut headers_host = uri.host().unwrap_or_default().to_owned();
    if let Some(port) = uri.port_u16() {
        headers_host.push_str(&format!(":{port}"));
    }
    let origin: Uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| GeneratorError::Url(spec.url.clone(), e.to_string()))?;
    let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| GeneratorError::Method(spec.method.clone()))?;
    let mut headers = vec![(
        header::HOST,
        header::HeaderValue::from_str(&headers_host).map_err(|_| GeneratorError::Header(headers_host.clone()))?,
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
    Ok(Prepared {
        authority,
        uri: origin,
        method,
        headers,
        body: Bytes::from(spec.body.clone().unwrap_or_default()),
        timeout: spec.timeout,
        interval: spec.qps_per_worker.map(|q| Duration::from_secs_f64(1.0 / q)),
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
        summary.samples_micros.extend(stats.samples);
    }
    summary.elapsed = started.elapsed();
    summary.responses = summary.by_status.values().sum();
    summary.latencies = percentiles(&mut summary.samples_micros);
    Ok(summary)
}

/// Opens a keep-alive HTTP/1 connection owned by one worker (no shared pool, no lock).
async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| error_text(&e))?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn worker(p: Arc<Prepared>, deadline: Option<Instant>, remaining: Arc<AtomicI64>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
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
        let exchange = async {
            let mut sender = match connection.take() {
                Some(s) if !s.is_closed() => s,
                _ => connect(&p.authority).await?,
            };
            sender.ready().await.map_err(|e| error_text(&e))?;
            let response = sender.send_request(request).await.map_err(|e| error_text(&e))?;
            let status = response.status().as_u16();
            response.into_body().collect().await.map_err(|e| error_text(&e))?;
            connection = Some(sender);
            Ok::<u16, String>(status)
        };
        let result = match p.timeout {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .unwrap_or_else(|_| Err("request timed out".into())),
            None => exchange.await,
        };
        match result {
            Ok(status) => {
                *stats.by_status.entry(status).or_default() += 1;
                stats
                    .samples
                    .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Err(e) => {
                *stats.errors.entry(e).or_default() += 1;
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
