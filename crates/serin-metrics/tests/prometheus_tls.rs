//! The Prometheus provider over TLS with a private CA (trusted only when given), and long
//! queries sent as a POST form, against a local server that checks each request.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serin_metrics::{MetricsProvider, POST_ABOVE, PrometheusConfig, PrometheusProvider, QueryError, QueryValue};

const ANSWER: &str =
    r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"99.5"]}]}}"#;

/// A CA, and a server certificate for 127.0.0.1 signed by it: (CA PEM, cert DER, key DER).
fn private_ca() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let server_cert = server.signed_by(&server_key, &issuer).expect("server cert");
    (
        ca_cert.pem(),
        server_cert.der().clone(),
        rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    )
}

/// Serves `ANSWER` over TLS; records `METHOD PATH content-type query-or-body` per request.
async fn tls_prometheus(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body: Bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let content_type = parts
                            .headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned();
                        let payload = parts
                            .uri
                            .query()
                            .map_or_else(|| String::from_utf8_lossy(&body).into_owned(), str::to_owned);
                        if let Ok(mut seen) = record.lock() {
                            seen.push(format!(
                                "{} {} {content_type} {payload}",
                                parts.method,
                                parts.uri.path()
                            ));
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(ANSWER.as_bytes()))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_given_and_long_queries_are_posted() {
    serin_metrics::install_crypto_provider();
    let (ca_pem, cert, key) = private_ca();
    let (url, seen) = tls_prometheus(cert, key).await;

    let untrusted = PrometheusProvider::new(PrometheusConfig::new(&url)).expect("provider");
    let refused = untrusted.query("up").await;
    assert!(
        matches!(&refused, Err(QueryError::Transport(m)) if m.contains("certificate")),
        "{refused:?}"
    );

    let mut config = PrometheusConfig::new(&url);
    config.ca_pem = Some(ca_pem.into_bytes());
    let trusted = PrometheusProvider::new(config).expect("provider");
    assert_eq!(trusted.query("up").await, Ok(QueryValue::Value(99.5)));
    let long = format!("sum(up{{job=~\"{}\"}})", "a|".repeat(POST_ABOVE));
    assert_eq!(trusted.query(&long).await, Ok(QueryValue::Value(99.5)));

    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen[0], "GET /api/v1/query - query=up");
    let expected_form = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", &long)
        .finish();
    assert_eq!(
        seen[1],
        format!("POST /api/v1/query application/x-www-form-urlencoded {expected_form}")
    );
}
