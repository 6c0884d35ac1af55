//! CloudWatch against local stubs: the request as AWS requires it (JSON 1.0 `GetMetricData`,
//! SigV4 over the exact headers and body, recomputed here), answers in CloudWatch's format, and
//! IRSA credentials fetched from a stub STS.

mod stub;

use std::time::SystemTime;

use serin_metrics::{
    MetricsProvider, QueryError, QueryValue,
    providers::{AwsCredentials, CloudWatchProvider, CredentialSource, ProviderSettings, Scope, sign_v4},
};
use stub::{Seen, stub};

const QUERY: &str = r#"[{"Id":"e1","Expression":"m1 / m2 * 100"},{"Id":"m1","MetricStat":{"Metric":{"Namespace":"MyKubernetesCluster","MetricName":"ErrorCount","Dimensions":[{"Name":"appName","Value":"podinfo"}]},"Period":60,"Stat":"Sum"},"ReturnData":false},{"Id":"m2","MetricStat":{"Metric":{"Namespace":"MyKubernetesCluster","MetricName":"RequestCount","Dimensions":[{"Name":"appName","Value":"podinfo"}]},"Period":60,"Stat":"Sum"},"ReturnData":false}]"#;

fn settings(url: &str) -> ProviderSettings {
    let mut s = ProviderSettings::new("cloudwatch");
    s.address = Some(format!("{url}/"));
    s.region = Some("eu-west-1".into());
    s
}

fn keys(token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: token.map(str::to_owned),
        expires: None,
    }
}

/// Recomputes the signature of a recorded request and compares it with the one it carried.
fn assert_signed(seen: &Seen, url: &str, credentials: &AwsCredentials) {
    let date = &seen.headers["x-amz-date"];
    let time: jiff::Timestamp = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[0..4],
        &date[4..6],
        &date[6..8],
        &date[9..11],
        &date[11..13],
        &date[13..15]
    )
    .parse()
    .expect("x-amz-date");
    let host = url.trim_start_matches("http://");
    let headers = [
        ("content-type", seen.headers["content-type"].as_str()),
        ("host", host),
        ("x-amz-target", seen.headers["x-amz-target"].as_str()),
    ];
    let scope = Scope {
        region: "eu-west-1",
        service: "monitoring",
        time: SystemTime::from(time),
    };
    let expected = sign_v4(
        "POST",
        &format!("{url}/"),
        &headers,
        seen.body.as_bytes(),
        credentials,
        scope,
    )
    .expect("signs");
    let authorization = expected
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(authorization, Some(seen.headers["authorization"].as_str()));
    assert!(
        seen.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && seen.headers["authorization"]
                .contains("/eu-west-1/monitoring/aws4_request, SignedHeaders=content-type;host;x-amz-date;"),
        "{}",
        seen.headers["authorization"]
    );
}

#[tokio::test]
async fn get_metric_data_is_signed_and_read_as_flagger_reads_it() {
    let stub = stub(&[
        (200, r#"{"MetricDataResults":[{"Id":"e1","Label":"e1","Timestamps":[1700000060,1700000000],"Values":[1.25,0.5],"StatusCode":"Complete"}],"Messages":[]}"#),
        (200, r#"{"MetricDataResults":[{"Id":"e1","Timestamps":[],"Values":[],"StatusCode":"Complete"}]}"#),
        (400, r#"{"__type":"com.amazonaws.cloudwatch#InvalidParameterValueException","message":"The value m3 for parameter MetricDataQueries is not valid."}"#),
    ])
    .await;
    let provider = CloudWatchProvider::with_credentials(&settings(&stub.url), CredentialSource::Static(keys(None)))
        .expect("provider");
    assert_eq!(provider.query(QUERY).await, Ok(QueryValue::Value(1.25)));
    assert_eq!(provider.query(QUERY).await, Ok(QueryValue::NoData));
    assert_eq!(
        provider.query(QUERY).await,
        Err(QueryError::Status {
            status: 400,
            body: "error requesting cloudwatch: InvalidParameterValueException: The value m3 for parameter MetricDataQueries is not valid.".into()
        })
    );
    let seen = &stub.seen()[0];
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/"));
    assert_eq!(
        seen.headers["x-amz-target"],
        "GraniteServiceVersion20100801.GetMetricData"
    );
    assert_eq!(seen.headers["content-type"], "application/x-amz-json-1.0");
    assert_signed(seen, &stub.url, &keys(None));
    let body: serde_json::Value = serde_json::from_str(&seen.body).expect("json");
    assert_eq!(body["MaxDatapoints"], 20);
    assert_eq!(
        body["MetricDataQueries"],
        serde_json::from_str::<serde_json::Value>(QUERY).expect("query")
    );
    let (start, end) = (
        body["StartTime"].as_u64().expect("start"),
        body["EndTime"].as_u64().expect("end"),
    );
    assert_eq!(end - start, 600, "ten metric intervals");
    assert_eq!(
        provider
            .query("not json")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        "cannot parse the answer: error unmarshaling query: expected ident at line 1 column 2"
    );
}

#[tokio::test]
async fn irsa_credentials_come_from_sts_and_sign_with_their_session_token() {
    let sts = stub(&[(
        200,
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIATEMP</AccessKeyId><SecretAccessKey>temp-secret</SecretAccessKey><SessionToken>temp-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
    )])
    .await;
    let cloudwatch = stub(&[(200, r#"{"MetricDataResults":[{"Values":[7.0]}]}"#)]).await;
    let dir = std::env::temp_dir().join(format!("serin-irsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "eyJhbGciOi.jwt\n").expect("token");
    let source = CredentialSource::WebIdentity {
        token_file: token_file.display().to_string(),
        role_arn: "arn:aws:iam::123456789012:role/serin".into(),
        session_name: "serin".into(),
        sts_endpoint: sts.url.clone(),
    };
    let provider = CloudWatchProvider::with_credentials(&settings(&cloudwatch.url), source).expect("provider");
    assert_eq!(provider.query(QUERY).await, Ok(QueryValue::Value(7.0)));
    assert_eq!(provider.query(QUERY).await, Ok(QueryValue::Value(7.0)));
    assert_eq!(sts.seen().len(), 1, "credentials are reused until they expire");
    let form: std::collections::BTreeMap<String, String> = form_urlencoded::parse(sts.seen()[0].body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
    assert_eq!(form["RoleArn"], "arn:aws:iam::123456789012:role/serin");
    assert_eq!(form["WebIdentityToken"], "eyJhbGciOi.jwt");
    let seen = &cloudwatch.seen()[0];
    assert_eq!(seen.headers["x-amz-security-token"], "temp-token");
    assert!(seen.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=ASIATEMP/"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let stub = stub(&[(200, "{}")]).await;
    *stub.state.answers.lock().expect("answers") = vec![(200, "{}".into(), std::time::Duration::from_secs(3))];
    let mut s = settings(&stub.url);
    s.timeout = Some(std::time::Duration::from_millis(200));
    let provider = CloudWatchProvider::with_credentials(&s, CredentialSource::Static(keys(None))).expect("provider");
    assert_eq!(
        provider.query(QUERY).await,
        Err(QueryError::Timeout(std::time::Duration::from_millis(200)))
    );
}
