//! Reading and writing attribute values.
//!
//! Every item read here was written by this adapter: one that does not decode is a bug
//! or a hand edit, never the client's fault. It is a store error (500, not retried)
//! naming the item's key, which the request log then shows; no reader falls back to a
//! default.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{ItemKey, StoredStatus};
use super::stored::StoredJson;
use crate::error::{Error, Result};

pub type Attributes = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The item cannot be read back: `what` says why.
pub fn corrupt(item: &Attributes, what: &str) -> Error {
    let key = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map_or_else(|| "(none)".to_owned(), |k| format!("{k:?}"))
    };
    Error::Store {
        message: format!(
            "stored item pk={} sk={} does not decode: {what}",
            key("pk"),
            key("sk")
        ),
        retryable: false,
    }
}

fn malformed(item: &Attributes, name: &str) -> Error {
    corrupt(item, &format!("attribute {name} is missing or malformed"))
}

/// What the item's key says it is.
pub fn key_of(item: &Attributes) -> Result<ItemKey> {
    ItemKey::parse(get_s(item, "pk")?, get_s(item, "sk")?)
        .ok_or_else(|| corrupt(item, "its key is not one this table builds"))
}

pub fn get_s<'a>(item: &'a Attributes, name: &str) -> Result<&'a str> {
    opt_s(item, name)?.ok_or_else(|| malformed(item, name))
}

/// An attribute that may be absent; present, it must be a string.
pub fn opt_s<'a>(item: &'a Attributes, name: &str) -> Result<Option<&'a str>> {
    item.get(name)
        .map(|v| {
            v.as_s()
                .map(String::as_str)
                .map_err(|_| malformed(item, name))
        })
        .transpose()
}

pub fn get_n<T: FromStr>(item: &Attributes, name: &str) -> Result<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed(item, name))
}

pub fn get_bool(item: &Attributes, name: &str) -> Result<bool> {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| malformed(item, name))
}

pub fn get_parsed<T>(
    item: &Attributes,
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T> {
    parse(get_s(item, name)?).ok_or_else(|| malformed(item, name))
}

/// An attribute that may be absent; present, it must parse.
pub fn opt_parsed<T>(
    item: &Attributes,
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>> {
    opt_s(item, name)?
        .map(|text| parse(text).ok_or_else(|| malformed(item, name)))
        .transpose()
}

/// The item's `status`, spelled as `schema` spells it.
pub fn get_status<T: StoredStatus>(item: &Attributes) -> Result<T> {
    get_parsed(item, "status", T::from_text)
}

/// A JSON attribute, read through its stored shape.
pub fn get_json<T: StoredJson>(item: &Attributes, name: &str) -> Result<T> {
    let shape = serde_json::from_str(get_s(item, name)?)
        .map_err(|e| corrupt(item, &format!("attribute {name} does not decode: {e}")))?;
    T::from_shape(shape).ok_or_else(|| corrupt(item, &format!("attribute {name} is not valid")))
}

/// A JSON attribute, written through its stored shape.
pub fn to_json<T: StoredJson>(value: &T) -> Result<String> {
    serde_json::to_string(&value.shape()).map_err(|e| Error::Store {
        message: format!("encoding an item attribute: {e}"),
        retryable: false,
    })
}

pub fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Attributes {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::{CustomerId, OrderStatus};

    /// A request's receipt, for items that carry one.
    pub fn receipt() -> crate::idempotency::RecordedRequest {
        crate::idempotency::RecordedRequest {
            fingerprint: "fingerprint".into(),
            status: 201,
            body: "{}".into(),
        }
    }

    /// Asserts that `result` is the non-retried store error (500) naming `pk` and what
    /// went wrong, never a 400 blamed on the client.
    pub fn assert_corrupt<T: std::fmt::Debug>(result: Result<T>, pk: &str, what: &str) {
        let e = result.expect_err("a corrupted item must not decode");
        assert!(
            matches!(
                e,
                Error::Store {
                    retryable: false,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.problem().status, 500);
        let message = e.to_string();
        assert!(message.contains(pk), "{message} does not name {pk}");
        assert!(message.contains(what), "{message} does not say {what}");
    }

    fn item() -> Attributes {
        values([
            ("pk", s("ORDER#ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM")),
            ("sk", s("ORDER")),
            ("status", s("CONFIRMED")),
            ("version", n(3)),
            ("restock", AttributeValue::Bool(true)),
            ("lines", s("[]")),
        ])
    }

    const PK: &str = "ORDER#ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM";

    #[test]
    fn sound_attributes_decode() {
        let item = item();
        assert_eq!(
            get_status::<OrderStatus>(&item).unwrap(),
            OrderStatus::Confirmed
        );
        assert_eq!(get_n::<u64>(&item, "version").unwrap(), 3);
        assert!(get_bool(&item, "restock").unwrap());
        assert_eq!(
            get_json::<Vec<crate::domain::OrderLine>>(&item, "lines").unwrap(),
            Vec::new()
        );
        assert_eq!(opt_s(&item, "customer_id").unwrap(), None);
        assert_eq!(
            opt_parsed(&item, "customer_id", |t| CustomerId::parse(t).ok()).unwrap(),
            None
        );
        assert!(matches!(key_of(&item).unwrap(), ItemKey::Order(_)));
    }

    #[test]
    fn a_corrupted_attribute_is_a_store_error_naming_the_items_key() {
        let with = |name: &str, value: AttributeValue| {
            let mut item = item();
            item.insert(name.to_owned(), value);
            item
        };
        let without = |name: &str| {
            let mut item = item();
            item.remove(name);
            item
        };
        assert_corrupt(
            get_status::<OrderStatus>(&with("status", s("SHIPPED"))),
            PK,
            "status",
        );
        assert_corrupt(get_status::<OrderStatus>(&without("status")), PK, "status");
        assert_corrupt(
            get_n::<u64>(&with("version", n(-1)), "version"),
            PK,
            "version",
        );
        assert_corrupt(
            get_n::<u64>(&with("version", s("3")), "version"),
            PK,
            "version",
        );
        assert_corrupt(get_bool(&without("restock"), "restock"), PK, "restock");
        assert_corrupt(
            get_json::<Vec<crate::domain::OrderLine>>(&with("lines", s("[-1]")), "lines"),
            PK,
            "lines",
        );
        // A client id that no longer parses is the store's problem, not the request's.
        assert_corrupt(
            opt_parsed(&with("customer_id", s("two words")), "customer_id", |t| {
                CustomerId::parse(t).ok()
            }),
            PK,
            "customer_id",
        );
        assert_corrupt(
            opt_s(&with("customer_id", n(7)), "customer_id"),
            PK,
            "customer_id",
        );
        assert_corrupt(key_of(&with("sk", s("ODRER"))), PK, "key");
        assert_corrupt(key_of(&without("sk")), PK, "sk");
    }
}
