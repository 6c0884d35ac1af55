//! The parts of Knative's `serving.knative.dev/v1` Service and Revision that Serin reads: the
//! spec and status of [`CachedService`](crate::CachedService) and the status of
//! [`CachedRevision`](crate::CachedRevision), the one read model of the router and its caches.
//! Reading only: writes are patches of what Serin owns, so fields not modelled here are never
//! dropped.

use serde::{Deserialize, Serialize};
use serin_core::Readiness;

/// A traffic target, in `spec.traffic` or `status.traffic`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTarget {
    /// A named revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// Follow the latest ready revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    /// Share of traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Tag (its own URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The tag's URL (status only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A status condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Type.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `True`, `False`, `Unknown`.
    #[serde(default)]
    pub status: String,
    /// Reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
}

/// A Service's spec, as far as Serin reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Traffic targets.
    #[serde(default)]
    pub traffic: Vec<TrafficTarget>,
}

/// A Service's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// The generation this status reflects.
    #[serde(default)]
    pub observed_generation: i64,
    /// The newest revision.
    #[serde(default)]
    pub latest_created_revision_name: Option<String>,
    /// The newest Ready revision.
    #[serde(default)]
    pub latest_ready_revision_name: Option<String>,
    /// Traffic as programmed.
    #[serde(default)]
    pub traffic: Vec<TrafficTarget>,
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Public URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// A Revision's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionStatus {
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// Knative's terminal reasons: a revision with `Ready=False` and one of these will not recover
/// by waiting.
const TERMINAL: &[&str] = &[
    "ContainerMissing",
    "ProgressDeadlineExceeded",
    "ExitCode",
    "RevisionFailed",
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "InvalidImage",
    "ResolvingDigests",
];

/// A condition of a given type.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

impl RevisionStatus {
    /// Readiness from the `Ready` condition.
    pub fn readiness(&self) -> Readiness {
        let describe = |c: &Condition| match (&c.reason, &c.message) {
            (Some(r), Some(m)) => format!("{r}: {m}"),
            (Some(r), None) => r.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => "not ready".into(),
        };
        match condition(&self.conditions, "Ready") {
            Some(c) if c.status == "True" => Readiness::Ready,
            Some(c)
                if c.status == "False"
                    && c.reason
                        .as_deref()
                        .is_some_and(|r| TERMINAL.iter().any(|t| r.starts_with(t))) =>
            {
                Readiness::Failed { reason: describe(c) }
            }
            Some(c) if c.status == "False" => Readiness::NotYet {
                reason: Some(describe(c)),
            },
            Some(c) => Readiness::NotYet {
                reason: c.reason.clone().or_else(|| c.message.clone()),
            },
            None => Readiness::NotYet { reason: None },
        }
    }
}
