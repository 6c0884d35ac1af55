//! The rollout state machine of Serin: a pure function from (plan, status, observations, now)
//! to (new status, actions, next wake-up).
//!
//! This crate decides; it does no I/O. It has no async runtime, no Kubernetes client, no HTTP
//! and never reads a clock or a random number generator: the caller passes `now` and what it
//! observed, and executes the [`Action`]s it gets back. That makes every decision testable in
//! virtual time (see [`sim`]).
//!
//! # Layout
//! - [`Plan`]: a validated Canary (weights, interval, threshold, metrics, webhooks).
//! - [`RolloutStatus`] and [`Phase`]: what is stored between steps.
//! - [`Observation`]: revisions and readiness, metric and webhook outcomes.
//! - [`step`]: the decision for one reconcile; [`Step::Need`] asks for checks first.
//! - [`Decision`], [`Action`], [`Explanation`]: what to do and why.
//! - [`sim`]: a simulated world with a virtual clock.
//! - [`flagger`]: Flagger's revision hashes, read when adopting a Canary Flagger managed.
//! - [`schedule`]: the schedule of a plan and the estimated promotion time, computed by simulation.
//! - [`alerts`]: which alerts a decision raises (Flagger's messages and severities).
//! - [`sequential`] and [`evidence`]: the opt-in sequential judge (canary against the concurrent
//!   primary on request counts, e-processes, `Verified` or `Unverified`), see `docs/judgement.md`.
//!
//! # Embedding
//! ```
//! use serin_core::{step, Observation, Plan, RolloutStatus, Step, Time, World, Revision};
//! # fn plan() -> Plan { serin_core::sim::example_plan() }
//! let plan = plan();
//! let world = World { latest_created: Some(Revision::ready("app-00001")), latest_ready: Some("app-00001".into()), primary: None };
//! let obs = Observation::of(world);
//! match step(&plan, &RolloutStatus::default(), &obs, Time::from_millis(0)) {
//!     Step::Done(decision) => assert_eq!(decision.status.primary_revision.as_deref(), Some("app-00001")),
//!     Step::Need(checks) => unreachable!("initialization needs no checks: {checks:?}"),
//! }
//! ```

mod action;
mod adopt;
mod alerts;
mod detect;
mod engine;
pub mod evidence;
pub mod flagger;
mod judge;
mod judge_policy;
mod judged;
mod messages;
mod observe;
mod plan;
mod requests;
mod rollout;
pub mod schedule;
pub mod sequential;
pub mod sim;
mod status;
mod time;

pub use action::{Action, CheckVerdict, Decision, Event, Explanation, Measured, Severity, TrafficSplit, Verdict};
pub use alerts::{Alert, AlertSeverity, alerts};
pub use engine::{Step, finalize, step};
pub use flagger::FlaggerRecord;
pub use judge::{Judgement, judge};
pub use judge_policy::{JudgeMode, JudgePolicy, JudgeSettings, OnInsufficientEvidence};
pub use observe::{
    Arm, CheckRequest, Counter, CounterSample, CountsOutcome, CountsRequest, HookOutcome, LatencyHistogram,
    MetricOutcome, Observation, Readiness, Revision, World,
};
pub use plan::{Hook, HookKind, MetricCheck, MetricKind, Plan, Strategy, ThresholdRange};
pub use requests::{OperatorRequest, RequestAction};
pub use sequential::{Assessment, JudgeState};
pub use status::{ConditionStatus, Phase, RolloutStatus};
pub use time::{Time, go_duration};
