//! Every provider type against a local receiver that checks the exact JSON and headers the
//! provider's API accepts; delivery through a proxy; retries on 5xx and 429 (`Retry-After`), no
//! retry on other 4xx; a hanging receiver timing out; drop-oldest; no secret in any report.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, response::IntoResponse};
use serde_json::{Value, json};
use serin_alerts::{Delivery, DeliveryResult, Dispatcher, DispatcherConfig, Job, Target, payload::Subject};
use serin_core::{Alert, AlertSeverity};

#[derive(Default)]
struct Receiver {
    /// (path-and-query, headers, body) per request.
    seen: Mutex<Vec<(String, HeaderMap, Value)>>,
    /// Statuses to answer in turn (then 200); a 0 hangs.
    answers: Mutex<Vec<(u16, Option<&'static str>)>>,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.to_string();
    r.seen.lock().expect("seen").push((path, headers, value));
    let (status, retry_after) = {
        let mut answers = r.answers.lock().expect("answers");
        if answers.is_empty() {
            (200, None)
        } else {
            answers.remove(0)
        }
    };
    if status == 0 {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let mut response = (
        axum::http::StatusCode::from_u16(status.max(200)).unwrap_or(axum::http::StatusCode::OK),
        "ok",
    )
        .into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.parse().expect("header"));
    }
    response
}

async fn receiver(answers: Vec<(u16, Option<&'static str>)>) -> (String, Arc<Receiver>) {
    let state = Arc::new(Receiver {
        seen: Mutex::new(Vec::new()),
        answers: Mutex::new(answers),
    });
    let app = Router::new().fallback(receive).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

fn alert(severity: AlertSeverity) -> Alert {
    Alert {
        severity,
        message: "Failed checks threshold reached 5".into(),
        fields: vec![
            ("Revision".into(), "podinfo-00002".into()),
            (
                "Reason".into(),
                "Halt podinfo.test advancement success rate 80.00% < 99%".into(),
            ),
        ],
    }
}

fn subject() -> Subject {
    Subject {
        name: "podinfo".into(),
        namespace: "test".into(),
    }
}

fn fast() -> DispatcherConfig {
    DispatcherConfig {
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        min_interval: Duration::ZERO,
        timeout: Duration::from_secs(2),
        ..DispatcherConfig::default()
    }
}

/// Sends `jobs` and waits for their reports.
async fn deliver(config: DispatcherConfig, jobs: Vec<Job>) -> Vec<Delivery> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let dispatcher = Dispatcher::new(config, move |d| {
        let _ = tx.send(d);
    });
    let n = jobs.len();
    for job in jobs {
        dispatcher.send(job);
    }
    let mut reports = Vec::new();
    while reports.len() < n {
        let report = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a report")
            .expect("open");
        reports.push(report);
    }
    reports
}

fn job(target: Target, severity: AlertSeverity) -> Job {
    Job {
        target,
        subject: subject(),
        alert: alert(severity),
    }
}

#[tokio::test]
async fn slack_discord_and_rocket_get_flaggers_attachments() {
    let (url, r) = receiver(Vec::new()).await;
    let mut slack = Target::new("slack", "test/slack", &format!("{url}/services/T000/B000/XXX")).expect("slack");
    slack.token = Some("xoxb-token".into());
    slack.channel = "deployments".into();
    let discord = Target::new("discord", "test/discord", &format!("{url}/api/webhooks/1/abc")).expect("discord");
    let rocket = Target::new("rocket", "test/rocket", &format!("{url}/hooks/xyz")).expect("rocket");
    let reports = deliver(
        fast(),
        vec![
            job(slack, AlertSeverity::Error),
            job(discord, AlertSeverity::Info),
            job(rocket, AlertSeverity::Error),
        ],
    )
    .await;
    assert!(reports.iter().all(|d| d.result == DeliveryResult::Sent), "{reports:?}");
    let seen = r.seen.lock().expect("seen").clone();
    let by_path = |p: &str| seen.iter().find(|(path, _, _)| path == p).cloned().expect(p);
    let (_, headers, body) = by_path("/services/T000/B000/XXX");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["authorization"], "Bearer xoxb-token");
    assert_eq!(
        body,
        json!({
            "channel": "deployments", "username": "flagger", "icon_url": "", "icon_emoji": ":rocket:",
            "attachments": [{
                "color": "danger", "author_name": "podinfo.test", "text": "Failed checks threshold reached 5",
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": "Revision", "value": "podinfo-00002", "short": false},
                    {"title": "Reason", "value": "Halt podinfo.test advancement success rate 80.00% < 99%", "short": false}
                ]
            }]
        })
    );
    let (_, headers, discord) = by_path("/api/webhooks/1/abc/slack");
    assert!(headers.get("authorization").is_none());
    assert_eq!(discord["attachments"][0]["color"], "good");
    assert_eq!(discord["channel"], "general");
    let (_, _, rocket) = by_path("/hooks/xyz");
    assert_eq!(rocket["attachments"][0]["color"], "#FF0000");
}

#[tokio::test]
async fn teams_gets_a_message_card_on_connectors_and_an_adaptive_card_on_workflows() {
    let (url, r) = receiver(Vec::new()).await;
    let workflows = Target::new(
        "msteams",
        "test/teams",
        &format!("{url}/workflows/abc/triggers/manual/paths/invoke"),
    )
    .expect("teams");
    let reports = deliver(fast(), vec![job(workflows, AlertSeverity::Error)]).await;
    assert_eq!(reports[0].result, DeliveryResult::Sent);
    let body = r.seen.lock().expect("seen")[0].2.clone();
    assert_eq!(body["type"], "message");
    let card = &body["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["body"][0]["text"], "Failed checks threshold reached 5");
    assert_eq!(card["content"]["body"][0]["color"], "Attention");
    assert_eq!(
        card["content"]["body"][2]["facts"][0],
        json!({"title": "Revision", "value": "podinfo-00002"})
    );

    let connector = Target::new(
        "msteams",
        "x",
        "https://acme.webhook.office.com/webhookb2/1@2/IncomingWebhook/3/4",
    )
    .expect("teams");
    let legacy = serin_alerts::payload::body(&connector, &subject(), &alert(AlertSeverity::Info));
    assert_eq!(
        legacy,
        json!({
            "@type": "MessageCard", "@context": "http://schema.org/extensions", "themeColor": "0076D7",
            "summary": "podinfo.test",
            "sections": [{
                "activityTitle": "Failed checks threshold reached 5", "activitySubtitle": "podinfo.test",
                "facts": [
                    {"name": "Revision", "value": "podinfo-00002"},
                    {"name": "Reason", "value": "Halt podinfo.test advancement success rate 80.00% < 99%"}
                ]
            }]
        })
    );
}

#[tokio::test]
async fn google_chat_gets_flaggers_card() {
    let (url, r) = receiver(Vec::new()).await;
    let gchat = Target::new(
        "gchat",
        "test/gchat",
        &format!("{url}/v1/spaces/AAA/messages?key=k&token=t"),
    )
    .expect("gchat");
    deliver(fast(), vec![job(gchat, AlertSeverity::Info)]).await;
    let (path, _, body) = r.seen.lock().expect("seen")[0].clone();
    assert_eq!(path, "/v1/spaces/AAA/messages?key=k&token=t");
    let card = &body["cards"][0];
    assert_eq!(
        card["header"],
        json!({"title": "Flagger", "subtitle": "podinfo.test", "imageUrl": "https://flagger.app/favicon.png"})
    );
    assert_eq!(
        card["sections"][0]["widgets"][0]["textParagraph"]["text"],
        "<font color=#848484><strong>Failed checks threshold reached 5</strong></font>"
    );
    assert_eq!(
        card["sections"][1]["widgets"][0]["textParagraph"]["text"],
        "Revision<br><font color=#848484><strong>podinfo-00002</strong></font>"
    );
}

#[tokio::test]
async fn a_proxy_receives_the_alert_for_the_hook() {
    let (proxy, r) = receiver(Vec::new()).await;
    let target = Target::new("slack", "test/slack", "http://hooks.slack.test/services/A/B/C")
        .and_then(|t| t.with_proxy(Some(&proxy)))
        .expect("target");
    let reports = deliver(fast(), vec![job(target, AlertSeverity::Info)]).await;
    assert_eq!(reports[0].result, DeliveryResult::Sent);
    let (path, headers, body) = r.seen.lock().expect("seen")[0].clone();
    assert_eq!(
        path, "http://hooks.slack.test/services/A/B/C",
        "the proxy is asked for the absolute URL"
    );
    assert_eq!(headers["host"], "hooks.slack.test");
    assert_eq!(body["attachments"][0]["text"], "Failed checks threshold reached 5");
}

#[tokio::test]
async fn failures_are_retried_once_delivered_and_secrets_stay_out_of_reports() {
    // 500 twice, then 200: delivered once, on the third attempt.
    let (url, r) = receiver(vec![(500, None), (500, None)]).await;
    let secret_url = format!("{url}/services/SECRET-PATH");
    let reports = deliver(
        fast(),
        vec![job(
            Target::new("slack", "t", &secret_url).expect("t"),
            AlertSeverity::Error,
        )],
    )
    .await;
    assert_eq!(
        (reports[0].attempts, reports[0].result.clone()),
        (3, DeliveryResult::Sent)
    );
    assert_eq!(r.seen.lock().expect("seen").len(), 3);

    // 429 with Retry-After: 1 waits a second; 404 is not retried.
    let (url, _) = receiver(vec![(429, Some("1")), (404, None)]).await;
    let started = Instant::now();
    let patient = DispatcherConfig {
        max_backoff: Duration::from_secs(2),
        ..fast()
    };
    let reports = deliver(
        patient,
        vec![job(
            Target::new("slack", "t", &format!("{url}/x")).expect("t"),
            AlertSeverity::Error,
        )],
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(reports[0].attempts, 2);
    assert!(
        matches!(&reports[0].result, DeliveryResult::Failed(e) if e.starts_with("sending notification bad response 404"))
    );

    // Nothing listening: transport errors, retried, then given up; the URL is in no report.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dead = format!("http://127.0.0.1:{port}/services/SECRET-PATH");
    let config = DispatcherConfig { attempts: 2, ..fast() };
    let reports = deliver(
        config,
        vec![job(Target::new("slack", "t", &dead).expect("t"), AlertSeverity::Error)],
    )
    .await;
    let text = format!("{reports:?}");
    assert!(matches!(&reports[0].result, DeliveryResult::Failed(_)), "{text}");
    assert!(!text.contains("SECRET-PATH"), "a report shows the hook URL: {text}");
    assert!(!format!("{:?}", Target::new("slack", "t", &dead).expect("t")).contains("SECRET-PATH"));
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_a_full_backlog_drops_the_oldest() {
    let (url, _) = receiver(vec![(0, None)]).await;
    let config = DispatcherConfig {
        attempts: 1,
        timeout: Duration::from_millis(300),
        capacity: 2,
        ..fast()
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let dispatcher = Dispatcher::new(config, move |d| {
        let _ = tx.send(d);
    });
    let target = Target::new("slack", "t", &format!("{url}/hook")).expect("t");
    let started = Instant::now();
    for _ in 0..5 {
        dispatcher.send(job(target.clone(), AlertSeverity::Error));
    }
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "sending never waits for the receiver (one wait would be its 300 ms timeout)"
    );
    let mut results = Vec::new();
    while results.len() < 5 {
        let d = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("report")
            .expect("open");
        results.push(d.result);
    }
    let dropped = results.iter().filter(|r| **r == DeliveryResult::Dropped).count();
    assert!(dropped >= 2, "{results:?}");
    assert_eq!(dispatcher.dropped(), dropped as u64);
    assert!(matches!(
        &results[results.len() - 1],
        DeliveryResult::Failed(_) | DeliveryResult::Sent
    ));
}
