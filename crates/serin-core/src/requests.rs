//! Requests a person makes on a rollout (`serin promote`, `abort`, `retry`, `approve`, or
//! `kubectl annotate`): each is consumed once, recorded in the status, announced with who asked,
//! and goes through the same paths as the engine's own decisions, so the traffic invariants hold
//! (a promote moves to the next weight, never past `maxWeight` before promotion; an abort ends
//! with all traffic on the primary).

use serde::{Deserialize, Serialize};

use crate::{HookKind, Phase, Severity, engine::Tick, messages};

/// What a person asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestAction {
    /// Pass the current step now (`full`: go straight to promotion). Gates still apply.
    Promote {
        /// Skip the remaining steps.
        full: bool,
    },
    /// Roll back now.
    Abort,
    /// Analyse again the revision that was rolled back.
    Retry,
    /// Open a gate (`confirm-rollout`, `confirm-traffic-increase`, `confirm-promotion`) for the
    /// current rollout.
    Approve {
        /// Which gate.
        gate: HookKind,
    },
}

/// One request, as read from the Canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRequest {
    /// Where it was written (the annotation key); one pending request per key.
    pub key: String,
    /// Its value: a new value is a new request; the same value again changes nothing.
    pub token: String,
    /// The action.
    pub action: RequestAction,
}

impl OperatorRequest {
    /// Who asked and why, from the token (`<time> by <who>[: <reason>]`, as `serin` writes it).
    pub fn who(&self) -> String {
        match self.token.split_once(" by ") {
            Some((_, who)) => who.trim().to_owned(),
            None => format!("a request ({})", self.token.trim()),
        }
    }
}

impl Tick<'_> {
    /// Requests not handled yet, in a fixed order (abort first).
    fn pending(&self) -> Vec<OperatorRequest> {
        let mut pending: Vec<OperatorRequest> = self
            .obs
            .requests
            .iter()
            .filter(|r| self.status.handled_requests.get(&r.key) != Some(&r.token))
            .cloned()
            .collect();
        pending.sort_by_key(|r| match r.action {
            RequestAction::Abort => 0,
            RequestAction::Retry => 1,
            RequestAction::Approve { .. } => 2,
            RequestAction::Promote { .. } => 3,
        });
        pending
    }

    fn handled(&mut self, request: &OperatorRequest) {
        self.status
            .handled_requests
            .insert(request.key.clone(), request.token.clone());
    }

    /// Abort, retry and approvals; a promote waits for the analysis step (`promote_requested`).
    /// Returns whether the step is complete (an abort rolled back).
    pub(crate) fn operator_requests(&mut self) -> bool {
        for request in self.pending() {
            let who = request.who();
            match &request.action {
                RequestAction::Abort => {
                    self.handled(&request);
                    match (self.status.phase.is_active(), self.status.canary_revision.clone()) {
                        (true, Some(canary)) => {
                            self.event(Severity::Warning, messages::abort_requested(self.plan, &who));
                            self.rollback_now(&canary);
                            return true;
                        }
                        _ => self.event(
                            Severity::Normal,
                            messages::nothing_to(self.plan, "abort", &who, self.status.phase),
                        ),
                    }
                }
                RequestAction::Retry => {
                    self.handled(&request);
                    let latest = self.obs.world.latest_created.as_ref().map(|r| r.name.clone());
                    match self.status.canary_revision.clone() {
                        Some(canary) if self.status.phase == Phase::Failed && latest.as_deref() == Some(&canary) => {
                            self.event(Severity::Normal, messages::retry_requested(self.plan, &canary, &who));
                            self.start_rollout(&canary);
                        }
                        _ => self.event(
                            Severity::Normal,
                            messages::nothing_to(self.plan, "retry", &who, self.status.phase),
                        ),
                    }
                }
                RequestAction::Approve { gate } => {
                    self.handled(&request);
                    if !self.status.approved_gates.contains(gate) {
                        self.status.approved_gates.push(*gate);
                    }
                    self.event(
                        Severity::Normal,
                        messages::gate_approved(self.plan, gate.as_str(), &who),
                    );
                }
                RequestAction::Promote { .. } if self.status.phase != Phase::Progressing => {
                    self.handled(&request);
                    let message = messages::nothing_to(self.plan, "promote", &who, self.status.phase);
                    self.event(Severity::Normal, message);
                }
                RequestAction::Promote { .. } => {}
            }
        }
        false
    }

    /// A pending promote (consumed): `Some(full)`.
    pub(crate) fn promote_requested(&mut self) -> Option<bool> {
        let request = self
            .pending()
            .into_iter()
            .find(|r| matches!(r.action, RequestAction::Promote { .. }))?;
        self.handled(&request);
        let RequestAction::Promote { full } = request.action else {
            return None;
        };
        let message = messages::promote_requested(self.plan, full, &request.who());
        self.event(Severity::Normal, message);
        Some(full)
    }

    /// Whether a person opened this gate for the current rollout.
    pub(crate) fn approved(&self, gate: HookKind) -> bool {
        self.status.approved_gates.contains(&gate)
    }
}
