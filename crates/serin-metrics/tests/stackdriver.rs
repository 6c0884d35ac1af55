//! Cloud Monitoring against local stubs: a service-account JWT signed with a test key and
//! verified here, exchanged for a token at a stub token endpoint, and the MQL query with that
//! token; answers in the API's format (a double, an int64 string, no series, an error).

mod stub;

use base64::Engine;
use serin_metrics::{
    QueryError, QueryValue,
    providers::{ProviderSettings, build_provider},
};
use stub::stub;

fn test_key() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/keys/test-service-account-key.pem");
    std::fs::read_to_string(path).expect("test key")
}

#[tokio::test]
async fn a_service_account_jwt_buys_the_token_that_runs_the_query() {
    let tokens = stub(&[(
        200,
        r#"{"access_token":"ya29.test-token","expires_in":3599,"token_type":"Bearer"}"#,
    )])
    .await;
    let monitoring = stub(&[
        (200, r#"{"timeSeriesDescriptor":{},"timeSeriesData":[{"labelValues":[],"pointData":[{"values":[{"doubleValue":0.75}],"timeInterval":{}}]}]}"#),
        (200, r#"{"timeSeriesData":[{"pointData":[{"values":[{"int64Value":"42"}]}]}]}"#),
        (200, r#"{}"#),
        (400, r#"{"error":{"code":400,"message":"Query parsing failed","status":"INVALID_ARGUMENT"}}"#),
    ])
    .await;
    let key = serde_json::json!({
        "type": "service_account", "client_email": "serin@project.iam.gserviceaccount.com",
        "private_key": test_key(), "token_uri": format!("{}/token", tokens.url),
    });
    let mut settings = ProviderSettings::new("stackdriver");
    settings.address = Some(monitoring.url.clone());
    settings.secret = Some(
        [
            ("project".to_owned(), "my-project".to_owned()),
            ("serviceAccountKey".to_owned(), key.to_string()),
        ]
        .into(),
    );
    let provider = build_provider(&settings).expect("provider");
    let query = "fetch k8s_container | metric 'istio.io/service/server/request_count' | align rate(1m) | every 1m";
    assert_eq!(provider.query(query).await, Ok(QueryValue::Value(0.75)));
    assert_eq!(provider.query(query).await, Ok(QueryValue::Value(42.0)));
    assert_eq!(provider.query(query).await, Ok(QueryValue::NoData));
    assert_eq!(
        provider.query(query).await,
        Err(QueryError::Status {
            status: 400,
            body: "error requesting stackdriver: Query parsing failed".into()
        })
    );

    assert_eq!(tokens.seen().len(), 1, "the token is reused until it expires");
    let form: std::collections::BTreeMap<String, String> = form_urlencoded::parse(tokens.seen()[0].body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let parts: Vec<&str> = form["assertion"].split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .expect("base64url")
    };
    let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).expect("claims");
    assert_eq!(claims["iss"], "serin@project.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{}/token", tokens.url));
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/monitoring.read");
    // The signature verifies with the key's public half.
    let der: String = test_key().lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(der).expect("pem");
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("key");
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, pair.public().as_ref())
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &decode(parts[2]))
        .expect("the assertion's signature verifies");

    let seen = &monitoring.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v3/projects/my-project/timeSeries:query")
    );
    assert_eq!(seen.headers["authorization"], "Bearer ya29.test-token");
    let body: serde_json::Value = serde_json::from_str(&seen.body).expect("json");
    assert_eq!(body["query"], query);
}

#[test]
fn a_project_is_required_as_in_flagger() {
    serin_metrics::install_crypto_provider();
    let mut settings = ProviderSettings::new("stackdriver");
    settings.secret = Some([("serviceAccountKey".to_owned(), "{}".to_owned())].into());
    let err = build_provider(&settings)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(err, "stackdriver credentials does not contain a project id");
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_refused_token_is_an_error() {
    let tokens = stub(&[(
        401,
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
    )])
    .await;
    let monitoring = stub(&[(200, "{}")]).await;
    let key = serde_json::json!({
        "client_email": "serin@project.iam.gserviceaccount.com",
        "private_key": test_key(), "token_uri": format!("{}/token", tokens.url),
    });
    let mut settings = ProviderSettings::new("stackdriver");
    settings.address = Some(monitoring.url.clone());
    settings.secret = Some(
        [
            ("project".to_owned(), "p".to_owned()),
            ("serviceAccountKey".to_owned(), key.to_string()),
        ]
        .into(),
    );
    let provider = build_provider(&settings).expect("provider");
    let refused = provider.query("fetch x").await;
    assert!(
        matches!(&refused, Err(QueryError::Status { status: 401, body }) if body.contains("cannot get a Google access token")),
        "{refused:?}"
    );
    *tokens.state.answers.lock().expect("answers") = vec![(
        200,
        r#"{"access_token":"t","expires_in":3600}"#.into(),
        std::time::Duration::ZERO,
    )];
    *monitoring.state.answers.lock().expect("answers") = vec![(200, "{}".into(), std::time::Duration::from_secs(3))];
    settings.timeout = Some(std::time::Duration::from_millis(200));
    let slow = build_provider(&settings).expect("provider");
    assert_eq!(
        slow.query("fetch x").await,
        Err(QueryError::Timeout(std::time::Duration::from_millis(200)))
    );
}
