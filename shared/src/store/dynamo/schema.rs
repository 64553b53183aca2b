//! Item keys.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | sku (on_hand, shard counts) | `SKU#<sku>` | `META` |
//! | stock shard i | `SKU#<sku>#<iii>` | `STOCK` |
//! | adjustment | `SKU#<sku>` | `ADJ#<adj id>` |
//! | reservation | `RESERVATION#<res id>` | `RESERVATION` |
//!
//! Shards are numbered items from the start, so a sku can be split later without a
//! migration. Each shard has a partition key of its own: DynamoDB's per-partition write
//! ceiling applies to each shard, not to the sku.
//!
//! The sparse `sweep` index (`sweep_bucket`, `sweep_at`) holds only what the scheduled
//! sweep must visit: HELD reservations by expiry, unapplied compensation commands by
//! due time, and every sku. Holds and commands are spread over a few buckets so no index
//! partition is hot.

use crate::domain::{
    AdjustmentId, CampaignId, CommandId, CustomerId, OrderId, RefundId, ReservationId, Sku,
};

pub const SWEEP_INDEX: &str = "sweep";
pub const BUCKETS: u32 = 8;

pub const META: &str = "META";
pub const RESERVATION: &str = "RESERVATION";

pub fn sku(sku: &Sku) -> String {
    format!("SKU#{sku}")
}

pub const STOCK: &str = "STOCK";

/// The partition key of one stock shard of a sku.
pub fn stock(sku: &Sku, shard: u16) -> String {
    format!("SKU#{sku}#{shard:03}")
}

pub fn adjustment(id: &AdjustmentId) -> String {
    format!("ADJ#{id}")
}

pub fn reservation(id: &ReservationId) -> String {
    format!("RESERVATION#{id}")
}

/// Sweep buckets: `HOLD#<n>`, `COMMAND#<n>`, and `SKUS` for every sku.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    Hold,
    Command,
}

impl Sweep {
    pub fn bucket_of(self, id: &str) -> String {
        let sum: u32 = id.bytes().map(u32::from).sum();
        self.bucket(sum % BUCKETS)
    }

    pub fn bucket(self, n: u32) -> String {
        match self {
            Sweep::Hold => format!("HOLD#{n}"),
            Sweep::Command => format!("COMMAND#{n}"),
        }
    }
}

pub const SKUS_BUCKET: &str = "SKUS";

pub const ORDER: &str = "ORDER";
pub const COMMAND: &str = "COMMAND";

pub fn order(id: &OrderId) -> String {
    format!("ORDER#{id}")
}

pub fn refund(id: &RefundId) -> String {
    format!("REFUND#{id}")
}

pub fn command(id: &CommandId) -> String {
    format!("COMMAND#{id}")
}

pub const CAMPAIGN: &str = "CAMPAIGN";

pub fn campaign(id: &CampaignId) -> String {
    format!("CAMPAIGN#{id}")
}

/// A customer's units held or bought in a campaign, in the campaign's partition.
pub fn customer_counter(customer: &CustomerId) -> String {
    format!("CUSTOMER#{}", customer.as_str())
}
