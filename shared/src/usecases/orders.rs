//! Orders (from a hold, or straight from stock) and refunds.

use super::taking::{take_lines, Taking};
use super::{replay_or, ShardCounts};
use crate::domain::{
    CommandId, CustomerId, Line, Lines, Order, OrderId, OrderLine, OrderStatus, Refund, RefundId,
    RefundRejected, RefundStatus, ReservationId, ReservationStatus, Restock, StockMove, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded, RecordedRequest};
use crate::queue::{CommandMessage, CommandQueue};
use crate::retry::Backoff;
use crate::store::{
    Attempt, EndHold, NewRefund, ReadOrder, ReadRecord, ReadReservation, ReadStock, RecordKey,
    WriteHold, WriteRefund, WriteStock,
};

/// Where an order's units come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A HELD reservation's units, which become sold.
    Hold(ReservationId),
    /// Available units, sold at once.
    Stock(Lines),
}

/// An order as the client asked for it, with the id its idempotency key gives.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order_id: OrderId,
    pub source: Source,
    pub customer_id: Option<CustomerId>,
    pub at: Timestamp,
    pub fingerprint: String,
}

pub async fn place<S>(
    store: &S,
    shard_counts: &ShardCounts,
    request: NewOrder,
) -> Result<Recorded<Order>>
where
    S: ReadReservation + WriteHold + ReadStock + WriteStock + ReadRecord,
{
    let order = Order {
        order_id: request.order_id.clone(),
        status: OrderStatus::Confirmed,
        lines: Vec::new(),
        customer_id: request.customer_id.clone(),
        reservation_id: None,
        created_at: request.at,
        refunds: Vec::new(),
        allocations: Vec::new(),
        version: 0,
    };
    match &request.source {
        Source::Hold(reservation_id) => {
            commit_hold(store, order, reservation_id, &request.fingerprint).await
        }
        Source::Stock(lines) => sell(store, shard_counts, order, lines, &request.fingerprint).await,
    }
}

/// Commits a HELD reservation that is not past `expires_at`: its units go from reserved
/// to sold, and the order (with the hold's lines and customer) is written with it.
async fn commit_hold<S>(
    store: &S,
    mut order: Order,
    reservation_id: &ReservationId,
    fingerprint: &str,
) -> Result<Recorded<Order>>
where
    S: ReadReservation + WriteHold + ReadRecord,
{
    let at = order.created_at;
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let Some(reservation) = store.reservation(reservation_id).await? else {
            return Err(Error::ReservationNotFound(reservation_id.to_string()));
        };
        if reservation.order_id.as_ref() == Some(&order.order_id) {
            break; // This very request committed it before: replay below.
        }
        match reservation.status {
            ReservationStatus::Held if !reservation.is_overdue(at) => {}
            ReservationStatus::Held | ReservationStatus::Expired => {
                return Err(Error::ReservationExpired(reservation_id.clone()))
            }
            status => {
                return Err(Error::ReservationNotHeld {
                    id: reservation_id.clone(),
                    status,
                })
            }
        }
        order.reservation_id = Some(reservation_id.clone());
        order.lines = reservation.lines.iter().map(OrderLine::new).collect();
        order.customer_id = reservation.customer_id.clone();
        order.allocations = reservation.allocations.clone();
        let receipt = RecordedRequest::new(fingerprint, Answer::Created, &order)?;
        let commit = EndHold {
            reservation: &reservation,
            to: ReservationStatus::Committed,
            order: Some((&order, &receipt)),
            at,
        };
        match store.end_hold(commit).await? {
            Attempt::Committed => return Ok(Recorded::Created(Answer::Created, order)),
            Attempt::Refused(_) => break,
            Attempt::Stale => {}
        }
    }
    replay_or(
        store,
        &RecordKey::Order(order.order_id.clone()),
        fingerprint,
        Error::Contention,
    )
    .await
}

/// Sells `lines` straight from available stock, all or nothing.
async fn sell<S>(
    store: &S,
    shard_counts: &ShardCounts,
    mut order: Order,
    lines: &Lines,
    fingerprint: &str,
) -> Result<Recorded<Order>>
where
    S: ReadStock + WriteStock + ReadRecord,
{
    order.lines = lines.iter().map(OrderLine::new).collect();
    let taking = Taking {
        lines,
        movement: StockMove::SELL,
        at: order.created_at,
        record: RecordKey::Order(order.order_id.clone()),
        fingerprint,
        campaign: None,
    };
    take_lines(store, shard_counts, taking, |allocations| {
        order.allocations = allocations;
        (order.clone(), Answer::Created)
    })
    .await
}

pub async fn order(store: &impl ReadOrder, id: &OrderId) -> Result<Order> {
    store
        .order(id)
        .await?
        .ok_or_else(|| Error::OrderNotFound(id.to_string()))
}

/// A refund as the client asked for it, with the id its idempotency key gives.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    /// `None`: everything the order has left.
    pub lines: Option<Vec<Line>>,
    pub restock: bool,
    pub reason: Option<String>,
    pub at: Timestamp,
    pub fingerprint: String,
}

/// Records a refund, never letting refunded pass ordered. With restock, the command that
/// puts the units back is recorded with it and then sent; the refund answers `202` and
/// stays PENDING until the command is applied. Without, it is COMPLETED at once (`201`).
pub async fn refund<S>(
    store: &S,
    queue: &dyn CommandQueue,
    request: &RefundRequest,
) -> Result<Recorded<Refund>>
where
    S: ReadOrder + WriteRefund + ReadRecord,
{
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let order = order(store, &request.order_id).await?;
        if order
            .refunds
            .iter()
            .any(|r| r.refund_id == request.refund_id)
        {
            let key = RecordKey::Refund(request.order_id.clone(), request.refund_id.clone());
            return replay_or(store, &key, &request.fingerprint, Error::Contention).await;
        }
        let plan = order
            .plan_refund(request.lines.as_deref(), request.restock)
            .map_err(|RefundRejected::Exceeds { sku }| Error::RefundExceedsOrder { sku })?;
        let restock = (request.restock && !plan.restock.is_empty()).then(|| Restock {
            command_id: CommandId::from_ulid(request.refund_id.ulid()),
            order_id: request.order_id.clone(),
            refund_id: request.refund_id.clone(),
            units: plan.restock.clone(),
            created_at: request.at,
        });
        let (answer, status) = match restock {
            Some(_) => (Answer::Accepted, RefundStatus::Pending),
            None => (Answer::Created, RefundStatus::Completed),
        };
        let refund = Refund {
            refund_id: request.refund_id.clone(),
            order_id: request.order_id.clone(),
            status,
            lines: plan.lines,
            restock: request.restock,
            reason: request.reason.clone(),
            created_at: request.at,
        };
        let refunded = Order {
            status: plan.status,
            lines: plan.order_lines,
            version: order.version + 1,
            ..order.clone()
        };
        let receipt = RecordedRequest::new(&request.fingerprint, answer, &refund)?;
        let write = NewRefund {
            order: &order,
            refunded: &refunded,
            refund: &refund,
            restock: restock.as_ref(),
            receipt: &receipt,
        };
        if let Attempt::Committed = store.record_refund(write).await? {
            if let Some(restock) = &restock {
                // The command is recorded: if this send is lost, the sweep sends it again.
                if let Err(e) = queue.send(&CommandMessage::restock(restock)).await {
                    tracing::warn!(command_id = %restock.command_id, error = %e, "restock not sent; the sweep will");
                }
            }
            return Ok(Recorded::Created(answer, refund));
        }
        // The order changed since it was read (another refund): plan again.
    }
    Err(Error::Contention)
}
