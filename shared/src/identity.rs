//! Who is calling, as API Gateway's authorizer vouches for it (and, locally, the local
//! gateway, which fills in the same request context): the JWT's issuer, subject and
//! groups on the customer routes, the IAM principal on the stock admin routes.

use lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use lambda_http::request::RequestContext;

use crate::domain::CustomerId;
use crate::error::{Error, Result};

/// The Cognito group, or OAuth scope, that makes a token's subject staff.
pub const STAFF_GROUP: &str = "staff";
pub const STAFF_SCOPE: &str = "stockroom/staff";

/// A caller the authorizer verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A JWT's subject: a customer, or staff who may act for any customer.
    Token {
        issuer: String,
        subject: CustomerId,
        staff: bool,
    },
    /// An IAM principal: the role (without the session name, so that a retry from a new
    /// session is the same caller) or user.
    Iam { arn: String },
}

/// On whose behalf a use case acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acting {
    /// A customer: only for themselves, only on what is theirs.
    Customer(CustomerId),
    /// Staff or a back-office system: for anyone, on everything.
    Staff,
}

impl Acting {
    /// Whether a hold or order of `owner` is visible to this caller.
    pub fn may_see(&self, owner: Option<&CustomerId>) -> bool {
        match self {
            Acting::Customer(me) => owner == Some(me),
            Acting::Staff => true,
        }
    }

    /// The customer a request is for: a customer's own id (a body `customer_id` must be
    /// theirs); staff name anyone, or no one.
    pub fn customer(&self, named: Option<CustomerId>) -> Result<Option<CustomerId>> {
        match (self, named) {
            (Acting::Customer(me), None) => Ok(Some(me.clone())),
            (Acting::Customer(me), Some(named)) if named == *me => Ok(Some(named)),
            (Acting::Customer(_), Some(_)) => Err(Error::Forbidden(
                "a customer acts only for themselves: customer_id must be the token's subject"
                    .into(),
            )),
            (Acting::Staff, named) => Ok(named),
        }
    }
}

impl Principal {
    /// The caller the request context names, if an authorizer vouched for one.
    pub fn from_context(context: &RequestContext) -> Result<Option<Self>> {
        let RequestContext::ApiGatewayV2(context) = context else {
            return Ok(None);
        };
        context
            .authorizer
            .as_ref()
            .map(Self::from_authorizer)
            .transpose()
            .map(Option::flatten)
    }

    fn from_authorizer(authorizer: &ApiGatewayRequestAuthorizer) -> Result<Option<Self>> {
        if let Some(jwt) = &authorizer.jwt {
            let claim = |name: &str| jwt.claims.get(name).map(String::as_str);
            let (Some(issuer), Some(subject)) = (claim("iss"), claim("sub")) else {
                return Err(Error::Unauthorized(
                    "the token names no issuer or subject".into(),
                ));
            };
            let subject = CustomerId::parse(subject).map_err(|_| {
                Error::Unauthorized("the token's subject is not a customer id".into())
            })?;
            let in_group =
                claim("cognito:groups").is_some_and(|groups| listed(groups, STAFF_GROUP));
            let in_claimed_scope = claim("scope").is_some_and(|scopes| listed(scopes, STAFF_SCOPE));
            let in_scopes = jwt
                .scopes
                .iter()
                .flatten()
                .any(|scope| scope == STAFF_SCOPE);
            return Ok(Some(Principal::Token {
                issuer: issuer.to_owned(),
                subject,
                staff: in_group || in_claimed_scope || in_scopes,
            }));
        }
        Ok(authorizer
            .iam
            .as_ref()
            .and_then(|iam| iam.user_arn.as_deref())
            .map(|arn| Principal::Iam {
                arn: without_session(arn),
            }))
    }

    /// What idempotency records are scoped by: the same for every retry of this caller.
    pub fn scope(&self) -> String {
        match self {
            Principal::Token {
                issuer, subject, ..
            } => format!("jwt {issuer} {}", subject.as_str()),
            Principal::Iam { arn } => format!("iam {arn}"),
        }
    }

    /// On whose behalf a customer route acts for this caller.
    pub fn acting(&self) -> Acting {
        match self {
            Principal::Token {
                subject,
                staff: false,
                ..
            } => Acting::Customer(subject.clone()),
            Principal::Token { staff: true, .. } | Principal::Iam { .. } => Acting::Staff,
        }
    }
}

/// Whether `item` is one of `list`, as API Gateway passes a list claim: `[a b]`, a JSON
/// array, or words separated by spaces (an OAuth `scope`).
fn listed(list: &str, item: &str) -> bool {
    list.trim_matches(['[', ']'])
        .split([' ', ','])
        .map(|word| word.trim_matches('"'))
        .any(|word| word == item)
}

/// An assumed role's ARN without its session name; any other ARN as it is.
fn without_session(arn: &str) -> String {
    match arn.split_once(":assumed-role/") {
        Some((account, rest)) => match rest.split_once('/') {
            Some((role, _session)) => format!("{account}:assumed-role/{role}"),
            None => arn.to_owned(),
        },
        None => arn.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizerIamDescription, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };

    fn jwt(claims: &[(&str, &str)], scopes: Option<Vec<&str>>) -> RequestContext {
        let mut description = ApiGatewayRequestAuthorizerJwtDescription::default();
        description.claims = claims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        description.scopes = scopes.map(|s| s.into_iter().map(String::from).collect());
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(description);
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.authorizer = Some(authorizer);
        RequestContext::ApiGatewayV2(context)
    }

    fn iam(arn: &str) -> RequestContext {
        let mut description = ApiGatewayRequestAuthorizerIamDescription::default();
        description.user_arn = Some(arn.into());
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.iam = Some(description);
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.authorizer = Some(authorizer);
        RequestContext::ApiGatewayV2(context)
    }

    fn principal(context: RequestContext) -> Principal {
        Principal::from_context(&context).unwrap().unwrap()
    }

    #[test]
    fn a_token_names_a_customer_or_staff() {
        let customer = principal(jwt(&[("iss", "https://idp"), ("sub", "c-1")], None));
        assert_eq!(
            customer.acting(),
            Acting::Customer(CustomerId::parse("c-1").unwrap())
        );
        assert_eq!(customer.scope(), "jwt https://idp c-1");
        for staff in [
            jwt(
                &[
                    ("iss", "i"),
                    ("sub", "s"),
                    ("cognito:groups", "[buyers staff]"),
                ],
                None,
            ),
            jwt(
                &[
                    ("iss", "i"),
                    ("sub", "s"),
                    ("cognito:groups", r#"["staff"]"#),
                ],
                None,
            ),
            jwt(
                &[
                    ("iss", "i"),
                    ("sub", "s"),
                    ("scope", "openid stockroom/staff"),
                ],
                None,
            ),
            jwt(&[("iss", "i"), ("sub", "s")], Some(vec!["stockroom/staff"])),
        ] {
            assert_eq!(principal(staff).acting(), Acting::Staff);
        }
        let not_staff = jwt(
            &[("iss", "i"), ("sub", "s"), ("cognito:groups", "[staffing]")],
            None,
        );
        assert!(matches!(principal(not_staff).acting(), Acting::Customer(_)));
    }

    #[test]
    fn a_token_without_issuer_or_a_usable_subject_is_refused() {
        for claims in [
            vec![("sub", "c-1")],
            vec![("iss", "i")],
            vec![("iss", "i"), ("sub", "two words")],
        ] {
            let e = Principal::from_context(&jwt(&claims, None)).unwrap_err();
            assert!(matches!(e, Error::Unauthorized(_)), "{claims:?}");
        }
    }

    #[test]
    fn a_role_is_the_same_caller_from_any_session() {
        let a = principal(iam("arn:aws:sts::123:assumed-role/ops/session-a"));
        let b = principal(iam("arn:aws:sts::123:assumed-role/ops/session-b"));
        assert_eq!(a.scope(), b.scope());
        assert_eq!(a.scope(), "iam arn:aws:sts::123:assumed-role/ops");
        let user = principal(iam("arn:aws:iam::123:user/deploy"));
        assert_eq!(user.scope(), "iam arn:aws:iam::123:user/deploy");
        assert_eq!(user.acting(), Acting::Staff);
    }

    #[test]
    fn no_authorizer_is_no_principal() {
        let context = RequestContext::ApiGatewayV2(ApiGatewayV2httpRequestContext::default());
        assert_eq!(Principal::from_context(&context).unwrap(), None);
    }

    #[test]
    fn a_customer_acts_only_for_themselves_and_sees_only_their_own() {
        let me = CustomerId::parse("me").unwrap();
        let other = CustomerId::parse("other").unwrap();
        let customer = Acting::Customer(me.clone());
        assert_eq!(customer.customer(None).unwrap(), Some(me.clone()));
        assert_eq!(
            customer.customer(Some(me.clone())).unwrap(),
            Some(me.clone())
        );
        assert!(matches!(
            customer.customer(Some(other.clone())),
            Err(Error::Forbidden(_))
        ));
        assert!(customer.may_see(Some(&me)));
        assert!(!customer.may_see(Some(&other)) && !customer.may_see(None));
        assert_eq!(
            Acting::Staff.customer(Some(other.clone())).unwrap(),
            Some(other.clone())
        );
        assert_eq!(Acting::Staff.customer(None).unwrap(), None);
        assert!(Acting::Staff.may_see(None) && Acting::Staff.may_see(Some(&other)));
    }
}
