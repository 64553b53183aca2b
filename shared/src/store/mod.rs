//! Ports: what the use cases read, and the atomic writes they ask for, one attempt each.
//!
//! A store translates: items, keys, conditions and its own refusals. It decides nothing
//! (no status checks, no plans), retries nothing and names no HTTP status; the use cases
//! in `crate::usecases` read through these ports, decide with the domain rules and ask
//! for a write conditioned on what they read. Two implementations: `DynamoStore` (the
//! one that runs) and `MemoryStore` (for fast use-case tests).

mod dynamo;
mod memory;

use std::collections::BTreeMap;
use std::convert::Infallible;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use dynamo::DynamoStore;
/// The table's stream, read: what one item's change committed (`dynamo::committed`).
pub use dynamo::{committed as committed_change, CAUSE_KEY, CAUSE_TRACE};
pub use memory::MemoryStore;

use crate::domain::{
    Adjustment, AdjustmentId, Allocation, Campaign, CampaignId, CommandId, CommandStatus,
    CustomerId, Offer, Order, OrderId, Refund, RefundId, Reservation, ReservationId,
    ReservationStatus, Restock, ShardCount, ShardStock, Sku, SkuTerms, StockLevels, StockMove,
    Take, Timestamp,
};
use crate::error::Result;
use crate::idempotency::RecordedRequest;

/// What one attempt at an atomic write came to. Nothing of it was written unless
/// `Committed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<R = Infallible> {
    Committed,
    /// One of the conditions the caller can act on failed: `R` says which.
    Refused(R),
    /// What the write was conditioned on changed since it was read (another request got
    /// there first), or the store was too busy to take it: read again after a pause.
    Stale,
}

/// A sku as one consistent read saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuStock {
    pub sku: Sku,
    /// What the sku item keeps as its total.
    pub on_hand: u64,
    /// Shards `0..active` take new stock; items past it (left by a shrink) keep what is
    /// reserved or sold there, and units that come back to them stay on sale.
    pub active: ShardCount,
    /// Every shard item, by shard number.
    pub shards: Vec<ShardStock>,
    /// The campaigns' terms its items carry.
    pub terms: SkuTerms,
    pub updated_at: Timestamp,
}

impl SkuStock {
    pub fn levels(&self) -> StockLevels {
        StockLevels::sum(self.sku.clone(), &self.shards, self.active, self.updated_at)
    }
}

#[async_trait]
pub trait ReadStock: Send + Sync {
    /// The sku item and every one of its shard items, read consistently.
    async fn sku_stock(&self, sku: &Sku) -> Result<Option<SkuStock>>;

    /// The campaign terms the sku's stock items carry now (every item carries the same),
    /// read from one of them.
    async fn sku_terms(&self, sku: &Sku) -> Result<Option<SkuTerms>>;
}

/// The record a request creates, keyed by an id derived from its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Reservation(ReservationId),
    Order(OrderId),
    Refund(OrderId, RefundId),
    Adjustment(Sku, AdjustmentId),
}

#[async_trait]
pub trait ReadRecord: Send + Sync {
    /// What the record remembers of the request that created it, if it exists.
    async fn recorded(&self, key: &RecordKey) -> Result<Option<RecordedRequest>>;
}

/// The record a take of stock writes with it.
#[derive(Debug, Clone, Copy)]
pub enum Taker<'a> {
    Hold(&'a Reservation),
    Order(&'a Order),
}

/// A campaign reservation's count against the customer's allowance, checked in its
/// transaction: the counter must have `room` for the units. (The campaign's window and
/// limit are checked through the terms version of the stock items the take moves.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignGuard {
    pub campaign_id: CampaignId,
    pub customer_id: CustomerId,
    /// The most units the counter may hold before this reservation adds its own.
    pub room: u64,
    pub units: u64,
}

/// One stock item as a refused take found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSeen {
    pub sku: Sku,
    pub stock: ShardStock,
    pub terms: SkuTerms,
}

/// Why a take of stock was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeRefused {
    /// The request's record exists: it was seen before.
    RecordExists,
    /// The same request is being written by another transaction right now.
    RecordInFlight,
    /// The customer's counter has no room for these units.
    OverLimit,
    /// Stock items the take counted on are short of units or carry other terms: here
    /// they are as the refusal found them (no read needed to plan again).
    Moved(Vec<ShardSeen>),
}

/// Units moved from shards of their skus, together with the record of the request.
#[derive(Debug, Clone)]
pub struct TakeStock<'a> {
    pub allocations: &'a [Allocation],
    pub movement: StockMove,
    pub record: Taker<'a>,
    pub receipt: &'a RecordedRequest,
    pub campaign: Option<&'a CampaignGuard>,
    /// What each sku's stock items must still carry of their terms; `None`: whatever they
    /// carry (staff sell outside campaigns).
    pub terms: Option<&'a BTreeMap<Sku, TermsCheck>>,
    pub at: Timestamp,
}

/// What a customer's take counts on in the terms a sku's stock items carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermsCheck {
    /// The terms version the process saw (0: none stamped).
    Version(u64),
    /// Terms the process never saw: the campaign's offer is on the item, open at the
    /// take's time, and allows at least `units` to one customer. A new process's guess,
    /// so that its first campaign take is one write like any other.
    OpenOffer { campaign: CampaignId, units: u64 },
}

impl TermsCheck {
    /// Whether stock items carrying `terms` pass this check at `at`.
    pub fn passes(&self, terms: &SkuTerms, at: Timestamp) -> bool {
        match self {
            TermsCheck::Version(version) => terms.version == *version,
            TermsCheck::OpenOffer { campaign, units } => terms
                .offer(campaign)
                .is_some_and(|o| o.is_open(at) && u64::from(o.per_customer_limit) >= *units),
        }
    }
}

#[async_trait]
pub trait ListSkus: Send + Sync {
    /// Up to `limit` skus in the order of their ids, from the first after `after`, each
    /// with its stock.
    async fn skus_after(&self, after: Option<&Sku>, limit: usize) -> Result<Vec<SkuStock>>;
}

#[async_trait]
pub trait WriteStock: Send + Sync {
    /// Moves each allocation's units (conditioned on the source counter holding them,
    /// and on the terms version when `terms` is given) and writes the record, all or
    /// nothing. `Refused(Moved)` when stock items are not as counted on; `Stale` when the
    /// write collided with another or the store was busy.
    async fn take(&self, take: TakeStock<'_>) -> Result<Attempt<TakeRefused>>;

    /// Writes a new sku: its item, `spread[i]` available units on shard `i`, `terms` on
    /// every stock item, and the opening adjustment. `Stale` when the sku exists.
    async fn create_sku(
        &self,
        sku: &Sku,
        spread: &[u64],
        terms: &SkuTerms,
        opening: &Adjustment,
    ) -> Result<Attempt>;

    /// Sets the sku's shard count to `active`, creating the shard items below it that do
    /// not exist yet, empty and with the sku's terms; touches no existing stock item, so
    /// it never collides with a take. Conditioned on `seen` (count, items, terms).
    async fn set_shards(
        &self,
        seen: &SkuStock,
        active: ShardCount,
        at: Timestamp,
    ) -> Result<Attempt>;

    /// Moves `quantity` available units from one shard of the sku to another, if the
    /// first has them: one step of a respread, two items, no unit ever in flight.
    async fn move_available(
        &self,
        sku: &Sku,
        from: u16,
        to: u16,
        quantity: u64,
        at: Timestamp,
    ) -> Result<Attempt>;

    /// Stamps `terms` on the sku's item and every stock item, conditioned on `seen`
    /// (terms version and items): atomic per sku.
    async fn stamp_terms(
        &self,
        seen: &SkuStock,
        terms: &SkuTerms,
        at: Timestamp,
    ) -> Result<Attempt>;

    /// Adds `adjustment.delta` to on_hand (conditioned on `seen.on_hand`) and spreads it
    /// over `takes` (adding, or taking where it is negative), with the adjustment's
    /// record, which remembers `receipt` when the request has one. `Refused` when the
    /// record exists.
    async fn adjust(
        &self,
        seen: &SkuStock,
        adjustment: &Adjustment,
        takes: &[Take],
        receipt: Option<&RecordedRequest>,
    ) -> Result<Attempt<RecordExists>>;
}

/// The record written by an earlier attempt of the same request exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordExists;

#[async_trait]
pub trait ReadReservation: Send + Sync {
    async fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>>;
}

/// A HELD reservation leaving HELD.
#[derive(Debug, Clone, Copy)]
pub struct EndHold<'a> {
    /// As it was read, HELD.
    pub reservation: &'a Reservation,
    /// RELEASED or EXPIRED: its units go back to available, and a campaign hold's units
    /// back to the customer's allowance. COMMITTED: its units are sold and `order` is
    /// written with it.
    pub to: ReservationStatus,
    pub order: Option<(&'a Order, &'a RecordedRequest)>,
    pub at: Timestamp,
}

#[async_trait]
pub trait WriteHold: Send + Sync {
    /// Ends the hold, conditioned on it still being HELD (and, to expire it, overdue;
    /// to commit it, not yet). `Refused` when the order's record exists.
    async fn end_hold(&self, end: EndHold<'_>) -> Result<Attempt<RecordExists>>;
}

#[async_trait]
pub trait ReadOrder: Send + Sync {
    /// The order with its refunds, oldest first.
    async fn order(&self, id: &OrderId) -> Result<Option<Order>>;
}

/// A refund and what it changes on its order.
#[derive(Debug, Clone, Copy)]
pub struct NewRefund<'a> {
    /// The order as read: the write is conditioned on its version.
    pub order: &'a Order,
    /// The order as it is after the refund.
    pub refunded: &'a Order,
    pub refund: &'a Refund,
    /// The compensation command that puts units back, recorded with the refund.
    pub restock: Option<&'a Restock>,
    pub receipt: &'a RecordedRequest,
}

#[async_trait]
pub trait WriteRefund: Send + Sync {
    /// Writes the refund, the order's new lines and status and the command, all or
    /// nothing. `Stale` when the order changed since it was read.
    async fn record_refund(&self, refund: NewRefund<'_>) -> Result<Attempt>;
}

#[async_trait]
pub trait ReadCampaign: Send + Sync {
    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>>;

    /// The offers of the campaigns that list `sku`, as their last write left them, read
    /// where they are kept per sku (whether the sku exists yet or not): what a new sku's
    /// stock items are stamped with. Not on any buyer's path.
    async fn offers_for(&self, sku: &Sku) -> Result<Vec<Offer>>;
}

#[async_trait]
pub trait WriteCampaign: Send + Sync {
    /// Writes the campaign, conditioned on `seen` (absent, or as it was read), with its
    /// offer kept per sku for each of its skus (removed for the skus `seen` had and it has
    /// not). `Stale` when the campaign changed since it was read. Stamping the skus' stock
    /// items is the caller's next step.
    async fn put_campaign(&self, campaign: &Campaign, seen: Option<&Campaign>) -> Result<Attempt>;
}

#[async_trait]
pub trait ReadCommand: Send + Sync {
    async fn command(&self, id: &CommandId) -> Result<Option<(CommandStatus, Restock)>>;
}

/// The units of a restock are no longer sold where it puts them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitsMissing;

#[async_trait]
pub trait WriteCommand: Send + Sync {
    /// Puts the command's units back (sold to available) and moves it and its refund
    /// from one of `from` to APPLIED / COMPLETED.
    async fn apply_command(
        &self,
        restock: &Restock,
        from: &[CommandStatus],
        at: Timestamp,
    ) -> Result<Attempt<UnitsMissing>>;

    /// Moves a PENDING command and its refund to FAILED.
    async fn fail_command(&self, restock: &Restock, at: Timestamp) -> Result<Attempt>;
}

pub trait FindOverdueHolds: Send + Sync {
    /// HELD reservations whose `expires_at` is at or before `now`, through the index, a
    /// page at a time, the longest overdue first within each part of the index. A page is
    /// read only when the stream is polled for it, so a caller that stops early has read
    /// little more than it used; an error ends the part it came from.
    fn overdue_holds(&self, now: Timestamp) -> BoxStream<'_, Result<Vec<ReservationId>>>;
}

#[async_trait]
pub trait FindUnappliedCommands: Send + Sync {
    /// Commands recorded at or before `cutoff` and still PENDING, through the index.
    async fn unapplied_commands(&self, cutoff: Timestamp) -> Result<Vec<Restock>>;

    /// A command was sent again at `at`: it is due again one grace period later.
    async fn mark_resent(&self, id: &CommandId, at: Timestamp) -> Result<()>;
}

/// What the books of one sku say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuBooks {
    pub levels: StockLevels,
    /// `on_hand` as the sku item keeps it.
    pub recorded_on_hand: u64,
    /// The running total of every adjustment's delta, kept with `on_hand` as each one is
    /// written (not summed from the history on each read).
    pub adjustments: i64,
    /// The sum of the units HELD reservations hold of this sku.
    pub held: u64,
    /// `levels` did not change while the holds were read, so `held` and `levels.reserved`
    /// are of the same moment. Under traffic they may not be: the comparison waits.
    pub settled: bool,
}

#[async_trait]
pub trait ReadBooks: Send + Sync {
    /// Every sku's books. Read while traffic flows, they may disagree for a moment.
    async fn books(&self) -> Result<Vec<SkuBooks>>;
}

/// `Store`: every port, what a use case may be given, with its one implementation for
/// whatever implements them all.
macro_rules! every_port {
    ($($port:ident),+) => {
        pub trait Store: $($port +)+ {}
        impl<S: $($port +)+> Store for S {}
    };
}

every_port!(
    ReadStock,
    ListSkus,
    ReadRecord,
    WriteStock,
    ReadReservation,
    WriteHold,
    ReadOrder,
    WriteRefund,
    ReadCampaign,
    WriteCampaign,
    ReadCommand,
    WriteCommand,
    FindOverdueHolds,
    FindUnappliedCommands,
    ReadBooks
);
