//! The traffic router: a reverse proxy standing in for Kourier.
//!
//! It routes by `Host` (`podinfo.test`, tag hosts such as `canary-podinfo.test`) to revision
//! backends by the configured percentages (smooth weighted round-robin, so shares are exact),
//! and exports Envoy's metric names on its admin port at `/stats/prometheus`, so Flagger's
//! Kourier queries run verbatim:
//! `envoy_cluster_upstream_rq{envoy_cluster_name="NAMESPACE/REVISION",envoy_response_code="200"}`
//! and `envoy_cluster_upstream_rq_time_bucket` in milliseconds.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tokio::task::JoinHandle;

/// A revision backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Namespace of the revision.
    pub namespace: String,
    /// Revision name.
    pub revision: String,
    /// Where its demo app listens.
    pub addr: SocketAddr,
}

/// One host's targets with their weights and the round-robin state.
#[derive(Debug, Default)]
struct HostRoute {
    targets: Vec<(Backend, i64)>,
    current: Vec<i64>,
}

impl HostRoute {
    /// Smooth weighted round-robin (as nginx does): exact shares, no randomness.
    fn pick(&mut self) -> Option<Backend> {
        let total: i64 = self.targets.iter().map(|(_, w)| *w).sum();
        if total <= 0 {
            return None;
        }
        let mut best = 0;
        for (i, (_, w)) in self.targets.iter().enumerate() {
            self.current[i] += w;
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        Some(self.targets[best].0.clone())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    envoy_cluster_name: String,
    envoy_response_code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    envoy_cluster_name: String,
}

struct Shared {
    routes: Mutex<HashMap<String, HostRoute>>,
    client: Client<HttpConnector, Body>,
    requests: Family<RequestLabels, Gauge>,
    latency: Family<ClusterLabels, Histogram>,
    registry: Registry,
}

/// A running router; stops when dropped.
pub struct TrafficRouter {
    /// The proxy address (what `*.test` hosts resolve to).
    pub addr: SocketAddr,
    /// The admin address (`/stats/prometheus`).
    pub admin_addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TrafficRouter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Envoy's default latency buckets, in milliseconds.
const BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
    600000.0, 1800000.0, 3600000.0,
];

impl TrafficRouter {
    /// Starts the proxy and its admin port on free loopback ports.
    pub async fn start() -> std::io::Result<TrafficRouter> {
        Self::start_on(0, 0).await
    }

    /// Starts on the given loopback ports (0 = free ports).
    pub async fn start_on(port: u16, admin_port: u16) -> std::io::Result<TrafficRouter> {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Gauge>::default();
        let latency = Family::<ClusterLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS_MS));
        registry.register(
            "envoy_cluster_upstream_rq",
            "Requests per upstream cluster and status",
            requests.clone(),
        );
        registry.register(
            "envoy_cluster_upstream_rq_time",
            "Upstream request time in milliseconds",
            latency.clone(),
        );
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            requests,
            latency,
            registry,
        });
        let proxy = Router::new().fallback(proxy).with_state(shared.clone());
        let admin = Router::new()
            .route("/stats/prometheus", get(stats))
            .with_state(shared.clone());
        let proxy_listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let admin_listener = tokio::net::TcpListener::bind(("127.0.0.1", admin_port)).await?;
        let addr = proxy_listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let tasks = vec![
            tokio::spawn(async move {
                let _ = axum::serve(proxy_listener, proxy).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(admin_listener, admin).await;
            }),
        ];
        Ok(TrafficRouter {
            addr,
            admin_addr,
            shared,
            tasks,
        })
    }

    /// Routes `host` to these backends by percent (the percents need not sum to 100).
    pub fn set_host(&self, host: &str, targets: Vec<(Backend, u8)>) {
        let targets: Vec<(Backend, i64)> = targets.into_iter().map(|(b, w)| (b, i64::from(w))).collect();
        let current = vec![0; targets.len()];
        {
            let mut routes = self
                .shared
                .routes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            routes.insert(host.to_owned(), HostRoute { targets, current });
        }
    }

    /// Routes `host` to one fixed address (e.g. `flagger-loadtester.test` to the loadtester).
    pub fn set_static(&self, host: &str, addr: SocketAddr) {
        let name = host.split('.').next().unwrap_or(host).to_owned();
        self.set_host(
            host,
            vec![(
                Backend {
                    namespace: "sandbox".into(),
                    revision: name,
                    addr,
                },
                100,
            )],
        );
    }

    /// Stops routing `host`.
    pub fn remove_host(&self, host: &str) {
        {
            let mut routes = self
                .shared
                .routes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            routes.remove(host);
        }
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &shared.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn proxy(State(shared): State<Arc<Shared>>, mut request: Request) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let backend = shared
        .routes
        .lock()
        .ok()
        .and_then(|mut routes| routes.get_mut(&host).and_then(HostRoute::pick));
    let Some(backend) = backend else {
        return (StatusCode::NOT_FOUND, format!("no route for host {host:?}")).into_response();
    };
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let Ok(uri) = format!("http://{}{path}", backend.addr).parse::<Uri>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    *request.uri_mut() = uri;
    let cluster = format!("{}/{}", backend.namespace, backend.revision);
    let started = Instant::now();
    let (status, response) = match shared.client.request(request).await {
        Ok(r) => {
            let status = r.status();
            (status, r.map(Body::new))
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            (StatusCode::SERVICE_UNAVAILABLE, format!("upstream {cluster}: {e}")).into_response(),
        ),
    };
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    shared
        .latency
        .get_or_create(&ClusterLabels {
            envoy_cluster_name: cluster.clone(),
        })
        .observe(millis);
    shared
        .requests
        .get_or_create(&RequestLabels {
            envoy_cluster_name: cluster,
            envoy_response_code: status.as_u16().to_string(),
        })
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(rev: &str) -> Backend {
        Backend {
            namespace: "test".into(),
            revision: rev.into(),
            addr: "127.0.0.1:1".parse().expect("addr"),
        }
    }

    #[test]
    fn weighted_round_robin_gives_exact_shares() {
        let mut route = HostRoute {
            targets: vec![(backend("a"), 90), (backend("b"), 10)],
            current: vec![0, 0],
        };
        let picks: Vec<String> = (0..100).filter_map(|_| route.pick()).map(|b| b.revision).collect();
        assert_eq!(picks.iter().filter(|r| *r == "b").count(), 10);
        let mut zero = HostRoute {
            targets: vec![(backend("a"), 100), (backend("b"), 0)],
            current: vec![0, 0],
        };
        assert!((0..50).filter_map(|_| zero.pick()).all(|b| b.revision == "a"));
    }
}
