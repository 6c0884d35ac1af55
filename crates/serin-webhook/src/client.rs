//! The webhook client: POST JSON, per-attempt timeout, retries with exponential backoff and
//! jitter, success on any 2xx.

use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use serin_core::HookOutcome;

use crate::CanaryWebhookPayload;

/// How much of a failed answer's body is kept.
pub const BODY_LIMIT: usize = 1024;

/// One webhook call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCall {
    /// Hook name (for logs).
    pub name: String,
    /// POST target.
    pub url: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Skip TLS verification.
    pub disable_tls: bool,
    /// The body.
    pub payload: CanaryWebhookPayload,
}

/// Calls webhooks.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WebhookClient: Send + Sync {
    /// Calls one webhook, with its retries, and reports the final outcome.
    async fn call(&self, call: &HookCall) -> HookOutcome;
}

/// Calls the hooks concurrently, each under its own timeout; outcomes in input order.
pub async fn call_all(client: &dyn WebhookClient, calls: &[HookCall]) -> Vec<HookOutcome> {
    futures::future::join_all(calls.iter().map(|c| client.call(c))).await
}

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No process-wide rustls provider: the binary installs one at start.
    #[error(
        "no rustls crypto provider is installed: call serin_webhook::install_crypto_provider() (or install one) at the start of the program"
    )]
    NoCryptoProvider,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The reqwest implementation.
#[derive(Debug, Clone)]
pub struct HttpWebhookClient {
    verified: reqwest::Client,
    unverified: reqwest::Client,
    backoff_base: Duration,
    backoff_max: Duration,
}

/// Installs the process-wide rustls provider (ring) if none is installed yet. For binaries (and
/// tests), once at start: the libraries never install it themselves.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpWebhookClient {
    /// A client with Flagger's backoff (1 s doubling, capped at 30 s) plus jitter.
    pub fn new() -> Result<Self, WebhookError> {
        Self::with_resolve(&[])
    }

    /// Like [`HttpWebhookClient::new`], connecting to fixed addresses for some host names
    /// (the sandbox resolves `flagger-loadtester.test` this way).
    pub fn with_resolve(hosts: &[(String, std::net::SocketAddr)]) -> Result<Self, WebhookError> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(WebhookError::NoCryptoProvider);
        }
        let build = |insecure: bool| {
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("serin/", env!("CARGO_PKG_VERSION")))
                .tls_danger_accept_invalid_certs(insecure);
            for (host, addr) in hosts {
                builder = builder.resolve(host, *addr);
            }
            builder.build().map_err(WebhookError::Client)
        };
        Ok(HttpWebhookClient {
            verified: build(false)?,
            unverified: build(true)?,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        })
    }

    /// Changes the first retry delay (tests use milliseconds).
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    async fn attempt(&self, call: &HookCall) -> Result<(), Attempt> {
        let client = if call.disable_tls {
            &self.unverified
        } else {
            &self.verified
        };
        let response = client
            .post(&call.url)
            .timeout(call.timeout)
            .json(&call.payload)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Attempt::TimedOut
                } else {
                    Attempt::Transport(error_chain(&e))
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&body[..body.len().min(BODY_LIMIT)]).into_owned();
        Err(Attempt::Status {
            status: status.as_u16(),
            body,
        })
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum Attempt {
    Status { status: u16, body: String },
    TimedOut,
    Transport(String),
}

impl Attempt {
    /// Transport errors, timeouts, 429 and 5xx except 501 are worth another attempt.
    fn retryable(&self) -> bool {
        match self {
            Attempt::Status { status, .. } => *status == 429 || (*status >= 500 && *status != 501),
            Attempt::TimedOut | Attempt::Transport(_) => true,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[async_trait]
impl WebhookClient for HttpWebhookClient {
    async fn call(&self, call: &HookCall) -> HookOutcome {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.backoff_base)
            .with_max_delay(self.backoff_max)
            .with_max_times(call.retries as usize)
            .with_jitter();
        let result = (|| self.attempt(call))
            .retry(backoff)
            .when(Attempt::retryable)
            .notify(|err, delay| tracing::debug!(hook = %call.name, ?err, ?delay, "webhook attempt failed, retrying"))
            .await;
        match result {
            Ok(()) => HookOutcome::Passed,
            Err(Attempt::Status { status, body }) => HookOutcome::Rejected { status, body },
            Err(Attempt::TimedOut) => HookOutcome::TimedOut,
            Err(Attempt::Transport(e)) => HookOutcome::Error(format!("POST {} failed: {e}", call.url)),
        }
    }
}
