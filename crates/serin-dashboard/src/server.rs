//! The HTTP side: pages, their live streams (server-sent events, one message per change of
//! the store, carrying the page's new `<main>`), and the actions. Actions are off unless the
//! dashboard was started with them on; each one carries the page's CSRF token and writes the
//! same request annotation (or `spec.suspend`) the CLI writes.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response, Sse, sse::Event as SseEvent},
    routing::{get, post},
};
use futures::Stream;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde::Deserialize;
use serin_api::{Canary, requests::Request};
use subtle::ConstantTimeEq;

use crate::{
    history::History,
    list::{self, ListQuery},
    pages::{self, Actions},
    store::{Store, wall_clock},
};

/// The least time between two messages of one stream: many changes at once become one.
const STREAM_COALESCE: Duration = Duration::from_millis(250);

/// How the dashboard serves.
#[derive(Clone)]
pub struct Options {
    /// Whether the action buttons are shown and their requests accepted.
    pub allow_actions: bool,
    /// Who the requests are written as (`<who> via dashboard`).
    pub who: String,
    /// The host names the pages answer to besides IP addresses and `localhost`; `None`
    /// answers any (behind a Service or an Ingress). A page on another site cannot then reach
    /// a dashboard on loopback by pointing its own name at 127.0.0.1 (DNS rebinding), which
    /// would let it read the pages, and their CSRF token.
    pub allowed_hosts: Option<Vec<String>>,
}

/// Whether a request's `Host` header names this dashboard: an IP address, `localhost`, or one
/// of `allowed` (any port).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal, `[::1]:3100`.
        return rest
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

async fn check_host(State(app): State<App>, request: axum::extract::Request, next: Next) -> Response {
    if let Some(allowed) = &app.options.allowed_hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !host_allowed(host, allowed) {
            tracing::warn!(host, "request for another host name refused");
            return refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "this dashboard does not answer to the host name {host:?}: open it by IP address or localhost, or start it with --allow-host"
                ),
            );
        }
    }
    next.run(request).await
}

#[derive(Clone)]
struct App {
    store: Arc<Store>,
    client: Client,
    options: Options,
    csrf: Arc<str>,
}

fn csrf_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // Without randomness no token can be trusted: an empty one matches no form.
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The dashboard's routes over `store`, writing requests through `client`.
pub fn router(store: Arc<Store>, client: Client, options: Options) -> Router {
    let app = App {
        store,
        client,
        options,
        csrf: csrf_token().into(),
    };
    Router::new()
        .route("/", get(list))
        .route("/canaries/{namespace}/{name}", get(canary))
        .route("/canaries/{namespace}/{name}/requests", post(request))
        .route("/sse/", get(list_stream))
        .route("/sse/canaries/{namespace}/{name}", get(canary_stream))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(app.clone(), check_host))
        .with_state(app)
}

fn list_main(app: &App, query: &ListQuery) -> String {
    app.store.read(|all| list::list_main(all, query, wall_clock()))
}

fn canary_main(app: &App, namespace: &str, name: &str) -> String {
    let actions = app.options.allow_actions.then(|| Actions { csrf: &app.csrf });
    app.store.read(|all| {
        let key = (namespace.to_owned(), name.to_owned());
        let empty = History::default();
        pages::canary_main(all.get(&key).unwrap_or(&empty), wall_clock(), actions.as_ref())
    })
}

async fn list(State(app): State<App>, Query(query): Query<ListQuery>) -> Html<String> {
    let stream = format!("/sse/{}", query.query_string());
    Html(pages::page("Canaries", &stream, &list_main(&app, &query)))
}

/// A Canary's page; 404 once the watch has listed every Canary and this one is not among them
/// (the page still follows the stream, so a Canary created later appears in it).
async fn canary(State(app): State<App>, Path((namespace, name)): Path<(String, String)>) -> Response {
    let main = canary_main(&app, &namespace, &name);
    let segment = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let stream = format!("/sse/canaries/{}/{}", segment(&namespace), segment(&name));
    let page = Html(pages::page(&format!("{namespace}/{name}"), &stream, &main));
    let known = app
        .store
        .read(|all| all.get(&(namespace, name)).is_some_and(|h| h.canary.is_some()));
    if !known && app.store.synced() {
        return (StatusCode::NOT_FOUND, page).into_response();
    }
    page.into_response()
}

/// A stream of `render()` results: one now, then one after each change (coalesced) that
/// changes what the page shows (a change to another Canary sends nothing).
fn live(
    app: App,
    render: impl Fn(&App) -> String + Send + 'static,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let changes = app.store.subscribe();
    futures::stream::unfold(
        (app, changes, render, None::<String>),
        |(app, mut changes, render, sent)| async move {
            let main = loop {
                if sent.is_some() {
                    changes.changed().await.ok()?;
                    tokio::time::sleep(STREAM_COALESCE).await;
                    changes.borrow_and_update();
                }
                let main = render(&app);
                if sent.as_ref() != Some(&main) {
                    break main;
                }
            };
            let event = SseEvent::default().data(main.as_str());
            Some((Ok(event), (app, changes, render, Some(main))))
        },
    )
}

async fn list_stream(State(app): State<App>, Query(query): Query<ListQuery>) -> impl IntoResponse {
    Sse::new(live(app, move |app| list_main(app, &query))).keep_alive(Default::default())
}

async fn canary_stream(State(app): State<App>, Path((namespace, name)): Path<(String, String)>) -> impl IntoResponse {
    Sse::new(live(app, move |app| canary_main(app, &namespace, &name))).keep_alive(Default::default())
}

/// An action's form.
#[derive(Deserialize)]
struct RequestForm {
    csrf: String,
    request: String,
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

async fn request(
    State(app): State<App>,
    Path((namespace, name)): Path<(String, String)>,
    Form(form): Form<RequestForm>,
) -> Response {
    if !app.options.allow_actions {
        return refuse(
            StatusCode::FORBIDDEN,
            "actions are off: start the dashboard with --allow-actions",
        );
    }
    if app.csrf.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(app.csrf.as_bytes())) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or stale: reload the page",
        );
    }
    let api: Api<Canary> = Api::namespaced(app.client.clone(), &namespace);
    let what = format!("Canary {namespace}/{name}");
    let patch = match form.request.as_str() {
        "pause" | "resume" => serin_api::requests::suspend_patch(form.request == "pause"),
        word => {
            let Some(request) = Request::parse(word) else {
                return refuse(StatusCode::BAD_REQUEST, &format!("unknown request {word:?}"));
            };
            let current = match api.get(&name).await {
                Ok(c) => c,
                Err(e) => return refuse(StatusCode::BAD_GATEWAY, &format!("cannot read {what}: {e}")),
            };
            let phase = current.status.and_then(|s| s.phase).unwrap_or_default();
            if let Some(why) = request.refused_in(&phase) {
                return refuse(StatusCode::CONFLICT, &format!("{what} is {phase}: {why}"));
            }
            let who = format!("{} via dashboard", app.options.who);
            request.patch(wall_clock(), &who, None).1
        }
    };
    match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            tracing::info!(canary = %what, request = %form.request, "request written");
            Redirect::to(&format!("/canaries/{namespace}/{name}")).into_response()
        }
        Err(e) => refuse(
            StatusCode::BAD_GATEWAY,
            &format!("cannot write the request on {what}: {e}"),
        ),
    }
}
