//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder reconciles; a standby
//! takes over when the holder stops renewing for the lease duration.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// This replica's identity.
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub duration: Duration,
}

fn now_micro() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// Tries once to acquire or renew the lease; returns whether this replica holds it.
pub async fn try_acquire(client: &Client, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let secs = i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX);
    let Some(lease) = api.get_opt(&config.name).await? else {
        let now = MicroTime(jiff::Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(secs),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let renewed = spec.renew_time.as_ref().map(|t| t.0.as_second()).unwrap_or(0);
    let valid_for = i64::from(spec.lease_duration_seconds.unwrap_or(secs));
    let expired = jiff::Timestamp::now().as_second() > renewed + valid_for;
    if holder != config.identity && !expired {
        return Ok(false);
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(holder != config.identity);
    let mut patch = json!({
        "metadata": {"resourceVersion": lease.metadata.resource_version},
        "spec": {"holderIdentity": config.identity, "leaseDurationSeconds": secs, "renewTime": now_micro(), "leaseTransitions": transitions}
    });
    if holder != config.identity {
        patch["spec"]["acquireTime"] = json!(now_micro());
    }
    match api
        .patch(&config.name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this replica holds the lease, then keeps renewing it in the background; the
/// returned future completes when leadership is lost (the caller should then stop).
pub async fn acquire(client: Client, config: LeaseConfig) -> impl std::future::Future<Output = ()> {
    let retry = config.duration / 3;
    loop {
        match try_acquire(&client, &config).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election: cannot read the lease"),
        }
        tokio::time::sleep(retry).await;
    }
    tracing::info!(identity = %config.identity, lease = %config.name, "became leader");
    async move {
        let mut failures_since = None;
        loop {
            tokio::time::sleep(retry).await;
            match try_acquire(&client, &config).await {
                Ok(true) => failures_since = None,
                Ok(false) => {
                    tracing::error!("leadership lost to another replica");
                    return;
                }
                Err(e) => {
                    let since = *failures_since.get_or_insert_with(std::time::Instant::now);
                    tracing::warn!(error = %e, "cannot renew the lease");
                    if since.elapsed() >= config.duration {
                        tracing::error!("lease not renewed within its duration; stepping down");
                        return;
                    }
                }
            }
        }
    }
}
