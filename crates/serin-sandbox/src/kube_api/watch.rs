//! WATCH: events after a resourceVersion as newline-delimited JSON, bookmarks, timeouts, 410 for
//! versions no longer kept, and injected stream cuts.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::header,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::{
    Shared,
    error::ApiError,
    registry::ResourceDef,
    selectors::{FieldSelector, LabelSelector},
    store::Change,
};

/// What a watch asks for.
pub struct WatchRequest {
    /// The resource.
    pub def: ResourceDef,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Start after this version; `None`/`0`: send the current objects first.
    pub resource_version: Option<u64>,
    /// End the stream after this long.
    pub timeout: Option<Duration>,
    /// Send BOOKMARK events.
    pub bookmarks: bool,
    /// Wrap objects in one-row Tables (`kubectl get -w`).
    pub table: bool,
}

impl WatchRequest {
    fn matches(&self, change: &Change) -> bool {
        change.group == self.def.group
            && change.plural == self.def.plural
            && self.namespace.as_ref().is_none_or(|ns| *ns == change.namespace)
            && self.labels.matches(&change.object)
            && self.fields.matches(&change.object)
    }
}

fn event(req: &WatchRequest, kind: &str, object: &Value) -> Vec<u8> {
    if req.table {
        line(kind, &super::table::table(&req.def, std::slice::from_ref(object), None))
    } else {
        line(kind, object)
    }
}

fn line(kind: &str, object: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn gone(message: &str) -> Vec<u8> {
    line("ERROR", &ApiError::gone(message).status())
}

/// Starts streaming.
pub fn serve(shared: Arc<Shared>, req: WatchRequest) -> Response {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(256);
    let close_after = shared
        .faults
        .lock()
        .ok()
        .and_then(|f| f.faults.close_watches_after_ms)
        .map(Duration::from_millis);
    let force_gone = shared.faults.lock().map(|mut f| f.take_gone_watch()).unwrap_or(false);
    tokio::spawn(async move {
        let start = {
            let Ok(store) = shared.store.lock() else { return };
            let from = req.resource_version.unwrap_or(0);
            if force_gone || (from != 0 && from < store.oldest_rv()) {
                Err(format!("too old resource version: {from} ({})", store.oldest_rv()))
            } else {
                let initial: Vec<Value> = if from == 0 {
                    store.list_where(&req.def, req.namespace.as_deref(), |o| {
                        req.labels.matches(o) && req.fields.matches(o)
                    })
                } else {
                    Vec::new()
                };
                let start = if from == 0 { store.rv() } else { from };
                Ok((store.changes_since(start), store.changes.subscribe(), start, initial))
            }
        };
        let (backlog, mut live, start_rv, initial) = match start {
            Ok(s) => s,
            Err(message) => {
                let _ = tx.send(gone(&message)).await;
                return;
            }
        };
        for object in initial {
            if tx.send(event(&req, "ADDED", &object)).await.is_err() {
                return;
            }
        }
        let mut last = start_rv;
        for change in backlog.iter().filter(|c| req.matches(c)) {
            last = change.rv;
            if tx.send(event(&req, change.kind, &change.object)).await.is_err() {
                return;
            }
        }
        let bookmark = |rv: u64| {
            line(
                "BOOKMARK",
                &json!({"kind": req.def.kind, "apiVersion": req.def.api_version(), "metadata": {"resourceVersion": rv.to_string()}}),
            )
        };
        if req.bookmarks && tx.send(bookmark(last)).await.is_err() {
            return;
        }
        let end = tokio::time::Instant::now()
            + req
                .timeout
                .unwrap_or(Duration::from_secs(1800))
                .min(close_after.unwrap_or(Duration::MAX));
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => return,
                _ = ticker.tick(), if req.bookmarks => {
                    // A bookmark may only claim what this watch has delivered: advance to the
                    // store's resourceVersion only when no change is still queued for us (the
                    // store sends changes under its lock, so an empty queue under the lock
                    // means every change up to its resourceVersion has been seen).
                    let rv = shared
                        .store
                        .lock()
                        .map(|s| if live.is_empty() { s.rv() } else { last })
                        .unwrap_or(last);
                    last = last.max(rv);
                    if tx.send(bookmark(last)).await.is_err() { return; }
                }
                change = live.recv() => match change {
                    Ok(c) if c.rv > last && req.matches(&c) => {
                        last = c.rv;
                        if tx.send(event(&req, c.kind, &c.object)).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(gone("watch fell behind")).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/json;stream=watch")],
        Body::from_stream(stream),
    )
        .into_response()
}
