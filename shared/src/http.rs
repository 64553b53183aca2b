//! HTTP plumbing shared by the API functions: reading JSON bodies within limits,
//! writing JSON and problem responses, and telling who the caller is.

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::idempotency::{fingerprint, RecordedRequest, REPLAYED_HEADER};

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A parsed JSON body and the fingerprint of what was sent.
pub struct JsonBody<T> {
    pub value: T,
    pub fingerprint: String,
}

/// Reads the body as `T`: at most 64 KiB, valid JSON, the right shape.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<JsonBody<T>> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::InvalidRequest("a JSON body is required".into()));
    }
    let raw: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidRequest(format!("the body is not valid JSON: {e}")))?;
    if !raw.is_object() {
        return Err(Error::InvalidRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let value = serde_path_to_error::deserialize(&raw)
        .map_err(|e| Error::InvalidRequest(in_plain_words(&e)))?;
    Ok(JsonBody {
        value,
        fingerprint: fingerprint(&raw),
    })
}

/// A body that does not fit its type, said without the names of Rust types: serde's
/// own messages (`invalid type: string "1", expected u32`) become what the field must
/// be; the domain's messages are plain words already and only gain the field's path.
fn in_plain_words(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let message = e.inner().to_string();
    let within = |name: &str| match path.as_str() {
        "." => name.to_owned(),
        parent => format!("{parent}.{name}"),
    };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        return format!("field `{}` is required", within(name));
    }
    // A list where an object is expected fails on its length, not its type.
    if let Some((_, expected)) = message
        .strip_prefix("invalid length ")
        .and_then(|m| m.split_once(", expected "))
    {
        return format!(
            "field `{}` must be {}, not a list",
            if path == "." { "the body" } else { &path },
            json_kind(expected)
        );
    }
    let mismatch = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some(mismatch) = mismatch {
        let (got, expected) = mismatch
            .rsplit_once(", expected ")
            .unwrap_or((mismatch, ""));
        let field = if path == "." { "the body" } else { &path };
        return format!(
            "field `{field}` must be {}, not {}",
            json_kind(expected),
            json_kind(got)
        );
    }
    if path == "." || message.starts_with(&path) {
        message
    } else {
        format!("{message} (field `{path}`)")
    }
}

/// The JSON kind serde's description of a type or a value stands for.
fn json_kind(serde_words: &str) -> &'static str {
    let words = serde_words
        .trim_start_matches("a ")
        .trim_start_matches("an ");
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| words.starts_with(p));
    if starts(&["string", "borrowed string", "char"]) {
        "a string"
    } else if starts(&["integer", "floating point", "JSON number", "number"])
        || starts(&["u8", "u16", "u32", "u64", "u128", "usize"])
        || starts(&["i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64"])
    {
        "a number"
    } else if starts(&["boolean", "bool"]) {
        "true or false"
    } else if starts(&["sequence", "tuple", "array"]) || words.contains("elements") {
        "a list"
    } else if starts(&["map", "struct", "JSON object"]) {
        "an object"
    } else if starts(&["unit", "null", "option"]) {
        "null"
    } else {
        "another kind of value"
    }
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    raw_json(status, body, "application/json")
}

fn raw_json(status: u16, body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The response a recorded request got the first time, marked as a replay.
pub fn replay(recorded: RecordedRequest) -> Response<Body> {
    let mut response = raw_json(recorded.status, recorded.body, "application/json");
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// The RFC 9457 answer for an error, logged at a level that matches who is at fault.
pub fn problem(error: &Error) -> Response<Body> {
    let p = error.problem();
    if p.status < 500 {
        crate::metrics::count("Rejections", 1, &[("code", p.code)]);
    }
    if p.status >= 500 {
        tracing::error!(code = p.code, error = %error, "request failed");
    } else {
        tracing::info!(code = p.code, status = p.status, "request rejected");
    }
    let mut response = raw_json(p.status, p.body.to_string(), "application/problem+json");
    if let Some(seconds) = p.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = p.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// The span a request is handled in: its idempotency key (if any) goes on every log line.
pub fn request_span(req: &Request) -> tracing::Span {
    let key = req
        .headers()
        .get(crate::idempotency::HEADER)
        .or_else(|| req.headers().get(crate::idempotency::LEGACY_HEADER))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        idempotency_key = key
    )
}

/// Turns a handler's result into the response, whatever happened. Every 5xx is counted
/// (`ServerErrors` by route and code, and in total for the alarm).
pub fn respond(req: &Request, result: Result<Response<Body>>) -> Response<Body> {
    result.unwrap_or_else(|e| {
        let response = problem(&e);
        if response.status().is_server_error() {
            let code = e.problem().code;
            crate::metrics::count_with_total(
                "ServerErrors",
                1,
                &[("route", &route_label(req)), ("code", code)],
            );
        }
        response
    })
}

/// The route a request was for, ids replaced (`POST /orders/{id}/refunds`): a metric
/// dimension, so it never carries what a caller typed beyond the known route names.
pub fn route_label(req: &Request) -> String {
    const KNOWN: [&str; 6] = [
        "skus",
        "campaigns",
        "reservations",
        "orders",
        "adjustments",
        "refunds",
    ];
    let template: Vec<&str> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| match (i % 2, KNOWN.contains(&s)) {
            (0, true) => s,
            (0, false) => "{other}",
            _ => "{id}",
        })
        .collect();
    format!("{} /{}", req.method(), template.join("/"))
}

/// The path's segments, if it is spelled the one canonical way: a `/` before each
/// segment and none after the last (`/skus/tea`). Every other spelling (`/skus/tea/`,
/// `//skus/tea`, `/skus//tea`) is no route, so one request never has two scopes.
pub fn segments(req: &Request) -> Result<Vec<&str>> {
    let segments: Vec<&str> = match req.uri().path().strip_prefix('/') {
        Some(rest) => rest.split('/').collect(),
        None => Vec::new(),
    };
    if segments.is_empty() || segments.iter().any(|s| s.is_empty()) {
        return Err(route_not_found(req));
    }
    Ok(segments)
}

pub fn route_not_found(req: &Request) -> Error {
    Error::RouteNotFound {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
    }
}

pub fn method_not_allowed(req: &Request, allow: &[&'static str]) -> Error {
    Error::MethodNotAllowed {
        method: req.method().to_string(),
        allow: allow.to_vec(),
    }
}

pub fn is(req: &Request, method: &Method) -> bool {
    req.method() == method
}

/// Who is calling: the JWT subject or IAM principal API Gateway vouches for, or
/// `anonymous` where the route is open (locally, or with no authorizer configured).
pub fn caller(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    let from_context = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| {
            a.jwt
                .as_ref()
                .and_then(|jwt| jwt.claims.get("sub").cloned())
                .or_else(|| a.iam.as_ref().and_then(|iam| iam.user_arn.clone()))
        }),
        _ => None,
    };
    from_context.unwrap_or_else(|| "anonymous".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CampaignTerms, Lines};

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Reserve {
        lines: Lines,
        restock: Option<bool>,
    }

    fn detail<T: DeserializeOwned>(body: &str) -> String {
        let req = Request::new(Body::Text(body.to_owned()));
        match json_body::<T>(&req) {
            Err(Error::InvalidRequest(detail)) => detail,
            Err(other) => panic!("{body}: {other}"),
            Ok(_) => panic!("{body} was accepted"),
        }
    }

    #[test]
    fn body_errors_name_the_field_and_no_rust_type() {
        let cases = [
            (
                r#"{"lines": 1}"#,
                "field `lines` must be a list, not a number",
            ),
            (
                r#"{"lines": [1]}"#,
                "field `lines[0]` must be an object, not a number",
            ),
            (
                r#"{"lines": [{"sku": "a"}]}"#,
                "field `lines[0].quantity` is required",
            ),
            (
                r#"{"lines": [{"sku": "a", "quantity": "1"}]}"#,
                "field `lines[0].quantity` must be a number, not a string",
            ),
            (
                r#"{"lines": [{"sku": "a", "quantity": 0}]}"#,
                "quantity must be a whole number from 1 to 10000 (field `lines[0].quantity`)",
            ),
            (
                r#"{"lines": [{"sku": 7, "quantity": 1}]}"#,
                "field `lines[0].sku` must be a string, not a number",
            ),
            (
                r#"{"lines": [{"sku": "a", "quantity": 1}], "restock": "yes"}"#,
                "field `restock` must be true or false, not a string",
            ),
            (r#"{"lines": []}"#, "lines must hold 1 to 25 entries"),
            (
                r#"{"lines": null}"#,
                "field `lines` must be a list, not null",
            ),
            (r#"{}"#, "field `lines` is required"),
        ];
        for (body, expected) in cases {
            assert_eq!(detail::<Reserve>(body), expected, "{body}");
        }
        let campaign = r#"{"skus": ["a"], "starts_at": "0000-01-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z", "per_customer_limit": 1}"#;
        assert_eq!(
            detail::<CampaignTerms>(campaign),
            "timestamps must be RFC 3339 (like 2026-11-21T09:00:00Z) and from year 2000 to 2999 in UTC (field `starts_at`)"
        );
        assert_eq!(
            detail::<CampaignTerms>(r#"{"skus": {}}"#),
            "field `skus` must be a list, not an object"
        );
    }

    #[test]
    fn only_canonical_paths_have_segments() {
        let at = |path: &str| {
            let mut req = Request::new(Body::Empty);
            *req.uri_mut() = path.parse().unwrap();
            req
        };
        assert_eq!(segments(&at("/skus/tea")).unwrap(), ["skus", "tea"]);
        for other in ["/skus/tea/", "//skus/tea", "/skus//tea", "/", "//"] {
            assert!(
                matches!(segments(&at(other)), Err(Error::RouteNotFound { .. })),
                "{other}"
            );
        }
    }
}
