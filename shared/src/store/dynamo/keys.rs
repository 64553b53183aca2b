//! Item keys. A sku's items share one partition so a consistent Query reads its stock:
//!
//! | item | pk | sk |
//! |---|---|---|
//! | sku (on_hand, shard count) | `SKU#<sku>` | `META` |
//! | stock shard i | `SKU#<sku>` | `STOCK#<iii>` |
//! | adjustment | `SKU#<sku>` | `ADJ#<adj id>` |
//! | reservation | `RESERVATION#<res id>` | `RESERVATION` |
//!
//! Shards are numbered items from the start, so a sku can be split later without a
//! migration. HELD reservations carry `hold_bucket` and are found by expiry through the
//! sparse `held-by-expiry` index, spread over a few buckets so no index partition is hot.

use crate::domain::{AdjustmentId, ReservationId, Sku};

pub const HOLD_BUCKETS: u32 = 8;

pub const META: &str = "META";
pub const RESERVATION: &str = "RESERVATION";

pub fn sku(sku: &Sku) -> String {
    format!("SKU#{sku}")
}

pub fn stock(shard: u16) -> String {
    format!("STOCK#{shard:03}")
}

pub fn shard_of(sk: &str) -> Option<u16> {
    sk.strip_prefix("STOCK#")?.parse().ok()
}

pub fn adjustment(id: &AdjustmentId) -> String {
    format!("ADJ#{id}")
}

pub fn reservation(id: &ReservationId) -> String {
    format!("RESERVATION#{id}")
}

pub fn hold_bucket(id: &ReservationId) -> String {
    let sum: u32 = id.as_str().bytes().map(u32::from).sum();
    format!("HELD#{}", sum % HOLD_BUCKETS)
}
