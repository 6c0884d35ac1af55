//! The kube-runtime Controller over Canaries, woken by changes of their Knative Services and
//! Revisions, and otherwise by the engine's next wake-up. The Service and Revision watches also
//! fill the router's caches (see [`Context::with_knative_cache`]).

use std::{future::Future, sync::Arc};

use futures::StreamExt;
use kube::{
    Api,
    runtime::{
        Controller, WatchStreamExt,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serin_api::Canary;
use serin_knative::{
    cache::{revision_resource, service_resource},
    watches::service_of,
};

use crate::{
    Context,
    context::TargetIndex,
    reconcile::{error_policy, reconcile},
};

/// The Canaries that target Service `name` in `namespace`: from the index, or by scanning the
/// cache for Canaries not reconciled yet.
fn canaries_for(
    index: &TargetIndex,
    store: &Store<Canary>,
    namespace: Option<String>,
    name: Option<String>,
) -> Vec<ObjectRef<Canary>> {
    let (Some(namespace), Some(name)) = (namespace, name) else {
        return Vec::new();
    };
    let mut known = Vec::new();
    for canary in index.canaries(&namespace, &name) {
        let key = ObjectRef::new(&canary).within(&namespace);
        if store.get(&key).is_some() {
            known.push(key);
        } else {
            // Deleted since it was indexed.
            index.forget(&namespace, &canary);
        }
    }
    if !known.is_empty() {
        return known;
    }
    store
        .state()
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() == Some(namespace.as_str()) && c.spec.target_ref.name == name)
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Keeps `flagger_canary_total{namespace}` up to date from the Canary cache (every 10 s, as a
/// count over the cache; deletions included).
async fn count_canaries(store: Store<Canary>, metrics: Arc<crate::metrics::ControllerMetrics>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        let mut counts = std::collections::BTreeMap::<String, i64>::new();
        for canary in store.state() {
            *counts
                .entry(canary.metadata.namespace.clone().unwrap_or_default())
                .or_default() += 1;
        }
        metrics.set_canary_totals(&counts);
    }
}

/// What the reconciler never reads, dropped before a Canary is cached: managed fields and
/// kubectl's copy of the last applied object (as large as the spec again). The reconciler
/// writes Canaries only with patches, so nothing dropped here is ever written back.
fn slim_canary(canary: &mut Canary) {
    canary.metadata.managed_fields = None;
    if let Some(annotations) = canary.metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// How long a scheduled reconcile waits for more triggers of the same Canary. kube-runtime adds
/// it to every request, requeues included, so the reconciler asks that much earlier.
pub(crate) const DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(300);

/// Runs the controller until `shutdown` completes.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let canaries: Api<Canary> = match &ctx.config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    ctx.config_cache.start(&client, ctx.config.namespace.as_deref());
    let selector = ctx.config.shard.as_ref().and_then(|s| s.selector.clone());
    let watch_config = match &selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let (store, writer) = kube::runtime::reflector::store();
    let trigger = watcher(canaries, watch_config)
        .default_backoff()
        .modify(slim_canary)
        .reflect(writer)
        .applied_objects();
    let controller = Controller::for_stream(trigger, store.clone());
    let _ = ctx.store.set(store.clone());
    let (by_service, index_s) = (store.clone(), ctx.targets.clone());
    let (by_revision, index_r) = (store.clone(), ctx.targets.clone());
    tokio::spawn(count_canaries(store.clone(), ctx.metrics.clone()));
    tokio::spawn(crate::alerting::report_deliveries(ctx.clone()));
    // The watches fill the router's caches when it reads them; otherwise they only trigger.
    let watches = serin_knative::watches::watches(&client, ctx.config.namespace.as_deref(), ctx.take_knative_cache());
    controller
        .watches_stream_with(
            watches.services,
            move |svc| {
                canaries_for(
                    &index_s,
                    &by_service,
                    svc.metadata.namespace.clone(),
                    svc.metadata.name.clone(),
                )
            },
            service_resource(),
        )
        .watches_stream_with(
            watches.revisions,
            move |rev| canaries_for(&index_r, &by_revision, rev.metadata.namespace.clone(), service_of(&rev)),
            revision_resource(),
        )
        // Bursts of triggers (our own writes echoing back, Knative status updates) collapse into
        // one reconcile; steps run at most this late.
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(DEBOUNCE)
                .concurrency(ctx.config.max_concurrent_reconciles),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}
