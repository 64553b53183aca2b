//! What API Gateway does in front of the functions, for the local run: a customer route
//! lets a request through only with a bearer JWT that verifies (signature, `exp`, `iss`,
//! `aud`), a stock admin route only with an admin token (standing in for IAM SigV4), and
//! the request reaches the function with the authorizer context API Gateway would give
//! it (payload 2.0). Anything else is refused here and never reaches a function.
//! Requests for no declared route pass through: the functions' router answers them.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerIamDescription,
    ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use serde_json::{Map, Value};
use stockroom::http::Route;
use stockroom::Error;

use crate::server::Function;
use crate::tokens::{self, SigningKey};

/// The account the local run pretends to be.
pub const ACCOUNT_ID: &str = "000000000000";
/// The role an admin token stands for; its subject is the session name.
pub const ADMIN_ROLE: &str = "stockroom-admin";
/// The unique id IAM gives that role (`caller_id` is it, a colon, and the session name).
const ADMIN_ROLE_ID: &str = "AROALOCALSTOCKROOMADMIN";

/// How API Gateway authorizes a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorizer {
    /// The JWT authorizer of the customer routes.
    Jwt,
    /// IAM, on the stock admin routes.
    Iam,
}

/// The local API Gateway: the routes, how each is authorized, and the signing key.
#[derive(Debug)]
pub struct Gateway {
    key: SigningKey,
    routes: Vec<(Route, Authorizer)>,
}

impl Gateway {
    /// A gateway in front of every API function's routes, verifying tokens `key` signed.
    pub fn new(key: SigningKey) -> Arc<Self> {
        let routes = Function::ALL
            .into_iter()
            .flat_map(|function| {
                let authorizer = match function {
                    Function::StockAdmin => Authorizer::Iam,
                    _ => Authorizer::Jwt,
                };
                function.routes().into_iter().map(move |r| (r, authorizer))
            })
            .collect();
        Arc::new(Gateway { key, routes })
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// `router` behind this gateway.
    pub fn guard(self: &Arc<Self>, router: axum::Router) -> axum::Router {
        let gateway = self.clone();
        router.layer(middleware::from_fn(move |req: Request, next: Next| {
            let gateway = gateway.clone();
            async move { gateway.admit(req, next).await }
        }))
    }

    /// The declared route `method` `path` is for, and its authorizer.
    pub fn route(&self, method: &str, path: &str) -> Option<(Route, Authorizer)> {
        self.routes
            .iter()
            .find(|(route, _)| route.method == method && matches(route.path, path))
            .copied()
    }

    async fn admit(&self, mut req: Request, next: Next) -> Response {
        let Some((route, authorizer)) = self.route(req.method().as_str(), req.uri().path()) else {
            return next.run(req).await;
        };
        let authorized = match authorizer {
            Authorizer::Jwt => self.jwt(req.headers()),
            Authorizer::Iam => self.iam(req.headers()),
        };
        match authorized {
            Ok(authorizer) => {
                let context = context(route, req.uri().path(), authorizer);
                req.extensions_mut()
                    .insert(RequestContext::ApiGatewayV2(context));
                next.run(req).await
            }
            Err(refusal) => refusal.into_response(),
        }
    }

    fn jwt(&self, headers: &HeaderMap) -> Result<ApiGatewayRequestAuthorizer, Error> {
        let claims = tokens::verify(&self.key, bearer(headers)?, tokens::AUDIENCE)
            .map_err(|refused| Error::Unauthorized(refused.0))?;
        Ok(jwt_authorizer(&claims))
    }

    fn iam(&self, headers: &HeaderMap) -> Result<ApiGatewayRequestAuthorizer, Error> {
        let token = bearer(headers)?;
        match tokens::verify(&self.key, token, tokens::ADMIN_AUDIENCE) {
            Ok(claims) => Ok(iam_authorizer(
                claims.get("sub").and_then(Value::as_str).unwrap_or("admin"),
            )),
            Err(refused) => match tokens::verify(&self.key, token, tokens::AUDIENCE) {
                Ok(_) => Err(Error::Forbidden(
                    "the stock admin routes are for back-office systems: use an admin token".into(),
                )),
                Err(_) => Err(Error::Unauthorized(refused.0)),
            },
        }
    }
}

/// Whether `path` is an instance of the template `template` (`/orders/{id}/refunds`).
fn matches(template: &str, path: &str) -> bool {
    let (mut template, mut path) = (template.split('/'), path.split('/'));
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t.starts_with('{') && !p.is_empty() => {}
            (Some(t), Some(p)) if t == p => {}
            _ => return false,
        }
    }
}

/// The bearer token of the `Authorization` header.
fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("send Authorization: Bearer <token>".into()))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Error::Unauthorized("the Authorization header is not Bearer <token>".into()))
}

/// A claim's value as API Gateway passes it to a function: a string as it is, a list as
/// `[a b]`, anything else as its JSON text (numbers `1700000000`, `true`).
pub fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_text).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// The JWT authorizer's context: every claim as text, and the token's scopes (its
/// `scope` claim, split), none when it has none.
pub fn jwt_authorizer(claims: &Map<String, Value>) -> ApiGatewayRequestAuthorizer {
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims
        .iter()
        .map(|(name, value)| (name.clone(), claim_text(value)))
        .collect();
    jwt.scopes = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|scopes| scopes.split_whitespace().map(str::to_owned).collect());
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    authorizer
}

/// The IAM context of the admin role assumed in session `session`.
pub fn iam_authorizer(session: &str) -> ApiGatewayRequestAuthorizer {
    let mut iam = ApiGatewayRequestAuthorizerIamDescription::default();
    iam.access_key = Some("ASIALOCALSTOCKROOM00".into());
    iam.account_id = Some(ACCOUNT_ID.into());
    iam.caller_id = Some(format!("{ADMIN_ROLE_ID}:{session}"));
    iam.user_id = Some(format!("{ADMIN_ROLE_ID}:{session}"));
    iam.user_arn = Some(format!(
        "arn:aws:sts::{ACCOUNT_ID}:assumed-role/{ADMIN_ROLE}/{session}"
    ));
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.iam = Some(iam);
    authorizer
}

/// The request context API Gateway gives a request for `route`.
fn context(
    route: Route,
    path: &str,
    authorizer: ApiGatewayRequestAuthorizer,
) -> ApiGatewayV2httpRequestContext {
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route.to_string());
    context.account_id = Some(ACCOUNT_ID.into());
    context.stage = Some("$default".into());
    context.request_id = Some(ulid::Ulid::generate().to_string());
    context.apiid = Some("local".into());
    context.time_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    context.http.method = route.method.parse().unwrap_or_default();
    context.http.path = Some(path.to_owned());
    context.authorizer = Some(authorizer);
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_reach_the_function_as_api_gateway_passes_them() {
        let claims = json!({"sub": "sam", "exp": 1700000000, "cognito:groups": ["staff", "ops"], "scope": "a b"});
        let authorizer = jwt_authorizer(claims.as_object().unwrap());
        let jwt = authorizer.jwt.unwrap();
        assert_eq!(jwt.claims["sub"], "sam");
        assert_eq!(jwt.claims["exp"], "1700000000");
        assert_eq!(jwt.claims["cognito:groups"], "[staff ops]");
        assert_eq!(jwt.scopes, Some(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn routes_are_found_by_template_and_only_canonical_paths_match() {
        let gateway = Gateway::new(SigningKey::generate());
        let found = |m, p| gateway.route(m, p).map(|(r, a)| (r.to_string(), a));
        assert_eq!(
            found("POST", "/orders/o-1/refunds"),
            Some(("POST /orders/{id}/refunds".into(), Authorizer::Jwt))
        );
        assert_eq!(
            found("GET", "/skus/tea").map(|f| f.1),
            Some(Authorizer::Iam)
        );
        assert_eq!(found("GET", "/skus/tea/"), None);
        assert_eq!(found("GET", "/skus//tea"), None);
        assert_eq!(found("GET", "/openapi.json"), None);
        assert_eq!(found("HEAD", "/skus/tea"), None);
    }
}
