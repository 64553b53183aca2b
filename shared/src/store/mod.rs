//! Ports: one narrow trait per operation the functions need, and their DynamoDB adapter.

mod dynamo;

use async_trait::async_trait;

pub use dynamo::DynamoStore;

use crate::domain::{
    Adjustment, Campaign, CampaignId, CampaignTerms, CommandId, Line, Lines, Order, OrderId,
    Refund, RefundId, Reservation, ReservationId, ReservationStatus, Restock, ShardCount, Sku,
    StockLevels, Timestamp,
};
use crate::error::Result;
use crate::idempotency::Recorded;

#[async_trait]
pub trait ReadStock: Send + Sync {
    async fn stock(&self, sku: &Sku) -> Result<Option<StockLevels>>;
}

/// The result of setting a sku's on_hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockSet {
    pub levels: StockLevels,
    pub created: bool,
}

#[async_trait]
pub trait SetStock: Send + Sync {
    /// Makes `on_hand` the sku's total, creating the sku (over `shards` stock items, one
    /// unless told) if it is new; the difference is recorded as an adjustment. A new
    /// shard count for an existing sku respreads its available units first. Fails with
    /// `InsufficientStock` when fewer units are available than the cut needs.
    async fn set_on_hand(
        &self,
        sku: &Sku,
        on_hand: u64,
        shards: Option<ShardCount>,
        at: Timestamp,
    ) -> Result<StockSet>;
}

#[async_trait]
pub trait AdjustStock: Send + Sync {
    /// Applies the adjustment once; the record is keyed by its id and remembers the
    /// request's fingerprint and answer.
    async fn adjust(
        &self,
        adjustment: &Adjustment,
        fingerprint: &str,
    ) -> Result<Recorded<StockLevels>>;
}

/// The campaign terms a reservation was admitted under; the store re-checks them inside
/// the reservation's transaction.
#[derive(Debug, Clone)]
pub struct CampaignHold {
    pub limit: u32,
}

#[async_trait]
pub trait PlaceHold: Send + Sync {
    /// Moves every line's units from available to reserved and writes the reservation,
    /// all or nothing. `reservation.allocations` is filled in by the store. A campaign
    /// reservation also checks the campaign's window and skus and adds its units to the
    /// customer's counter, which may not pass `campaign.limit`, in the same transaction.
    async fn place_hold(
        &self,
        reservation: Reservation,
        campaign: Option<CampaignHold>,
        fingerprint: &str,
    ) -> Result<Recorded<Reservation>>;
}

#[async_trait]
pub trait SetCampaign: Send + Sync {
    /// Creates or replaces a campaign; `true` when it is new.
    async fn put_campaign(
        &self,
        id: &CampaignId,
        terms: &CampaignTerms,
        at: Timestamp,
    ) -> Result<(Campaign, bool)>;
}

#[async_trait]
pub trait ReadCampaign: Send + Sync {
    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>>;
}

#[async_trait]
pub trait ReadReservation: Send + Sync {
    async fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>>;
}

#[async_trait]
pub trait EndHold: Send + Sync {
    /// Gives a HELD reservation's units back and moves it to `to` (RELEASED or EXPIRED),
    /// once however often it is called; returns the reservation as it now stands.
    async fn end_hold(
        &self,
        id: &ReservationId,
        to: ReservationStatus,
        at: Timestamp,
    ) -> Result<Reservation>;
}

#[async_trait]
pub trait PlaceOrder: Send + Sync {
    /// Commits the order's reservation (HELD and not past `expires_at` at `order.created_at`):
    /// its units go from reserved to sold, and the order is written, in one transaction.
    async fn commit_hold(&self, order: Order, fingerprint: &str) -> Result<Recorded<Order>>;

    /// Sells `lines` straight from available stock, all or nothing, and writes the order.
    async fn sell(&self, order: Order, lines: &Lines, fingerprint: &str)
        -> Result<Recorded<Order>>;
}

#[async_trait]
pub trait ReadOrder: Send + Sync {
    /// The order with its refunds.
    async fn order(&self, id: &OrderId) -> Result<Option<Order>>;
}

/// A refund as the client asked for it.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    /// `None`: everything the order has left.
    pub lines: Option<Vec<Line>>,
    pub restock: bool,
    pub reason: Option<String>,
    pub at: Timestamp,
}

#[async_trait]
pub trait RecordRefund: Send + Sync {
    /// Records the refund and the order's refunded quantities in one transaction that
    /// never lets refunded exceed ordered; with restock, the restock command is recorded
    /// in the same transaction and returned for sending.
    async fn record_refund(
        &self,
        request: &RefundRequest,
        fingerprint: &str,
    ) -> Result<Recorded<(Refund, Option<Restock>)>>;
}

/// What applying a compensation command came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now,
    Before,
}

#[async_trait]
pub trait ApplyRestock: Send + Sync {
    /// Puts the command's units back and completes its refund, once.
    async fn apply_restock(&self, id: &CommandId, at: Timestamp) -> Result<Applied>;

    /// Gives up on a command whose retries ran out: it and its refund become FAILED.
    async fn fail_restock(&self, id: &CommandId, at: Timestamp) -> Result<()>;
}

#[async_trait]
pub trait FindOverdueHolds: Send + Sync {
    /// HELD reservations whose `expires_at` is at or before `now`, through the index.
    async fn overdue_holds(&self, now: Timestamp) -> Result<Vec<ReservationId>>;
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
    /// The sum of every adjustment's delta.
    pub adjustments: i64,
    /// The sum of the units HELD reservations hold of this sku.
    pub held: u64,
}

#[async_trait]
pub trait ReadBooks: Send + Sync {
    /// Every sku's books. Read while traffic flows, they may disagree for a moment.
    async fn books(&self) -> Result<Vec<SkuBooks>>;
}
