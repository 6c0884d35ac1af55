//! Requests people write on a Canary as annotations (what `serin promote`, `abort`, `retry` and
//! `approve` write, and what `kubectl annotate` can write just as well). The value is a token:
//! a new value is a new request, the same value again changes nothing. `serin` writes
//! `<time> by <who>[: <reason>]`, and events name who asked.
//!
//! ```text
//! kubectl -n test annotate canary podinfo --overwrite serin.dev/promote="$(date -u +%FT%TZ) by $USER"
//! ```

use serin_core::{HookKind, OperatorRequest, RequestAction};

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
}
