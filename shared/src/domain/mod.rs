//! The stockroom domain: parsed input types and the stock rules. No I/O here.

mod ids;
mod quantity;
mod reservation;
mod sku;
mod stock;
mod timestamp;

pub use ids::{AdjustmentId, CommandId, OrderId, RefundId, ReservationId};
pub use quantity::{Delta, OnHand, Quantity};
pub use reservation::{
    Allocation, CustomerId, HoldDuration, Line, Lines, Reservation, ReservationStatus,
};
pub use sku::Sku;
pub use stock::{
    plan_decrement, plan_moves, spread, Counter, Move, PageLimit, ShardCount, ShardStock, SkuPage,
    StockLevels, StockMove, Take,
};
pub use timestamp::Timestamp;

/// A rule the input broke; becomes a 400 `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

mod adjustment;
pub mod events;
pub use adjustment::{Adjustment, Reason};

mod order;
pub use order::{
    CommandStatus, Order, OrderLine, OrderStatus, Refund, RefundPlan, RefundRejected, RefundStatus,
    Restock,
};

mod campaign;
pub use campaign::{Campaign, CampaignId, CampaignTerms, Offer, SkuTerms};
