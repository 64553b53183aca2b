//! The one error type of stockroom and its one mapping to RFC 9457 problems.

use serde_json::{json, Map, Value};

use crate::domain::{CampaignId, Invalid, ReservationId, ReservationStatus, Sku};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("this request needs an Idempotency-Key header of 1 to 255 visible ASCII characters")]
    IdempotencyKeyRequired,
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    RequestInProgress,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("{method} is not allowed here; allowed: {}", allow.join(", "))]
    MethodNotAllowed {
        method: String,
        allow: Vec<&'static str>,
    },
    #[error("sku {0} does not exist")]
    SkuNotFound(Sku),
    #[error("not enough stock of sku {sku}")]
    InsufficientStock { sku: Sku },
    #[error("reservation {0} does not exist")]
    ReservationNotFound(String),
    #[error("reservation {0} is already committed to an order")]
    ReservationCommitted(ReservationId),
    #[error("reservation {0} has expired")]
    ReservationExpired(ReservationId),
    #[error("reservation {id} is {}, not HELD", status.as_str())]
    ReservationNotHeld {
        id: ReservationId,
        status: ReservationStatus,
    },
    #[error("order {0} does not exist")]
    OrderNotFound(String),
    #[error("{}", match sku {
        Some(sku) => format!("the refund asks for more of sku {sku} than the order has left to refund"),
        None => "nothing is left to refund on this order".to_owned(),
    })]
    RefundExceedsOrder { sku: Option<Sku> },
    #[error("campaign {0} does not exist")]
    CampaignNotFound(CampaignId),
    #[error("{}", match sku {
        Some(sku) => format!("sku {sku} is not on sale in campaign {campaign}"),
        None => format!("campaign {campaign} is not running now"),
    })]
    CampaignNotActive {
        campaign: CampaignId,
        sku: Option<Sku>,
    },
    #[error("sku {sku} is on sale in campaign {campaign} now: reserve it through the campaign")]
    CampaignRequired { campaign: CampaignId, sku: Sku },
    #[error("this would take the customer past the per-customer limit of campaign {0}")]
    PurchaseLimitExceeded(CampaignId),
    #[error("the units asked for are spread over more than {0} stock items, more than one atomic write can take: ask for fewer lines or fewer units per line")]
    TooManyStockItems(usize),
    #[error("too many concurrent updates of the same stock; retry shortly")]
    Contention,
    /// More than one atomic write can hold; the message says what to send instead.
    #[error("{0}")]
    TooLarge(String),
    #[error("storage failed: {message}")]
    Store { message: String, retryable: bool },
    #[error("configuration: {0}")]
    Config(String),
}

impl From<Invalid> for Error {
    fn from(invalid: Invalid) -> Self {
        Error::InvalidRequest(invalid.0)
    }
}

/// An RFC 9457 problem: status, machine-readable `code`, and the members that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub body: Value,
    pub retry_after: Option<u32>,
    pub allow: Option<String>,
}

impl Error {
    fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Error::InvalidRequest(_) => (400, "invalid_request"),
            Error::IdempotencyKeyRequired => (400, "idempotency_key_required"),
            Error::IdempotencyKeyReused => (422, "idempotency_key_reused"),
            Error::RequestInProgress => (409, "request_in_progress"),
            Error::PayloadTooLarge { .. } => (413, "payload_too_large"),
            Error::Unauthorized(_) => (401, "unauthorized"),
            Error::Forbidden(_) => (403, "forbidden"),
            Error::RouteNotFound { .. } => (404, "route_not_found"),
            Error::MethodNotAllowed { .. } => (405, "method_not_allowed"),
            Error::SkuNotFound(_) => (404, "sku_not_found"),
            Error::InsufficientStock { .. } => (409, "insufficient_stock"),
            Error::ReservationNotFound(_) => (404, "reservation_not_found"),
            Error::ReservationCommitted(_) => (409, "reservation_committed"),
            Error::ReservationExpired(_) => (409, "reservation_expired"),
            Error::ReservationNotHeld { .. } => (409, "reservation_not_held"),
            Error::OrderNotFound(_) => (404, "order_not_found"),
            Error::CampaignNotFound(_) => (404, "campaign_not_found"),
            Error::CampaignNotActive { .. } => (409, "campaign_not_active"),
            Error::CampaignRequired { .. } => (409, "campaign_required"),
            Error::PurchaseLimitExceeded(_) => (409, "purchase_limit_exceeded"),
            Error::RefundExceedsOrder { .. } => (409, "refund_exceeds_order"),
            Error::TooManyStockItems(_) => (409, "too_many_stock_items"),
            Error::TooLarge(_) => (413, "payload_too_large"),
            Error::Contention => (503, "contention"),
            Error::Store {
                retryable: true, ..
            } => (503, "service_unavailable"),
            Error::Store { .. } | Error::Config(_) => (500, "internal_error"),
        }
    }

    /// Whether trying the same request again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RequestInProgress
                | Error::Contention
                | Error::Store {
                    retryable: true,
                    ..
                }
        )
    }

    pub fn problem(&self) -> Problem {
        let (status, code) = self.status_and_code();
        let title = http_title(status);
        // Internal details (SDK and AWS messages) stay in the logs, never in the answer.
        let detail = match code {
            "contention" => self.to_string(),
            "service_unavailable" => "the service is busy right now; retry shortly".to_owned(),
            _ if status >= 500 => "an internal error occurred".to_owned(),
            _ => self.to_string(),
        };
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("/problems/{code}")));
        body.insert("title".into(), json!(title));
        body.insert("status".into(), json!(status));
        body.insert("detail".into(), json!(detail));
        body.insert("code".into(), json!(code));
        match self {
            Error::SkuNotFound(sku) | Error::InsufficientStock { sku } => {
                body.insert("sku".into(), json!(sku));
            }
            Error::ReservationNotFound(id) => {
                body.insert("reservation_id".into(), json!(id));
            }
            Error::ReservationCommitted(id)
            | Error::ReservationExpired(id)
            | Error::ReservationNotHeld { id, .. } => {
                body.insert("reservation_id".into(), json!(id));
            }
            Error::OrderNotFound(id) => {
                body.insert("order_id".into(), json!(id));
            }
            Error::RefundExceedsOrder { sku: Some(sku) } => {
                body.insert("sku".into(), json!(sku));
            }
            Error::CampaignNotFound(campaign) | Error::PurchaseLimitExceeded(campaign) => {
                body.insert("campaign_id".into(), json!(campaign));
            }
            Error::CampaignRequired { campaign, sku } => {
                body.insert("campaign_id".into(), json!(campaign));
                body.insert("sku".into(), json!(sku));
            }
            Error::CampaignNotActive { campaign, sku } => {
                body.insert("campaign_id".into(), json!(campaign));
                if let Some(sku) = sku {
                    body.insert("sku".into(), json!(sku));
                }
            }
            _ => {}
        }
        Problem {
            status,
            code,
            body: Value::Object(body),
            retry_after: self.is_retryable().then_some(1),
            allow: match self {
                Error::MethodNotAllowed { allow, .. } => Some(allow.join(", ")),
                _ => None,
            },
        }
    }
}

fn http_title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_stock_names_the_sku() {
        let sku = Sku::parse("tea").unwrap();
        let p = Error::InsufficientStock { sku }.problem();
        assert_eq!((p.status, p.code), (409, "insufficient_stock"));
        assert_eq!(p.body["sku"], "tea");
        assert_eq!(p.body["code"], "insufficient_stock");
        assert_eq!(p.body["type"], "/problems/insufficient_stock");
    }

    #[test]
    fn internal_details_are_not_shown_but_retryable_ones_say_retry() {
        for retryable in [false, true] {
            let p = Error::Store {
                message: "dispatch failure: timeout: secret table arn".into(),
                retryable,
            }
            .problem();
            assert_eq!(p.status, if retryable { 503 } else { 500 });
            let body = p.body.to_string();
            assert!(
                !body.contains("secret") && !body.contains("dispatch"),
                "{body}"
            );
            assert_eq!(p.retry_after.is_some(), retryable);
        }
        let p = Error::Contention.problem();
        assert_eq!((p.status, p.retry_after), (503, Some(1)));
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let p = Error::MethodNotAllowed {
            method: "PATCH".into(),
            allow: vec!["GET", "PUT"],
        }
        .problem();
        assert_eq!(p.allow.as_deref(), Some("GET, PUT"));
    }
}
