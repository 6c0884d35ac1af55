//! Adopting a Canary whose status Serin did not write: Flagger's (hashes instead of revision
//! names), or one edited by hand. Serin takes over in any phase Flagger can leave behind and
//! never analyses or promotes a revision Flagger already handled.
//!
//! | phase Flagger left | what Serin does |
//! |---|---|
//! | Initializing | initializes (keeps the `flagger.app/primary-revision` annotation) |
//! | Initialized, Succeeded | a latest revision Flagger handled stays handled; a newer one is rolled out |
//! | Failed | the rolled-back revision is not analysed again; only a newer one is rolled out |
//! | Waiting | confirm-rollout is asked again for the latest revision |
//! | Progressing, WaitingPromotion | 100% back on the primary, then a fresh analysis of the latest revision |
//! | Promoting, Finalising | Flagger already made the analysed revision primary: the promotion completes |

use crate::{Action, Phase, Severity, engine::Flow, engine::Tick, messages};

impl Tick<'_> {
    pub(crate) fn adopt(&mut self) -> Flow {
        let Some(primary) = self.obs.world.primary.as_ref().map(|r| r.name.clone()) else {
            // No record of a primary anywhere: start over.
            self.status.phase = Phase::Initializing;
            self.status.flagger = Default::default();
            return self.initialize();
        };
        let record = std::mem::take(&mut self.status.flagger);
        let from = self.status.phase;
        self.status.primary_revision = Some(primary.clone());
        let pending = self
            .obs
            .world
            .latest_created
            .as_ref()
            .map(|r| r.name.clone())
            .filter(|latest| *latest != primary);
        match from {
            Phase::Initialized | Phase::Succeeded | Phase::Failed | Phase::Waiting => {
                let what = match &pending {
                    // A Failed status with no record at all was edited by hand: the latest
                    // revision may be the rolled-back one, so it is not analysed unasked.
                    Some(rev)
                        if from != Phase::Waiting
                            && (record.handled(rev) || (from == Phase::Failed && record.is_empty())) =>
                    {
                        self.status.canary_revision = Some(rev.clone());
                        let outcome = if from == Phase::Failed {
                            "was rolled back"
                        } else {
                            "was already handled"
                        };
                        format!("revision {rev} {outcome} and is not analysed again; a newer revision will be")
                    }
                    Some(rev) => format!("revision {rev} is new and will be rolled out"),
                    None => "nothing to roll out".to_owned(),
                };
                self.event(Severity::Normal, messages::adopted(self.plan, from, &primary, &what));
                self.detect()
            }
            Phase::Progressing | Phase::WaitingPromotion => {
                self.actions.push(Action::Initialize {
                    primary: primary.clone(),
                });
                self.status.canary_weight = 0;
                match pending {
                    Some(rev) => {
                        let what = format!(
                            "the analysis was under way: 100% back on the primary, and the analysis of {rev} starts again"
                        );
                        self.event(Severity::Normal, messages::adopted(self.plan, from, &primary, &what));
                        self.start_rollout(&rev);
                        self.analyse()
                    }
                    None => {
                        let what = "the latest revision is the primary: nothing to analyse";
                        self.event(Severity::Normal, messages::adopted(self.plan, from, &primary, what));
                        self.status.phase = Phase::Initialized;
                        self.detect()
                    }
                }
            }
            Phase::Promoting | Phase::Finalising => {
                let what = "Flagger had promoted it; the promotion completes";
                self.event(Severity::Normal, messages::adopted(self.plan, from, &primary, what));
                self.status.canary_revision = Some(primary.clone());
                self.complete_promotion(&primary, true);
                Ok(())
            }
            Phase::Initializing | Phase::Terminating => {
                self.summary("the Canary is being deleted".into());
                Ok(())
            }
        }
    }
}
