//! AWS access for the `cloudwatch` provider: SigV4 signing (the maintained `aws-sigv4` crate,
//! not the whole SDK) and credentials as the SDKs find them, in their order: the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then web identity
//! (IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`) exchanged with
//! STS (`AssumeRoleWithWebIdentity`; `AWS_ENDPOINT_URL_STS` overrides the endpoint).
//! Instance profiles and container credentials are not read.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use aws_smithy_runtime_api::client::identity::Identity;

use super::http;
use crate::QueryError;

/// Static credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token (temporary credentials).
    pub session_token: Option<String>,
    /// When temporary credentials expire.
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Where credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given (tests, or the environment read once).
    Static(AwsCredentials),
    /// IRSA: a web identity token file exchanged with STS for a role's credentials.
    WebIdentity {
        /// `AWS_WEB_IDENTITY_TOKEN_FILE`.
        token_file: String,
        /// `AWS_ROLE_ARN`.
        role_arn: String,
        /// `AWS_ROLE_SESSION_NAME` (default `serin`).
        session_name: String,
        /// STS endpoint (`AWS_ENDPOINT_URL_STS`, else the region's).
        sts_endpoint: String,
    },
}

impl CredentialSource {
    /// The SDKs' order over `env` (a variable lookup): environment keys, then web identity.
    pub fn from_env(region: &str, env: impl Fn(&str) -> Option<String>) -> Option<CredentialSource> {
        if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            return Some(CredentialSource::Static(AwsCredentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
                expires: None,
            }));
        }
        let (token_file, role_arn) = (env("AWS_WEB_IDENTITY_TOKEN_FILE")?, env("AWS_ROLE_ARN")?);
        Some(CredentialSource::WebIdentity {
            token_file,
            role_arn,
            session_name: env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "serin".into()),
            sts_endpoint: env("AWS_ENDPOINT_URL_STS").unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com")),
        })
    }

    /// Credentials now: given ones as they are, web identity ones fetched from STS.
    pub(crate) async fn fetch(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<AwsCredentials, QueryError> {
        let (token_file, role_arn, session_name, sts_endpoint) = match self {
            CredentialSource::Static(c) => return Ok(c.clone()),
            CredentialSource::WebIdentity {
                token_file,
                role_arn,
                session_name,
                sts_endpoint,
            } => (token_file, role_arn, session_name, sts_endpoint),
        };
        let token = tokio::fs::read_to_string(token_file)
            .await
            .map_err(|e| QueryError::Transport(format!("cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}")))?;
        let request = client.post(sts_endpoint).form_like(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", session_name),
            ("WebIdentityToken", token.trim()),
        ]);
        let (status, body) = http::send(request, timeout).await?;
        let text = String::from_utf8_lossy(&body);
        if status != 200 {
            return Err(QueryError::Status {
                status,
                body: format!(
                    "sts AssumeRoleWithWebIdentity: {}",
                    tag(&text, "Message").unwrap_or(&text)
                ),
            });
        }
        let field = |name: &str| {
            tag(&text, name)
                .map(str::to_owned)
                .ok_or_else(|| QueryError::BadAnswer(format!("sts answer has no {name}")))
        };
        Ok(AwsCredentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
            expires: tag(&text, "Expiration")
                .and_then(|e| e.parse::<jiff::Timestamp>().ok())
                .map(SystemTime::from),
        })
    }
}

/// The text of the first `<name>…</name>` element (STS answers are flat enough for this).
fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim())
}

/// A form body, for STS.
trait FormLike {
    fn form_like(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormLike for reqwest::RequestBuilder {
    fn form_like(self, pairs: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        self.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// What a signature is scoped to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// AWS region.
    pub region: &'a str,
    /// Signing name of the service (`monitoring` for CloudWatch).
    pub service: &'a str,
    /// Signing time.
    pub time: SystemTime,
}

/// The SigV4 headers (`authorization`, `x-amz-date`, and `x-amz-security-token` with a session
/// token) for a request with `headers` (which must include `host`) and `body`.
pub fn sign_v4(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &AwsCredentials,
    scope: Scope<'_>,
) -> Result<Vec<(String, String)>, String> {
    let Scope { region, service, time } = scope;
    let identity: Identity = Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        credentials.expires,
        "serin",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's SigV4 test suite: `get-vanilla`, `post-vanilla`, `get-vanilla-with-session-token`.
    #[test]
    fn signatures_match_the_sigv4_test_suite() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        let mut credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires: None,
        };
        let host = [("host", "example.amazonaws.com")];
        let signature = |method: &str, credentials: &AwsCredentials| {
            let headers = sign_v4(
                method,
                "https://example.amazonaws.com/",
                &host,
                b"",
                credentials,
                Scope {
                    region: "us-east-1",
                    service: "service",
                    time,
                },
            )
            .expect("signs");
            headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .and_then(|(_, v)| v.split("Signature=").nth(1))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert_eq!(
            signature("GET", &credentials),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(
            signature("POST", &credentials),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        credentials.session_token = Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267".into());
        assert_eq!(
            signature("GET", &credentials),
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        );
    }

    #[test]
    fn credentials_are_found_in_the_sdks_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        let both = env(&[
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ]);
        assert!(matches!(
            CredentialSource::from_env("eu-west-1", both),
            Some(CredentialSource::Static(_))
        ));
        let irsa = env(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ]);
        assert_eq!(
            CredentialSource::from_env("eu-west-1", irsa),
            Some(CredentialSource::WebIdentity {
                token_file: "/token".into(),
                role_arn: "arn:aws:iam::1:role/r".into(),
                session_name: "serin".into(),
                sts_endpoint: "https://sts.eu-west-1.amazonaws.com".into(),
            })
        );
        assert_eq!(CredentialSource::from_env("eu-west-1", env(&[])), None);
    }
}
