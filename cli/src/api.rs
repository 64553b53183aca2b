//! The stockroom API as the operator's tools call it: how a call ends (`CliError`, `Exit`)
//! and the one client every command shares.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;

/// How the command ends, for scripts: documented in the README ("Operator CLI").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for is done.
    Done = 0,
    /// The API refused what was asked, or some rows of it (reasons printed); the rest is
    /// done.
    Refused = 1,
    /// The input could not be read: a missing file, a CSV without the columns.
    BadInput = 2,
    /// The API (or AWS, for `audit` and `dlq redrive`) could not be reached, or refused
    /// the caller.
    ApiUnavailable = 3,
    /// The command ran and found something wrong: books that do not balance, drift, or
    /// requests that failed (5xx).
    Findings = 4,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    BadInput(String),
    #[error("the API at {url} cannot be reached ({cause}); is `./infra/run-local` running, or is --api right?")]
    Unreachable { url: String, cause: String },
    #[error("the API refused this caller ({status} {code}); for the local run pass an admin token with --token (`./infra/token admin`); for a deployed stack use AWS credentials allowed execute-api:Invoke on the admin routes")]
    NotAllowed { status: u16, code: String },
    #[error("{what} failed ({cause}); check the AWS credentials and the table and queue names (the stack's outputs TableName, CompensationQueueUrl, CompensationDeadLetterQueueUrl)")]
    Aws { what: String, cause: String },
    #[error("the API refused it ({status} {code}): {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
}

impl CliError {
    pub fn exit(&self) -> Exit {
        match self {
            CliError::BadInput(_) => Exit::BadInput,
            CliError::Refused { status: 400, .. } => Exit::BadInput,
            CliError::Refused { .. } => Exit::Refused,
            CliError::Unreachable { .. } | CliError::NotAllowed { .. } | CliError::Aws { .. } => {
                Exit::ApiUnavailable
            }
        }
    }
}

/// How the admin routes know who calls.
#[derive(Debug, Clone)]
enum Caller {
    Anonymous,
    /// A bearer token: the local run's admin token, or a staff token for buyers.
    Bearer(String),
    /// SigV4 for API Gateway's IAM authorizer (a deployed stack), with credentials from
    /// the standard chain.
    Iam {
        credentials: SharedCredentialsProvider,
        region: String,
    },
}

/// The stock admin API at `base`.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    caller: Caller,
    http: reqwest::Client,
}

/// An answer: its status and JSON body (`Null` when it has none).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Api {
    /// The API at `base`, called with `token` as a bearer token when given.
    pub fn new(base: &str, token: Option<String>) -> Self {
        let caller = match token {
            Some(token) => Caller::Bearer(token),
            None => Caller::Anonymous,
        };
        Self::with(base, caller)
    }

    /// The API at `base` (a deployed stack's `ApiUrl`), each call signed with SigV4 for
    /// `execute-api` in `region` with `credentials`.
    pub fn signed(base: &str, credentials: SharedCredentialsProvider, region: String) -> Self {
        Self::with(
            base,
            Caller::Iam {
                credentials,
                region,
            },
        )
    }

    fn with(base: &str, caller: Caller) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            caller,
            http,
        }
    }

    /// The base URL every path is joined to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether this is the local run, on this machine, rather than a deployed stack.
    pub fn is_local(&self) -> bool {
        let host = reqwest::Url::parse(&self.base)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned));
        matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]"))
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, CliError> {
        self.send_keyed(method, path, None, body).await
    }

    /// `send` with an `Idempotency-Key`, when given.
    pub(crate) async fn send_keyed(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Caller::Bearer(token) = &self.caller {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| CliError::Unreachable {
            url: self.base.clone(),
            cause: e.to_string(),
        };
        let mut request = request.build().map_err(unreachable)?;
        if let Caller::Iam {
            credentials,
            region,
        } = &self.caller
        {
            let credentials =
                credentials
                    .provide_credentials()
                    .await
                    .map_err(|e| CliError::Aws {
                        what: "finding AWS credentials to sign with".into(),
                        cause: e.to_string(),
                    })?;
            sign_v4(&mut request, &credentials, region, SystemTime::now())?;
        }
        let answer = self.http.execute(request).await.map_err(unreachable)?;
        let status = answer.status().as_u16();
        let body = answer.json().await.unwrap_or(Value::Null);
        if matches!(status, 401 | 403) {
            let code = body["code"].as_str().unwrap_or("").to_owned();
            return Err(CliError::NotAllowed { status, code });
        }
        Ok(Answer { status, body })
    }
}

impl Answer {
    /// The body of a success, or the problem the API answered as an error.
    pub(crate) fn success(self) -> Result<Value, CliError> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        Err(CliError::Refused {
            status: self.status,
            code: self.body["code"].as_str().unwrap_or("?").to_owned(),
            detail: self.body["detail"]
                .as_str()
                .unwrap_or("no detail")
                .to_owned(),
        })
    }
}

/// The region of an API Gateway URL (`https://ID.execute-api.REGION.amazonaws.com`).
pub fn region_of(base: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).ok()?;
    let mut labels = url.host_str()?.split('.');
    labels.find(|label| *label == "execute-api")?;
    labels.next().map(str::to_owned)
}

/// Signs `request` with SigV4 for `execute-api` in `region` at `time`: the headers API
/// Gateway's IAM authorizer checks (`authorization`, `x-amz-date`, the session token).
pub fn sign_v4(
    request: &mut reqwest::Request,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), CliError> {
    let cannot =
        |e: &dyn std::fmt::Display| CliError::BadInput(format!("cannot sign the request: {e}"));
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| cannot(&e))?
        .into();
    let body = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .unwrap_or(&[]);
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| cannot(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| cannot(&e))?
        .into_parts();
    let signed: Vec<(String, String)> = instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    for (name, value) in signed {
        let name =
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| cannot(&e))?;
        let value = reqwest::header::HeaderValue::from_str(&value).map_err(|e| cannot(&e))?;
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> reqwest::Request {
        reqwest::Client::new()
            .put("https://abc123.execute-api.eu-west-1.amazonaws.com/skus/tea")
            .header("content-type", "application/json")
            .body(body.to_owned())
            .build()
            .unwrap()
    }

    fn at_noon() -> SystemTime {
        // 2026-11-22T12:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_348_800)
    }

    #[test]
    fn a_signed_request_carries_the_scope_api_gateway_checks() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session".into()),
            None,
            "test",
        );
        let mut signed = request(r#"{"on_hand":5}"#);
        sign_v4(&mut signed, &credentials, "eu-west-1", at_noon()).unwrap();
        let header = |name: &str| signed.headers()[name].to_str().unwrap().to_owned();
        let authorization = header("authorization");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/eu-west-1/execute-api/aws4_request, SignedHeaders="
            ),
            "{authorization}"
        );
        // Worked out by hand (SigV4's steps in a few lines of Python) for this request.
        assert!(
            authorization.ends_with(
                "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, \
                 Signature=ed2f2c6c7b839f269dd8d8c85848da585adad0ef134772cc435c2d59184918cc"
            ),
            "{authorization}"
        );
        assert_eq!(header("x-amz-date"), "20261122T120000Z");
        assert_eq!(header("x-amz-security-token"), "session");
    }

    #[test]
    fn the_signature_covers_the_body_the_key_and_the_time() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let signature = |body: &str, credentials: &Credentials, time: SystemTime| {
            let mut signed = request(body);
            sign_v4(&mut signed, credentials, "eu-west-1", time).unwrap();
            let authorization = signed.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_owned();
            authorization
                .rsplit("Signature=")
                .next()
                .unwrap()
                .to_owned()
        };
        let base = signature(r#"{"on_hand":5}"#, &credentials, at_noon());
        assert_eq!(base, signature(r#"{"on_hand":5}"#, &credentials, at_noon()));
        assert_ne!(base, signature(r#"{"on_hand":6}"#, &credentials, at_noon()));
        let other = Credentials::new("AKIDEXAMPLE", "other", None, None, "test");
        assert_ne!(base, signature(r#"{"on_hand":5}"#, &other, at_noon()));
        assert_ne!(
            base,
            signature(
                r#"{"on_hand":5}"#,
                &credentials,
                at_noon() + Duration::from_secs(1)
            )
        );
    }

    #[test]
    fn the_region_is_read_from_an_api_gateway_url() {
        assert_eq!(
            region_of("https://abc123.execute-api.ap-southeast-1.amazonaws.com").as_deref(),
            Some("ap-southeast-1")
        );
        assert_eq!(region_of("https://api.shop.example/stockroom"), None);
        assert_eq!(region_of("http://127.0.0.1:3000"), None);
    }
}
