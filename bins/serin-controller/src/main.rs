//! `serin-controller`: wiring only. Flags and environment variables, logging, the Kubernetes
//! client (in-cluster, kubeconfig, or `--kube-server`), one rustls provider (ring), leader
//! election, the `/metrics`, `/healthz`, `/readyz` server, the optional read-only dashboard,
//! and graceful shutdown on SIGTERM.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use serin_alerts::{DispatcherConfig, Target};
use serin_knative::{KnativeCache, KnativeRouter};
use serin_metrics::{PrometheusConfig, PrometheusProvider, QuerySet};
use serin_reconciler::{
    Config, Context,
    alerting::Alerting,
    leader, serve,
    shard::{ShardConfig, lease_name, parse_shard},
};
use serin_webhook::{EventSink, HttpWebhookClient};

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Parser)]
#[command(
    name = "serin-controller",
    version,
    about = "Progressive delivery for Knative Services"
)]
struct Cli {
    /// Prometheus URL for built-in metrics and inline queries.
    #[arg(long, env = "SERIN_METRICS_SERVER", default_value = "http://prometheus:9090")]
    metrics_server: String,
    /// PEM bundle of the CA that signed `--metrics-server`'s certificate (besides the system's).
    #[arg(long, env = "SERIN_METRICS_SERVER_CA")]
    metrics_server_ca: Option<std::path::PathBuf>,
    /// Slack incoming webhook for Canaries without `analysis.alerts` (Flagger's global notifier).
    #[arg(long, env = "SLACK_URL")]
    slack_url: Option<String>,
    /// Bearer token sent to the Slack URL.
    #[arg(long, env = "SLACK_TOKEN")]
    slack_token: Option<String>,
    /// Proxy for the Slack URL.
    #[arg(long, env = "SLACK_PROXY_URL")]
    slack_proxy_url: Option<String>,
    /// Slack user name.
    #[arg(long, env = "SLACK_USER", default_value = "flagger")]
    slack_user: String,
    /// Slack channel (default `general`; Flagger sends nothing without one).
    #[arg(long, env = "SLACK_CHANNEL")]
    slack_channel: Option<String>,
    /// Microsoft Teams webhook (connector or Workflows) instead of Slack.
    #[arg(long, env = "MSTEAMS_URL")]
    msteams_url: Option<String>,
    /// Proxy for the Teams URL.
    #[arg(long, env = "MSTEAMS_PROXY_URL")]
    msteams_proxy_url: Option<String>,
    /// Cluster name added to every alert.
    #[arg(long, env = "CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "SERIN_NAMESPACE")]
    namespace: Option<String>,
    /// Built-in query set: kourier, queue-proxy-opencensus, queue-proxy-otel.
    #[arg(long, env = "SERIN_KNATIVE_METRICS", default_value = "kourier")]
    knative_metrics: QuerySet,
    /// Judge of Canaries without the judge.serin.dev/mode annotation: flagger, shadow or sequential.
    #[arg(long, env = "SERIN_DEFAULT_JUDGE", default_value = "flagger", value_parser = parse_judge)]
    default_judge: serin_core::JudgeMode,
    /// URL receiving every event (unless a Canary has `type: event` hooks).
    #[arg(long, env = "SERIN_EVENT_WEBHOOK")]
    event_webhook: Option<String>,
    /// Only the holder of the Lease reconciles.
    #[arg(long, env = "SERIN_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "serin-system")]
    lease_namespace: String,
    /// This replica's identity in the Lease (default: POD_NAME, HOSTNAME, or serin-PID).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Lease duration.
    #[arg(long, env = "SERIN_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    lease_duration: Duration,
    /// Log level filter (`info`, `serin_reconciler=debug`, …).
    #[arg(long, env = "SERIN_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "SERIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SERIN_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Use this API server URL instead of in-cluster or kubeconfig settings (sandbox, tests).
    #[arg(long, env = "SERIN_KUBE_SERVER")]
    kube_server: Option<String>,
    /// Connect to ADDR for webhook host HOST (`flagger-loadtester.test=127.0.0.1:8080`), for
    /// sandboxes without DNS.
    #[arg(long, env = "SERIN_RESOLVE", value_delimiter = ',', value_parser = parse_resolve)]
    resolve: Vec<(String, SocketAddr)>,
    /// Reconcile stable Canaries at least this often.
    #[arg(long, env = "SERIN_RESYNC", default_value = "5m", value_parser = humantime::parse_duration)]
    resync: Duration,
    /// Canaries reconciled at once (0: no bound). Bounds memory and API connections when
    /// thousands act together; a reconcile waiting on a slow webhook holds its slot until the
    /// hook's timeout, so only this many hanging hooks at once can delay other Canaries.
    #[arg(long, env = "SERIN_MAX_CONCURRENT_RECONCILES", default_value_t = 256)]
    max_concurrent_reconciles: u16,
    /// Tag the traffic targets `primary` and `canary` (each tag adds a host name to the Route,
    /// and a certificate under auto-TLS). `--traffic-tags=false` names the revisions only; a
    /// Canary's `serin.dev/traffic-tags: "true"|"false"` annotation overrides this.
    #[arg(long, env = "SERIN_TRAFFIC_TAGS", default_value_t = true, action = clap::ArgAction::Set)]
    traffic_tags: bool,
    /// Act only on the Canaries whose `namespace/name` hashes (FNV-1a) to N modulo M. Each shard
    /// holds its own Lease (leader election is on), and records itself in `status.shard`.
    #[arg(long, env = "SERIN_SHARD", value_parser = parse_shard)]
    shard: Option<(u32, u32)>,
    /// Act only on the Canaries matching this label selector (`team=payments`); a shard of its
    /// own, with its own Lease, alone or with --shard.
    #[arg(long, env = "SERIN_SELECTOR")]
    selector: Option<String>,
    /// Also serve the rollout dashboard (read-only, the pages of `serin dashboard`) on this
    /// address, for teams that want one shared URL. Off by default.
    #[arg(long, env = "SERIN_DASHBOARD_LISTEN")]
    dashboard_listen: Option<SocketAddr>,
}

fn parse_resolve(text: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not HOST=ADDR"))?;
    Ok((host.to_owned(), addr.parse().map_err(|e| format!("{addr:?}: {e}"))?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level).context("--log-level")?;
    match cli.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    // One crypto provider for kube and reqwest: with two rustls providers compiled in and none
    // installed, the first TLS connection panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut kube_config = match &cli.kube_server {
        Some(url) => kube::Config::new(url.parse::<http::Uri>().context("--kube-server")?),
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration (in-cluster or kubeconfig)")?,
    };
    // Named requests, so API servers (and the sandbox's counters) can tell Serin's apart.
    kube_config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("serin-controller/", env!("CARGO_PKG_VERSION"))),
    ));
    let client = kube::Client::try_from(kube_config)?;
    let webhooks = Arc::new(HttpWebhookClient::with_resolve(&cli.resolve)?);
    let mut prometheus_config = PrometheusConfig::new(&cli.metrics_server);
    if let Some(path) = &cli.metrics_server_ca {
        prometheus_config.ca_pem =
            Some(std::fs::read(path).with_context(|| format!("cannot read --metrics-server-ca {}", path.display()))?);
    }
    let prometheus = Arc::new(PrometheusProvider::new(prometheus_config)?);
    let shard = (cli.shard.is_some() || cli.selector.is_some()).then(|| ShardConfig {
        hash: cli.shard,
        selector: cli.selector.clone(),
    });
    let config = Config {
        metrics_server: cli.metrics_server.clone(),
        query_set: cli.knative_metrics,
        default_judge: cli.default_judge,
        namespace: cli.namespace.clone(),
        resync: cli.resync,
        max_concurrent_reconciles: cli.max_concurrent_reconciles,
        component: "serin".into(),
        traffic_tags: cli.traffic_tags,
        shard: shard.clone(),
        lease_namespace: cli.lease_namespace.clone(),
        lease_duration: cli.lease_duration,
    };
    // The router reads the Services and Revisions the controller's watches cache.
    let (cache, cache_writer) = KnativeCache::new();
    let mut ctx = Context::new(
        client.clone(),
        Arc::new(KnativeRouter::new(client.clone()).with_cache(cache)),
        webhooks.clone(),
        prometheus,
        config,
    )
    .with_knative_cache(cache_writer)
    .with_alerting(
        Alerting::new(DispatcherConfig::default(), global_notifier(&cli)?).with_cluster_name(cli.cluster_name.clone()),
    );
    let (sink, _events_task) = EventSink::spawn(webhooks, 1024);
    ctx.event_sink = Some(sink);
    ctx.event_webhook = cli.event_webhook.clone();
    let ctx = Arc::new(ctx);

    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = serve::admin_router(ctx.metrics.clone(), ready.clone());
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    tracing::info!(listen = %listener.local_addr()?, metrics_server = %cli.metrics_server, namespace = ?cli.namespace, shard = ?shard.as_ref().map(ShardConfig::name), "serin-controller starting");
    tokio::spawn(async move { axum::serve(listener, app).await });
    if let Some(addr) = cli.dashboard_listen {
        // Read-only: requests written here would carry the controller's identity, not a person's.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on --dashboard-listen {addr}"))?;
        tracing::info!(listen = %listener.local_addr()?, "read-only dashboard");
        let options = serin_dashboard::Options {
            allow_actions: false,
            who: "serin-controller".into(),
            // Behind a Service or an Ingress, under whatever name the team gives it.
            allowed_hosts: None,
        };
        let namespace = cli.namespace.clone();
        let dashboard_client = client.clone();
        tokio::spawn(
            async move { serin_dashboard::run(dashboard_client, namespace.as_deref(), listener, options).await },
        );
    }

    // A shard always elects a leader: its Lease is what other shards check before taking over.
    let lease = (cli.leader_elect || shard.is_some()).then(|| leader::LeaseConfig {
        namespace: cli.lease_namespace.clone(),
        name: lease_name(&shard.as_ref().map(ShardConfig::name).unwrap_or_default()),
        identity: cli.identity.clone().unwrap_or_else(|| {
            std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| format!("serin-{}", std::process::id()))
        }),
        duration: cli.lease_duration,
    });
    let stop = serve::stop_signal(client, lease).await;
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    serin_reconciler::run(ctx, stop).await;
    tracing::info!("serin-controller stopped");
    Ok(())
}

/// Flagger's global notifier: Teams when `--msteams-url` is set, else Slack when `--slack-url` is.
fn global_notifier(cli: &Cli) -> anyhow::Result<Option<Target>> {
    let (kind, url, proxy) = match (&cli.msteams_url, &cli.slack_url) {
        (Some(url), _) => ("msteams", url, cli.msteams_proxy_url.as_deref()),
        (None, Some(url)) => ("slack", url, cli.slack_proxy_url.as_deref()),
        (None, None) => return Ok(None),
    };
    let mut target = Target::new(kind, "global", url)
        .and_then(|t| t.with_proxy(proxy))
        .with_context(|| format!("--{kind}-url"))?;
    target.token = cli.slack_token.clone().filter(|_| kind == "slack");
    target.username = cli.slack_user.clone();
    if let Some(channel) = &cli.slack_channel {
        target.channel = channel.clone();
    }
    tracing::info!(provider = kind, "global alert notifier enabled");
    Ok(Some(target))
}

fn parse_judge(text: &str) -> Result<serin_core::JudgeMode, String> {
    serin_core::JudgeMode::parse(text).ok_or_else(|| format!("{text:?} is not flagger, shadow or sequential"))
}
