//! Connections for the load generator: plain TCP, TLS (rustls over the system's roots, with
//! hey's tolerance of certificate errors), and HTTP proxies (`hey -x`, CONNECT for `https://`).
//!
//! hey sets `InsecureSkipVerify`: a target with a self-signed or expired certificate is loaded
//! all the same. Serin does the same, so a Flagger hook keeps working, but verifies against the
//! system roots first and counts the connections whose certificate did not verify, so the run's
//! summary can say so instead of staying silent.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::WebPkiServerVerifier,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;

/// Why a connection could not be made; the kind decides how wrk reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect (or the proxy's CONNECT) failed.
    #[error("connect {0}")]
    Connect(String),
    /// The TLS handshake failed.
    #[error("tls handshake with {0}")]
    Tls(String),
    /// The HTTP handshake failed.
    #[error("http handshake: {0}")]
    Handshake(String),
}

/// The future that drives a connection's I/O; the worker that owns the connection polls it
/// alongside its requests, so no other task is woken per request.
pub type Driver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A request sender on one connection.
pub enum Sender {
    /// HTTP/1.1: one request at a time.
    Http1(http1::SendRequest<Full<Bytes>>),
    /// HTTP/2 (`hey -h2` over TLS, negotiated by ALPN).
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }

    /// Sends one request once the connection is ready.
    pub async fn send(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Sender::Http1(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
            Sender::Http2(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Connector {
    /// `host:port` of the target (or of `connect_to`).
    pub target: String,
    /// A proxy's `host:port` (`hey -x`).
    pub proxy: Option<String>,
    /// TLS, for `https://` targets.
    pub tls: Option<TlsTarget>,
}

/// TLS settings of one run.
#[derive(Clone)]
pub struct TlsTarget {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// Connections whose certificate did not verify against the system roots.
    pub unverified: Arc<AtomicU64>,
}

impl TlsTarget {
    /// TLS to `server_name` (hey sends the Host header's name as SNI), offering HTTP/2 by ALPN
    /// when `h2`.
    pub fn new(server_name: &str, h2: bool) -> Result<Self, ConnectError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| ConnectError::Tls(format!("{server_name}: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Unreadable or missing system certificates leave the store empty: every connection
        // then counts as unverified, and is still made, as with hey.
        let roots = system_roots();
        let unverified = Arc::new(AtomicU64::new(0));
        let verifier = Arc::new(LenientVerifier {
            inner: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .ok(),
            schemes: provider.signature_verification_algorithms.supported_schemes(),
            provider: provider.clone(),
            unverified: unverified.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = if h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(TlsTarget {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            unverified,
        })
    }
}

/// The system's roots, read once per call (an empty store when none can be read).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// A verifying TLS configuration (system roots, ring) for the task types that call services'
/// APIs (`concord`, `ngrinder`): those carry credentials, so their certificates are checked.
pub fn verified_tls_config() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(system_roots())
        .with_no_client_auth())
}

impl Connector {
    /// Opens a connection and performs the HTTP handshake; the caller polls the [`Driver`].
    pub async fn connect(&self) -> Result<(Sender, Driver), ConnectError> {
        let first_hop = self.proxy.as_deref().unwrap_or(&self.target);
        let mut stream = TcpStream::connect(first_hop)
            .await
            .map_err(|e| ConnectError::Connect(format!("{first_hop}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return http1_over(stream).await;
        };
        if self.proxy.is_some() {
            tunnel(&mut stream, &self.target).await?;
        }
        let stream = tls
            .connector
            .connect(tls.server_name.clone(), stream)
            .await
            .map_err(|e| ConnectError::Tls(format!("{}: {e}", self.target)))?;
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| ConnectError::Handshake(e.to_string()))?;
            return Ok((
                Sender::Http2(sender),
                Box::pin(async move {
                    let _ = connection.await;
                }),
            ));
        }
        http1_over(stream).await
    }
}

async fn http1_over<S>(stream: S) -> Result<(Sender, Driver), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    Ok((
        Sender::Http1(sender),
        Box::pin(async move {
            let _ = connection.await;
        }),
    ))
}

/// Asks an HTTP proxy for a tunnel to `target` (`CONNECT host:port`).
async fn tunnel(stream: &mut TcpStream, target: &str) -> Result<(), ConnectError> {
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| ConnectError::Connect(format!("proxy CONNECT {target}: {e}")))?;
    let mut head = Vec::with_capacity(256);
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 * 1024 || stream.read_buf(&mut head).await? == 0 {
                return Err(std::io::Error::other("proxy closed the connection"));
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| ConnectError::Connect(format!("proxy CONNECT {target}: timed out")))?
        .map_err(|e| ConnectError::Connect(format!("proxy CONNECT {target}: {e}")))?;
    let status_line = String::from_utf8_lossy(head.split(|b| *b == b'\r').next().unwrap_or_default()).into_owned();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(ConnectError::Connect(format!(
            "proxy refused CONNECT {target}: {status_line}"
        )));
    }
    Ok(())
}

/// Verifies against the system roots, and on failure counts and accepts, as hey does.
#[derive(Debug)]
struct LenientVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    schemes: Vec<SignatureScheme>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    unverified: Arc<AtomicU64>,
}

impl ServerCertVerifier for LenientVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.as_ref().is_some_and(|v| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .is_ok()
        });
        if !verified {
            self.unverified.fetch_add(1, Ordering::Relaxed);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
