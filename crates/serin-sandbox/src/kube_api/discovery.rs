//! Discovery documents (`/version`, `/api`, `/apis`, resource lists) and minimal OpenAPI.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::registry::ResourceDef;

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-serin-sandbox", "gitCommit": "sandbox",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "n/a",
        "compiler": "rustc", "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
}

/// `/apis`.
pub fn groups(defs: &[ResourceDef]) -> Value {
    let mut by_group: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        let versions = by_group.entry(&d.group).or_default();
        if !versions.contains(&d.version.as_str()) {
            versions.push(&d.version);
        }
    }
    let groups: Vec<Value> = by_group
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions.clone(), "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(defs: &[ResourceDef], name: &str) -> Option<Value> {
    let all = groups(defs);
    all["groups"].as_array()?.iter().find(|g| g["name"] == name).map(|g| {
        let mut g = g.clone();
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resources(defs: &[ResourceDef], group: &str, version: &str) -> Option<Value> {
    let list: Vec<Value> = defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .flat_map(ResourceDef::discovery)
        .collect();
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
}

/// `/openapi/v3`: the path index, one entry per group version (no schemas: clients that need
/// them fall back to `--validate=false` semantics).
pub fn openapi_v3_root(defs: &[ResourceDef]) -> Value {
    let mut paths = serde_json::Map::new();
    for d in defs {
        let key = if d.group.is_empty() {
            format!("api/{}", d.version)
        } else {
            format!("apis/{}/{}", d.group, d.version)
        };
        paths.insert(key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}")}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`: a schema per kind (CRD schemas as
/// declared, built-ins permissive) and the write paths, whose `fieldValidation` parameter tells
/// kubectl to let the server validate.
pub fn openapi_v3_group_version(
    defs: &[ResourceDef],
    group: &str,
    version: &str,
    crd_schema: impl Fn(&ResourceDef) -> Option<Value>,
) -> Option<Value> {
    let members: Vec<&ResourceDef> = defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for d in members {
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let mut schema =
            crd_schema(d).unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.entry("apiVersion").or_insert(json!({"type": "string"}));
            props.entry("kind").or_insert(json!({"type": "string"}));
            props.insert(
                "metadata".into(),
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        }
        let group_name = if d.group.is_empty() { "core" } else { d.group.as_str() };
        schemas.insert(format!("{group_name}.{}.{}", d.version, d.kind), schema);
        let field_validation =
            json!([{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}]);
        let op = |verb: &str| json!({"operationId": format!("{verb}{}", d.kind), "x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk, "parameters": field_validation});
        let collection = if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("{prefix}/{}", d.plural)
        };
        paths.insert(collection.clone(), json!({"post": op("post")}));
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"put": op("put"), "patch": op("patch")}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
