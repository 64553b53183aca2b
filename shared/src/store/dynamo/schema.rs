//! The table's schema: every item key, how a key is read back, the sweep index's
//! buckets, and how statuses are spelled in items. Nothing else in the adapter spells a
//! key prefix or a status.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | sku (on_hand, shard counts) | `SKU#<sku>` | `META` |
//! | stock shard i | `SKU#<sku>#<iii>` | `STOCK` |
//! | adjustment | `SKU#<sku>` | `ADJ#<adj id>` |
//! | reservation | `RESERVATION#<res id>` | `RESERVATION` |
//! | order | `ORDER#<ord id>` | `ORDER` |
//! | refund | `ORDER#<ord id>` | `REFUND#<ref id>` |
//! | compensation command | `COMMAND#<cmd id>` | `COMMAND` |
//! | campaign | `CAMPAIGN#<id>` | `CAMPAIGN` |
//! | a customer's units in a campaign | `COUNTER#<campaign id>#<customer id>` | `COUNTER` |
//! | a campaign's offer kept for one of its skus | `SKU#<sku>` | `CAMPAIGN#<id>` |
//!
//! Shards are numbered items from the start, so a sku can be split later without a
//! migration. Each shard has a partition key of its own: DynamoDB's per-partition write
//! ceiling applies to each shard, not to the sku. A sku never holds `#`, so the shard
//! number is what follows the last one.
//!
//! The sparse `sweep` index (`sweep_bucket`, `sweep_at`) holds only what the scheduled
//! sweep must visit: HELD reservations by expiry, unapplied compensation commands by
//! due time, and every sku. Holds and commands are spread over a few buckets so no index
//! partition is hot.
//!
//! Statuses are stored as the API spells them today (`HELD`, `PARTIALLY_REFUNDED`, ...),
//! but by the tables below, not by the API's serializer: renaming a status in the API
//! cannot change what is stored or stop stored items from decoding.

use crate::domain::{
    AdjustmentId, CampaignId, CommandId, CommandStatus, CustomerId, OrderId, OrderStatus, RefundId,
    RefundStatus, ReservationId, ReservationStatus, Sku,
};

pub const SWEEP_INDEX: &str = "sweep";
/// Partition keys of the sweep index per kind (`HOLD#0`.., `COMMAND#0`..). Every hold
/// writes its index entry twice (added when placed, removed when it ends), 1 write unit
/// each (keys only), and one partition key of an index takes at most 1,000 write units a
/// second: at the flash-sale burst of 5,000 holds a second that is 10,000 units a second,
/// 625 per bucket over 16, room left for uneven hashing. Raising the count is safe (the
/// sweep reads every bucket below it, old items included); lowering it would hide items.
pub const BUCKETS: u32 = 16;

pub const META: &str = "META";
pub const STOCK: &str = "STOCK";
pub const RESERVATION: &str = "RESERVATION";
pub const ORDER: &str = "ORDER";
pub const COMMAND: &str = "COMMAND";
pub const CAMPAIGN: &str = "CAMPAIGN";
pub const COUNTER: &str = "COUNTER";

const SKU_PREFIX: &str = "SKU#";
/// The sort keys of a sku's adjustments begin with this.
pub const ADJUSTMENT_PREFIX: &str = "ADJ#";
const RESERVATION_PREFIX: &str = "RESERVATION#";
const ORDER_PREFIX: &str = "ORDER#";
const REFUND_PREFIX: &str = "REFUND#";
const COMMAND_PREFIX: &str = "COMMAND#";
/// A campaign's partition key, and the sort keys of the marks it leaves on its skus.
pub const CAMPAIGN_PREFIX: &str = "CAMPAIGN#";
/// A customer's counter in a campaign: a partition key of its own, so that a campaign's
/// buyers write to as many partitions as there are buyers (a campaign id holds no `#`).
const COUNTER_PREFIX: &str = "COUNTER#";

pub fn sku(sku: &Sku) -> String {
    format!("{SKU_PREFIX}{sku}")
}

/// The partition key of one stock shard of a sku.
pub fn stock(sku: &Sku, shard: u16) -> String {
    format!("{SKU_PREFIX}{sku}#{shard:03}")
}

pub fn adjustment(id: &AdjustmentId) -> String {
    format!("{ADJUSTMENT_PREFIX}{id}")
}

pub fn reservation(id: &ReservationId) -> String {
    format!("{RESERVATION_PREFIX}{id}")
}

pub fn order(id: &OrderId) -> String {
    format!("{ORDER_PREFIX}{id}")
}

pub fn refund(id: &RefundId) -> String {
    format!("{REFUND_PREFIX}{id}")
}

pub fn command(id: &CommandId) -> String {
    format!("{COMMAND_PREFIX}{id}")
}

pub fn campaign(id: &CampaignId) -> String {
    format!("{CAMPAIGN_PREFIX}{id}")
}

/// A customer's units held or bought in a campaign, in the campaign's partition.
pub fn customer_counter(of: &CampaignId, customer: &CustomerId) -> String {
    format!("{COUNTER_PREFIX}{of}#{}", customer.as_str())
}

/// An item's whole key: partition and sort key.
pub type Key = (String, String);

pub fn sku_key(of: &Sku) -> Key {
    (sku(of), META.into())
}

pub fn stock_key(of: &Sku, shard: u16) -> Key {
    (stock(of, shard), STOCK.into())
}

pub fn adjustment_key(of: &Sku, id: &AdjustmentId) -> Key {
    (sku(of), adjustment(id))
}

pub fn reservation_key(id: &ReservationId) -> Key {
    (reservation(id), RESERVATION.into())
}

pub fn order_key(id: &OrderId) -> Key {
    (order(id), ORDER.into())
}

pub fn refund_key(of: &OrderId, id: &RefundId) -> Key {
    (order(of), refund(id))
}

pub fn command_key(id: &CommandId) -> Key {
    (command(id), COMMAND.into())
}

pub fn campaign_key(id: &CampaignId) -> Key {
    (campaign(id), CAMPAIGN.into())
}

pub fn counter_key(of: &CampaignId, customer: &CustomerId) -> Key {
    (customer_counter(of, customer), COUNTER.into())
}

/// The mark a campaign leaves on each of its skus, in the sku's partition.
pub fn sku_campaign_key(of: &Sku, id: &CampaignId) -> Key {
    (sku(of), campaign(id))
}

/// What an item's key says it is: the one reading of the keys built above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKey {
    Sku(Sku),
    Stock(Sku, u16),
    Adjustment(Sku, AdjustmentId),
    Reservation(ReservationId),
    Order(OrderId),
    Refund(OrderId, RefundId),
    Command(CommandId),
    Campaign(CampaignId),
    CustomerCounter(CampaignId, CustomerId),
    SkuCampaign(Sku, CampaignId),
}

impl ItemKey {
    /// The item a `pk`/`sk` pair names, or `None` for a key this schema never builds.
    pub fn parse(pk: &str, sk: &str) -> Option<Self> {
        if let Some(rest) = pk.strip_prefix(SKU_PREFIX) {
            return match (rest.rsplit_once('#'), sk) {
                (Some((sku, shard)), STOCK) => {
                    let sku = Sku::parse(sku).ok()?;
                    let shard: u16 = shard.parse().ok()?;
                    // One spelling only: `007`, not `7` or `+007`.
                    (stock(&sku, shard) == pk).then_some(ItemKey::Stock(sku, shard))
                }
                (Some(_), _) => None,
                (None, META) => Some(ItemKey::Sku(Sku::parse(rest).ok()?)),
                (None, sk) => match sk.strip_prefix(CAMPAIGN_PREFIX) {
                    Some(id) => Some(ItemKey::SkuCampaign(
                        Sku::parse(rest).ok()?,
                        CampaignId::parse(id).ok()?,
                    )),
                    None => Some(ItemKey::Adjustment(
                        Sku::parse(rest).ok()?,
                        AdjustmentId::parse(sk.strip_prefix(ADJUSTMENT_PREFIX)?).ok()?,
                    )),
                },
            };
        }
        if let Some(rest) = pk.strip_prefix(RESERVATION_PREFIX) {
            let id = ReservationId::parse(rest).ok()?;
            return (sk == RESERVATION).then_some(ItemKey::Reservation(id));
        }
        if let Some(rest) = pk.strip_prefix(ORDER_PREFIX) {
            let order = OrderId::parse(rest).ok()?;
            return match sk {
                ORDER => Some(ItemKey::Order(order)),
                sk => Some(ItemKey::Refund(
                    order,
                    RefundId::parse(sk.strip_prefix(REFUND_PREFIX)?).ok()?,
                )),
            };
        }
        if let Some(rest) = pk.strip_prefix(COMMAND_PREFIX) {
            let id = CommandId::parse(rest).ok()?;
            return (sk == COMMAND).then_some(ItemKey::Command(id));
        }
        if let Some(rest) = pk.strip_prefix(CAMPAIGN_PREFIX) {
            let campaign = CampaignId::parse(rest).ok()?;
            return (sk == CAMPAIGN).then_some(ItemKey::Campaign(campaign));
        }
        if let Some(rest) = pk.strip_prefix(COUNTER_PREFIX) {
            let (campaign, customer) = rest.split_once('#')?;
            let campaign = CampaignId::parse(campaign).ok()?;
            let customer = CustomerId::parse(customer).ok()?;
            return (sk == COUNTER).then_some(ItemKey::CustomerCounter(campaign, customer));
        }
        None
    }
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

/// A status as items spell it.
pub trait StoredStatus: Sized + Copy + PartialEq + 'static {
    const ALL: &'static [Self];

    fn text(self) -> &'static str;

    fn from_text(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.text() == text)
    }
}

impl StoredStatus for ReservationStatus {
    const ALL: &'static [Self] = &[
        ReservationStatus::Held,
        ReservationStatus::Committed,
        ReservationStatus::Released,
        ReservationStatus::Expired,
    ];

    fn text(self) -> &'static str {
        match self {
            ReservationStatus::Held => "HELD",
            ReservationStatus::Committed => "COMMITTED",
            ReservationStatus::Released => "RELEASED",
            ReservationStatus::Expired => "EXPIRED",
        }
    }
}

impl StoredStatus for OrderStatus {
    const ALL: &'static [Self] = &[
        OrderStatus::Confirmed,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
    ];

    fn text(self) -> &'static str {
        match self {
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            OrderStatus::Refunded => "REFUNDED",
        }
    }
}

impl StoredStatus for RefundStatus {
    const ALL: &'static [Self] = &[
        RefundStatus::Pending,
        RefundStatus::Completed,
        RefundStatus::Failed,
    ];

    fn text(self) -> &'static str {
        match self {
            RefundStatus::Pending => "PENDING",
            RefundStatus::Completed => "COMPLETED",
            RefundStatus::Failed => "FAILED",
        }
    }
}

impl StoredStatus for CommandStatus {
    const ALL: &'static [Self] = &[
        CommandStatus::Pending,
        CommandStatus::Applied,
        CommandStatus::Failed,
    ];

    fn text(self) -> &'static str {
        match self {
            CommandStatus::Pending => "PENDING",
            CommandStatus::Applied => "APPLIED",
            CommandStatus::Failed => "FAILED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ulid::Ulid;

    fn sku_text() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._-]{1,64}".prop_filter("not a dot segment", |s| s != "." && s != "..")
    }

    fn ulid() -> impl Strategy<Value = Ulid> {
        any::<u128>().prop_map(Ulid::from)
    }

    fn customer_text() -> impl Strategy<Value = String> {
        "[!-~]{1,128}"
    }

    fn parsed((pk, sk): Key) -> ItemKey {
        ItemKey::parse(&pk, &sk).unwrap_or_else(|| panic!("{pk} / {sk} did not parse"))
    }

    proptest! {
        #[test]
        fn sku_keys_read_back(sku in sku_text(), shard: u16, adj in ulid()) {
            let sku = Sku::parse(&sku).unwrap();
            prop_assert_eq!(parsed(sku_key(&sku)), ItemKey::Sku(sku.clone()));
            prop_assert_eq!(
                parsed(stock_key(&sku, shard)),
                ItemKey::Stock(sku.clone(), shard)
            );
            let adj = AdjustmentId::from_ulid(adj);
            prop_assert_eq!(
                parsed(adjustment_key(&sku, &adj)),
                ItemKey::Adjustment(sku, adj)
            );
        }

        #[test]
        fn record_keys_read_back(a in ulid(), b in ulid()) {
            let reservation_id = ReservationId::from_ulid(a);
            prop_assert_eq!(
                parsed(reservation_key(&reservation_id)),
                ItemKey::Reservation(reservation_id)
            );
            let order_id = OrderId::from_ulid(a);
            prop_assert_eq!(parsed(order_key(&order_id)), ItemKey::Order(order_id.clone()));
            let refund_id = RefundId::from_ulid(b);
            prop_assert_eq!(
                parsed(refund_key(&order_id, &refund_id)),
                ItemKey::Refund(order_id, refund_id)
            );
            let command_id = CommandId::from_ulid(b);
            prop_assert_eq!(
                parsed(command_key(&command_id)),
                ItemKey::Command(command_id)
            );
        }

        #[test]
        fn campaign_keys_read_back(id in sku_text(), customer in customer_text(), sku in sku_text()) {
            let id = CampaignId::parse(&id).unwrap();
            prop_assert_eq!(parsed(campaign_key(&id)), ItemKey::Campaign(id.clone()));
            let sku = Sku::parse(&sku).unwrap();
            prop_assert_eq!(
                parsed(sku_campaign_key(&sku, &id)),
                ItemKey::SkuCampaign(sku, id.clone())
            );
            let customer = CustomerId::parse(&customer).unwrap();
            prop_assert_eq!(
                parsed(counter_key(&id, &customer)),
                ItemKey::CustomerCounter(id, customer)
            );
        }

        #[test]
        fn any_hold_or_command_id_has_one_of_the_buckets(id in ".{0,64}") {
            for kind in [Sweep::Hold, Sweep::Command] {
                let bucket = kind.bucket_of(&id);
                prop_assert!((0..BUCKETS).any(|n| kind.bucket(n) == bucket), "{}", bucket);
            }
        }
    }

    #[test]
    fn keys_this_schema_never_builds_are_not_read() {
        let sku = "SKU#abc";
        for (pk, sk) in [
            ("", META),
            (sku, ""),
            (sku, "ADJ#"),
            (sku, "ADJ#adj_nonsense"),
            ("SKU#abc#7", STOCK),
            ("SKU#abc#+07", STOCK),
            ("SKU#abc#70000", STOCK),
            ("SKU#abc#007", META),
            ("SKU#a b", META),
            ("RESERVATION#res_01J9Z3K8Q4W6N2V5T7R0XGHPBM", ORDER),
            ("RESERVATION#ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM", RESERVATION),
            ("ORDER#ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM", "REFUND#"),
            ("ORDER#ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM", "ADJ#x"),
            ("COMMAND#cmd_01J9Z3K8Q4W6N2V5T7R0XGHPBM", "ORDER"),
            ("CAMPAIGN#spring", "CUSTOMER#alice"),
            ("COUNTER#spring", "COUNTER"),
            ("COUNTER#spring#", "COUNTER"),
            ("COUNTER#spring#alice", "CAMPAIGN"),
            ("COUNTER#a b#alice", "COUNTER"),
            ("HOLD#1", META),
        ] {
            assert_eq!(ItemKey::parse(pk, sk), None, "{pk} / {sk}");
        }
    }

    #[test]
    fn sweep_buckets_are_distinct() {
        let mut all: Vec<String> = [Sweep::Hold, Sweep::Command]
            .iter()
            .flat_map(|k| (0..BUCKETS).map(|n| k.bucket(n)))
            .collect();
        all.push(SKUS_BUCKET.to_owned());
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    /// Every status reads back as itself, and is spelled as items written before spell
    /// it: the table keeps these texts whatever the domain or the API call them.
    fn statuses_read_back<T: StoredStatus + std::fmt::Debug>(spellings: &[&str]) {
        let texts: Vec<&str> = T::ALL.iter().map(|s| s.text()).collect();
        assert_eq!(texts, spellings);
        for status in T::ALL {
            assert_eq!(T::from_text(status.text()), Some(*status));
        }
        assert_eq!(T::from_text("held"), None);
        assert_eq!(T::from_text(""), None);
    }

    #[test]
    fn every_status_reads_back_as_itself() {
        statuses_read_back::<ReservationStatus>(&["HELD", "COMMITTED", "RELEASED", "EXPIRED"]);
        statuses_read_back::<OrderStatus>(&["CONFIRMED", "PARTIALLY_REFUNDED", "REFUNDED"]);
        statuses_read_back::<RefundStatus>(&["PENDING", "COMPLETED", "FAILED"]);
        statuses_read_back::<CommandStatus>(&["PENDING", "APPLIED", "FAILED"]);
    }
}
