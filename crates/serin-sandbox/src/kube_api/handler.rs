//! The HTTP front: routing (discovery, OpenAPI, health, the sandbox's control endpoints, resource
//! paths), the typed verb of a request, latency and injected faults; the verbs themselves are in
//! `verbs.rs`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{
    Shared, control,
    crds::openapi_doc,
    discovery,
    error::ApiError,
    registry::ResourceDef,
    store::resource_name,
    verbs::{Reply, dispatch},
    watch,
};

/// Serves until aborted.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new().fallback(handle).with_state(shared);
    let _ = axum::serve(listener, app).await;
}

/// A parsed resource path.
pub(super) struct Target {
    pub(super) def: ResourceDef,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) status: bool,
}

/// The Kubernetes verb of a request on a resource path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Watch,
    Get,
    List,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// The verb from the method, whether a name is given and `?watch=`.
    fn of(method: &Method, named: bool, query: &HashMap<String, String>) -> Option<Verb> {
        let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
        Some(match (method.as_str(), named) {
            ("GET", _) if watching => Verb::Watch,
            ("GET", true) => Verb::Get,
            ("GET", false) => Verb::List,
            ("POST", _) => Verb::Create,
            ("PUT", _) => Verb::Update,
            ("PATCH", _) => Verb::Patch,
            ("DELETE", true) => Verb::Delete,
            ("DELETE", false) => Verb::DeleteCollection,
            _ => return None,
        })
    }

    /// The name RBAC and audit logs use.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Verb::Watch => "watch",
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    fn writes(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
        )
    }
}

pub(super) fn defs(shared: &Shared) -> Vec<ResourceDef> {
    shared.registry.read().map(|r| r.clone()).unwrap_or_default()
}

pub(super) fn find(shared: &Shared, group: &str, version: &str, plural: &str) -> Result<ResourceDef, ApiError> {
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
        ["_sandbox", ..] => return control::handle(&shared, &method, &segments, &body),
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
    let Some(verb) = Verb::of(&method, target.name.is_some(), &query) else {
        return ApiError::method_not_allowed().into_response();
    };
    let fault = shared.faults.lock().ok().and_then(|mut f| {
        f.count(verb.as_str(), &resource_name(&target.def), &agent);
        match verb {
            v if v.writes() => f.write_fault(),
            Verb::Get | Verb::List => f.read_fault(),
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
