//! The dashboard's HTTP side over real sockets, without a cluster: which host names it answers,
//! what a Canary's page answers before and after the watch has listed every Canary, how a bad
//! query and a request with actions off are refused. The kube client points at an address
//! where nothing listens: none of these requests reaches the API.

use std::sync::Arc;

use serin_dashboard::{Options, Store, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Served {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(store: Arc<Store>, allowed_hosts: Option<Vec<String>>) -> Served {
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
    let client = kube::Client::try_from(config).expect("a client (it never connects here)");
    let options = Options {
        allow_actions: false,
        who: "test".into(),
        allowed_hosts,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let port = listener.local_addr().expect("address").port();
    let app = router(store, client, options);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served { port, task }
}

/// Sends one HTTP/1.1 request and returns its status code and body.
async fn send(port: u16, method: &str, path: &str, host: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn other_host_names_are_refused_unless_allowed() {
    let store = Arc::new(Store::default());
    let local = serve(store.clone(), Some(vec!["dash.example.org".into()])).await;
    let port = local.port;
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "dash.example.org".into(),
        format!("DASH.example.org:{port}"),
    ] {
        let (status, body) = send(port, "GET", "/", &host, "").await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    for host in [
        "attacker.example.com",
        "attacker.example.com:3100",
        "127.0.0.1.nip.io",
        "",
    ] {
        let (status, body) = send(port, "GET", "/", host, "").await;
        assert_eq!(status, 403, "{host:?}: {body}");
        assert!(body.contains("--allow-host"), "{body}");
    }
    let anywhere = serve(store, None).await;
    let (status, _) = send(anywhere.port, "GET", "/", "serin.example.com", "").await;
    assert_eq!(status, 200, "without a list, any host name");
}

#[tokio::test]
async fn a_missing_canary_is_404_only_once_the_watch_has_listed_them_all() {
    let store = Arc::new(Store::default());
    let served = serve(store.clone(), Some(Vec::new())).await;
    let host = format!("127.0.0.1:{}", served.port);
    let (status, body) = send(served.port, "GET", "/canaries/test/podinfo", &host, "").await;
    assert_eq!(status, 200, "before the first listing it may still come: {body}");
    store.begin_list();
    store.end_list();
    let (status, body) = send(served.port, "GET", "/canaries/test/podinfo", &host, "").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No such Canary"), "{body}");
}

#[tokio::test]
async fn bad_queries_and_requests_with_actions_off_are_refused() {
    let served = serve(Arc::new(Store::default()), Some(Vec::new())).await;
    let host = format!("127.0.0.1:{}", served.port);
    let (status, body) = send(served.port, "GET", "/?page=two", &host, "").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(served.port, "GET", "/?phase=Failed&page=2", &host, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#"new EventSource("/sse/?phase=Failed\u0026page=2")"#),
        "{body}"
    );
    let (status, body) = send(
        served.port,
        "POST",
        "/canaries/test/podinfo/requests",
        &host,
        "csrf=x&request=abort",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-actions"), "{body}");
}
