//! The providers that read the Kubernetes API (`externalmetrics`, `keptn`) against a local stub
//! standing in for the API server: exact paths, selectors, bearer token, and the Keptn Analysis
//! lifecycle (create, poll, delete).

mod stub;

use std::time::Duration;

use serin_metrics::{
    MetricsProvider, QueryError, QueryValue,
    providers::{KeptnProvider, KubeAccess, ProviderSettings, build_provider},
};
use stub::stub;

fn settings(kind: &str, url: &str) -> ProviderSettings {
    let mut s = ProviderSettings::new(kind);
    s.kube = Some(KubeAccess {
        url: url.to_owned(),
        token: Some("controller-token".into()),
        ca_pem: None,
    });
    s
}

#[tokio::test]
async fn external_metrics_read_the_first_items_quantity() {
    let stub = stub(&[
        (200, r#"{"kind":"ExternalMetricValueList","items":[{"metricName":"rps","value":"1500m"},{"metricName":"rps","value":"9"}]}"#),
        (200, r#"{"kind":"ExternalMetricValueList","items":[]}"#),
        (404, r#"{"kind":"Status","message":"the server could not find the metric rps"}"#),
    ])
    .await;
    let provider = build_provider(&settings("externalmetrics", &stub.url)).expect("provider");
    let query = "test/rps?labelSelector=app%3Dpodinfo%2Crevision%3Dpodinfo-00002";
    assert_eq!(provider.query(query).await, Ok(QueryValue::Value(1.5)));
    assert_eq!(provider.query(query).await, Ok(QueryValue::NoData));
    assert_eq!(
        provider.query(query).await,
        Err(QueryError::Status {
            status: 404,
            body: "the server could not find the metric rps".into()
        })
    );
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/apis/external.metrics.k8s.io/v1beta1/namespaces/test/rps");
    assert_eq!(seen.query["labelSelector"], "app=podinfo,revision=podinfo-00002");
    assert_eq!(seen.headers["authorization"], "Bearer controller-token");
}

#[tokio::test]
async fn an_address_and_token_in_the_template_replace_the_controllers() {
    let stub = stub(&[(200, r#"{"items":[{"value":"3"}]}"#)]).await;
    let mut s = settings("externalmetrics", "http://127.0.0.1:9");
    s.address = Some(stub.url.clone());
    s.secret = Some([("token".to_owned(), "template-token".to_owned())].into());
    let provider = build_provider(&s).expect("provider");
    assert_eq!(provider.query("rps").await, Ok(QueryValue::Value(3.0)));
    let seen = &stub.seen()[0];
    assert_eq!(
        seen.path,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/rps"
    );
    assert_eq!(seen.headers["authorization"], "Bearer template-token");
}

#[tokio::test]
async fn keptn_metrics_read_their_status_value() {
    let stub = stub(&[(
        200,
        r#"{"kind":"KeptnMetric","status":{"value":"42.5","rawValue":"NDIuNQ=="}}"#,
    )])
    .await;
    let provider = build_provider(&settings("keptn", &stub.url)).expect("provider");
    assert_eq!(
        provider.query("KeptnMetric/Test/Response-Time\n").await,
        Ok(QueryValue::Value(42.5))
    );
    assert_eq!(
        stub.seen()[0].path,
        "/apis/metrics.keptn.sh/v1beta1/namespaces/test/keptnmetrics/response-time"
    );
}

#[tokio::test]
async fn a_keptn_analysis_is_created_awaited_and_deleted() {
    let stub = stub(&[
        (201, r#"{"metadata":{"name":"quality-x7k2p","namespace":"test"}}"#),
        (200, r#"{"status":{"state":"Progressing"}}"#),
        (200, r#"{"status":{"state":"Completed","pass":true}}"#),
        (200, r#"{"kind":"Status","status":"Success"}"#),
    ])
    .await;
    let provider = KeptnProvider::new(&settings("keptn", &stub.url))
        .expect("provider")
        .with_waits(Duration::from_secs(5), Duration::from_millis(20));
    assert_eq!(
        provider
            .query("analysis/test/quality/5m/release=podinfo-00002;stage=prod")
            .await,
        Ok(QueryValue::Value(1.0))
    );
    let calls: Vec<String> = stub.seen().iter().map(|s| format!("{} {}", s.method, s.path)).collect();
    let collection = "/apis/metrics.keptn.sh/v1beta1/namespaces/test/analyses";
    assert_eq!(
        calls,
        [
            format!("POST {collection}"),
            format!("GET {collection}/quality-x7k2p"),
            format!("GET {collection}/quality-x7k2p"),
            format!("DELETE {collection}/quality-x7k2p"),
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&stub.seen()[0].body).expect("json");
    assert_eq!(body["metadata"]["generateName"], "quality-");
    assert_eq!(body["spec"]["analysisDefinition"]["name"], "quality");
    assert_eq!(body["spec"]["timeframe"]["recent"], "5m");
    assert_eq!(body["spec"]["args"]["release"], "podinfo-00002");
    assert_eq!(body["spec"]["args"]["stage"], "prod");
}

#[tokio::test]
async fn a_keptn_analysis_that_never_completes_times_out_and_is_deleted() {
    let stub = stub(&[
        (201, r#"{"metadata":{"name":"quality-abcde"}}"#),
        (200, r#"{"status":{"state":"Progressing"}}"#),
    ])
    .await;
    let provider = KeptnProvider::new(&settings("keptn", &stub.url))
        .expect("provider")
        .with_waits(Duration::from_millis(200), Duration::from_millis(20));
    let result = provider.query("analysis/test/quality").await;
    assert!(
        matches!(&result, Err(QueryError::Transport(m)) if m.contains("encountered timeout while waiting for Keptn Analysis test/quality")),
        "{result:?}"
    );
    let last = stub
        .seen()
        .last()
        .map(|s| format!("{} {}", s.method, s.path))
        .unwrap_or_default();
    assert_eq!(
        last,
        "DELETE /apis/metrics.keptn.sh/v1beta1/namespaces/test/analyses/quality-abcde"
    );
}

#[tokio::test]
async fn a_slow_api_server_times_out() {
    let stub = stub(&[(200, r#"{"items":[{"value":"1"}]}"#)]).await;
    *stub.state.answers.lock().expect("answers") = vec![(200, r#"{"items":[]}"#.into(), Duration::from_secs(3))];
    let mut s = settings("externalmetrics", &stub.url);
    s.timeout = Some(Duration::from_millis(200));
    let provider = build_provider(&s).expect("provider");
    assert_eq!(
        provider.query("rps").await,
        Err(QueryError::Timeout(Duration::from_millis(200)))
    );
}
