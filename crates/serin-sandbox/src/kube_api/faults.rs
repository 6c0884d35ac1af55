//! Faults on demand and request counters.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

/// Failing a share (or the next N) of requests with a status code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailRule {
    /// HTTP code to answer: 409, 429, 500 or 503.
    pub code: u16,
    /// Share of requests to fail, 0.0..=1.0 (every n-th, deterministically).
    #[serde(default)]
    pub ratio: f64,
    /// Fail the next N requests (in addition to the ratio).
    #[serde(default)]
    pub next: u32,
    /// More codes to answer in turn with `code` (`code: 409, also: [500]` alternates 409 and 500).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<u16>,
}

/// The fault configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Fail writes (POST, PUT, PATCH, DELETE).
    #[serde(default)]
    pub writes: Option<FailRule>,
    /// Fail reads (GET, LIST; not watches).
    #[serde(default)]
    pub reads: Option<FailRule>,
    /// Added to every request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Close every watch stream after this many milliseconds.
    #[serde(default)]
    pub close_watches_after_ms: Option<u64>,
    /// Answer the next N watches with 410 Gone.
    #[serde(default)]
    pub gone_watches: u32,
    /// Hold every request until unpaused.
    #[serde(default)]
    pub paused: bool,
}

/// Faults plus the counters that make ratios deterministic.
#[derive(Debug, Default)]
pub struct FaultState {
    /// The configuration.
    pub faults: Faults,
    write_count: u64,
    read_count: u64,
    failures: u64,
    /// Requests by (verb, resource, user agent).
    pub requests: BTreeMap<(String, String, String), u64>,
}

fn hit(rule: &mut Option<FailRule>, count: &mut u64, failures: &mut u64) -> Option<u16> {
    let r = rule.as_mut()?;
    let fail = if r.next > 0 {
        r.next -= 1;
        true
    } else {
        let n = *count;
        *count += 1;
        let before = (n as f64 * r.ratio).floor();
        let after = ((n + 1) as f64 * r.ratio).floor();
        after > before
    };
    if !fail {
        return None;
    }
    let turn = usize::try_from(*failures % (1 + r.also.len() as u64)).unwrap_or(0);
    *failures += 1;
    Some(if turn == 0 { r.code } else { r.also[turn - 1] })
}

impl FaultState {
    /// How many requests have failed by injection so far.
    pub fn injected(&self) -> u64 {
        self.failures
    }

    /// Whether this write fails, and with which code.
    pub fn write_fault(&mut self) -> Option<u16> {
        hit(&mut self.faults.writes, &mut self.write_count, &mut self.failures)
    }

    /// Whether this read fails, and with which code.
    pub fn read_fault(&mut self) -> Option<u16> {
        hit(&mut self.faults.reads, &mut self.read_count, &mut self.failures)
    }

    /// Whether the next watch gets 410.
    pub fn take_gone_watch(&mut self) -> bool {
        if self.faults.gone_watches > 0 {
            self.faults.gone_watches -= 1;
            true
        } else {
            false
        }
    }

    /// Added latency.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.faults.latency_ms)
    }

    /// Counts a request.
    pub fn count(&mut self, verb: &str, resource: &str, agent: &str) {
        *self
            .requests
            .entry((verb.to_owned(), resource.to_owned(), agent.to_owned()))
            .or_default() += 1;
    }
}
