//! A Knative Serving simulator: stamps Revisions on template changes, makes them Ready (or not)
//! per image, and keeps Service status as Knative does, including `status.traffic`.
//!
//! It talks to the API server only through a kube client (watches and writes), so it also runs
//! as its own process against any API server. Traffic validation is the exception: it needs the
//! in-process emulator's admission hooks ([`validation::install`]).
//! When given a [`TrafficRouter`], it starts a demo-app backend per revision (with the
//! behaviour profile of its image) and routes each Service's hosts by `status.traffic`.

mod cache;
pub mod status;
pub mod validation;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use cache::{Key, SimCache};
use futures::StreamExt;
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    demo_app::{DemoApp, Profile},
    router::{Backend, TrafficRouter},
};
pub use status::Fate;

/// How revisions of an image behave.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Whether it becomes Ready.
    pub fate: Fate,
    /// How its backend answers.
    pub profile: Profile,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            fate: Fate::Ready,
            profile: Profile::default(),
        }
    }
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long a revision takes to become Ready.
    pub ready_after: Duration,
    /// Image substring → behaviour; the first match wins, else healthy.
    pub images: Vec<(String, Behaviour)>,
    /// Domain of Service URLs.
    pub domain: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            ready_after: Duration::from_secs(1),
            images: Vec::new(),
            domain: "example.com".into(),
        }
    }
}

impl SimConfig {
    /// The demo's images (the tutorial's podinfo tags): `6.0.2` answers 500 to 30% of requests
    /// (the tutorial's `curl …/status/500` loop), `6.0.3` adds 800 ms of latency, `6.0.4`
    /// fails (`ContainerMissing`), `6.0.5` never becomes Ready; `6.5.0` and `6.5.2` are healthy
    /// with a realistic latency spread and `6.5.1` adds 5% of 5xx to it (the sequential judge's
    /// end-to-end test); others are healthy.
    pub fn demo() -> Self {
        let profile = |error_ratio: f64, latency_ms: u64| Profile {
            version: String::new(),
            error_ratio,
            latency: Duration::from_millis(latency_ms),
            spread: 0.0,
        };
        // The sequential judge's images: a service whose latency varies like a real one (median
        // 20 ms, log-normal σ 0.45), healthy or with 5% of 5xx.
        let judged = |error_ratio: f64| Behaviour {
            fate: Fate::Ready,
            profile: Profile {
                version: String::new(),
                error_ratio,
                latency: Duration::from_millis(20),
                spread: 0.45,
            },
        };
        SimConfig {
            images: vec![
                ("podinfo:6.5.0".into(), judged(0.0)),
                ("podinfo:6.5.1".into(), judged(0.05)),
                ("podinfo:6.5.2".into(), judged(0.0)),
                (
                    "podinfo:6.0.2".into(),
                    Behaviour {
                        fate: Fate::Ready,
                        profile: profile(0.3, 0),
                    },
                ),
                (
                    "podinfo:6.0.3".into(),
                    Behaviour {
                        fate: Fate::Ready,
                        profile: profile(0.0, 800),
                    },
                ),
                (
                    "podinfo:6.0.4".into(),
                    Behaviour {
                        fate: Fate::Fail("ContainerMissing".into()),
                        profile: profile(0.0, 0),
                    },
                ),
                (
                    "podinfo:6.0.5".into(),
                    Behaviour {
                        fate: Fate::Never,
                        profile: profile(0.0, 0),
                    },
                ),
            ],
            ..SimConfig::default()
        }
    }

    fn behaviour(&self, image: &str) -> Behaviour {
        let mut b = self
            .images
            .iter()
            .find(|(s, _)| image.contains(s.as_str()))
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        if b.profile.version.is_empty() {
            b.profile.version = image.rsplit(':').next().unwrap_or(image).to_owned();
        }
        b
    }
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("serving.knative.dev", "v1", kind), plural)
}

const HASH_ANNOTATION: &str = "sandbox.serin.dev/template-hash";
const SERVICE_LABEL: &str = "serving.knative.dev/service";
const GENERATION_LABEL: &str = "serving.knative.dev/configurationGeneration";

fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The simulator.
pub struct Simulator {
    client: Client,
    config: SimConfig,
    router: Option<Arc<TrafficRouter>>,
    backends: Mutex<HashMap<String, DemoApp>>,
    cache: SimCache,
    /// Whether the Revisions watch has listed everything once (until then, LIST by label).
    revisions_listed: AtomicBool,
}

/// Services reconciled at once.
const CONCURRENCY: usize = 8;

impl Simulator {
    /// A simulator writing through `client`, routing through `router` when given.
    pub fn new(client: Client, config: SimConfig, router: Option<Arc<TrafficRouter>>) -> Arc<Self> {
        Arc::new(Simulator {
            client,
            config,
            router,
            backends: Mutex::new(HashMap::new()),
            cache: SimCache::default(),
            revisions_listed: AtomicBool::new(false),
        })
    }

    fn services(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &resource("Service", "services"))
    }

    fn revisions(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &resource("Revision", "revisions"))
    }

    /// Watches Services and Revisions everywhere and reconciles until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let services: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource("Service", "services"));
        let revisions: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource("Revision", "revisions"));
        let this = self.clone();
        let keys_of_services = watcher(services, watcher::Config::default())
            .default_backoff()
            .map(move |event| event.ok().and_then(|e| this.cache.service_event(e)));
        let this = self.clone();
        let keys_of_revisions = watcher(revisions, watcher::Config::default())
            .default_backoff()
            .map(move |event| {
                let event = event.ok()?;
                if matches!(event, watcher::Event::InitDone) {
                    this.revisions_listed.store(true, Ordering::SeqCst);
                }
                this.cache.revision_event(event, SERVICE_LABEL)
            });
        let keys = futures::stream::select(keys_of_services, keys_of_revisions).filter_map(std::future::ready);
        keys.for_each_concurrent(CONCURRENCY, |(ns, name)| {
            let this = self.clone();
            async move {
                let lock = this.cache.lock_of(&(ns.clone(), name.clone()));
                let result = {
                    let _one_at_a_time = lock.lock().await;
                    this.reconcile(&ns, &name).await
                };
                if let Err(e) = result {
                    tracing::debug!(service = %format!("{ns}/{name}"), error = %e, "knative simulator: reconcile failed, retrying");
                    tokio::spawn(async move {
                        for _ in 0..50 {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            let _one_at_a_time = lock.lock().await;
                            if this.reconcile(&ns, &name).await.is_ok() {
                                break;
                            }
                        }
                    });
                }
            }
        })
        .await;
    }

    /// The Service: as last seen by the watch, else a GET.
    async fn service(&self, key: &Key) -> Result<Option<Arc<Value>>, kube::Error> {
        if let Some(s) = self.cache.service(key) {
            return Ok(Some(s));
        }
        let found = self.services(&key.0).get_opt(&key.1).await?;
        Ok(found.map(|s| Arc::new(serde_json::to_value(&s).unwrap_or_default())))
    }

    /// The Revisions of a Service: from the watch once it has listed everything, else a LIST.
    async fn revisions_of(&self, key: &Key) -> Result<Vec<Value>, kube::Error> {
        if self.revisions_listed.load(Ordering::SeqCst) {
            return Ok(self.cache.revisions(key));
        }
        let list = self
            .revisions(&key.0)
            .list(&ListParams::default().labels(&format!("{SERVICE_LABEL}={}", key.1)))
            .await?;
        Ok(list
            .items
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or_default())
            .collect())
    }

    /// Brings one Service's revisions and status up to date.
    pub async fn reconcile(self: &Arc<Self>, ns: &str, name: &str) -> Result<(), kube::Error> {
        let key = (ns.to_owned(), name.to_owned());
        let Some(service) = self.service(&key).await? else {
            return Ok(());
        };
        let template = service.pointer("/spec/template").cloned().unwrap_or_default();
        let hash = fnv(&template.to_string());
        let mut revisions = self.revisions_of(&key).await?;
        let gen_of = |r: &Value| {
            r.pointer("/metadata/labels")
                .and_then(|l| l.get(GENERATION_LABEL))
                .and_then(Value::as_str)
                .and_then(|g| g.parse::<i64>().ok())
                .unwrap_or(0)
        };
        revisions.sort_by_key(gen_of);
        let latest_hash = revisions.last().and_then(|r| {
            r.pointer("/metadata/annotations")
                .and_then(|a| a.get(HASH_ANNOTATION))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if latest_hash.as_deref() != Some(hash.as_str()) {
            let generation = revisions.last().map(gen_of).unwrap_or(0) + 1;
            let created = self.create_revision(&service, &template, &hash, generation).await?;
            revisions.push(created);
        }
        let infos: Vec<status::RevisionInfo> = revisions
            .iter()
            .map(|r| status::RevisionInfo {
                name: r
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                generation: gen_of(r),
                ready: r
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")),
            })
            .collect();
        let previous = service.get("status").cloned().unwrap_or_default();
        let computed = status::compute(&service, &infos, &self.config.domain, &previous);
        // The data plane follows the computed routes even when writing status fails, as
        // Knative's networking layer does not wait for the Service's status.
        if let Some(router) = &self.router {
            let backends = self.backends.lock().await;
            for (host, split) in &computed.routes {
                let targets: Vec<(Backend, u8)> = split
                    .iter()
                    .filter_map(|(rev, percent)| {
                        let app = backends.get(&format!("{ns}/{rev}"))?;
                        Some((
                            Backend {
                                namespace: ns.to_owned(),
                                revision: rev.clone(),
                                addr: app.addr,
                            },
                            u8::try_from(*percent).unwrap_or(0),
                        ))
                    })
                    .collect();
                router.set_host(host, targets);
            }
        }
        if computed.status != previous {
            self.services(ns)
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": computed.status})),
                )
                .await?;
        }
        Ok(())
    }

    async fn create_revision(
        self: &Arc<Self>,
        service: &Value,
        template: &Value,
        hash: &str,
        generation: i64,
    ) -> Result<Value, kube::Error> {
        let ns = service
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = service
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let rev_name = template
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{name}-{generation:05}"));
        let image = template
            .pointer("/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let behaviour = self.config.behaviour(&image);
        let obj = json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {
                "name": rev_name, "namespace": ns,
                "labels": {SERVICE_LABEL: name, "serving.knative.dev/configuration": name, GENERATION_LABEL: generation.to_string()},
                "annotations": {HASH_ANNOTATION: hash},
                "ownerReferences": [{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": name,
                    "uid": service.pointer("/metadata/uid").cloned().unwrap_or_default(), "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": template.get("spec").cloned().unwrap_or_default(),
        });
        let dynamic: DynamicObject = serde_json::from_value(obj).map_err(kube::Error::SerdeError)?;
        let created = self.revisions(&ns).create(&PostParams::default(), &dynamic).await?;
        let pp = PatchParams::default();
        let deploying =
            json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "Deploying"}]}});
        self.revisions(&ns)
            .patch_status(&rev_name, &pp, &Patch::Merge(deploying))
            .await?;
        if self.router.is_some()
            && let Ok(app) = DemoApp::start(&rev_name, behaviour.profile.clone()).await
        {
            self.backends.lock().await.insert(format!("{ns}/{rev_name}"), app);
        }
        let final_status = match &behaviour.fate {
            Fate::Ready => Some(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
            Fate::Fail(reason) => Some(
                json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": reason, "message": format!("simulated failure of image {image}")}]}}),
            ),
            Fate::Never => None,
        };
        if let Some(status) = final_status {
            let this = self.clone();
            let delay = self.config.ready_after;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                for _ in 0..20 {
                    if this
                        .revisions(&ns)
                        .patch_status(&rev_name, &PatchParams::default(), &Patch::Merge(status.clone()))
                        .await
                        .is_ok()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        let created = serde_json::to_value(&created).unwrap_or_default();
        self.cache.created_revision(&created, SERVICE_LABEL);
        Ok(created)
    }
}
