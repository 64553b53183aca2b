//! HTTP for the API functions. Each function declares its routes once, as `Routes`: the
//! list API Gateway must send to it and the axum router that serves them come from the
//! same calls. Requests are read by the extractors here (path ids, JSON bodies within
//! limits, idempotent POSTs) and every refusal is an RFC 9457 problem.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, MethodRouter};
use axum::{BoxError, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use lambda_http::tower::ServiceExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;
use ulid::Ulid;

use crate::api::Shown;
use crate::domain::{CampaignId, OrderId, ReservationId, Sku};
use crate::error::{Error, Problem, Result};
use crate::idempotency::{
    fingerprint, Answer, IdempotencyKey, Recorded, RequestKey, RouteScope, REPLAYED_HEADER,
};
use crate::identity::Principal;

pub use axum::response::Response;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One route as API Gateway names it: a method and a path template
/// (`POST /orders/{id}/refunds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A function's routes, each declared once with its handler. `S` is the handlers' state.
pub struct Routes<S = ()> {
    /// Per path template, the methods declared on it and their handlers.
    paths: BTreeMap<&'static str, (Vec<&'static str>, MethodRouter<S>)>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self {
            paths: BTreeMap::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("GET", MethodFilter::GET, path, handler)
    }

    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("PUT", MethodFilter::PUT, path, handler)
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("POST", MethodFilter::POST, path, handler)
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("DELETE", MethodFilter::DELETE, path, handler)
    }

    fn on<H: Handler<T, S>, T: 'static>(
        mut self,
        method: &'static str,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Self {
        let (mut methods, router) = self.paths.remove(path).unwrap_or_default();
        methods.push(method);
        self.paths
            .insert(path, (methods, router.on(filter, handler)));
        self
    }

    /// Every (method, path template) pair, in order.
    pub fn list(&self) -> Vec<Route> {
        let mut routes: Vec<Route> = self
            .paths
            .iter()
            .flat_map(|(path, (methods, _))| methods.iter().map(|method| Route { method, path }))
            .collect();
        routes.sort();
        routes
    }

    /// The same routes with their handlers given `state`.
    pub fn with_state<S2>(self, state: S) -> Routes<S2> {
        Routes {
            paths: self
                .paths
                .into_iter()
                .map(|(path, (methods, router))| {
                    (path, (methods, router.with_state(state.clone())))
                })
                .collect(),
        }
    }

    /// The routes of both (the local server serves every function's at once).
    pub fn merge(mut self, other: Routes<S>) -> Self {
        for (path, (methods, router)) in other.paths {
            let (mut all, mine) = self.paths.remove(path).unwrap_or_default();
            all.extend(methods);
            self.paths.insert(path, (all, mine.merge(router)));
        }
        self
    }
}

/// What a function does with the requests its routes have read.
pub trait Serve<C>: Send + Sync + 'static {
    fn serve(&self, call: C) -> impl Future<Output = Result<Response>> + Send;
}

/// Serves nothing: keeps the call its routes read, for `parse`.
pub struct Capture<C>(Mutex<Option<C>>);

impl<C: Send + 'static> Serve<C> for Capture<C> {
    async fn serve(&self, call: C) -> Result<Response> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(call);
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

/// A request its routes accepted, before anything was read or written.
pub struct Parsed<C> {
    pub call: C,
    /// The route it was for, with its ids as sent.
    pub scope: RouteScope,
}

/// What `routes` make of `req` when nothing is behind them: the call, or the problem the
/// request is refused with. The router, its checks and its extractors are those a
/// function runs in Lambda; tests drive them with this.
pub async fn parse<C, B>(
    routes: Routes<Arc<Capture<C>>>,
    req: axum::http::Request<B>,
) -> std::result::Result<Parsed<C>, Problem>
where
    C: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let capture = Arc::new(Capture(Mutex::new(None)));
    let scope = Arc::new(Mutex::new(None));
    let seen = scope.clone();
    let router = api(routes.with_state(capture.clone())).layer(middleware::from_fn(
        move |req: Request, next: Next| {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = route_scope(&req).ok();
                next.run(req).await
            }
        },
    ));
    let response = match router.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let call = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let scope = scope.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (call, scope) {
        (Some(call), Some(scope)) => Ok(Parsed { call, scope }),
        _ => Err(response
            .extensions()
            .get::<Problem>()
            .cloned()
            .unwrap_or_else(|| {
                Error::Config(format!("a {} answer without a problem", response.status())).problem()
            })),
    }
}

/// The router that serves `routes` as API Gateway and the function would together:
/// only the canonical spelling of a path is routed, an undeclared path is a
/// `route_not_found` problem, a method a path does not declare is `method_not_allowed`
/// with `Allow`, every request has its span and every 5xx is counted by route and code.
pub fn api(routes: Routes) -> Router {
    let mut router = Router::new();
    for (path, (mut methods, handlers)) in routes.paths {
        methods.sort_unstable();
        let refuse = move |method: Method| {
            let allow = methods.clone();
            async move {
                Error::MethodNotAllowed {
                    method: method.to_string(),
                    allow,
                }
            }
        };
        // axum would answer HEAD with the GET handler; API Gateway routes only what
        // the template declares.
        router = router.route(
            path,
            handlers
                .on(MethodFilter::HEAD, refuse.clone())
                .fallback(refuse),
        );
    }
    router
        .fallback(|req: Request| async move { route_not_found(&req) })
        .layer(middleware::from_fn(canonical_paths_only))
        .layer(middleware::from_fn(observe))
}

/// Whether `path` is spelled the one canonical way: a `/` before each segment and none
/// after the last (`/skus/tea`). Every other spelling (`/skus/tea/`, `//skus/tea`,
/// `/skus//tea`) is no route, so one request never has two scopes.
pub fn is_canonical(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(|segment| !segment.is_empty()))
}

async fn canonical_paths_only(req: Request, next: Next) -> Response {
    if is_canonical(req.uri().path()) {
        next.run(req).await
    } else {
        route_not_found(&req).into_response()
    }
}

/// The request's span (its idempotency key goes on every log line), and the count of
/// every 5xx (`ServerErrors` by route template and code, and in total for the alarm).
async fn observe(req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(template) => format!("{} {}", req.method(), template.as_str()),
        None => format!("{} (no route)", req.method()),
    };
    let key = req
        .headers()
        .get(crate::idempotency::HEADER)
        .or_else(|| req.headers().get(crate::idempotency::LEGACY_HEADER))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        idempotency_key = key
    );
    let response = next.run(req).instrument(span).await;
    if response.status().is_server_error() {
        let code = response
            .extensions()
            .get::<Problem>()
            .map_or("unknown", |p| p.code);
        crate::metrics::count_with_total("ServerErrors", 1, &[("route", &route), ("code", code)]);
    }
    response
}

fn route_not_found<B>(req: &axum::http::Request<B>) -> Error {
    Error::RouteNotFound {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
    }
}

/// The ids in `path` where `template` has a `{…}` segment, as sent (not
/// percent-decoded: an id has one spelling, and each id type's `parse` decides).
fn path_ids<'a>(template: &str, path: &'a str) -> Vec<&'a str> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter(|(part, _)| part.starts_with('{'))
        .map(|(_, id)| id)
        .collect()
}

/// The path template the router matched (`/skus/{sku}`).
fn template(extensions: &Extensions) -> Result<&str> {
    extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .ok_or_else(|| Error::Config("a route's extractor ran outside its route".into()))
}

/// The route a request was for: its template with the ids as sent.
fn route_scope<B>(req: &axum::http::Request<B>) -> Result<RouteScope> {
    let template = template(req.extensions())?;
    Ok(scope_of(req.method(), template, req.uri().path()))
}

fn scope_of(method: &Method, template: &str, path: &str) -> RouteScope {
    RouteScope::new(&format!("{method} {template}"), &path_ids(template, path))
}

/// An id that can be a path segment, refused as its type is.
pub trait PathId: Sized {
    fn from_path(segment: &str) -> Result<Self>;
}

impl PathId for Sku {
    fn from_path(segment: &str) -> Result<Self> {
        Ok(Sku::parse(segment)?)
    }
}

impl PathId for CampaignId {
    fn from_path(segment: &str) -> Result<Self> {
        Ok(CampaignId::parse(segment)?)
    }
}

/// An id that cannot exist is simply not found.
impl PathId for ReservationId {
    fn from_path(segment: &str) -> Result<Self> {
        ReservationId::parse(segment).map_err(|_| Error::ReservationNotFound(segment.to_owned()))
    }
}

/// An id that cannot exist is simply not found.
impl PathId for OrderId {
    fn from_path(segment: &str) -> Result<Self> {
        OrderId::parse(segment).map_err(|_| Error::OrderNotFound(segment.to_owned()))
    }
}

/// The id in the route's one `{…}` segment.
pub struct Id<T>(pub T);

impl<S: Send + Sync, T: PathId> FromRequestParts<S> for Id<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        let template = template(&parts.extensions)?;
        match path_ids(template, parts.uri.path())[..] {
            [id] => T::from_path(id).map(Id),
            _ => Err(Error::Config(format!("{template} has not one id"))),
        }
    }
}

/// The query string read into `T`: an unknown, repeated or malformed parameter is a 400.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Query)
            .map_err(|e| Error::InvalidRequest(format!("query: {e}")))
    }
}

/// A JSON body of type `T`: at most 64 KiB, valid JSON, an object, the right shape.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        let (value, _) = decode(&read(req.into_body()).await?)?;
        Ok(Json(value))
    }
}

/// An idempotent JSON POST, checked: its `Idempotency-Key`, its JSON body (as `Json`)
/// and the body's fingerprint, and the id of the record it creates, derived from the
/// route (template and ids), the caller and the key, so that every retry derives it again.
pub struct Idempotent<T> {
    pub body: T,
    pub fingerprint: String,
    pub id: Ulid,
}

impl<T> Idempotent<T> {
    /// The same request with its body checked further.
    pub fn try_map<U>(self, check: impl FnOnce(T) -> Result<U>) -> Result<Idempotent<U>> {
        Ok(Idempotent {
            body: check(self.body)?,
            fingerprint: self.fingerprint,
            id: self.id,
        })
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Idempotent<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        let key = IdempotencyKey::from_headers(req.headers())?;
        let scope = route_scope(&req)?;
        let (parts, body) = req.into_parts();
        let caller = principal(&parts)?.scope();
        let (body, fingerprint) = decode(&read(body).await?)?;
        let id = RequestKey {
            route: &scope,
            caller: &caller,
            key: &key,
        }
        .derive();
        Ok(Self {
            body,
            fingerprint,
            id,
        })
    }
}

/// The body's bytes, at most 64 KiB of them.
async fn read(body: Body) -> Result<Bytes> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Err(e) => Err(Error::InvalidRequest(format!(
            "the body could not be read: {e}"
        ))),
    }
}

/// `bytes` as `T` (valid JSON, an object, the right shape), and their fingerprint.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, String)> {
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
    Ok((value, fingerprint(&raw)))
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

/// Who is calling, as the authorizer vouched for it; no authorizer context means no
/// verified caller (API Gateway lets no such request through to a function).
fn principal(parts: &Parts) -> Result<Principal> {
    use lambda_http::RequestExt;
    let found = match parts.request_context_ref() {
        Some(context) => Principal::from_context(context)?,
        None => None,
    };
    found.ok_or_else(|| {
        Error::Unauthorized("this route needs a verified caller: send a bearer token".into())
    })
}

/// The verified caller of a customer route.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        principal(parts)
    }
}

/// The verified caller of a stock admin route: an IAM principal, nothing else.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        match principal(parts)? {
            iam @ Principal::Iam { .. } => Ok(Admin(iam)),
            Principal::Token { .. } => Err(Error::Forbidden(
                "the stock admin routes are for back-office systems signing with IAM".into(),
            )),
        }
    }
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    raw_json(status, body, "application/json")
}

/// What a request answers when it takes effect; a `201` carries `Location`, where what
/// it created is read.
pub fn answer<T: Shown>(answer: Answer, location: &str, value: &T) -> Response {
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::OK);
    with_location(json(status, &value.shown()), answer, location)
}

/// `200 OK` with the value as the API shows it.
pub fn shown<T: Shown>(value: &T) -> Response {
    json(StatusCode::OK, &value.shown())
}

fn with_location(mut response: Response, answer: Answer, location: &str) -> Response {
    if let (Answer::Created, Ok(location)) = (answer, HeaderValue::from_str(location)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn raw_json(status: StatusCode, body: String, content_type: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The answer of a request that took effect now, or its first answer again, marked as a
/// replay (a `201` with its `Location` again).
pub fn recorded<T: Shown>(recorded: Recorded<T>, location: &str) -> Response {
    match recorded {
        Recorded::Created(first, value) => answer(first, location, &value),
        Recorded::Replayed(first) => {
            let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
            let mut response = raw_json(status, first.body, "application/json");
            response
                .headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            match status {
                StatusCode::CREATED => with_location(response, Answer::Created, location),
                _ => response,
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        problem(&self)
    }
}

/// The RFC 9457 answer for an error, logged at a level that matches who is at fault.
/// The problem rides along in the response's extensions, for the 5xx count and `parse`.
pub fn problem(error: &Error) -> Response {
    let p = error.problem();
    if p.status < 500 {
        crate::metrics::count("Rejections", 1, &[("code", p.code)]);
        tracing::info!(code = p.code, status = p.status, "request rejected");
    } else {
        tracing::error!(code = p.code, error = %error, "request failed");
    }
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = raw_json(status, p.body.to_string(), "application/problem+json");
    if let Some(seconds) = p.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = p
        .allow
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response.extensions_mut().insert(p);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CampaignTerms, Lines};
    use crate::idempotency::RecordedRequest;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Reserve {
        lines: Lines,
        restock: Option<bool>,
    }

    fn detail<T: DeserializeOwned>(body: &str) -> String {
        match decode::<T>(body.as_bytes()) {
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

    #[tokio::test]
    async fn every_5xx_is_counted_by_route_template_and_code_and_in_total() {
        async fn failing() -> Result<Response> {
            Err(Error::Store {
                message: "dispatch failure: secret".into(),
                retryable: false,
            })
        }
        async fn refusing() -> Result<Response> {
            Err(Error::SkuNotFound(
                crate::domain::Sku::parse("tea").unwrap(),
            ))
        }
        let router = api(Routes::new()
            .get("/things/{id}", failing)
            .get("/others/{id}", refusing));
        let send = |path: &str| {
            let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
            router.clone().oneshot(request)
        };
        let counted = || {
            crate::metrics::COUNTED
                .lock()
                .unwrap()
                .iter()
                .filter(|(name, _, _)| name == "ServerErrors")
                .cloned()
                .collect::<Vec<_>>()
        };
        let before = counted().len();
        let answer = send("/others/x").await.unwrap();
        assert_eq!(answer.status(), 404);
        assert_eq!(counted().len(), before, "a 4xx is not a server error");
        let answer = send("/things/x-1").await.unwrap();
        assert_eq!(answer.status(), 500);
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
        let after = counted();
        let (_, dimensions, total) = after.last().expect("the 500 was counted");
        assert_eq!(after.len(), before + 1);
        assert!(*total, "counted into the total the alarm watches");
        assert_eq!(
            dimensions,
            &vec![
                ("route".to_owned(), "GET /things/{id}".to_owned()),
                ("code".to_owned(), "internal_error".to_owned())
            ]
        );
    }

    #[test]
    fn only_canonical_paths_are_routed() {
        assert!(is_canonical("/skus/tea"));
        for other in ["/skus/tea/", "//skus/tea", "/skus//tea", "/", "//", ""] {
            assert!(!is_canonical(other), "{other}");
        }
    }

    /// A route table like a function's: `GET`/`PUT` on `/things/{id}`.
    fn things() -> Routes<Arc<Capture<String>>> {
        use axum::extract::State;
        let read = |State(h): State<Arc<Capture<String>>>, Id(id): Id<Sku>| async move {
            h.serve(id.as_str().to_owned()).await
        };
        Routes::new()
            .get("/things/{id}", read)
            .put("/things/{id}", read)
    }

    fn refusal(method: Method, path: &str) -> Problem {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        match futures::executor::block_on(parse(things(), req)) {
            Ok(parsed) => panic!("{path} was read as {}", parsed.call),
            Err(problem) => problem,
        }
    }

    #[test]
    fn routes_list_what_they_serve() {
        let list: Vec<String> = things().list().iter().map(Route::to_string).collect();
        assert_eq!(list, ["GET /things/{id}", "PUT /things/{id}"]);
    }

    #[test]
    fn undeclared_methods_and_paths_are_problems() {
        for method in [Method::PATCH, Method::HEAD, Method::POST] {
            let p = refusal(method.clone(), "/things/a");
            assert_eq!((p.status, p.code), (405, "method_not_allowed"), "{method}");
            assert_eq!(p.allow.as_deref(), Some("GET, PUT"));
        }
        for path in [
            "/things",
            "/things/a/",
            "//things/a",
            "/things//a",
            "/other/a",
            "/",
        ] {
            let p = refusal(Method::GET, path);
            assert_eq!((p.status, p.code), (404, "route_not_found"), "{path}");
        }
        let p = refusal(Method::GET, "/things/a%20b");
        assert_eq!((p.status, p.code), (400, "invalid_request"));
        let req = axum::http::Request::get("/things/a")
            .body(Body::empty())
            .unwrap();
        let parsed = futures::executor::block_on(parse(things(), req))
            .ok()
            .unwrap();
        assert_eq!(parsed.call, "a");
        assert_eq!(parsed.scope.as_str(), "GET /things/a");
    }

    /// Anything the API shows as "x".
    struct Thing;

    impl Shown for Thing {
        type Body = &'static str;
        fn shown(&self) -> &'static str {
            "x"
        }
    }

    #[test]
    fn a_replayed_201_names_what_it_created_again() {
        let first = |status| {
            Recorded::<Thing>::Replayed(RecordedRequest {
                fingerprint: "f".into(),
                status,
                body: "{}".into(),
            })
        };
        let location = |r: &Response| r.headers().get(header::LOCATION).cloned();
        let again = recorded(first(201), "/orders/ord_1");
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(location(&again).unwrap(), "/orders/ord_1");
        assert_eq!(again.headers()[REPLAYED_HEADER], "true");
        let accepted = recorded(first(202), "/x");
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);
        assert_eq!(location(&accepted), None);
        let created = answer(Answer::Created, "/skus/tea", &Thing);
        assert_eq!(location(&created).unwrap(), "/skus/tea");
        assert!(created.headers().get(REPLAYED_HEADER).is_none());
        assert_eq!(location(&answer(Answer::Ok, "/skus/tea", &Thing)), None);
    }

    #[test]
    fn ids_are_read_as_sent() {
        assert_eq!(
            path_ids("/orders/{id}/refunds", "/orders/ord_1/refunds"),
            ["ord_1"]
        );
        assert_eq!(path_ids("/skus/{sku}", "/skus/t%65a"), ["t%65a"]);
        assert!(path_ids("/orders", "/orders").is_empty());
        assert_eq!(
            scope_of(
                &Method::POST,
                "/orders/{id}/refunds",
                "/orders/ord_1/refunds"
            )
            .as_str(),
            "POST /orders/ord_1/refunds"
        );
    }
}
