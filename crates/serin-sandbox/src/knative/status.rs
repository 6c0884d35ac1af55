//! Knative's Service status, computed from the Service and its Revisions (pure).

use serde_json::{Value, json};

/// Readiness of a simulated revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Ready after the configured delay.
    Ready,
    /// Never becomes Ready.
    Never,
    /// Fails with this reason (e.g. `ContainerMissing`).
    Fail(String),
}

/// What the status computation needs of a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionInfo {
    /// Name.
    pub name: String,
    /// `serving.knative.dev/configurationGeneration`.
    pub generation: i64,
    /// Ready=True.
    pub ready: bool,
}

/// The computed status and the routes it implies.
#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    /// `Service.status`.
    pub status: Value,
    /// Host → (revision, percent), for the traffic router; empty when routes are not ready.
    pub routes: Vec<(String, Vec<(String, i64)>)>,
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> Value {
    let status = if ok {
        "True"
    } else if reason.is_empty() {
        "Unknown"
    } else {
        "False"
    };
    let mut c = json!({"type": type_, "status": status});
    if !ok && !reason.is_empty() {
        c["reason"] = json!(reason);
        c["message"] = json!(message);
    }
    c
}

/// Computes `status` for a Service given its revisions (oldest first); `previous` is the current
/// status (its traffic is kept when the new spec cannot be programmed).
pub fn compute(service: &Value, revisions: &[RevisionInfo], domain: &str, previous: &Value) -> Computed {
    let name = service
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = service
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let generation = service
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let latest_created = revisions.iter().max_by_key(|r| r.generation);
    let latest_ready = revisions.iter().filter(|r| r.ready).max_by_key(|r| r.generation);
    let host = |tag: Option<&str>| match tag {
        Some(t) => format!("{t}-{name}.{namespace}"),
        None => format!("{name}.{namespace}"),
    };
    let url = |tag: Option<&str>| format!("http://{}.{domain}", host(tag));
    let spec_traffic: Vec<Value> = service
        .pointer("/spec/traffic")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let targets = if spec_traffic.is_empty() {
        vec![json!({"latestRevision": true, "percent": 100})]
    } else {
        spec_traffic
    };
    let mut resolved = Vec::new();
    let mut missing = None;
    for t in &targets {
        let revision = match t.get("revisionName").and_then(Value::as_str) {
            Some(r) if revisions.iter().any(|x| x.name == r && x.ready) => Some(r.to_owned()),
            Some(r) => {
                missing.get_or_insert_with(|| r.to_owned());
                None
            }
            None => latest_ready.map(|r| r.name.clone()),
        };
        let Some(revision) = revision else {
            if missing.is_none() {
                missing = Some("(no ready revision)".into());
            }
            continue;
        };
        let mut entry =
            json!({"revisionName": revision, "percent": t.get("percent").and_then(Value::as_i64).unwrap_or(0)});
        if t.get("latestRevision").and_then(Value::as_bool) == Some(true) {
            entry["latestRevision"] = json!(true);
        }
        if let Some(tag) = t.get("tag").and_then(Value::as_str) {
            entry["tag"] = json!(tag);
            entry["url"] = json!(url(Some(tag)));
        }
        resolved.push(entry);
    }
    let routes_ok = missing.is_none();
    let traffic = if routes_ok {
        json!(resolved)
    } else {
        previous.get("traffic").cloned().unwrap_or_else(|| json!([]))
    };
    let config_ready = latest_created.is_some_and(|r| r.ready);
    let message = missing
        .as_ref()
        .map(|r| format!("Revision \"{r}\" referenced in traffic not found."))
        .unwrap_or_default();
    let conditions = json!([
        condition("ConfigurationsReady", config_ready, "", ""),
        condition(
            "Ready",
            config_ready && routes_ok,
            if routes_ok { "" } else { "RevisionMissing" },
            &message
        ),
        condition(
            "RoutesReady",
            routes_ok,
            if routes_ok { "" } else { "RevisionMissing" },
            &message
        ),
    ]);
    let mut status = json!({
        "observedGeneration": generation,
        "url": url(None),
        "address": {"url": format!("http://{name}.{namespace}.svc.cluster.local")},
        "traffic": traffic,
        "conditions": conditions,
    });
    if let Some(r) = latest_created {
        status["latestCreatedRevisionName"] = json!(r.name);
    }
    if let Some(r) = latest_ready {
        status["latestReadyRevisionName"] = json!(r.name);
    }
    let mut routes = Vec::new();
    if routes_ok {
        let split: Vec<(String, i64)> = resolved
            .iter()
            .filter_map(|e| {
                Some((
                    e["revisionName"].as_str()?.to_owned(),
                    e["percent"].as_i64().unwrap_or(0),
                ))
            })
            .collect();
        routes.push((host(None), split));
        for e in &resolved {
            if let (Some(tag), Some(rev)) = (e.get("tag").and_then(Value::as_str), e["revisionName"].as_str()) {
                routes.push((host(Some(tag)), vec![(rev.to_owned(), 100)]));
            }
        }
    }
    Computed { status, routes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(traffic: Value) -> Value {
        json!({"metadata": {"name": "podinfo", "namespace": "test", "generation": 3}, "spec": {"traffic": traffic}})
    }

    fn revs() -> Vec<RevisionInfo> {
        vec![
            RevisionInfo {
                name: "podinfo-00001".into(),
                generation: 1,
                ready: true,
            },
            RevisionInfo {
                name: "podinfo-00002".into(),
                generation: 2,
                ready: false,
            },
        ]
    }

    #[test]
    fn empty_traffic_goes_to_the_latest_ready_revision() {
        let c = compute(&svc(json!([])), &revs(), "example.com", &json!({}));
        assert_eq!(c.status["latestCreatedRevisionName"], "podinfo-00002");
        assert_eq!(c.status["latestReadyRevisionName"], "podinfo-00001");
        assert_eq!(
            c.status["traffic"],
            json!([{"revisionName": "podinfo-00001", "percent": 100, "latestRevision": true}])
        );
        assert_eq!(c.status["observedGeneration"], 3);
        assert_eq!(
            c.routes,
            vec![("podinfo.test".to_owned(), vec![("podinfo-00001".to_owned(), 100)])]
        );
    }

    #[test]
    fn tags_get_urls_and_hosts() {
        let mut r = revs();
        r[1].ready = true;
        let c = compute(
            &svc(
                json!([{"revisionName": "podinfo-00001", "percent": 90, "tag": "primary"}, {"revisionName": "podinfo-00002", "percent": 10, "tag": "canary"}]),
            ),
            &r,
            "example.com",
            &json!({}),
        );
        assert_eq!(c.status["traffic"][1]["url"], "http://canary-podinfo.test.example.com");
        assert!(c.routes.contains(&(
            "canary-podinfo.test".to_owned(),
            vec![("podinfo-00002".to_owned(), 100)]
        )));
    }

    #[test]
    fn a_missing_revision_keeps_the_previous_traffic_and_reports_routes_not_ready() {
        let previous = json!({"traffic": [{"revisionName": "podinfo-00001", "percent": 100}]});
        let c = compute(
            &svc(json!([{"revisionName": "podinfo-00009", "percent": 100}])),
            &revs(),
            "example.com",
            &previous,
        );
        assert_eq!(c.status["traffic"], previous["traffic"]);
        let routes = c.status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "RoutesReady"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(routes["status"], "False");
        assert_eq!(routes["reason"], "RevisionMissing");
        assert!(c.routes.is_empty());
    }
}
