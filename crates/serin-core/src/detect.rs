//! The stable phases: suspended, initializing (taking over routing), and detection of a new
//! revision in Initialized, Succeeded, Failed and Waiting (with the confirm-rollout gate).

use crate::{
    Action, HookKind, Phase, Severity,
    engine::{Flow, Tick},
    messages,
};

impl Tick<'_> {
    pub(crate) fn suspended(&mut self) -> Flow {
        if self.due() {
            self.event(Severity::Normal, messages::SUSPENDED.into());
            self.schedule_next();
        }
        self.summary("suspended: nothing is changed until spec.suspend is false".into());
        Ok(())
    }

    pub(crate) fn initialize(&mut self) -> Flow {
        let world = &self.obs.world;
        let primary = world
            .primary
            .as_ref()
            .map(|r| r.name.clone())
            .or_else(|| world.latest_ready.clone());
        let Some(primary) = primary else {
            if self.due() {
                let what = if world.latest_created.is_none() {
                    "any revision"
                } else {
                    "a Ready revision"
                };
                let message = messages::waiting_for_revision(self.plan, what);
                self.event(Severity::Warning, message.clone());
                self.summary(message);
                self.schedule_next();
            }
            return Ok(());
        };
        self.actions.push(Action::Initialize {
            primary: primary.clone(),
        });
        self.status.primary_revision = Some(primary.clone());
        self.status.phase = Phase::Initialized;
        self.status.next_step_at = None;
        self.event(Severity::Normal, messages::initialized(self.plan));
        self.summary(format!("routing taken over; {primary} is primary"));
        self.detect()
    }

    /// Stable phases: start a rollout when a revision newer than the primary appears.
    pub(crate) fn detect(&mut self) -> Flow {
        let Some(latest) = self.obs.world.latest_created.clone() else {
            self.summary("Knative reports no revision".into());
            return Ok(());
        };
        let is_primary = self.status.primary_revision.as_deref() == Some(latest.name.as_str());
        let already_handled = self.status.canary_revision.as_deref() == Some(latest.name.as_str());
        let waiting = self.status.phase == Phase::Waiting;
        if is_primary || (already_handled && !waiting) {
            self.status.next_step_at = None;
            if self.explanation.summary.is_empty() {
                self.summary(format!(
                    "nothing to roll out: latest revision {} already handled",
                    latest.name
                ));
            }
            return Ok(());
        }
        if waiting && already_handled && !self.due() {
            self.summary(format!("revision {} waits for confirm-rollout approval", latest.name));
            return Ok(());
        }
        if let Some(rejection) = self.gate(HookKind::ConfirmRollout)? {
            if self.status.phase != Phase::Waiting {
                self.status.phase = Phase::Waiting;
                let message = messages::waiting_for_approval(self.plan, &rejection.hook);
                self.event(Severity::Warning, message);
            }
            self.status.canary_revision = Some(latest.name.clone());
            self.schedule_next();
            self.summary(format!(
                "revision {} waits for confirm-rollout approval ({} said {})",
                latest.name, rejection.hook, rejection.detail
            ));
            return Ok(());
        }
        self.event(Severity::Normal, messages::new_revision(self.plan, &latest.name));
        self.start_rollout(&latest.name);
        self.analyse()
    }
}
