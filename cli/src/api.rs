//! The stockroom API as the operator's tools call it: how a call ends (`CliError`, `Exit`)
//! and the one client every command shares.

use std::time::Duration;

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
    #[error("the API refused this caller ({status} {code}); pass an admin token with --token (`./infra/token admin` for the local run)")]
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

/// The stock admin API at `base`, called with `token` as a bearer token when given.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// An answer: its status and JSON body (`Null` when it has none).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
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
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            cause: e.to_string(),
        })?;
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
