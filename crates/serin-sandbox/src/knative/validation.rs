//! Knative's validation of `spec.traffic` (knative/serving `route_validation.go`), installed as an
//! admission hook on the emulator. It only works in-process (it needs the emulator's hooks).

use serde_json::Value;

use crate::kube_api::{AdmissionHook, KubeApi};

fn dns1035(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.starts_with(|c: char| c.is_ascii_lowercase())
        && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Validates a Service's `spec.traffic` as Knative's webhook does.
pub fn validate_traffic(service: &Value) -> Result<(), String> {
    let Some(traffic) = service.pointer("/spec/traffic").and_then(Value::as_array) else {
        return Ok(());
    };
    if traffic.is_empty() {
        return Ok(());
    }
    let mut sum = 0i64;
    let mut tags: Vec<(String, usize)> = Vec::new();
    for (i, t) in traffic.iter().enumerate() {
        let named = t
            .get("revisionName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let latest = t.get("latestRevision").and_then(Value::as_bool) == Some(true);
        match (named, latest) {
            (true, true) => {
                return Err(format!(
                    "expected exactly one, got both: spec.traffic[{i}].latestRevision, spec.traffic[{i}].revisionName"
                ));
            }
            (false, false) if t.get("latestRevision").is_none() => {
                return Err(format!(
                    "expected exactly one, got neither: spec.traffic[{i}].latestRevision, spec.traffic[{i}].revisionName"
                ));
            }
            _ => {}
        }
        let percent = t.get("percent").and_then(Value::as_i64).unwrap_or(0);
        if !(0..=100).contains(&percent) {
            return Err(format!("expected 0 <= {percent} <= 100: spec.traffic[{i}].percent"));
        }
        sum += percent;
        if let Some(tag) = t.get("tag").and_then(Value::as_str) {
            if !dns1035(tag) {
                return Err(format!("invalid value: {tag}: spec.traffic[{i}].tag"));
            }
            if let Some((_, first)) = tags.iter().find(|(t, _)| t == tag) {
                return Err(format!(
                    "Multiple definitions for \"{tag}\": spec.traffic[{first}].tag, spec.traffic[{i}].tag"
                ));
            }
            tags.push((tag.to_owned(), i));
        }
    }
    if sum != 100 {
        return Err(format!("Traffic targets sum to {sum}, want 100: spec.traffic"));
    }
    Ok(())
}

/// Installs the validation on `serving.knative.dev` Services of an in-process emulator.
pub fn install(api: &KubeApi) {
    let hook: AdmissionHook = std::sync::Arc::new(|_, service, _| validate_traffic(service));
    api.add_admission_hook(
        "serving.knative.dev",
        "services",
        "validation.webhook.serving.knative.dev",
        hook,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(traffic: Value) -> Value {
        json!({"spec": {"traffic": traffic}})
    }

    #[test]
    fn accepts_valid_splits_and_rejects_like_knative() {
        assert!(validate_traffic(&svc(json!([{"revisionName": "a", "percent": 90, "tag": "primary"}, {"revisionName": "b", "percent": 10, "tag": "canary"}]))).is_ok());
        assert!(validate_traffic(&svc(json!([{"latestRevision": true, "percent": 100}]))).is_ok());
        assert_eq!(
            validate_traffic(&svc(json!([{"revisionName": "a", "percent": 90}]))),
            Err("Traffic targets sum to 90, want 100: spec.traffic".into())
        );
        assert!(
            validate_traffic(&svc(
                json!([{"revisionName": "a", "latestRevision": true, "percent": 100}])
            ))
            .is_err_and(|e| e.contains("got both"))
        );
        assert!(
            validate_traffic(&svc(
                json!([{"revisionName": "a", "percent": 120}, {"revisionName": "b", "percent": -20}])
            ))
            .is_err_and(|e| e.contains("expected 0 <= 120 <= 100"))
        );
        assert!(validate_traffic(&svc(json!([{"revisionName": "a", "percent": 50, "tag": "x"}, {"revisionName": "b", "percent": 50, "tag": "x"}]))).is_err_and(|e| e.starts_with("Multiple definitions")));
        assert!(validate_traffic(&svc(json!([{"revisionName": "a", "percent": 100, "tag": "Bad_Tag"}]))).is_err());
    }
}
