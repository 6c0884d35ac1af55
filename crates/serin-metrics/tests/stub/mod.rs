//! A local HTTP stub for provider tests: records each request exactly (method, path, query,
//! headers, body) and replays canned answers in turn.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Request, State},
    http::StatusCode,
    response::IntoResponse,
};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Default)]
pub struct StubState {
    pub seen: Mutex<Vec<Seen>>,
    /// (status, body, delay) answered in turn; the last one repeats.
    pub answers: Mutex<Vec<(u16, String, Duration)>>,
}

pub struct Stub {
    pub url: String,
    pub state: Arc<StubState>,
}

impl Stub {
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }
}

async fn answer(State(state): State<Arc<StubState>>, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let query = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    state.seen.lock().expect("seen").push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, text, delay) = {
        let mut answers = state.answers.lock().expect("answers");
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        }
    };
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), text)
}

pub async fn stub(answers: &[(u16, &str)]) -> Stub {
    serin_metrics::install_crypto_provider();
    let state = Arc::new(StubState {
        seen: Mutex::new(Vec::new()),
        answers: Mutex::new(
            answers
                .iter()
                .map(|(s, b)| (*s, (*b).to_owned(), Duration::ZERO))
                .collect(),
        ),
    });
    let app = Router::new().fallback(answer).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stub { url, state }
}
