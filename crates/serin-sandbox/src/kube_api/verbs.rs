//! The verbs of the API on a resource path: get, list, watch, create, update, patch, delete and
//! deletecollection, with admission hooks and custom resources conformed to their CRD schema.

use std::{collections::HashMap, sync::Arc, time::Duration};

use base64::Engine;
use serde_json::{Value, json};

use super::{
    Operation, Shared,
    crds::{register_crd, unregister_crd},
    error::ApiError,
    handler::{Target, Verb, defs},
    patch::{self, PatchType},
    registry::{self, ResourceDef},
    selectors::{FieldSelector, LabelSelector},
    store::resource_name,
    table,
    watch::WatchRequest,
};

/// What a verb answers: an object with its status code, or a watch to stream.
pub(super) enum Reply {
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

/// Runs `verb` on `target`.
pub(super) fn dispatch(
    shared: &Arc<Shared>,
    verb: Verb,
    target: &Target,
    query: &HashMap<String, String>,
    content_type: &str,
    wants_table: bool,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let def = &target.def;
    let name = target.name.clone().unwrap_or_default();
    match verb {
        Verb::Watch => {
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
        Verb::List => list(shared, target, query, wants_table),
        Verb::Get => {
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
        Verb::Create => {
            let ns = namespace_of(target)?;
            Ok(Reply::Object(201, create_in(shared, def, &ns, body_json(body)?)?))
        }
        Verb::Update => {
            let ns = namespace_of(target)?;
            let obj = body_json(body)?;
            Ok(Reply::Object(200, write(shared, def, &ns, &name, obj, target.status)?))
        }
        Verb::Patch => {
            let ns = namespace_of(target)?;
            let kind = PatchType::from_content_type(content_type, def.custom)?;
            if kind == PatchType::Apply && query.get("fieldManager").is_none_or(String::is_empty) {
                return Err(ApiError::bad_request(
                    "PATCH with application/apply-patch+yaml requires a fieldManager",
                ));
            }
            // Like the API server's guaranteed update: a patch that does not name a
            // resourceVersion applies to the latest object, so a concurrent write means
            // re-reading and applying it again, not a 409; one that names a stale version
            // conflicts.
            let mut attempts = 0;
            loop {
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
                let read_version = obj.pointer("/metadata/resourceVersion").cloned();
                patch::apply(kind, &mut obj, body)?;
                let names_a_version = obj.pointer("/metadata/resourceVersion").cloned() != read_version;
                match write(shared, def, &ns, &name, obj, target.status) {
                    Err(e) if e.code == 409 && e.reason == "Conflict" && !names_a_version && attempts < 10 => {
                        attempts += 1;
                    }
                    result => return Ok(Reply::Object(200, result?)),
                }
            }
        }
        Verb::Delete => {
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
        Verb::DeleteCollection => {
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
    }
}

pub(super) fn poisoned() -> ApiError {
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
    // A continued list reports the resourceVersion of its first page, as the API server does
    // (it serves every page from that snapshot): a watch started from the last page then
    // replays every change made while the pages were read. Each page here is read from the
    // current store, so it may be newer than that version, never older; the replay brings
    // the client to the current state either way. A token older than the change log is 410.
    let continued = match query.get("continue").filter(|t| !t.is_empty()) {
        Some(token) => Some(parse_continue(token)?),
        None => None,
    };
    let store = shared.store.lock().map_err(|_| poisoned())?;
    if let Some((snapshot, _)) = &continued
        && *snapshot < store.oldest_rv()
    {
        return Err(ApiError::gone(format!(
            "the continue token is too old ({snapshot}): list again"
        )));
    }
    let snapshot = continued.as_ref().map_or(store.rv(), |(rv, _)| *rv);
    let rv = snapshot.to_string();
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
    if let Some((_, after)) = &continued {
        items.retain(|o| key(o) > *after);
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
            let token = format!("{snapshot}\n{}", key(last));
            metadata["continue"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token));
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

/// A continue token: the first page's resourceVersion and the last key served.
fn parse_continue(token: &str) -> Result<(u64, String), ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|text| {
            let (rv, key) = text.split_once('\n')?;
            Some((rv.parse().ok()?, key.to_owned()))
        })
        .ok_or_else(|| ApiError::bad_request("invalid continue token"))
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
