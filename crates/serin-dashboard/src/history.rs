//! What the dashboard remembers of one Canary's current rollout: the weight over time, each
//! metric's readings against its bounds, the last outcome of every hook and gate, and the
//! events. Built from what the watches deliver (Canary objects and Kubernetes events); the
//! caller passes the time an object was seen. Pure: no I/O, no clock.

use std::collections::BTreeMap;

use serin_api::{Canary, CanaryStatus, LastDecision, parse_time};
use serin_core::Time;

/// How many events are kept per Canary.
pub const EVENTS_KEPT: usize = 200;
/// How many points are kept per series (a 10-hour rollout at one step a minute fits).
pub const POINTS_KEPT: usize = 600;

/// The weight at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightPoint {
    /// When.
    pub at: Time,
    /// The canary's weight, percent.
    pub weight: i64,
}

/// One metric reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When the decision that read it was taken.
    pub at: Time,
    /// The value.
    pub value: f64,
    /// Lower bound.
    pub min: Option<f64>,
    /// Upper bound.
    pub max: Option<f64>,
    /// Unit (`%`, `ms` or empty).
    pub unit: String,
    /// Within bounds.
    pub passed: bool,
}

/// A Kubernetes event about the Canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// When it last happened.
    pub at: Time,
    /// `Normal` or `Warning`.
    pub kind: String,
    /// The message.
    pub message: String,
    /// How many times.
    pub count: i32,
    /// The event object's name (to update aggregated events in place).
    pub name: String,
}

/// One Canary as the dashboard shows it.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The last object seen.
    pub canary: Option<Canary>,
    /// The revision whose rollout the history is about.
    pub revision: Option<String>,
    /// When that rollout started, as far as the dashboard knows.
    pub started: Option<Time>,
    /// Weight over time.
    pub weights: Vec<WeightPoint>,
    /// Each metric's readings, by metric name.
    pub metrics: BTreeMap<String, Vec<Reading>>,
    /// The last line of every hook and gate check (`webhook load-test (rollout)` → line).
    pub hooks: BTreeMap<String, String>,
    /// The decisions seen (time, summary), newest last.
    pub decisions: Vec<(Time, String)>,
    /// Events, oldest first.
    pub events: Vec<EventLine>,
}

fn status_of(canary: &Canary) -> CanaryStatus {
    canary.status.clone().unwrap_or_default()
}

fn push_bounded<T>(items: &mut Vec<T>, item: T, kept: usize) {
    items.push(item);
    if items.len() > kept {
        let extra = items.len() - kept;
        items.drain(..extra);
    }
}

impl History {
    /// Records the Canary as seen at `seen`.
    pub fn observe(&mut self, canary: Canary, seen: Time) {
        let status = status_of(&canary);
        if status.canary_revision.is_some() && status.canary_revision != self.revision {
            // A new rollout: its own history (events stay, the timeline shows those after it).
            self.revision = status.canary_revision.clone();
            self.started = status.rollout_started_at.as_deref().and_then(parse_time).or(Some(seen));
            self.weights.clear();
            self.metrics.clear();
            self.hooks.clear();
            self.decisions.clear();
            self.weights_from_events();
        }
        let weight = status.canary_weight.unwrap_or(0);
        if self.weights.last().map(|p| p.weight) != Some(weight) {
            let at = self.weights.last().map_or(seen, |p| seen.max(p.at));
            push_bounded(&mut self.weights, WeightPoint { at, weight }, POINTS_KEPT);
        }
        if let Some(decision) = &status.last_decision {
            self.record_decision(decision, seen);
        }
        self.canary = Some(canary);
    }

    fn record_decision(&mut self, decision: &LastDecision, seen: Time) {
        let at = decision.at.as_deref().and_then(parse_time).unwrap_or(seen);
        if self
            .decisions
            .last()
            .is_some_and(|(t, s)| *t == at && *s == decision.summary)
        {
            return;
        }
        push_bounded(&mut self.decisions, (at, decision.summary.clone()), POINTS_KEPT);
        for m in &decision.metrics {
            let reading = Reading {
                at,
                value: m.value,
                min: m.min,
                max: m.max,
                unit: m.unit.clone(),
                passed: m.passed,
            };
            push_bounded(self.metrics.entry(m.name.clone()).or_default(), reading, POINTS_KEPT);
        }
        for line in &decision.checks {
            if let Some((check, _)) = line.split_once(": ")
                && (check.starts_with("webhook ") || check.starts_with("gate "))
            {
                self.hooks.insert(check.to_owned(), line.clone());
            }
        }
    }

    /// Records an event (a new one, or a new count of an aggregated one).
    pub fn event(&mut self, event: EventLine) {
        if let Some(same) = self.events.iter_mut().find(|e| e.name == event.name) {
            *same = event;
        } else {
            push_bounded(&mut self.events, event, EVENTS_KEPT);
        }
        self.events.sort_by_key(|e| e.at);
        self.weights_from_events();
    }

    /// `Advance … canary weight N` events fill in the weights from before the dashboard
    /// started watching.
    fn weights_from_events(&mut self) {
        let Some(started) = self.started else { return };
        for e in &self.events {
            let Some(weight) = advance_weight(&e.message) else {
                continue;
            };
            if e.at < started || self.weights.iter().any(|p| p.weight == weight && p.at <= e.at) {
                continue;
            }
            let index = self.weights.partition_point(|p| p.at <= e.at);
            match self.weights.get_mut(index) {
                // Seen later by the watch: it happened at the event's time.
                Some(later) if later.weight == weight => later.at = e.at,
                _ => self.weights.insert(index, WeightPoint { at: e.at, weight }),
            }
        }
    }

    /// The last thing known to have happened in the current rollout: a weight, a decision or
    /// an event.
    pub fn last_activity(&self) -> Option<Time> {
        let weight = self.weights.last().map(|p| p.at);
        let decision = self.decisions.last().map(|(t, _)| *t);
        let event = self.rollout_events().map(|e| e.at).max();
        [weight, decision, event].into_iter().flatten().max()
    }

    /// The events of the current rollout.
    pub fn rollout_events(&self) -> impl Iterator<Item = &EventLine> {
        let started = self.started.unwrap_or(Time::from_millis(i64::MIN));
        self.events.iter().filter(move |e| e.at >= started)
    }
}

/// The weight in Flagger's `Advance <name>.<namespace> canary weight N` event.
pub fn advance_weight(message: &str) -> Option<i64> {
    let rest = message.strip_prefix("Advance ")?;
    let (_, weight) = rest.split_once(" canary weight ")?;
    weight.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serin_api::MetricReading;

    fn canary(revision: &str, weight: i64, decision: Option<LastDecision>) -> Canary {
        let mut c = Canary::new("podinfo", Default::default());
        c.status = Some(CanaryStatus {
            canary_revision: Some(revision.into()),
            canary_weight: Some(weight),
            rollout_started_at: Some("2026-12-02T10:00:00Z".into()),
            last_decision: decision,
            ..Default::default()
        });
        c
    }

    fn at(secs: i64) -> Time {
        Time::from_millis(parse_time("2026-12-02T10:00:00Z").expect("time").as_millis() + secs * 1000)
    }

    fn reading(value: f64, passed: bool, when: &str) -> LastDecision {
        LastDecision {
            summary: format!("value {value}"),
            metrics: vec![MetricReading {
                name: "request-success-rate".into(),
                value,
                min: Some(99.0),
                passed,
                unit: "%".into(),
                ..Default::default()
            }],
            checks: vec!["webhook load-test (rollout): 200 OK (2xx) Pass".into()],
            at: Some(when.into()),
        }
    }

    #[test]
    fn weights_and_readings_accumulate_and_a_new_revision_starts_over() {
        let mut h = History::default();
        h.observe(canary("podinfo-00002", 0, None), at(0));
        h.observe(
            canary("podinfo-00002", 10, Some(reading(100.0, true, "2026-12-02T10:00:10Z"))),
            at(10),
        );
        h.observe(
            canary("podinfo-00002", 10, Some(reading(100.0, true, "2026-12-02T10:00:10Z"))),
            at(12),
        );
        h.observe(
            canary("podinfo-00002", 20, Some(reading(80.0, false, "2026-12-02T10:00:20Z"))),
            at(20),
        );
        let weights: Vec<i64> = h.weights.iter().map(|p| p.weight).collect();
        assert_eq!(weights, [0, 10, 20]);
        let readings = &h.metrics["request-success-rate"];
        assert_eq!(readings.len(), 2, "the same decision seen twice is one reading");
        assert!(!readings[1].passed && readings[1].value < 99.0);
        assert_eq!(h.hooks.len(), 1);
        h.observe(canary("podinfo-00003", 0, None), at(30));
        assert!(h.metrics.is_empty());
        assert_eq!(h.weights.len(), 1);
    }

    #[test]
    fn advance_events_fill_in_weights_from_before_the_dashboard_started() {
        let mut h = History::default();
        h.observe(canary("podinfo-00002", 30, None), at(40));
        for (secs, weight) in [(10, 10), (20, 20), (30, 30)] {
            h.event(EventLine {
                at: at(secs),
                kind: "Normal".into(),
                message: format!("Advance podinfo.test canary weight {weight}"),
                count: 1,
                name: format!("e{weight}"),
            });
        }
        let weights: Vec<(i64, i64)> = h.weights.iter().map(|p| (p.at.as_millis(), p.weight)).collect();
        assert_eq!(
            weights.iter().map(|w| w.1).collect::<Vec<_>>(),
            [10, 20, 30],
            "{weights:?}"
        );
        assert!(weights.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(advance_weight("Advance podinfo.test canary weight 50"), Some(50));
        assert_eq!(advance_weight("Starting canary analysis for podinfo.test"), None);
    }
}
