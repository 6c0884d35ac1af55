//! The Knative Serving implementation of [`Router`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::Value;
use serin_core::{Readiness, Revision as CoreRevision, TrafficSplit, World};

use crate::{
    KnativeCache, Router, RouterError, Target,
    cache::{CachedRevision, CachedService, revision_resource, service_resource},
    patches,
    types::{RevisionStatus, condition},
};

/// Routes Knative Services by patching `spec.traffic`.
#[derive(Clone)]
pub struct KnativeRouter {
    client: Client,
    conflict_retries: usize,
    backoff: Duration,
    field_manager: String,
    cache: Option<KnativeCache>,
}

/// An API error as a router error: a body that does not decode is malformed, not transient.
fn api_error(t: &Target, what: &str, source: kube::Error) -> RouterError {
    match source {
        kube::Error::SerdeError(e) => RouterError::Malformed {
            service: t.display(),
            problem: format!("{what}: {e}"),
        },
        source => RouterError::Api {
            service: t.display(),
            code: match &source {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            source: Box::new(source),
        },
    }
}

impl KnativeRouter {
    /// A router using `client`; conflicts are retried 5 times from 50 ms.
    pub fn new(client: Client) -> Self {
        KnativeRouter {
            client,
            conflict_retries: 5,
            backoff: Duration::from_millis(50),
            field_manager: "serin".into(),
            cache: None,
        }
    }

    /// Reads Services and Revisions from watch caches (fed by the caller), falling back to a GET
    /// for what they do not hold yet. Writes are still guarded by `resourceVersion`: a stale
    /// cache costs a 409 and a retry from a fresh GET, never a lost update.
    pub fn with_cache(mut self, cache: KnativeCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Changes the conflict retry policy.
    pub fn with_conflict_retries(mut self, retries: usize, backoff: Duration) -> Self {
        self.conflict_retries = retries;
        self.backoff = backoff;
        self
    }

    fn services(&self, namespace: &str) -> Api<CachedService> {
        Api::namespaced_with(self.client.clone(), namespace, &service_resource())
    }

    fn revisions(&self, namespace: &str) -> Api<CachedRevision> {
        Api::namespaced_with(self.client.clone(), namespace, &revision_resource())
    }

    /// The Service: from the cache unless `fresh`, else (or when the cache lacks it) a GET.
    async fn service(&self, t: &Target, fresh: bool) -> Result<Arc<CachedService>, RouterError> {
        let cached = self
            .cache
            .as_ref()
            .filter(|_| !fresh)
            .and_then(|c| c.service(&t.namespace, &t.name));
        if let Some(obj) = cached {
            return Ok(obj);
        }
        match self.services(&t.namespace).get_opt(&t.name).await {
            Ok(Some(obj)) => Ok(Arc::new(obj)),
            Ok(None) => Err(RouterError::NotFound(t.display())),
            Err(source) => Err(api_error(t, "service", source)),
        }
    }

    async fn revision(&self, t: &Target, name: &str) -> Result<Option<RevisionStatus>, RouterError> {
        if let Some(obj) = self.cache.as_ref().and_then(|c| c.revision(&t.namespace, name)) {
            return Ok(Some(obj.status.clone().unwrap_or_default()));
        }
        match self.revisions(&t.namespace).get_opt(name).await {
            Ok(Some(obj)) => Ok(Some(obj.status.unwrap_or_default())),
            Ok(None) => Ok(None),
            Err(source) => Err(api_error(t, &format!("revision {name}"), source)),
        }
    }

    /// Builds the patch from the Service's resourceVersion (cached on the first attempt, a fresh
    /// GET after a conflict) and writes it; retries on 409 with a bounded backoff; an admission
    /// refusal is returned as is.
    async fn write(&self, t: &Target, build: impl Fn(&str) -> Value + Send + Sync) -> Result<(), RouterError> {
        let attempts = AtomicUsize::new(0);
        let attempt = || async {
            let fresh = attempts.fetch_add(1, Ordering::Relaxed) > 0;
            let service = self.service(t, fresh).await?;
            let patch = build(service.metadata.resource_version.as_deref().unwrap_or_default());
            let params = PatchParams {
                field_manager: Some(self.field_manager.clone()),
                ..PatchParams::default()
            };
            match self
                .services(&t.namespace)
                .patch(&t.name, &params, &Patch::Merge(&patch))
                .await
            {
                Ok(written) => {
                    if let Some(cache) = &self.cache {
                        cache.wrote(&t.namespace, &t.name, written);
                    }
                    Ok(())
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    if let Some(cache) = &self.cache {
                        cache.forget(&t.namespace, &t.name);
                    }
                    Err(RouterError::Conflict(t.display()))
                }
                Err(kube::Error::Api(status)) if status.code == 404 => Err(RouterError::NotFound(t.display())),
                Err(kube::Error::Api(status)) if status.code == 400 || status.code == 422 => {
                    Err(RouterError::Rejected {
                        service: t.display(),
                        message: status.message.clone(),
                    })
                }
                Err(source) => Err(api_error(t, "service", source)),
            }
        };
        let policy = ExponentialBuilder::default()
            .with_min_delay(self.backoff)
            .with_max_times(self.conflict_retries)
            .with_jitter();
        attempt
            .retry(policy)
            .when(|e| matches!(e, RouterError::Conflict(_)))
            .notify(
                |_, delay| tracing::debug!(service = %t.display(), ?delay, "conflict writing the Service, retrying"),
            )
            .await
    }
}

fn core_revision(name: &str, revision: Option<RevisionStatus>, missing: Readiness) -> CoreRevision {
    CoreRevision {
        name: name.to_owned(),
        readiness: revision.map_or(missing, |r| r.readiness()),
    }
}

#[async_trait]
impl Router for KnativeRouter {
    async fn observe(&self, t: &Target) -> Result<World, RouterError> {
        let service = self.service(t, false).await?;
        let status = service.status.clone().unwrap_or_default();
        let primary_name = service
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(patches::PRIMARY_ANNOTATION))
            .cloned();
        let latest_name = status.latest_created_revision_name.clone();
        let primary = match &primary_name {
            Some(name) => Some(core_revision(
                name,
                self.revision(t, name).await?,
                Readiness::Failed {
                    reason: format!("revision {name} does not exist"),
                },
            )),
            None => None,
        };
        let latest_created = match &latest_name {
            Some(name) if Some(name) == primary_name.as_ref() => primary.clone(),
            Some(name) => Some(core_revision(
                name,
                self.revision(t, name).await?,
                Readiness::NotYet {
                    reason: Some("revision not created yet".into()),
                },
            )),
            None => None,
        };
        if let Some(c) = condition(&status.conditions, "RoutesReady").filter(|c| c.status == "False") {
            tracing::warn!(
                service = %t.display(),
                reason = c.reason.as_deref().unwrap_or_default(),
                message = c.message.as_deref().unwrap_or_default(),
                "Knative reports the routes not ready"
            );
        }
        Ok(World {
            primary,
            latest_created,
            latest_ready: status.latest_ready_revision_name.clone(),
        })
    }

    async fn initialize(&self, t: &Target, primary: &str) -> Result<(), RouterError> {
        self.write(t, |rv| patches::initialize(primary, rv, t.tags)).await
    }

    async fn set_split(&self, t: &Target, split: &TrafficSplit) -> Result<(), RouterError> {
        self.write(t, |rv| patches::split(split, rv, t.tags)).await
    }

    async fn promote(&self, t: &Target, revision: &str) -> Result<(), RouterError> {
        self.write(t, |rv| patches::promote(revision, rv, t.tags)).await
    }

    async fn release(&self, t: &Target, pin: Option<String>) -> Result<(), RouterError> {
        self.write(t, |rv| patches::release(pin.as_deref(), rv)).await
    }
}
