//! Each provider against a local HTTP stub that records the request exactly (method, path,
//! query, headers, body) and replays answers in the provider's documented format: a value, an
//! empty answer, an error, and a slow answer past the timeout.

mod stub;

use std::time::Duration;

use serin_metrics::{
    QueryError, QueryValue,
    providers::{ProviderSettings, build_provider},
};
use stub::{Stub, stub};

fn settings(kind: &str, url: &str, secret: &[(&str, &str)]) -> ProviderSettings {
    let mut s = ProviderSettings::new(kind);
    s.address = Some(url.to_owned());
    s.secret = (!secret.is_empty()).then(|| secret.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    s.interval = Duration::from_secs(60);
    s
}

/// Runs `query` against answers in turn: value, empty, error; then a slow answer past a 200 ms
/// timeout. Returns the provider's results and the stub.
async fn replay(
    kind: &str,
    secret: &[(&str, &str)],
    query: &str,
    value: &str,
    empty: &str,
    error: (u16, &str),
) -> (Vec<Result<QueryValue, QueryError>>, Stub) {
    let stub = stub(&[(200, value), (200, empty), error]).await;
    let provider = build_provider(&settings(kind, &stub.url, secret)).expect("provider");
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(provider.query(query).await);
    }
    *stub.state.answers.lock().expect("answers") = vec![(200, value.to_owned(), Duration::from_secs(3))];
    let mut slow = settings(kind, &stub.url, secret);
    slow.timeout = Some(Duration::from_millis(200));
    results.push(build_provider(&slow).expect("provider").query(query).await);
    (results, stub)
}

fn assert_outcomes(results: &[Result<QueryValue, QueryError>], value: f64, status: u16) {
    assert_eq!(results[0], Ok(QueryValue::Value(value)), "value");
    assert_eq!(results[1], Ok(QueryValue::NoData), "empty");
    assert!(
        matches!(&results[2], Err(QueryError::Status { status: s, .. }) if *s == status),
        "error: {:?}",
        results[2]
    );
    assert_eq!(results[3], Err(QueryError::Timeout(Duration::from_millis(200))), "slow");
}

fn within_a_second_of_now(seconds: u64) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    now.abs_diff(seconds) <= 2
}

#[tokio::test]
async fn datadog() {
    let (results, stub) = replay(
        "datadog",
        &[("datadog_api_key", "api"), ("datadog_application_key", "app")],
        "sum:http.errors{app:podinfo}.as_count()",
        r#"{"series":[{"pointlist":[[1700000000000,0.25],[1700000060000,0.5]]}]}"#,
        r#"{"series":[]}"#,
        (403, r#"{"errors":["Forbidden"]}"#),
    )
    .await;
    assert_outcomes(&results, 0.25, 403);
    let seen = &stub.seen()[0];
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", "/api/v1/query"));
    assert_eq!(seen.headers["dd-api-key"], "api");
    assert_eq!(seen.headers["dd-application-key"], "app");
    assert_eq!(seen.query["query"], "sum:http.errors{app:podinfo}.as_count()");
    let (from, to): (u64, u64) = (
        seen.query["from"].parse().expect("from"),
        seen.query["to"].parse().expect("to"),
    );
    assert!(within_a_second_of_now(to));
    assert_eq!(to - from, 600, "ten metric intervals");
}

#[tokio::test]
async fn newrelic() {
    let (results, stub) = replay(
        "newrelic",
        &[("newrelic_account_id", "1234"), ("newrelic_query_key", "key")],
        "SELECT percentage(count(*), WHERE error IS true) FROM Transaction",
        r#"{"results":[{"result":1.5}]}"#,
        r#"{"results":[{"result":null}]}"#,
        (400, r#"{"error":"NRQL Syntax Error"}"#),
    )
    .await;
    assert_outcomes(&results, 1.5, 400);
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/v1/accounts/1234/query");
    assert_eq!(seen.headers["x-query-key"], "key");
    assert_eq!(
        seen.query["nrql"],
        "SELECT percentage(count(*), WHERE error IS true) FROM Transaction SINCE 60 seconds ago"
    );
}

#[tokio::test]
async fn dynatrace() {
    let (results, stub) = replay(
        "dynatrace",
        &[("dynatrace_token", "dt0c01.abc")],
        "builtin:service.response.time:avg",
        r#"{"result":[{"metricId":"m","data":[{"dimensions":[],"timestamps":[1],"values":[120.5]}]}]}"#,
        r#"{"result":[{"metricId":"m","data":[]}]}"#,
        (401, r#"{"error":{"code":401,"message":"Token Authentication failed"}}"#),
    )
    .await;
    assert_outcomes(&results, 120.5, 401);
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/api/v2/metrics/query");
    assert_eq!(seen.headers["authorization"], "Api-Token dt0c01.abc");
    assert_eq!(seen.query["metricSelector"], "builtin:service.response.time:avg");
    assert_eq!(seen.query["resolution"], "Inf");
    let (from, to): (u64, u64) = (
        seen.query["from"].parse().expect("from"),
        seen.query["to"].parse().expect("to"),
    );
    assert!(within_a_second_of_now(to / 1000));
    assert_eq!(to - from, 600_000, "ten metric intervals, in ms");
}

#[tokio::test]
async fn graphite() {
    let (results, stub) = replay(
        "graphite",
        &[("username", "u"), ("password", "p")],
        "target=summarize(sumSeries(app.errors), '1min')\n  &from=-1min&until=now",
        r#"[{"target":"a","datapoints":[[1.0,1700000000],[null,1700000060]]},{"target":"b","datapoints":[[2.5,1700000000],[null,1700000060]]}]"#,
        r#"[{"target":"a","datapoints":[[null,1700000000]]}]"#,
        (500, "internal error"),
    )
    .await;
    assert_outcomes(&results, 2.5, 500);
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/render");
    assert_eq!(seen.headers["authorization"], "Basic dTpw");
    assert_eq!(seen.query["target"], "summarize(sumSeries(app.errors), '1min')");
    assert_eq!(
        (seen.query["from"].as_str(), seen.query["until"].as_str()),
        ("-1min", "now")
    );
    assert_eq!(seen.query["format"], "json");
}

#[tokio::test]
async fn influxdb() {
    let value = "#datatype,string,long,dateTime:RFC3339,double\n#group,false,false,false,false\n#default,_result,,,\n,result,table,_time,_value\n,,0,2026-12-01T00:00:00Z,99.5\n\n";
    let (results, stub) = replay(
        "influxdb",
        &[("token", "secret-token"), ("org", "acme")],
        r#"from(bucket: "app") |> range(start: -1m) |> mean()"#,
        value,
        "",
        (
            400,
            r#"{"code":"invalid","message":"compilation failed: error at @1:1"}"#,
        ),
    )
    .await;
    assert_outcomes(&results, 99.5, 400);
    let seen = &stub.seen()[0];
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/api/v2/query"));
    assert_eq!(seen.query["org"], "acme");
    assert_eq!(seen.headers["authorization"], "Token secret-token");
    let body: serde_json::Value = serde_json::from_str(&seen.body).expect("json body");
    assert_eq!(body["query"], r#"from(bucket: "app") |> range(start: -1m) |> mean()"#);
    assert_eq!(body["type"], "flux");
    assert!(matches!(
        &results[2],
        Err(QueryError::Status { body, .. }) if body == "error accessing influxdb query api: compilation failed: error at @1:1"
    ));
}

#[tokio::test]
async fn availability_checks_use_flaggers_endpoints() {
    let stub = stub(&[(200, r#"{"valid":true}"#)]).await;
    let datadog = build_provider(&settings(
        "datadog",
        &stub.url,
        &[("datadog_api_key", "a"), ("datadog_application_key", "b")],
    ))
    .expect("datadog");
    datadog.is_online().await.expect("online");
    let dynatrace = build_provider(&settings("dynatrace", &stub.url, &[("dynatrace_token", "t")])).expect("dynatrace");
    dynatrace.is_online().await.expect("online");
    let paths: Vec<String> = stub
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.path, s.query.get("pageSize").map_or("", String::as_str)))
        .collect();
    assert_eq!(paths, ["/api/v1/validate ", "/api/v2/metrics 1"]);
}

#[test]
fn missing_settings_are_refused_with_flaggers_messages() {
    serin_metrics::install_crypto_provider();
    let cases = [
        (
            settings("datadog", "http://x", &[("datadog_api_key", "a")]),
            "datadog credentials does not contain datadog_application_key",
        ),
        (
            settings("newrelic", "http://x", &[("newrelic_query_key", "k")]),
            "newrelic credentials does not contain the key 'newrelic_account_id'",
        ),
        (ProviderSettings::new("dynatrace"), "dynatrace endpoint is not set"),
        (
            settings("dynatrace", "http://x", &[("other", "v")]),
            "dynatrace credentials does not contain dynatrace_token",
        ),
        (
            settings("graphite", "not a url", &[]),
            "graphite address not a url is not a valid URL",
        ),
        (
            settings("graphite", "http://x", &[("username", "u")]),
            "graphite credentials does not contain a password",
        ),
        (
            settings("influxdb", "http://x", &[("token", "t")]),
            "influxdb credentials does not contain an organisation",
        ),
        (ProviderSettings::new("nosuch"), "unknown metrics provider \"nosuch\""),
    ];
    for (s, expected) in cases {
        let err = build_provider(&s).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(expected), "{}: {err}", s.kind);
    }
}

#[tokio::test]
async fn splunk() {
    let value = "event: control-message\ndata: {\"event\":\"STREAM_START\"}\n\nevent: data\ndata: {\"logicalTimestampMs\":1700000000000,\"data\":[{\"tsId\":\"AAAA\",\"value\":3.0}]}\n\nevent: data\ndata: {\"logicalTimestampMs\":1700000060000,\"data\":[{\"tsId\":\"AAAA\",\"value\":4.5}]}\n\nevent: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n";
    let empty = "event: control-message\ndata: {\"event\":\"END_OF_CHANNEL\"}\n\n";
    let (results, stub) = replay(
        "splunk",
        &[("sf_token_key", "sf-token")],
        "data('demo.trans.latency', filter=filter('app', 'podinfo')).mean().publish()",
        value,
        empty,
        (401, r#"{"message":"Unauthorized"}"#),
    )
    .await;
    assert_outcomes(&results, 4.5, 401);
    let seen = &stub.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v2/signalflow/execute")
    );
    assert_eq!(seen.headers["x-sf-token"], "sf-token");
    assert_eq!(seen.headers["content-type"], "text/plain");
    assert_eq!(
        seen.body,
        "data('demo.trans.latency', filter=filter('app', 'podinfo')).mean().publish()"
    );
    assert_eq!(seen.query["immediate"], "true");
    let (start, stop): (u64, u64) = (
        seen.query["start"].parse().expect("start"),
        seen.query["stop"].parse().expect("stop"),
    );
    assert!(within_a_second_of_now(stop / 1000));
    assert_eq!(stop - start, 600_000, "ten metric intervals, in ms");

    let two = "event: data\ndata: {\"data\":[{\"tsId\":\"A\",\"value\":1},{\"tsId\":\"B\",\"value\":2}]}\n\n";
    let multiple = stub::stub(&[(200, two)]).await;
    let provider = build_provider(&settings("splunk", &multiple.url, &[("sf_token_key", "t")])).expect("provider");
    assert!(matches!(provider.query("x").await, Err(QueryError::BadAnswer(m)) if m.contains("multiple values")));
}
