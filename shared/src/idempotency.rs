//! Exactly one effect per client request.
//!
//! The record a request creates *is* its idempotency record: its id is derived from the
//! route, the caller and the `Idempotency-Key`, it is written with `attribute_not_exists`
//! in the same transaction as the stock change, and it keeps a hash of the request body
//! and the first response. A retry finds it and gets that response again.

use lambda_http::http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use ulid::Ulid;

use crate::api::Shown;
use crate::error::{Error, Result};

pub const HEADER: &str = "idempotency-key";
pub const LEGACY_HEADER: &str = "x-idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Records are kept at least this long (DynamoDB TTL removes them some time after).
pub const RETENTION_SECONDS: u32 = 7 * 24 * 3600;

/// 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Option<Self> {
        let visible = |b: u8| (0x21..=0x7e).contains(&b);
        (1..=255)
            .contains(&value.len())
            .then_some(())
            .filter(|_| value.bytes().all(visible))
            .map(|_| Self(value.to_owned()))
    }

    /// From `Idempotency-Key`, or `X-Idempotency-Key` when that one is absent.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self> {
        let raw = headers.get(HEADER).or_else(|| headers.get(LEGACY_HEADER));
        raw.and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
            .ok_or(Error::IdempotencyKeyRequired)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a request is for: a route template and the ids parsed from its path
/// (`POST /orders/{order_id}/refunds` and `ord_01J…`), never the path as it was spelled.
///
/// It is kept as the template with the ids filled in, which is the route's one canonical
/// path: ids hold no `/`, so no two (template, ids) pairs give the same text, and
/// records created while the scope was the raw path keep their ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteScope(String);

impl RouteScope {
    /// `template` is `METHOD /path/{id}`; each `{…}` segment takes the next of `ids`.
    pub fn new(template: &str, ids: &[&str]) -> Self {
        let mut ids = ids.iter();
        let filled: Vec<&str> = template
            .split('/')
            .map(|part| match part.starts_with('{') {
                true => ids.next().copied().unwrap_or(part),
                false => part,
            })
            .collect();
        Self(filled.join("/"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a request is from, what it is for and its key: the scope of one idempotency record.
#[derive(Debug, Clone)]
pub struct RequestKey<'a> {
    pub route: &'a RouteScope,
    pub caller: &'a str,
    pub key: &'a IdempotencyKey,
}

impl RequestKey<'_> {
    /// The id of the record this request creates: the same for every retry.
    pub fn derive(&self) -> Ulid {
        let mut hash = Sha256::new();
        for part in [self.route.as_str(), self.caller, self.key.as_str()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        Ulid::from(u128::from_be_bytes(first))
    }
}

/// SHA-256 of the request body in canonical JSON (sorted keys, no insignificant spaces),
/// so that the same request sent with other spacing or key order counts as the same.
pub fn fingerprint(body: &Value) -> String {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    Sha256::digest(canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a record remembers of the request that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

impl RecordedRequest {
    /// The record of a request answered `answer` with `value`, as the API shows it.
    pub fn new<T: Shown>(fingerprint: &str, answer: Answer, value: &T) -> Result<Self> {
        Ok(Self {
            fingerprint: fingerprint.to_owned(),
            status: answer.status(),
            body: serde_json::to_string(&value.shown()).map_err(|e| Error::Store {
                message: format!("encoding an answer: {e}"),
                retryable: false,
            })?,
        })
    }

    /// The first answer again, if `fingerprint` is the same request.
    pub fn replay(self, fingerprint: &str) -> Result<Self> {
        if self.fingerprint == fingerprint {
            Ok(self)
        } else {
            Err(Error::IdempotencyKeyReused)
        }
    }
}

/// What a request that took effect answers, the first time and on every replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Created,
    Accepted,
}

impl Answer {
    pub fn status(self) -> u16 {
        match self {
            Answer::Ok => 200,
            Answer::Created => 201,
            Answer::Accepted => 202,
        }
    }
}

/// What a use case did with a request that carries an idempotency key.
#[derive(Debug)]
pub enum Recorded<T> {
    /// It took effect now, and answers so.
    Created(Answer, T),
    /// It took effect before: its first answer, for this same request.
    Replayed(RecordedRequest),
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    #[test]
    fn key_bounds() {
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
        assert!(IdempotencyKey::parse("has space").is_none());
        assert!(IdempotencyKey::parse("tab\t").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse("a-Z_0~!").is_some());
    }

    #[test]
    fn either_header_is_accepted() {
        let mut headers = HeaderMap::new();
        assert!(matches!(
            IdempotencyKey::from_headers(&headers),
            Err(Error::IdempotencyKeyRequired)
        ));
        headers.insert(LEGACY_HEADER, HeaderValue::from_static("old"));
        assert_eq!(
            IdempotencyKey::from_headers(&headers).unwrap().as_str(),
            "old"
        );
        headers.insert(HEADER, HeaderValue::from_static("new"));
        assert_eq!(
            IdempotencyKey::from_headers(&headers).unwrap().as_str(),
            "new"
        );
    }

    #[test]
    fn a_scope_is_its_template_with_the_ids_filled_in() {
        let scope = RouteScope::new("POST /orders/{order_id}/refunds", &["ord_1"]);
        assert_eq!(scope.as_str(), "POST /orders/ord_1/refunds");
        assert_eq!(
            RouteScope::new("POST /reservations", &[]).as_str(),
            "POST /reservations"
        );
        assert_ne!(
            RouteScope::new("POST /skus/{sku}/adjustments", &["a"]),
            RouteScope::new("POST /skus/{sku}/adjustments", &["b"])
        );
    }

    #[test]
    fn derived_ids_depend_on_route_caller_and_key() {
        let k = IdempotencyKey::parse("k1").unwrap();
        let reservations = RouteScope::new("POST /reservations", &[]);
        let orders = RouteScope::new("POST /orders", &[]);
        let base = RequestKey {
            route: &reservations,
            caller: "c",
            key: &k,
        };
        assert_eq!(base.derive(), base.clone().derive());
        assert_ne!(
            base.derive(),
            RequestKey {
                route: &orders,
                ..base.clone()
            }
            .derive()
        );
        assert_ne!(
            base.derive(),
            RequestKey {
                caller: "d",
                ..base.clone()
            }
            .derive()
        );
        // Length-prefixing keeps ("ab","c") apart from ("a","bc").
        let k2 = IdempotencyKey::parse("c").unwrap();
        assert_ne!(
            RequestKey {
                route: &reservations,
                caller: "ab",
                key: &k2
            }
            .derive(),
            RequestKey {
                route: &reservations,
                caller: "a",
                key: &IdempotencyKey::parse("bc").unwrap()
            }
            .derive()
        );
    }

    #[test]
    fn fingerprint_ignores_key_order_and_spacing() {
        let a: Value = serde_json::from_str(r#"{"a":1, "b":[1,2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "b":[1,2],"a":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":2,"b":[1,2]}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
