//! The task endpoint (`POST /`): Flagger's task types, run safely.
//!
//! | type | default | with `--allow-shell` | answer |
//! |---|---|---|---|
//! | `cmd` (or none), hey or wrk syntax | native generator | native generator | 202, background |
//! | `cmd`, anything else | 403 | `sh -c`, as Flagger | 202, background |
//! | `load` | native generator | native generator | 202, background |
//! | `ngrinder` | nGrinder's API | nGrinder's API | 202, background |
//! | `bash` | 403 | `bash -c` | 200 / 500 |
//! | `helm`, `helmv3`, `kubectl` | 403 | `helm` / `kubectl` with the words of `cmd` | 200 / 500 |
//! | `concord` | 403 (reads a local key file) | Concord's API | 200 / 500 |
//!
//! Background tasks are de-duplicated per canary and command, as Flagger's are.

use std::{collections::HashSet, sync::Arc, time::Duration};

use regex::Regex;
use serin_webhook::CanaryWebhookPayload;
use tokio::sync::{Mutex, Semaphore};

use crate::{
    concord::ConcordTask,
    generator,
    hey::{self, CommandError, LoadSpec},
    load_task,
    metrics::Metrics,
    ngrinder::NGrinderTask,
    process, report,
};

/// How tasks may run.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// Run programs: `bash`, `helm`, `kubectl`, `concord` and `cmd` tasks that are not hey or wrk.
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
            .split_once("://")
            .map_or(spec.url.as_str(), |(_, rest)| rest)
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
    /// For the `concord` and `ngrinder` APIs; an error says why TLS could not be set up.
    http: Result<reqwest::Client, String>,
}

/// Background work.
enum Job {
    Load(LoadSpec),
    Shell(String),
    NGrinder(NGrinderTask),
}

impl Job {
    fn kind(&self) -> &'static str {
        match self {
            Job::Load(_) => "load",
            Job::Shell(_) => "cmd",
            Job::NGrinder(_) => "ngrinder",
        }
    }
}

/// The refusal of a task that runs a program, naming the fix.
fn needs_shell(what: &str) -> TaskReply {
    TaskReply::Forbidden(format!(
        "{what} is not run natively; run the loadtester with --allow-shell (deploy/tester-tools) to run it"
    ))
}

impl Tasks {
    /// A task runner.
    pub fn new(config: TaskConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(config.max_tasks.max(1)));
        let http = crate::connector::verified_tls_config()
            .map_err(|e| e.to_string())
            .and_then(|tls| {
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("cannot build the HTTP client: {e}"));
        Arc::new(Tasks {
            config,
            running: Mutex::new(HashSet::new()),
            permits,
            metrics,
            http,
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
        let return_output = meta.get("returnCmdOutput").is_some_and(|v| v == "true");
        let cmd = meta.get("cmd").cloned().unwrap_or_default();
        match kind {
            "cmd" => {
                if !meta.contains_key("cmd") {
                    return TaskReply::BadRequest("cmd not found in metadata".into());
                }
                match hey::parse_command(&cmd) {
                    Ok(mut spec) => {
                        self.config.route(&mut spec);
                        self.background(&payload, &cmd, Job::Load(spec), log_output).await
                    }
                    Err(CommandError::NotNativeProgram(_) | CommandError::NotNative { .. })
                        if self.config.allow_shell =>
                    {
                        self.background(&payload, &cmd, Job::Shell(cmd.clone()), log_output)
                            .await
                    }
                    Err(CommandError::NotNativeProgram(program)) => {
                        self.metrics.task("cmd", "refused");
                        needs_shell(&format!(
                            "command {program:?} (only hey and wrk command lines run natively)"
                        ))
                    }
                    Err(e @ CommandError::NotNative { .. }) => {
                        self.metrics.task("cmd", "refused");
                        TaskReply::Forbidden(e.to_string())
                    }
                    Err(e) => TaskReply::BadRequest(format!("cmd {cmd:?}: {e}")),
                }
            }
            "load" => match load_task::from_metadata(meta) {
                Ok(mut spec) => {
                    self.config.route(&mut spec);
                    let key = format!("load {}", spec.url);
                    self.background(&payload, &key, Job::Load(spec), log_output).await
                }
                Err(e) => TaskReply::BadRequest(e),
            },
            "ngrinder" => match NGrinderTask::from_metadata(meta) {
                Ok(task) => {
                    let key = task.key();
                    self.background(&payload, &key, Job::NGrinder(task), log_output).await
                }
                Err(e) => TaskReply::BadRequest(e),
            },
            "bash" | "helm" | "helmv3" | "kubectl" | "concord" if !self.config.allow_shell => {
                self.metrics.task(kind, "refused");
                needs_shell(&format!("a {kind} task"))
            }
            "bash" => {
                let args = ["-c".to_owned(), cmd.clone()];
                self.blocking(kind, &cmd, "bash", &args, return_output).await
            }
            // Flagger runs `helm` for both, with the command split on whitespace (no quoting).
            "helm" | "helmv3" | "kubectl" => {
                let program = if kind == "kubectl" { "kubectl" } else { "helm" };
                let args: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
                self.blocking(kind, &cmd, program, &args, return_output).await
            }
            "concord" => match ConcordTask::from_metadata(meta) {
                Ok(task) => {
                    let timeout = self.config.task_timeout;
                    let http = match &self.http {
                        Ok(client) => client,
                        Err(e) => return TaskReply::Failed(e.clone()),
                    };
                    let outcome = tokio::time::timeout(timeout, task.run(http))
                        .await
                        .unwrap_or_else(|_| Err("context timedout".into()));
                    self.metrics
                        .task(kind, if outcome.is_ok() { "succeeded" } else { "failed" });
                    match outcome {
                        Ok(()) => TaskReply::Done(String::new()),
                        Err(e) => {
                            tracing::warn!(canary = %payload.key(), task = %task.key(), error = %e, "concord task failed");
                            TaskReply::Failed(e)
                        }
                    }
                }
                Err(e) => TaskReply::Failed(e),
            },
            other => TaskReply::BadRequest(format!("unknown task type {other}")),
        }
    }

    async fn background(
        self: &Arc<Self>,
        payload: &CanaryWebhookPayload,
        cmd: &str,
        job: Job,
        log_output: bool,
    ) -> TaskReply {
        let kind = job.kind();
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
                            let text = report::render(&summary, &spec.style);
                            tracing::info!(%canary, target = %spec.url, "load finished\n{text}");
                        }
                        tracing::info!(%canary, target = %spec.url, requests = summary.total(), rate = summary.rate(), p99 = ?summary.latencies.p99, statuses = ?summary.by_status, errors = ?summary.errors, unverified_tls = summary.unverified_tls, "load run summary");
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
                Job::Shell(cmd) => match process::run("sh", &["-c".to_owned(), cmd.clone()], timeout).await {
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
                Job::NGrinder(task) => match async {
                    let http = this.http.as_ref().map_err(Clone::clone)?;
                    task.run(http, timeout).await
                }
                .await
                {
                    Ok(()) => "succeeded",
                    Err(e) => {
                        tracing::warn!(%canary, error = %e, "ngrinder task failed");
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

    /// Runs a program to completion: 200 (with its output when asked), or 500 with Flagger's
    /// `command … failed: …` text.
    async fn blocking(&self, kind: &str, cmd: &str, program: &str, args: &[String], return_output: bool) -> TaskReply {
        tracing::info!(%kind, %cmd, "running command");
        match process::run(program, args, self.config.task_timeout).await {
            Ok(output) => {
                self.metrics.task(kind, "succeeded");
                tracing::info!(%kind, %cmd, %output, "command finished");
                TaskReply::Done(if return_output { output } else { String::new() })
            }
            Err(e) => {
                self.metrics.task(kind, "failed");
                tracing::warn!(%kind, %cmd, error = %e, "command failed");
                TaskReply::Failed(format!("command {cmd} failed: {e}"))
            }
        }
    }
}
