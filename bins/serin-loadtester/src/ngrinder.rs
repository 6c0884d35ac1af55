//! The `ngrinder` task type: clone an nGrinder test and start it, then poll its status, as
//! Flagger's loadtester does (`POST perftest/api/{clone}/clone_and_start`, then
//! `GET perftest/api/{id}/status` until `FINISHED`, or a stop state; on timeout,
//! `PUT perftest/api/{id}?action=stop`). Runs in the background (202).
//!
//! Differences from Flagger: `pollInterval` is a Go duration (`"5s"`) or a number of seconds;
//! Flagger multiplies a parsed duration by a second again and overflows, so only its 1 s
//! fallback worked.

use std::{collections::BTreeMap, time::Duration};

use base64::Engine;
use reqwest::{Method, Url};
use serde_json::Value;

/// A validated `ngrinder` task.
#[derive(Debug, Clone, PartialEq)]
pub struct NGrinderTask {
    server: Url,
    clone: u64,
    username: String,
    password: String,
    poll_interval: Duration,
}

impl NGrinderTask {
    /// Validates the metadata as Flagger does, with its messages.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| meta.get(k).map(String::as_str).unwrap_or_default();
        let (server, clone, username, passwd) = (get("server"), get("clone"), get("username"), get("passwd"));
        if server.is_empty() || clone.is_empty() || username.is_empty() || passwd.is_empty() {
            return Err("server, clone, username and passwd are required metadata".into());
        }
        let server = Url::parse(server).map_err(|e| format!("invalid url: {server}: {e}"))?;
        let clone = clone
            .parse()
            .map_err(|e| format!("metadata clone must be integer: {e}"))?;
        let password = base64::engine::general_purpose::STANDARD
            .decode(passwd)
            .map_err(|e| format!("metadata password is invalid: {e}"))?;
        let interval = get("pollInterval");
        let poll_interval = kube_duration(interval)
            .or_else(|| interval.parse::<u64>().ok().map(Duration::from_secs))
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(1));
        Ok(NGrinderTask {
            server,
            clone,
            username: username.to_owned(),
            password: String::from_utf8_lossy(&password).into_owned(),
            poll_interval,
        })
    }

    /// The de-duplication key's part after the canary.
    pub fn key(&self) -> String {
        format!("ngrinder {}", self.clone)
    }

    async fn request(&self, client: &reqwest::Client, method: Method, path: &str) -> Result<Value, String> {
        let url = self.server.join(path).map_err(|e| format!("invalid URL {path}: {e}"))?;
        let response = client
            .request(method, url)
            .basic_auth(&self.username, Some(&self.password))
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading response body failed: {e}"))?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("json unmarshalling failed: {e} for {}", String::from_utf8_lossy(&body)))?;
        if value.get("success") == Some(&Value::Bool(false)) {
            return Err(format!("request failed: {}", String::from_utf8_lossy(&body)));
        }
        Ok(value)
    }

    /// Clones and starts the test, then polls until it ends or `timeout` passes (then stops it).
    pub async fn run(&self, client: &reqwest::Client, timeout: Duration) -> Result<(), String> {
        let started = self
            .request(
                client,
                Method::POST,
                &format!("perftest/api/{}/clone_and_start", self.clone),
            )
            .await
            .map_err(|e| format!("failed to clone and start ngrinder test: {e}"))?;
        let id = started
            .get("id")
            .and_then(Value::as_f64)
            .ok_or("the clone_and_start answer has no numeric id")?;
        let id = id as u64;
        let poll = async {
            loop {
                tokio::time::sleep(self.poll_interval).await;
                // A failed poll is retried, as in Flagger.
                let Ok(status) = self
                    .request(client, Method::GET, &format!("perftest/api/{id}/status"))
                    .await
                else {
                    continue;
                };
                let state = status
                    .pointer("/status/0/status_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                tracing::debug!(test = id, %state, "ngrinder test status");
                match state.as_str() {
                    "FINISHED" => return Ok(()),
                    "STOP_BY_ERROR" | "CANCELED" | "UNKNOWN" => {
                        return Err(format!("ngrinder test {id} ended {state}"));
                    }
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(timeout, poll).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(test = id, "ngrinder test timed out; stopping it");
                let _ = self
                    .request(client, Method::PUT, &format!("perftest/api/{id}?action=stop"))
                    .await;
                Err(format!("ngrinder test {id} timed out and was stopped"))
            }
        }
    }
}

/// A Go duration (`"5s"`, `"1m30s"`), as Flagger's `time.ParseDuration` reads it.
fn kube_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text)
        .ok()
        .filter(|_| text.chars().any(|c| c.is_ascii_alphabetic()))
}
