//! The delivery queue: alerts are handed over without waiting and sent by one worker per
//! target (a dead chat service delays only its own alerts, never a rollout step), at most one
//! message per `min_interval` per target, retried with backoff and jitter on 429, 5xx and
//! transport errors (`Retry-After` honoured), each target's backlog bounded (the oldest alert is
//! dropped and counted).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serin_core::Alert;
use tokio::sync::Notify;

use crate::{
    ProviderKind, Target,
    payload::{Subject, body},
};

/// How the queue sends.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Alerts waiting per target before the oldest is dropped.
    pub capacity: usize,
    /// Attempts per alert (the first included).
    pub attempts: u32,
    /// Backoff before the second attempt; doubled each time, with ±50% jitter.
    pub backoff: Duration,
    /// The longest wait between attempts (a longer `Retry-After` is capped to it).
    pub max_backoff: Duration,
    /// At most one message per target per this interval (Slack allows one per second).
    pub min_interval: Duration,
    /// Per-request timeout (Flagger's: 5 s).
    pub timeout: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            capacity: 256,
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            min_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One alert to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// Where.
    pub target: Target,
    /// About which Canary.
    pub subject: Subject,
    /// What.
    pub alert: Alert,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Accepted (2xx).
    Sent,
    /// Given up; the reason names no URL or token.
    Failed(String),
    /// Dropped from a full backlog before any attempt.
    Dropped,
}

/// The report of one alert's delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Provider type.
    pub provider: ProviderKind,
    /// The target's name.
    pub target: String,
    /// The Canary.
    pub subject: Subject,
    /// The alert's message.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// Outcome.
    pub result: DeliveryResult,
}

type Report = Arc<dyn Fn(Delivery) + Send + Sync>;

struct Lane {
    jobs: Mutex<VecDeque<Job>>,
    wake: Notify,
}

struct Inner {
    config: DispatcherConfig,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    clients: Mutex<HashMap<Option<String>, reqwest::Client>>,
    dropped: AtomicU64,
    report: Report,
}

/// Sends alerts in the background. Cloning shares the queue.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    /// A dispatcher on the current Tokio runtime; `report` hears every outcome.
    pub fn new(config: DispatcherConfig, report: impl Fn(Delivery) + Send + Sync + 'static) -> Self {
        Dispatcher {
            inner: Arc::new(Inner {
                config,
                lanes: Mutex::new(HashMap::new()),
                clients: Mutex::new(HashMap::new()),
                dropped: AtomicU64::new(0),
                report: Arc::new(report),
            }),
        }
    }

    /// Queues an alert and returns at once.
    pub fn send(&self, job: Job) {
        let key = job.target.name.clone();
        let (lane, started) = {
            let mut lanes = self.inner.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            match lanes.get(&key) {
                Some(lane) => (lane.clone(), false),
                None => {
                    let lane = Arc::new(Lane {
                        jobs: Mutex::new(VecDeque::new()),
                        wake: Notify::new(),
                    });
                    lanes.insert(key, lane.clone());
                    (lane, true)
                }
            }
        };
        let dropped = {
            let mut jobs = lane.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let dropped = (jobs.len() >= self.inner.config.capacity.max(1))
                .then(|| jobs.pop_front())
                .flatten();
            jobs.push_back(job);
            dropped
        };
        if let Some(old) = dropped {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            (self.inner.report)(report_of(&old, 0, DeliveryResult::Dropped));
        }
        if started {
            let inner = self.inner.clone();
            let worker_lane = lane.clone();
            tokio::spawn(async move { work(inner, worker_lane).await });
        }
        lane.wake.notify_one();
    }

    /// Alerts dropped from full backlogs so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Alerts waiting, all targets together.
    pub fn pending(&self) -> usize {
        let lanes = self.inner.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes
            .values()
            .map(|l| l.jobs.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

fn report_of(job: &Job, attempts: u32, result: DeliveryResult) -> Delivery {
    Delivery {
        provider: job.target.kind,
        target: job.target.name.clone(),
        subject: job.subject.clone(),
        message: job.alert.message.clone(),
        attempts,
        result,
    }
}

async fn work(inner: Arc<Inner>, lane: Arc<Lane>) {
    let mut last_sent: Option<tokio::time::Instant> = None;
    loop {
        let job = lane.jobs.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
        let Some(job) = job else {
            lane.wake.notified().await;
            continue;
        };
        if let Some(last) = last_sent {
            tokio::time::sleep_until(last + inner.config.min_interval).await;
        }
        let (attempts, result) = deliver(&inner, &job).await;
        last_sent = Some(tokio::time::Instant::now());
        (inner.report)(report_of(&job, attempts, result));
    }
}

fn client(inner: &Inner, proxy: &Option<String>) -> Result<reqwest::Client, String> {
    let mut clients = inner.clients.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = clients.get(proxy) {
        return Ok(c.clone());
    }
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err("no rustls crypto provider is installed".into());
    }
    let mut builder = reqwest::Client::builder().user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")));
    if let Some(p) = proxy {
        builder = builder.proxy(reqwest::Proxy::all(p).map_err(|_| "unable to parse proxy URL".to_owned())?);
    }
    let built = builder.build().map_err(|e| e.without_url().to_string())?;
    clients.insert(proxy.clone(), built.clone());
    Ok(built)
}

/// Jitter in [0.5, 1.5) from the clock's nanoseconds (no randomness needed beyond spreading).
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.5 + f64::from(nanos % 1000) / 1000.0)
}

/// Sends with retries; the attempts made and the outcome.
async fn deliver(inner: &Inner, job: &Job) -> (u32, DeliveryResult) {
    let config = &inner.config;
    let client = match client(inner, &job.target.proxy) {
        Ok(c) => c,
        Err(e) => return (0, DeliveryResult::Failed(e)),
    };
    let payload = body(&job.target, &job.subject, &job.alert);
    let mut backoff = config.backoff;
    let mut last_error = String::new();
    for attempt in 1..=config.attempts.max(1) {
        let mut request = client.post(&job.target.url).json(&payload).timeout(config.timeout);
        if let Some(token) = &job.target.token {
            request = request.bearer_auth(token);
        }
        let retry_after = match request.send().await {
            Ok(response) if response.status().is_success() => return (attempt, DeliveryResult::Sent),
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = response.text().await.unwrap_or_default();
                last_error = format!(
                    "sending notification bad response {status}: {}",
                    text.chars().take(200).collect::<String>()
                );
                if status != 429 && status < 500 {
                    return (attempt, DeliveryResult::Failed(last_error));
                }
                retry_after
            }
            Err(e) => {
                last_error = format!("sending notification failed: {}", e.without_url());
                None
            }
        };
        if attempt == config.attempts.max(1) {
            break;
        }
        let wait = retry_after.unwrap_or_else(|| jitter(backoff)).min(config.max_backoff);
        tracing::debug!(target = %job.target.name, attempt, ?wait, error = %last_error, "alert delivery will be retried");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
    (config.attempts.max(1), DeliveryResult::Failed(last_error))
}
