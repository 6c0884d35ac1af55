//! The task endpoint (`POST /`): Flagger's task types, run safely.
//!
//! `cmd` tasks in hey syntax run on the native generator in the background (202 at once),
//! de-duplicated per canary and command. Anything that needs a shell (`bash`, or a `cmd` that
//! is not hey) runs only with `--allow-shell`.

use std::{collections::HashSet, sync::Arc, time::Duration};

use regex::Regex;
use serin_webhook::CanaryWebhookPayload;
use tokio::{
    process::Command,
    sync::{Mutex, Semaphore},
};

use crate::{
    generator,
    hey::{self, HeyError, LoadSpec},
    metrics::Metrics,
};

/// How tasks may run.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// Run `bash` tasks and non-hey `cmd` tasks.
    pub allow_shell: bool,
    /// Upper bound of any task.
    pub task_timeout: Duration,
    /// Background tasks at once.
    pub max_tasks: usize,
    /// Only payloads whose namespace matches (whole string).
    pub namespace_regexp: Option<Regex>,
    /// Host suffix → `host:port` to connect to instead (`--resolve .test=127.0.0.1:8080`).
    pub resolve: Vec<(String, String)>,
}

impl TaskConfig {
    fn route(&self, spec: &mut LoadSpec) {
        let host = spec
            .url
            .trim_start_matches("http://")
            .split(['/', ':', '?'])
            .next()
            .unwrap_or_default()
            .to_owned();
        if let Some((_, addr)) = self.resolve.iter().find(|(suffix, _)| host.ends_with(suffix.as_str())) {
            spec.connect_to = Some(addr.clone());
        }
    }
}

/// The HTTP answer to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskReply {
    /// 202: started in the background (or already running).
    Accepted,
    /// 200 with a body.
    Done(String),
    /// 400.
    BadRequest(String),
    /// 403.
    Forbidden(String),
    /// 429: too many background tasks.
    Busy,
    /// 500.
    Failed(String),
}

/// Runs tasks.
pub struct Tasks {
    config: TaskConfig,
    running: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// Background work.
enum Job {
    Load(LoadSpec),
    Process(String),
}

impl Tasks {
    /// A task runner.
    pub fn new(config: TaskConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(config.max_tasks.max(1)));
        Arc::new(Tasks {
            config,
            running: Mutex::new(HashSet::new()),
            permits,
            metrics,
        })
    }

    /// Handles one payload.
    pub async fn handle(self: &Arc<Self>, payload: CanaryWebhookPayload) -> TaskReply {
        if payload.metadata.is_empty() {
            return TaskReply::BadRequest("metadata not found in payload".into());
        }
        if let Some(re) = &self.config.namespace_regexp
            && !re.is_match(&payload.namespace)
        {
            return TaskReply::Forbidden(format!("namespace {} is not allowed", payload.namespace));
        }
        let meta = &payload.metadata;
        let kind = meta.get("type").map(String::as_str).unwrap_or("cmd");
        let log_output = meta.get("logCmdOutput").is_some_and(|v| v == "true");
        match kind {
            "cmd" => {
                let Some(cmd) = meta.get("cmd") else {
                    return TaskReply::BadRequest("cmd not found in metadata".into());
                };
                match hey::parse_command(cmd) {
                    Ok(mut spec) => {
                        self.config.route(&mut spec);
                        self.background(&payload, cmd, Job::Load(spec), log_output).await
                    }
                    Err(HeyError::NotHey(_) | HeyError::NotNative { .. }) if self.config.allow_shell => {
                        self.background(&payload, cmd, Job::Process(cmd.clone()), log_output)
                            .await
                    }
                    Err(HeyError::NotHey(program)) => TaskReply::Forbidden(format!(
                        "command {program:?} is not hey syntax; start the loadtester with --allow-shell to run other commands"
                    )),
                    Err(e @ HeyError::NotNative { .. }) => TaskReply::Forbidden(e.to_string()),
                    Err(e) => TaskReply::BadRequest(format!("cmd {cmd:?}: {e}")),
                }
            }
            "load" => match typed_load(meta) {
                Ok(mut spec) => {
                    self.config.route(&mut spec);
                    let key = format!("load {}", spec.url);
                    self.background(&payload, &key, Job::Load(spec), log_output).await
                }
                Err(e) => TaskReply::BadRequest(e),
            },
            "bash" => {
                if !self.config.allow_shell {
                    self.metrics.task("bash", "refused");
                    return TaskReply::Forbidden("bash tasks need the loadtester started with --allow-shell".into());
                }
                let Some(cmd) = meta.get("cmd") else {
                    return TaskReply::BadRequest("cmd not found in metadata".into());
                };
                let return_output = meta.get("returnCmdOutput").is_some_and(|v| v == "true");
                self.blocking(cmd, return_output).await
            }
            other => TaskReply::BadRequest(format!("unknown task type {other:?} (supported: cmd, load, bash)")),
        }
    }

    async fn background(
        self: &Arc<Self>,
        payload: &CanaryWebhookPayload,
        cmd: &str,
        job: Job,
        log_output: bool,
    ) -> TaskReply {
        let kind = match job {
            Job::Load(_) => "load",
            Job::Process(_) => "cmd",
        };
        let key = format!("{}/{cmd}", payload.key());
        if !self.running.lock().await.insert(key.clone()) {
            tracing::info!(canary = %payload.key(), %cmd, "command skipped: already running");
            self.metrics.task(kind, "skipped");
            return TaskReply::Accepted;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.running.lock().await.remove(&key);
            self.metrics.task(kind, "refused");
            return TaskReply::Busy;
        };
        self.metrics.task(kind, "started");
        let this = self.clone();
        let canary = payload.key();
        tokio::spawn(async move {
            let timeout = this.config.task_timeout;
            let outcome = match job {
                Job::Load(spec) => match tokio::time::timeout(timeout, generator::run(&spec)).await {
                    Ok(Ok(summary)) => {
                        this.metrics.record_run(&spec.url, &summary);
                        if log_output {
                            tracing::info!(%canary, target = %spec.url, "load finished\n{summary}");
                        }
                        tracing::info!(%canary, target = %spec.url, requests = summary.total(), rate = summary.rate(), p99 = ?summary.latencies.p99, statuses = ?summary.by_status, errors = ?summary.errors, "load run summary");
                        "succeeded"
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%canary, error = %e, "load run failed");
                        "failed"
                    }
                    Err(_) => {
                        tracing::warn!(%canary, ?timeout, "load run timed out");
                        "failed"
                    }
                },
                Job::Process(cmd) => match run_process(&cmd, timeout).await {
                    Ok(output) => {
                        if log_output {
                            tracing::info!(%canary, %cmd, %output, "command finished");
                        }
                        "succeeded"
                    }
                    Err(e) => {
                        tracing::warn!(%canary, %cmd, error = %e, "command failed");
                        "failed"
                    }
                },
            };
            this.metrics.task(kind, outcome);
            this.running.lock().await.remove(&key);
            drop(permit);
        });
        TaskReply::Accepted
    }

    async fn blocking(&self, cmd: &str, return_output: bool) -> TaskReply {
        match run_process(cmd, self.config.task_timeout).await {
            Ok(output) => {
                self.metrics.task("bash", "succeeded");
                TaskReply::Done(if return_output { output } else { String::new() })
            }
            Err(e) => {
                self.metrics.task("bash", "failed");
                TaskReply::Failed(format!("command {cmd} failed: {e}"))
            }
        }
    }
}

/// Characters that need a shell to mean what they say.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', ']', '#', '~', '{', '}', '\n',
];

/// Runs a command (directly when it needs no shell), killed on timeout or when the caller
/// goes away; returns stdout and stderr.
async fn run_process(cmd: &str, timeout: Duration) -> Result<String, String> {
    let mut command = match shlex::split(cmd) {
        Some(words) if !cmd.contains(SHELL_SYNTAX) && !words.is_empty() => {
            let mut c = Command::new(&words[0]);
            c.args(&words[1..]);
            c
        }
        _ => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(cmd);
            c
        }
    };
    command.kill_on_drop(true).stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| format!("timed out after {}", humantime::format_duration(timeout)))?
        .map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("{}: {}", text.trim(), output.status))
    }
}

/// `type: load` metadata: `url`, `duration`, `qps` (total), `concurrency`, `method`,
/// `headers` (`K: V` lines), `body`.
fn typed_load(meta: &std::collections::BTreeMap<String, String>) -> Result<LoadSpec, String> {
    let url = meta.get("url").ok_or("url not found in metadata")?.clone();
    if !url.starts_with("http://") {
        return Err(format!("url {url:?}: only http:// targets are supported"));
    }
    let duration = humantime::parse_duration(meta.get("duration").map(String::as_str).unwrap_or("1m"))
        .map_err(|e| format!("duration: {e}"))?;
    let workers: usize = meta
        .get("concurrency")
        .map(|c| c.parse())
        .transpose()
        .map_err(|_| "concurrency is not a number")?
        .unwrap_or(1);
    if workers == 0 || workers > 10_000 {
        return Err("concurrency must be between 1 and 10000".into());
    }
    let qps: Option<f64> = meta
        .get("qps")
        .map(|q| q.parse())
        .transpose()
        .map_err(|_| "qps is not a number")?;
    let mut headers = Vec::new();
    for line in meta
        .get("headers")
        .map(String::as_str)
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("header {line:?} is not \"Key: Value\""))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(LoadSpec {
        url,
        duration: Some(duration),
        requests: None,
        qps_per_worker: qps.filter(|q| *q > 0.0).map(|q| q / workers as f64),
        workers,
        method: meta
            .get("method")
            .cloned()
            .unwrap_or_else(|| "GET".into())
            .to_uppercase(),
        headers,
        body: meta.get("body").cloned(),
        content_type: None,
        timeout: Some(Duration::from_secs(20)),
        connect_to: None,
    })
}
