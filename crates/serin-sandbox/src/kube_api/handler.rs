//! The HTTP front: path parsing, verb dispatch, faults, admission, Table and list responses.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use serde_json::{Value, json};

use super::{
    Operation, Shared, discovery,
    error::ApiError,
    patch::{self, PatchType},
    registry::{self, ResourceDef},
    selectors::{FieldSelector, LabelSelector},
    store::{now_rfc3339, resource_name},
    table,
    watch::{self, WatchRequest},
};

/// Serves until aborted.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new().fallback(handle).with_state(shared);
    let _ = axum::serve(listener, app).await;
}

/// A parsed resource path.
struct Target {
    def: ResourceDef,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn defs(shared: &Shared) -> Vec<ResourceDef> {
    shared.registry.read().map(|r| r.clone()).unwrap_or_default()
}

fn find(shared: &Shared, group: &str, version: &str, plural: &str) -> Result<ResourceDef, ApiError> {
    defs(shared)
        .into_iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
        .ok_or_else(|| ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: None,
        })
}

fn parse_target(shared: &Shared, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let t = |def, namespace: Option<&str>, name: Option<&str>, status| Target {
        def,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        status,
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if group.is_empty() && matches!(*plural, "status" | "finalize") && tail.is_empty() =>
        {
            Ok(t(find(shared, "", "v1", "namespaces")?, None, Some(ns), true))
        }
        ["namespaces", ns, plural] => Ok(t(find(shared, group, version, plural)?, Some(ns), None, false)),
        ["namespaces", ns, plural, name] => Ok(t(find(shared, group, version, plural)?, Some(ns), Some(name), false)),
        ["namespaces", ns, plural, name, "status"] => {
            Ok(t(find(shared, group, version, plural)?, Some(ns), Some(name), true))
        }
        [plural] => Ok(t(find(shared, group, version, plural)?, None, None, false)),
        [plural, name] => Ok(t(find(shared, group, version, plural)?, None, Some(name), false)),
        [plural, name, "status"] => Ok(t(find(shared, group, version, plural)?, None, Some(name), true)),
        _ => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: None,
        }),
    }
}

fn verb(method: &Method, target: &Target, query: &HashMap<String, String>) -> &'static str {
    let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method.as_str(), target.name.is_some()) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    tracing::debug!(%method, %uri, content_type = ?headers.get(header::CONTENT_TYPE), accept = ?headers.get(header::ACCEPT), "request");
    loop {
        let (paused, latency) = shared
            .faults
            .lock()
            .map(|f| (f.faults.paused, f.latency()))
            .unwrap_or_default();
        if !paused {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = uri.path().trim_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let all = defs(&shared);
    let simple = |v: Value| Json(v).into_response();
    match segments.as_slice() {
        ["version"] => return simple(discovery::version()),
        ["_sandbox", "faults"] if method == Method::GET => {
            return simple(
                shared
                    .faults
                    .lock()
                    .map(|f| serde_json::to_value(&f.faults).unwrap_or_default())
                    .unwrap_or_default(),
            );
        }
        ["_sandbox", "faults"] => {
            return match serde_json::from_slice::<super::Faults>(&body) {
                Ok(faults) => {
                    if let Ok(mut f) = shared.faults.lock() {
                        f.faults = faults;
                    }
                    simple(json!({"ok": true}))
                }
                Err(e) => ApiError::bad_request(format!("invalid faults: {e}")).into_response(),
            };
        }
        ["_sandbox", "requests"] => {
            let counts: Vec<Value> = shared
                .faults
                .lock()
                .map(|f| f.requests.iter().map(|((verb, resource, agent), n)| json!({"verb": verb, "resource": resource, "userAgent": agent, "count": n})).collect())
                .unwrap_or_default();
            return simple(json!(counts));
        }
        ["healthz"] | ["readyz"] | ["livez"] => return "ok".into_response(),
        ["api"] => return simple(discovery::core_versions(&shared.addr.to_string())),
        ["apis"] => return simple(discovery::groups(&all)),
        ["openapi", "v3"] => return simple(discovery::openapi_v3_root(&all)),
        ["openapi", "v3", "api", v] => return openapi_doc(&shared, &all, "", v),
        ["openapi", "v3", "apis", g, v] => return openapi_doc(&shared, &all, g, v),
        ["openapi", ..] => {
            return ApiError {
                code: 404,
                reason: "NotFound",
                message: "OpenAPI schemas are not emulated".into(),
                details: None,
            }
            .into_response();
        }
        ["api", v] => {
            return discovery::resources(&all, "", v)
                .map(simple)
                .unwrap_or_else(|| ApiError::not_found("versions", v).into_response());
        }
        ["apis", g] => {
            return discovery::group(&all, g)
                .map(simple)
                .unwrap_or_else(|| ApiError::not_found("groups", g).into_response());
        }
        ["apis", g, v] => {
            return discovery::resources(&all, g, v)
                .map(simple)
                .unwrap_or_else(|| ApiError::not_found("groups", g).into_response());
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return ApiError {
                code: 404,
                reason: "NotFound",
                message: "the server could not find the requested resource".into(),
                details: None,
            }
            .into_response();
        }
    };
    let target = match parse_target(&shared, group, version, rest) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let verb = verb(&method, &target, &query);
    let fault = shared.faults.lock().ok().and_then(|mut f| {
        f.count(verb, &resource_name(&target.def), &agent);
        match verb {
            "create" | "update" | "patch" | "delete" | "deletecollection" => f.write_fault(),
            "get" | "list" => f.read_fault(),
            _ => None,
        }
    });
    if let Some(code) = fault {
        return ApiError::injected(code).into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let wants_table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    match dispatch(&shared, verb, &target, &query, &content_type, wants_table, &body) {
        Ok(Reply::Object(code, v)) => {
            (axum::http::StatusCode::from_u16(code).unwrap_or_default(), Json(v)).into_response()
        }
        Ok(Reply::Watch(req)) => watch::serve(shared.clone(), *req),
        Err(e) => e.into_response(),
    }
}

fn openapi_doc(shared: &Arc<Shared>, all: &[ResourceDef], group: &str, version: &str) -> Response {
    let crd_schema = |d: &ResourceDef| -> Option<Value> {
        if !d.custom {
            return None;
        }
        let crds = find(shared, "apiextensions.k8s.io", "v1", "customresourcedefinitions").ok()?;
        let crd = shared
            .store
            .lock()
            .ok()?
            .get(&crds, "", &format!("{}.{}", d.plural, d.group))
            .ok()?;
        crd.pointer("/spec/versions")?
            .as_array()?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(d.version.as_str()))?
            .pointer("/schema/openAPIV3Schema")
            .cloned()
    };
    match discovery::openapi_v3_group_version(all, group, version, crd_schema) {
        Some(doc) => Json(doc).into_response(),
        None => ApiError::not_found("openapi", &format!("{group}/{version}")).into_response(),
    }
}

enum Reply {
    Object(u16, Value),
    Watch(Box<WatchRequest>),
}

fn namespace_of(target: &Target) -> Result<String, ApiError> {
    match (&target.namespace, target.def.namespaced) {
        (Some(ns), true) => Ok(ns.clone()),
        (None, false) => Ok(String::new()),
        (Some(_), false) => Err(ApiError::not_found(
            &resource_name(&target.def),
            target.name.as_deref().unwrap_or_default(),
        )),
        (None, true) => Err(ApiError::bad_request("a namespace is required for this resource")),
    }
}

fn selectors(query: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.starts_with(b"k8s\x00") {
        return super::protobuf::decode(body);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body of the request is not JSON: {e}")))
}

fn dispatch(
    shared: &Arc<Shared>,
    verb: &str,
    target: &Target,
    query: &HashMap<String, String>,
    content_type: &str,
    wants_table: bool,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let def = &target.def;
    let name = target.name.clone().unwrap_or_default();
    match verb {
        "watch" => {
            let (labels, fields) = selectors(query)?;
            let resource_version = query.get("resourceVersion").and_then(|v| v.parse().ok());
            let timeout = query
                .get("timeoutSeconds")
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs);
            let bookmarks = query.get("allowWatchBookmarks").is_some_and(|v| v == "true");
            Ok(Reply::Watch(Box::new(WatchRequest {
                def: def.clone(),
                namespace: target.namespace.clone(),
                labels,
                fields,
                resource_version,
                timeout,
                bookmarks,
                table: wants_table,
            })))
        }
        "list" => list(shared, target, query, wants_table),
        "get" => {
            let ns = namespace_of(target)?;
            let obj = shared.store.lock().map_err(|_| poisoned())?.get(def, &ns, &name)?;
            Ok(Reply::Object(
                200,
                if wants_table {
                    table::table(def, &[obj], None)
                } else {
                    obj
                },
            ))
        }
        "create" => {
            let ns = namespace_of(target)?;
            Ok(Reply::Object(201, create_in(shared, def, &ns, body_json(body)?)?))
        }
        "update" => {
            let ns = namespace_of(target)?;
            let obj = body_json(body)?;
            Ok(Reply::Object(200, write(shared, def, &ns, &name, obj, target.status)?))
        }
        "patch" => {
            let ns = namespace_of(target)?;
            let kind = PatchType::from_content_type(content_type, def.custom)?;
            if kind == PatchType::Apply && query.get("fieldManager").is_none_or(String::is_empty) {
                return Err(ApiError::bad_request(
                    "PATCH with application/apply-patch+yaml requires a fieldManager",
                ));
            }
            let existing = shared.store.lock().map_err(|_| poisoned())?.get(def, &ns, &name);
            let mut obj = match (existing, kind) {
                (Ok(o), _) => o,
                (Err(_), PatchType::Apply) => {
                    let mut created = json!({"metadata": {"name": name}});
                    patch::apply(kind, &mut created, body)?;
                    return Ok(Reply::Object(201, create_in(shared, def, &ns, created)?));
                }
                (Err(e), _) => return Err(e),
            };
            patch::apply(kind, &mut obj, body)?;
            Ok(Reply::Object(200, write(shared, def, &ns, &name, obj, target.status)?))
        }
        "delete" => {
            let ns = namespace_of(target)?;
            if def.plural == "namespaces" {
                delete_namespace_contents(shared, &name)?;
            }
            let obj = shared.store.lock().map_err(|_| poisoned())?.delete(def, &ns, &name)?;
            if def.plural == "customresourcedefinitions" {
                unregister_crd(shared, &obj);
            }
            Ok(Reply::Object(200, obj))
        }
        "deletecollection" => {
            let (labels, fields) = selectors(query)?;
            let mut store = shared.store.lock().map_err(|_| poisoned())?;
            let items: Vec<Value> = store.list_where(def, target.namespace.as_deref(), |o| {
                labels.matches(o) && fields.matches(o)
            });
            for o in &items {
                let ns = o
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let n = o
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let _ = store.delete(def, &ns, &n);
            }
            Ok(Reply::Object(
                200,
                json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn poisoned() -> ApiError {
    ApiError {
        code: 500,
        reason: "InternalError",
        message: "store lock poisoned".into(),
        details: None,
    }
}

fn list(
    shared: &Arc<Shared>,
    target: &Target,
    query: &HashMap<String, String>,
    wants_table: bool,
) -> Result<Reply, ApiError> {
    let def = &target.def;
    let (labels, fields) = selectors(query)?;
    let store = shared.store.lock().map_err(|_| poisoned())?;
    let rv = store.rv().to_string();
    let mut items: Vec<Value> = store.list_where(def, target.namespace.as_deref(), |o| {
        labels.matches(o) && fields.matches(o)
    });
    drop(store);
    let key = |o: &Value| {
        format!(
            "{}/{}",
            o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
        )
    };
    if let Some(token) = query.get("continue").filter(|t| !t.is_empty()) {
        let after = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
        items.retain(|o| key(o) > after);
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(limit) = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        && items.len() > limit
    {
        items.truncate(limit);
        if let Some(last) = items.last() {
            metadata["continue"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(last)));
            metadata["remainingItemCount"] = json!(0);
        }
    }
    if wants_table {
        return Ok(Reply::Object(200, table::table(def, &items, Some(rv))));
    }
    Ok(Reply::Object(
        200,
        json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": metadata, "items": items}),
    ))
}

fn admit(shared: &Shared, def: &ResourceDef, op: Operation, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let hooks = shared
        .admission
        .read()
        .map(|h| {
            h.get(&(def.group.clone(), def.plural.clone()))
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    for (name, hook) in hooks {
        hook(op, new, old)
            .map_err(|m| ApiError::bad_request(format!("admission webhook \"{name}\" denied the request: {m}")))?;
    }
    Ok(())
}

/// Prunes, defaults and validates a custom resource against its CRD schema, as the API server
/// does before storing it.
fn conform(def: &ResourceDef, name: &str, obj: &mut Value) -> Result<(), ApiError> {
    let Some(schema) = &def.schema else {
        return Ok(());
    };
    let causes = super::schema::admit(schema, obj);
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_owned();
    Err(super::schema::invalid(&def.kind, &def.group, &name, &causes))
}

fn write(
    shared: &Arc<Shared>,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    mut obj: Value,
    status: bool,
) -> Result<Value, ApiError> {
    conform(def, name, &mut obj)?;
    let old = shared.store.lock().map_err(|_| poisoned())?.get(def, ns, name)?;
    if !status {
        // Hooks see main-resource writes only, as Knative's webhook rules do.
        admit(shared, def, Operation::Update, &obj, Some(&old))?;
    }
    let updated = shared
        .store
        .lock()
        .map_err(|_| poisoned())?
        .update(def, ns, name, obj, status)?;
    if def.plural == "customresourcedefinitions" && !status {
        register_crd(shared, &updated)?;
    }
    Ok(updated)
}

/// Creates an object (and, for a CRD, serves its resource), in the first version served.
pub fn create_object(shared: &Arc<Shared>, group: &str, plural: &str, ns: &str, obj: Value) -> Result<Value, ApiError> {
    let def = defs(shared)
        .into_iter()
        .find(|d| d.group == group && d.plural == plural)
        .ok_or_else(|| ApiError::not_found("resources", plural))?;
    create_in(shared, &def, ns, obj)
}

fn create_in(shared: &Arc<Shared>, def: &ResourceDef, ns: &str, mut obj: Value) -> Result<Value, ApiError> {
    conform(def, "", &mut obj)?;
    if def.plural == "customresourcedefinitions" {
        registry::from_crd(&obj).map_err(|e| ApiError::invalid(format!("CustomResourceDefinition is invalid: {e}")))?;
    }
    admit(shared, def, Operation::Create, &obj, None)?;
    let created = shared.store.lock().map_err(|_| poisoned())?.create(def, ns, obj)?;
    if def.plural == "customresourcedefinitions" {
        return register_crd(shared, &created);
    }
    Ok(created)
}

fn register_crd(shared: &Arc<Shared>, crd: &Value) -> Result<Value, ApiError> {
    let new_defs = registry::from_crd(crd).map_err(ApiError::invalid)?;
    if let Ok(mut reg) = shared.registry.write() {
        reg.retain(|d| !new_defs.iter().any(|n| n.group == d.group && n.plural == d.plural));
        reg.extend(new_defs);
    }
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut with_status = crd.clone();
    let now = now_rfc3339();
    with_status["status"] = json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_default(),
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| vs.iter().filter_map(|v| v.get("name").cloned()).collect::<Vec<_>>()).unwrap_or_default(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    let def = defs(shared)
        .into_iter()
        .find(|d| d.plural == "customresourcedefinitions")
        .ok_or_else(poisoned)?;
    shared
        .store
        .lock()
        .map_err(|_| poisoned())?
        .update(&def, "", &name, with_status, true)
}

fn unregister_crd(shared: &Arc<Shared>, crd: &Value) {
    if let Ok(gone) = registry::from_crd(crd)
        && let Ok(mut reg) = shared.registry.write()
    {
        reg.retain(|d| !gone.iter().any(|g| g.group == d.group && g.plural == d.plural));
    }
}

fn delete_namespace_contents(shared: &Arc<Shared>, namespace: &str) -> Result<(), ApiError> {
    let all = defs(shared);
    let mut store = shared.store.lock().map_err(|_| poisoned())?;
    for (group, plural, name) in store.keys_in_namespace(namespace) {
        if let Some(def) = all.iter().find(|d| d.group == group && d.plural == plural) {
            let _ = store.delete(def, namespace, &name);
        }
    }
    Ok(())
}
