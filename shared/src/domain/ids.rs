//! Prefixed identifiers: `res_` plus 26 Crockford base32 characters (the ULID alphabet).
//!
//! An id has one spelling, the one stockroom wrote: the ULID in upper case, its first
//! character at most `7`. Decoding alone would also take lower case, and a first
//! character of `8` or above (its top bits fall off the 128), as other names of the same
//! id; those are refused, so one record never answers to two paths.
//!
//! Ids of records created by a request are derived from the request's idempotency key
//! (see `idempotency::RequestKey::derive`) so that a retry lands on the same item; ids of
//! records nobody asked for by key are fresh ULIDs and sort by creation time.

use std::fmt;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::Invalid;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn parse(value: &str) -> Result<Self, Invalid> {
                value
                    .strip_prefix(Self::PREFIX)
                    .and_then(|rest| Ulid::from_string(rest).ok())
                    .map(Self::from_ulid)
                    .filter(|id| id.0 == value)
                    .ok_or_else(|| {
                        Invalid::new(format!(
                            "{} ids look like {}01J9Z3K8Q4W6N2V5T7R0XGHPBM",
                            stringify!($name),
                            Self::PREFIX
                        ))
                    })
            }

            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(format!("{}{}", Self::PREFIX, ulid))
            }

            /// A fresh, time-sortable id.
            pub fn generate() -> Self {
                Self::from_ulid(Ulid::generate())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The ULID after the prefix (ids sharing it belong together).
            pub fn ulid(&self) -> Ulid {
                Ulid::from_string(&self.0[Self::PREFIX.len()..]).unwrap_or_default()
            }
        }

        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(value: String) -> Result<Self, Invalid> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A hold on stock.
    ReservationId,
    "res_"
);
prefixed_id!(
    /// One change of a sku's on-hand stock by an administrator.
    AdjustmentId,
    "adj_"
);
prefixed_id!(
    /// A confirmed sale.
    OrderId,
    "ord_"
);
prefixed_id!(
    /// Money (and maybe units) going back for some of an order's lines.
    RefundId,
    "rfd_"
);
prefixed_id!(
    /// A compensation command: follow-up work recorded with the step that needs it.
    CommandId,
    "cmd_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_prefixes() {
        let id = ReservationId::generate();
        assert_eq!(ReservationId::parse(id.as_str()).unwrap(), id);
        assert!(ReservationId::parse(&id.as_str().replace("res_", "adj_")).is_err());
        assert!(ReservationId::parse("res_").is_err());
        assert!(ReservationId::parse("res_01J9Z3K8Q4W6N2V5T7R0XGHPB!").is_err());
    }

    #[test]
    fn only_the_canonical_spelling_is_an_id() {
        let id = "ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM";
        assert_eq!(OrderId::parse(id).unwrap().as_str(), id);
        assert!(OrderId::parse("ord_01j9z3k8q4w6n2v5t7r0xghpbm").is_err());
        assert!(OrderId::parse("ORD_01J9Z3K8Q4W6N2V5T7R0XGHPBM").is_err());
        // 8 is 0 with a bit above the 128 that decoding drops: the same ULID.
        let alias = "81J9Z3K8Q4W6N2V5T7R0XGHPBM";
        assert_eq!(Ulid::from_string(alias).unwrap().to_string(), &id[4..]);
        assert!(OrderId::parse(&format!("ord_{alias}")).is_err());
    }

    #[test]
    fn generated_ids_sort_by_time() {
        let a = AdjustmentId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = AdjustmentId::generate();
        assert!(a < b);
    }
}
