//! One load worker: a loop of requests on its own connection, which it drives itself (no task
//! but the worker is woken per request), under one reusable timer for the per-request timeout.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    connector::{ConnectError, Driver, Sender},
    generator::{Phase, Prepared, SocketErrors},
};

/// What one worker did.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) by_status: BTreeMap<u16, u64>,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) socket_errors: SocketErrors,
    pub(crate) samples: Vec<u32>,
    pub(crate) bytes: u64,
    pub(crate) dial: Phase,
    pub(crate) wait: Phase,
    pub(crate) read: Phase,
    pub(crate) responses: u64,
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

    fn timeout() -> Self {
        Failure::new(|e| &mut e.timeout, "request timed out")
    }
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Self {
        Failure::new(|e| &mut e.connect, e.to_string())
    }
}

/// Far enough to never fire: the timer's resting deadline.
const NEVER: Duration = Duration::from_secs(86_400 * 365);

/// Sends requests until the deadline passes or the shared budget runs out.
pub(crate) async fn worker(p: Arc<Prepared>, deadline: Option<Instant>, remaining: Arc<AtomicI64>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut connection: Option<(Sender, Driver)> = None;
    let timer = tokio::time::sleep(NEVER);
    tokio::pin!(timer);
    let mut ticker = p.interval.map(|every| {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    loop {
        if let Some(t) = ticker.as_mut() {
            // Idle between requests: the connection's I/O keeps going.
            match connection.as_mut() {
                Some((_, driver)) => {
                    tokio::select! {
                        biased;
                        _ = t.tick() => {}
                        () = driver => { connection = None; t.tick().await; }
                    }
                }
                None => {
                    t.tick().await;
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || remaining.fetch_sub(1, Ordering::Relaxed) <= 0 {
            break;
        }
        let sent = Instant::now();
        timer.as_mut().reset(p.timeout.map_or(sent + NEVER, |t| sent + t));
        let mut dial = 0.0;
        if connection.as_ref().is_some_and(|(s, _)| s.is_closed()) {
            connection = None;
        }
        if connection.is_none() {
            let connect = p.connector.connect();
            tokio::pin!(connect);
            let opened = tokio::select! {
                biased;
                c = &mut connect => c.map_err(Failure::from),
                () = &mut timer => Err(Failure::timeout()),
            };
            match opened {
                Ok(c) => {
                    dial = sent.elapsed().as_secs_f64();
                    connection = Some(c);
                }
                Err(failure) => {
                    record_failure(&mut stats, failure).await;
                    continue;
                }
            }
        }
        let (result, driver_done) = {
            let Some((sender, driver)) = connection.as_mut() else {
                continue;
            };
            let mut request = Request::new(Full::new(p.body.clone()));
            *request.method_mut() = p.method.clone();
            *request.uri_mut() = p.uri.clone();
            *request.headers_mut() = p.headers.clone();
            let exchange = exchange(sender, request);
            tokio::pin!(exchange);
            let mut driver_done = false;
            let result = loop {
                tokio::select! {
                    biased;
                    out = &mut exchange => break out,
                    () = &mut timer => break Err(Failure::timeout()),
                    // The connection ended: the exchange fails or completes on its own now.
                    () = &mut *driver, if !driver_done => driver_done = true,
                }
            };
            (result, driver_done)
        };
        match result {
            Ok((status, size, wait, read)) => {
                *stats.by_status.entry(status).or_default() += 1;
                stats.responses += 1;
                stats
                    .samples
                    .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                stats.bytes += size as u64;
                stats.dial.add(dial);
                stats.wait.add(wait);
                stats.read.add(read);
                if driver_done || !p.keep_alive {
                    connection = None;
                }
            }
            Err(failure) => {
                connection = None;
                record_failure(&mut stats, failure).await;
            }
        }
    }
    stats
}

async fn record_failure(stats: &mut WorkerStats, failure: Failure) {
    *(failure.kind)(&mut stats.socket_errors) += 1;
    *stats.errors.entry(failure.text).or_default() += 1;
    // Do not spin on a target that refuses connections.
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Sends one request and reads its body (counted, not kept); returns the status, the body's
/// size, and the seconds to the response head and through the body.
async fn exchange(sender: &mut Sender, request: Request<Full<Bytes>>) -> Result<(u16, usize, f64, f64), Failure> {
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
    let mut body = response.into_body();
    let mut size = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::new(|e| &mut e.read, error_text(&e)))?;
        size += frame.data_ref().map_or(0, Bytes::len);
    }
    Ok((
        status,
        size,
        (headed - asked).as_secs_f64(),
        headed.elapsed().as_secs_f64(),
    ))
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    if let Some(source) = e.source() {
        text.push_str(": ");
        text.push_str(&source.to_string());
    }
    text
}
