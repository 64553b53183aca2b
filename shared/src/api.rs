//! What the API speaks: the bodies of its answers, types of their own apart from the
//! domain's and from what the table stores, so that renaming a field or a status in the
//! domain changes no answer (and the committed `openapi.json`, generated from these
//! types, shows any change of the API). Request bodies are read straight into the parsed
//! domain values (`Lines`, `Sku`, ids, ...): parse, don't validate.

use std::collections::BTreeSet;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{self, CampaignId, CustomerId, Line, Lines, OrderId, Quantity, RefundId};
use crate::domain::{ReservationId, Sku, Timestamp};

/// A domain value as the API shows it.
pub trait Shown {
    type Body: Serialize;
    fn shown(&self) -> Self::Body;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
    Expired,
}

impl From<domain::ReservationStatus> for ReservationStatus {
    fn from(status: domain::ReservationStatus) -> Self {
        match status {
            domain::ReservationStatus::Held => Self::Held,
            domain::ReservationStatus::Committed => Self::Committed,
            domain::ReservationStatus::Released => Self::Released,
            domain::ReservationStatus::Expired => Self::Expired,
        }
    }
}

/// A hold on stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reservation {
    pub reservation_id: ReservationId,
    pub status: ReservationStatus,
    pub lines: Lines,
    pub customer_id: Option<CustomerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

impl Shown for domain::Reservation {
    type Body = Reservation;
    fn shown(&self) -> Reservation {
        Reservation {
            reservation_id: self.reservation_id.clone(),
            status: self.status.into(),
            lines: self.lines.clone(),
            customer_id: self.customer_id.clone(),
            campaign_id: self.campaign_id.clone(),
            expires_at: self.expires_at,
            created_at: self.created_at,
            order_id: self.order_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Confirmed,
    PartiallyRefunded,
    Refunded,
}

impl From<domain::OrderStatus> for OrderStatus {
    fn from(status: domain::OrderStatus) -> Self {
        match status {
            domain::OrderStatus::Confirmed => Self::Confirmed,
            domain::OrderStatus::PartiallyRefunded => Self::PartiallyRefunded,
            domain::OrderStatus::Refunded => Self::Refunded,
        }
    }
}

/// A line of an order and how much of it has been refunded so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: Quantity,
    pub refunded: u64,
}

/// A confirmed sale, with its refunds, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Order {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub customer_id: Option<CustomerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<ReservationId>,
    pub created_at: Timestamp,
    pub refunds: Vec<Refund>,
}

impl Shown for domain::Order {
    type Body = Order;
    fn shown(&self) -> Order {
        Order {
            order_id: self.order_id.clone(),
            status: self.status.into(),
            lines: self
                .lines
                .iter()
                .map(|l| OrderLine {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    refunded: l.refunded,
                })
                .collect(),
            customer_id: self.customer_id.clone(),
            reservation_id: self.reservation_id.clone(),
            created_at: self.created_at,
            refunds: self.refunds.iter().map(Shown::shown).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    Pending,
    Completed,
    Failed,
}

impl From<domain::RefundStatus> for RefundStatus {
    fn from(status: domain::RefundStatus) -> Self {
        match status {
            domain::RefundStatus::Pending => Self::Pending,
            domain::RefundStatus::Completed => Self::Completed,
            domain::RefundStatus::Failed => Self::Failed,
        }
    }
}

/// Money, and with `restock` units, going back for some of an order's lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Refund {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    pub status: RefundStatus,
    pub lines: Vec<Line>,
    pub restock: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: Timestamp,
}

impl Shown for domain::Refund {
    type Body = Refund;
    fn shown(&self) -> Refund {
        Refund {
            refund_id: self.refund_id.clone(),
            order_id: self.order_id.clone(),
            status: self.status.into(),
            lines: self.lines.clone(),
            restock: self.restock,
            reason: self.reason.clone(),
            created_at: self.created_at,
        }
    }
}

/// What `GET /skus/{sku}` shows: the sums over every shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StockLevels {
    pub sku: Sku,
    pub on_hand: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    pub shards: u16,
    pub updated_at: Timestamp,
}

impl Shown for domain::StockLevels {
    type Body = StockLevels;
    fn shown(&self) -> StockLevels {
        StockLevels {
            sku: self.sku.clone(),
            on_hand: self.on_hand,
            available: self.available,
            reserved: self.reserved,
            sold: self.sold,
            shards: self.shards,
            updated_at: self.updated_at,
        }
    }
}

/// What `GET /skus` shows: skus in the order of their ids, and where the next page starts
/// (`after=`), absent on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SkuPage {
    pub skus: Vec<StockLevels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Sku>,
}

impl Shown for domain::SkuPage {
    type Body = SkuPage;
    fn shown(&self) -> SkuPage {
        SkuPage {
            skus: self.skus.iter().map(Shown::shown).collect(),
            next: self.next.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Campaign {
    pub campaign_id: CampaignId,
    pub skus: BTreeSet<Sku>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Units one customer may hold plus have bought in this campaign.
    pub per_customer_limit: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Shown for domain::Campaign {
    type Body = Campaign;
    fn shown(&self) -> Campaign {
        Campaign {
            campaign_id: self.campaign_id.clone(),
            skus: self.skus.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            per_customer_limit: self.per_customer_limit,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
