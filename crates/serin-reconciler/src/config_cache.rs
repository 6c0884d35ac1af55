//! The configuration objects Canaries name (MetricTemplates, AlertProviders, JudgePolicies),
//! read from watches instead of a GET per check. Each kind has a reflector started with the
//! controller; a lookup answers from its store, and falls back to a GET only when the store does
//! not hold the object (not synced yet, just created, or missing: the GET then gives the API
//! server's own 404).

use std::{fmt::Debug, sync::OnceLock};

use futures::StreamExt;
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store, reflector},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use serin_api::{AlertProvider, JudgePolicy, MetricTemplate};

/// The stores, once the watches are started.
#[derive(Default)]
pub struct ConfigCache {
    templates: OnceLock<Store<MetricTemplate>>,
    alert_providers: OnceLock<Store<AlertProvider>>,
    judge_policies: OnceLock<Store<JudgePolicy>>,
}

fn watch<K>(client: &Client, namespace: Option<&str>) -> Store<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default()).default_backoff()).applied_objects();
    tokio::spawn(stream.for_each(|event| async move {
        if let Err(e) = event {
            // A kind whose CRD is not installed keeps failing here; lookups then GET (and 404).
            tracing::debug!(kind = %K::kind(&()), error = %e, "configuration watch");
        }
    }));
    reader
}

async fn lookup<K>(store: Option<&Store<K>>, client: &Client, namespace: &str, name: &str) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
{
    if let Some(found) = store.and_then(|s| s.get(&ObjectRef::new(name).within(namespace))) {
        return Ok(found.as_ref().clone());
    }
    Api::<K>::namespaced(client.clone(), namespace).get(name).await
}

impl ConfigCache {
    /// Starts the three watches (in `namespace`, or all); lookups use them from then on.
    pub fn start(&self, client: &Client, namespace: Option<&str>) {
        let _ = self.templates.set(watch(client, namespace));
        let _ = self.alert_providers.set(watch(client, namespace));
        let _ = self.judge_policies.set(watch(client, namespace));
    }

    /// A MetricTemplate as the watch last saw it, without asking the API server.
    pub fn cached_metric_template(&self, namespace: &str, name: &str) -> Option<MetricTemplate> {
        let found = self.templates.get()?.get(&ObjectRef::new(name).within(namespace))?;
        Some(found.as_ref().clone())
    }

    /// A JudgePolicy as the watch last saw it, without asking the API server.
    pub fn cached_judge_policy(&self, namespace: &str, name: &str) -> Option<JudgePolicy> {
        let found = self
            .judge_policies
            .get()?
            .get(&ObjectRef::new(name).within(namespace))?;
        Some(found.as_ref().clone())
    }

    /// A MetricTemplate.
    pub async fn metric_template(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<MetricTemplate, kube::Error> {
        lookup(self.templates.get(), client, namespace, name).await
    }

    /// An AlertProvider.
    pub async fn alert_provider(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<AlertProvider, kube::Error> {
        lookup(self.alert_providers.get(), client, namespace, name).await
    }

    /// A JudgePolicy.
    pub async fn judge_policy(&self, client: &Client, namespace: &str, name: &str) -> Result<JudgePolicy, kube::Error> {
        lookup(self.judge_policies.get(), client, namespace, name).await
    }
}
