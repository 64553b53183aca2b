//! Ports: one narrow trait per operation the functions need, and their DynamoDB adapter.

mod dynamo;

use async_trait::async_trait;

pub use dynamo::DynamoStore;

use crate::domain::{
    Adjustment, Reservation, ReservationId, ReservationStatus, ShardCount, Sku, StockLevels,
    Timestamp,
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
    /// Makes `on_hand` the sku's total, creating the sku (over `shards` stock items) if
    /// it is new; the difference is recorded as an adjustment. Fails with
    /// `InsufficientStock` when fewer units are available than the cut needs.
    async fn set_on_hand(
        &self,
        sku: &Sku,
        on_hand: u64,
        shards: ShardCount,
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

#[async_trait]
pub trait PlaceHold: Send + Sync {
    /// Moves every line's units from available to reserved and writes the reservation,
    /// all or nothing. `reservation.allocations` is filled in by the store.
    async fn place_hold(
        &self,
        reservation: Reservation,
        fingerprint: &str,
    ) -> Result<Recorded<Reservation>>;
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
