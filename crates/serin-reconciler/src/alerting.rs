//! Alerts: which a decision raises (`serin_core::alerts`), who hears them (the Canary's
//! `analysis.alerts` with Flagger's severity rule, else the global notifier of the controller's
//! flags), the AlertProviders and Secrets that say where, and the delivery queue that sends them
//! off the reconcile path. A provider or Secret that cannot be read is a Warning event; a
//! delivery given up is one Warning event too. URLs and tokens appear in neither.

use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use serin_alerts::{Delivery, DeliveryResult, Dispatcher, DispatcherConfig, Job, Target, payload::Subject};
use serin_api::Canary;
use serin_core::{Action, Alert, AlertSeverity, Decision, Event, Plan, RolloutStatus, Severity};
use tokio::sync::mpsc;

use crate::{Context, metrics::AlertLabels, notify::warn};

/// The controller's alerting: the queue, and the global notifier when configured.
pub struct Alerting {
    dispatcher: Dispatcher,
    global: Option<Target>,
    cluster: Option<String>,
    reports: Mutex<Option<mpsc::UnboundedReceiver<Delivery>>>,
}

impl Alerting {
    /// Alerting with `global` for Canaries without `analysis.alerts` (Flagger's `--slack-url`…).
    pub fn new(config: DispatcherConfig, global: Option<Target>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Alerting {
            dispatcher: Dispatcher::new(config, move |d| {
                let _ = tx.send(d);
            }),
            global,
            cluster: None,
            reports: Mutex::new(Some(rx)),
        }
    }

    /// Adds a `Cluster` field to every alert (Flagger's `--cluster-name`).
    pub fn with_cluster_name(mut self, name: Option<String>) -> Self {
        self.cluster = name.filter(|n| !n.is_empty());
        self
    }

    /// The queue (for tests and embedders that inspect it).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }
}

fn severity_of(name: Option<&str>) -> AlertSeverity {
    match name {
        Some("warn") => AlertSeverity::Warn,
        Some("error") => AlertSeverity::Error,
        _ => AlertSeverity::Info,
    }
}

/// Whether a waiting-for-approval alert is muted by `muteAlert` on its gate webhooks.
fn muted(canary: &Canary, alert: &Alert) -> bool {
    let kind = match alert.message.as_str() {
        "Canary is waiting for approval." => "confirm-rollout",
        "Canary promotion is waiting for approval." => "confirm-promotion",
        _ => return false,
    };
    let gates: Vec<_> = canary
        .spec
        .analysis
        .iter()
        .flat_map(|a| a.webhooks.iter())
        .filter(|w| w.type_.as_deref() == Some(kind))
        .collect();
    !gates.is_empty() && gates.iter().all(|w| w.mute_alert == Some(true))
}

/// Resolves an AlertProvider (and its Secret) into a target; the error names no secret.
async fn resolve(ctx: &Context, namespace: &str, name: &str) -> Result<Target, String> {
    let provider = ctx
        .config_cache
        .alert_provider(&ctx.client, namespace, name)
        .await
        .map_err(|e| short(&e))?;
    let spec = &provider.spec;
    let mut address = spec.address.clone();
    let mut proxy = spec.proxy.clone();
    let mut token = None;
    if let Some(secret_ref) = &spec.secret_ref {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        let secret = secrets
            .get(&secret_ref.name)
            .await
            .map_err(|e| format!("secretRef {}: {}", secret_ref.name, short(&e)))?;
        let data = secret.data.unwrap_or_default();
        let value = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(&v.0).trim().to_owned());
        address = Some(value("address").ok_or_else(|| "secret does not contain an address".to_owned())?);
        proxy = value("proxy").or(proxy);
        token = value("token");
    }
    let address = address.ok_or("neither address nor secretRef is set")?;
    let mut target = Target::new(&spec.type_, &format!("{namespace}/{name}"), &address)
        .and_then(|t| t.with_proxy(proxy.as_deref()))
        .map_err(|e| e.to_string())?;
    target.token = token;
    if let Some(u) = spec.username.as_ref().filter(|u| !u.is_empty()) {
        target.username = u.clone();
    }
    if let Some(c) = spec.channel.as_ref().filter(|c| !c.is_empty()) {
        target.channel = c.clone();
    }
    Ok(target)
}

fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 404 => "not found".into(),
        other => other.to_string(),
    }
}

/// The alerts of one decision, resolved to their targets before the status is written.
#[derive(Default)]
pub(crate) struct Prepared {
    jobs: Vec<Job>,
    /// The `AlertsReady` condition (status, reason, message), when this step raised alerts.
    pub(crate) condition: Option<(&'static str, &'static str, String)>,
}

impl Prepared {
    /// Hands the jobs to the queue (after the status write: a step redone after a failed write
    /// raises no alert twice).
    pub(crate) fn dispatch(self, ctx: &Context) {
        if let Some(alerting) = &ctx.alerting {
            for job in self.jobs {
                alerting.dispatcher.send(job);
            }
        }
    }
}

/// Which alerts `decision` (made from `before`) raises, to whom; unreadable providers or
/// Secrets become a Warning event each and `AlertsReady=False`.
pub(crate) async fn prepare(
    canary: &Canary,
    ctx: &Context,
    plan: &Plan,
    before: &RolloutStatus,
    decision: &Decision,
) -> Prepared {
    let mut prepared = Prepared::default();
    let Some(alerting) = &ctx.alerting else {
        return prepared;
    };
    let events: Vec<Event> = decision
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let alerts: Vec<Alert> = serin_core::alerts(plan, before, &decision.status, &events)
        .into_iter()
        .filter(|a| !muted(canary, a))
        .map(|mut a| {
            if let Some(cluster) = &alerting.cluster {
                a.fields.insert(0, ("Cluster".into(), cluster.clone()));
            }
            a
        })
        .collect();
    if alerts.is_empty() {
        return prepared;
    }
    let namespace = canary.namespace().unwrap_or_default();
    let subject = Subject {
        name: canary.name_any(),
        namespace: namespace.clone(),
    };
    let subscriptions = canary
        .spec
        .analysis
        .as_ref()
        .map(|a| a.alerts.as_slice())
        .unwrap_or_default();
    if subscriptions.is_empty() {
        if let Some(global) = &alerting.global {
            prepared.jobs = alerts
                .into_iter()
                .map(|alert| Job {
                    target: global.clone(),
                    subject: subject.clone(),
                    alert,
                })
                .collect();
        }
        return prepared;
    }
    let mut problems = Vec::new();
    for subscription in subscriptions {
        let level = severity_of(subscription.severity.as_deref());
        let wanted: Vec<&Alert> = alerts.iter().filter(|a| level.receives(a.severity)).collect();
        if wanted.is_empty() {
            continue;
        }
        let provider_ns = subscription
            .provider_ref
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| namespace.clone());
        let name = &subscription.provider_ref.name;
        match resolve(ctx, &provider_ns, name).await {
            Ok(target) => prepared.jobs.extend(wanted.into_iter().map(|alert| Job {
                target: target.clone(),
                subject: subject.clone(),
                alert: alert.clone(),
            })),
            Err(e) => {
                let message = format!("alert provider {name}.{provider_ns} error: {e}");
                warn(canary, ctx, message.clone()).await;
                problems.push(message);
            }
        }
    }
    prepared.condition = Some(if problems.is_empty() {
        (
            "True",
            "ProvidersResolved",
            "every alert provider of the Canary was found".to_owned(),
        )
    } else {
        ("False", "ProviderError", problems.join("; "))
    });
    prepared
}

/// Counts deliveries and turns each one given up into a Warning event on its Canary.
pub(crate) async fn report_deliveries(ctx: Arc<Context>) {
    let Some(alerting) = &ctx.alerting else {
        return;
    };
    let Some(mut reports) = alerting.reports.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        return;
    };
    while let Some(delivery) = reports.recv().await {
        let result = match &delivery.result {
            DeliveryResult::Sent => "sent",
            DeliveryResult::Failed(_) => "failed",
            DeliveryResult::Dropped => "dropped",
        };
        ctx.metrics
            .alerts
            .get_or_create(&AlertLabels {
                provider: delivery.provider.as_str().into(),
                result: result.into(),
            })
            .inc();
        let DeliveryResult::Failed(error) = &delivery.result else {
            continue;
        };
        tracing::warn!(canary = %format!("{}.{}", delivery.subject.name, delivery.subject.namespace), target = %delivery.target, attempts = delivery.attempts, %error, "alert not delivered");
        let canary = ctx.store.get().and_then(|store| {
            store.state().into_iter().find(|c| {
                c.name_any() == delivery.subject.name && c.namespace().as_deref() == Some(&delivery.subject.namespace)
            })
        });
        if let Some(canary) = canary {
            let event = Event {
                severity: Severity::Warning,
                message: format!(
                    "Alert {:?} to {} not delivered after {} attempts: {error}",
                    delivery.message, delivery.target, delivery.attempts
                ),
            };
            ctx.events.record(&canary, &event).await;
        }
    }
}
