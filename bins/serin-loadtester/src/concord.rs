//! The `concord` task type: start a Concord process and wait for it, as Flagger's loadtester
//! does (`POST /api/v1/process` as a multipart form, then `GET /api/v1/process/{id}` every
//! `pollInterval` seconds until `FINISHED` or `FAILED`).
//!
//! It reads the API key from `apiKeyPath` on the loadtester's own filesystem and sends it to
//! the server the payload names, so it runs only with `--allow-shell`. As under Flagger, the
//! wait is bounded by the loadtester's `-timeout`: Flagger's `pollTimeout` timer restarts on
//! every poll and so never fires; Serin validates `pollTimeout` and keeps that behaviour.

use std::{collections::BTreeMap, time::Duration};

use reqwest::{Url, multipart::Form};
use serde::Deserialize;

/// A validated `concord` task.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcordTask {
    server: Url,
    org: String,
    project: String,
    repo: String,
    entrypoint: String,
    endpoint: String,
    api_key_path: String,
    /// `arguments.X` metadata, without the prefix.
    arguments: BTreeMap<String, String>,
    poll_interval: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    status: String,
}

fn required<'a>(meta: &'a BTreeMap<String, String>, key: &str) -> Result<&'a String, String> {
    meta.get(key)
        .ok_or_else(|| format!("`{key}` is required with type concord"))
}

fn seconds(meta: &BTreeMap<String, String>, key: &str, default: u64) -> Result<u64, String> {
    meta.get(key)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("unable to convert `{key}` to int"))
        })
        .transpose()
        .map(|v| v.unwrap_or(default))
}

impl ConcordTask {
    /// Validates the metadata as Flagger does, with its messages.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self, String> {
        let server = required(meta, "server")?;
        let server =
            Url::parse(server).map_err(|_| "failed to create base URL from metadata `concord_url`".to_owned())?;
        let (org, project, repo, entrypoint) = (
            required(meta, "org")?,
            required(meta, "project")?,
            required(meta, "repo")?,
            required(meta, "entrypoint")?,
        );
        let api_key_path = required(meta, "apiKeyPath")?;
        if !std::path::Path::new(api_key_path).exists() {
            return Err(format!("`apiKeyPath` file doesn't exist {api_key_path}"));
        }
        let endpoint = required(meta, "endpoint")?;
        let poll_interval = seconds(meta, "pollInterval", 5)?;
        seconds(meta, "pollTimeout", 30)?;
        if meta.contains_key("arguments.endpoint") {
            return Err("You cannot override Endpoint through arguments. You must override Endpoint directly".into());
        }
        let arguments = meta
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("arguments.").map(|k| (k.to_owned(), v.clone())))
            .collect();
        Ok(ConcordTask {
            server,
            org: org.clone(),
            project: project.clone(),
            repo: repo.clone(),
            entrypoint: entrypoint.clone(),
            endpoint: endpoint.clone(),
            api_key_path: api_key_path.clone(),
            arguments,
            poll_interval: Duration::from_secs(poll_interval.max(1)),
        })
    }

    /// The de-duplication key's part after the canary, as Flagger's hash input.
    pub fn key(&self) -> String {
        format!("{} {} {} {}", self.org, self.project, self.repo, self.entrypoint)
    }

    fn url(&self, path: &str) -> Result<Url, String> {
        self.server
            .join(path)
            .map_err(|e| format!("invalid URL for {path}: {e}"))
    }

    async fn api_key(&self) -> Result<String, String> {
        tokio::fs::read_to_string(&self.api_key_path)
            .await
            .map(|k| k.trim().to_owned())
            .map_err(|e| format!("cannot read `apiKeyPath` {}: {e}", self.api_key_path))
    }

    async fn call(&self, client: &reqwest::Client, request: reqwest::RequestBuilder) -> Result<Process, String> {
        let key = self.api_key().await?;
        let request = if key.is_empty() {
            request
        } else {
            request.header(reqwest::header::AUTHORIZATION, key)
        };
        let response = client
            .execute(request.build().map_err(|e| e.to_string())?)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| {
            format!(
                "{status}: cannot decode the answer ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// Starts the process and polls it until it finishes; `Ok` when `FINISHED`.
    pub async fn run(&self, client: &reqwest::Client) -> Result<(), String> {
        let mut form = Form::new()
            .text("org", self.org.clone())
            .text("project", self.project.clone())
            .text("repo", self.repo.clone())
            .text("entryPoint", self.entrypoint.clone())
            .text("arguments.endpoint", self.endpoint.clone());
        for (k, v) in &self.arguments {
            form = form.text(format!("arguments.{k}"), v.clone());
        }
        let started = self
            .call(client, client.post(self.url("/api/v1/process")?).multipart(form))
            .await
            .map_err(|e| format!("failed to start process: {e}"))?;
        let id = started.instance_id;
        tracing::info!(process = %id, "concord process created");
        loop {
            tokio::time::sleep(self.poll_interval).await;
            let process = self
                .call(client, client.get(self.url(&format!("/api/v1/process/{id}"))?))
                .await
                .map_err(|e| format!("failed checking status: {e}"))?;
            tracing::info!(process = %id, status = %process.status, "concord process status");
            match process.status.as_str() {
                "FINISHED" => return Ok(()),
                "FAILED" => return Err(format!("concord instanceID: {id} failed")),
                _ => {}
            }
        }
    }
}
