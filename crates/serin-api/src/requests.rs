//! Requests people write on a Canary as annotations (what `serin promote`, `abort`, `retry` and
//! `approve` write, and what `kubectl annotate` can write just as well). The value is a token:
//! a new value is a new request, the same value again changes nothing. `serin` writes
//! `<time> by <who>[: <reason>]`, and events name who asked.
//!
//! ```text
//! kubectl -n test annotate canary podinfo --overwrite serin.dev/promote="$(date -u +%FT%TZ) by $USER"
//! ```

use serin_core::{HookKind, OperatorRequest, RequestAction, Time};

use crate::Canary;

/// `serin promote`: pass the current step now.
pub const PROMOTE: &str = "serin.dev/promote";
/// `serin promote --full`: go straight to promotion.
pub const PROMOTE_FULL: &str = "serin.dev/promote-full";
/// `serin abort`: roll back now.
pub const ABORT: &str = "serin.dev/abort";
/// `serin retry`: analyse again the revision that was rolled back.
pub const RETRY: &str = "serin.dev/retry";
/// `serin approve --gate G`: `serin.dev/approve-` followed by the gate's name.
pub const APPROVE_PREFIX: &str = "serin.dev/approve-";

/// The gate named in the spec's words (`confirm-rollout`, …), if it is a gate.
pub fn gate_kind(name: &str) -> Option<HookKind> {
    match name {
        "confirm-rollout" => Some(HookKind::ConfirmRollout),
        "confirm-traffic-increase" => Some(HookKind::ConfirmTrafficIncrease),
        "confirm-promotion" => Some(HookKind::ConfirmPromotion),
        _ => None,
    }
}

/// A request a person makes on a Canary, as `serin` (the CLI and the dashboard) writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The next step now.
    Promote,
    /// Promotion now.
    PromoteFull,
    /// Rollback now.
    Abort,
    /// Analyse the rolled-back revision again.
    Retry,
    /// Open a gate.
    Approve(HookKind),
}

impl Request {
    /// `promote`, `promote-full`, `abort`, `retry` or `approve-<gate>`.
    pub fn parse(word: &str) -> Option<Request> {
        Some(match word {
            "promote" => Request::Promote,
            "promote-full" => Request::PromoteFull,
            "abort" => Request::Abort,
            "retry" => Request::Retry,
            other => Request::Approve(gate_kind(other.strip_prefix("approve-")?)?),
        })
    }

    /// The annotation the request is written to.
    pub fn annotation(self) -> String {
        match self {
            Request::Promote => PROMOTE.to_owned(),
            Request::PromoteFull => PROMOTE_FULL.to_owned(),
            Request::Abort => ABORT.to_owned(),
            Request::Retry => RETRY.to_owned(),
            Request::Approve(gate) => format!("{APPROVE_PREFIX}{}", gate.as_str()),
        }
    }

    /// Why the request cannot apply to a Canary in `phase`, if it cannot.
    pub fn refused_in(self, phase: &str) -> Option<&'static str> {
        let active = matches!(phase, "Progressing" | "WaitingPromotion" | "Promoting" | "Finalising");
        match self {
            Request::Promote | Request::PromoteFull if phase != "Progressing" => {
                Some("only a Progressing rollout can be promoted (a closed gate is opened with `serin approve`)")
            }
            Request::Abort if !active => Some("no rollout is in flight"),
            Request::Retry if phase != "Failed" => Some("only a rolled-back (Failed) rollout can be retried"),
            _ => None,
        }
    }

    /// The merge patch that writes the request: the token is `<time> by <who>[: <reason>]`.
    pub fn patch(self, now: Time, who: &str, reason: Option<&str>) -> (String, serde_json::Value) {
        let at = crate::rfc3339(now);
        let token = match reason {
            Some(reason) => format!("{at} by {who}: {reason}"),
            None => format!("{at} by {who}"),
        };
        let patch = serde_json::json!({"metadata": {"annotations": {self.annotation(): token.clone()}}});
        (token, patch)
    }
}

/// The merge patch `serin pause` (`true`) and `serin resume` (`false`) write: `spec.suspend`.
pub fn suspend_patch(suspend: bool) -> serde_json::Value {
    serde_json::json!({"spec": {"suspend": suspend}})
}

/// Every request annotation on the Canary (handled or not: the status says which were).
pub fn operator_requests(canary: &Canary) -> Vec<OperatorRequest> {
    let Some(annotations) = canary.metadata.annotations.as_ref() else {
        return Vec::new();
    };
    annotations
        .iter()
        .filter(|(_, token)| !token.trim().is_empty())
        .filter_map(|(key, token)| {
            let action = match key.as_str() {
                PROMOTE => RequestAction::Promote { full: false },
                PROMOTE_FULL => RequestAction::Promote { full: true },
                ABORT => RequestAction::Abort,
                RETRY => RequestAction::Retry,
                other => RequestAction::Approve {
                    gate: gate_kind(other.strip_prefix(APPROVE_PREFIX)?)?,
                },
            };
            Some(OperatorRequest {
                key: key.clone(),
                token: token.clone(),
                action,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_annotations_are_read_and_others_ignored() {
        let mut canary = Canary::new("podinfo", Default::default());
        canary.metadata.annotations = Some(
            [
                (PROMOTE_FULL, "t1 by alice"),
                ("serin.dev/approve-confirm-promotion", "t2 by bob"),
                ("serin.dev/approve-pre-rollout", "t3"),
                ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                (ABORT, ""),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        );
        let requests = operator_requests(&canary);
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert!(
            requests
                .iter()
                .any(|r| r.action == RequestAction::Promote { full: true } && r.who() == "alice")
        );
        assert!(requests.iter().any(|r| r.action
            == RequestAction::Approve {
                gate: HookKind::ConfirmPromotion
            }));
    }

    #[test]
    fn every_request_written_is_read_back_as_the_same_action() {
        let words = [
            "promote",
            "promote-full",
            "abort",
            "retry",
            "approve-confirm-rollout",
            "approve-confirm-traffic-increase",
            "approve-confirm-promotion",
        ];
        for word in words {
            let request = Request::parse(word).expect(word);
            let (token, patch) = request.patch(Time::from_millis(0), "alice", Some("looks fine"));
            assert_eq!(token, "1970-01-01T00:00:00Z by alice: looks fine");
            let mut canary = Canary::new("podinfo", Default::default());
            canary.metadata = serde_json::from_value(patch["metadata"].clone()).expect("metadata");
            let read = operator_requests(&canary);
            assert_eq!(read.len(), 1, "{word}: {read:?}");
            assert_eq!(read[0].key, request.annotation(), "{word}");
            assert_eq!(read[0].who(), "alice: looks fine", "{word}");
        }
        assert_eq!(Request::parse("approve-pre-rollout"), None);
        assert_eq!(Request::parse("delete"), None);
        assert!(Request::Retry.refused_in("Progressing").is_some());
        assert!(Request::Abort.refused_in("Progressing").is_none());
    }
}
