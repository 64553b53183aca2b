//! Orders (from a hold, or straight from stock) and refunds.

use super::holds::{self, customers_terms};
use super::taking::{take_lines, Taking, Terms};
use super::{replay_or, StockViews};
use crate::domain::{
    CommandId, CustomerId, Line, Lines, Order, OrderId, OrderLine, OrderStatus, Refund, RefundId,
    RefundRejected, RefundStatus, ReservationId, ReservationStatus, Restock, StockMove, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded, RecordedRequest};
use crate::identity::Acting;
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
    pub acting: Acting,
    pub order_id: OrderId,
    pub source: Source,
    pub customer_id: Option<CustomerId>,
    pub at: Timestamp,
    pub fingerprint: String,
}

pub async fn place<S>(store: &S, views: &StockViews, request: NewOrder) -> Result<Recorded<Order>>
where
    S: ReadReservation + WriteHold + ReadStock + WriteStock + ReadRecord,
{
    let order = Order {
        order_id: request.order_id.clone(),
        status: OrderStatus::Confirmed,
        lines: Vec::new(),
        customer_id: request.acting.customer(request.customer_id.clone())?,
        reservation_id: None,
        created_at: request.at,
        refunds: Vec::new(),
        allocations: Vec::new(),
        version: 0,
    };
    match &request.source {
        Source::Hold(reservation_id) => {
            let from = (&request.acting, reservation_id);
            commit_hold(store, order, from, &request.fingerprint).await
        }
        Source::Stock(lines) => {
            let terms = customers_terms(&request.acting);
            sell(store, views, order, (lines, terms), &request.fingerprint).await
        }
    }
}

/// Commits a HELD reservation that is not past `expires_at`: its units go from reserved
/// to sold, and the order (with the hold's lines and customer) is written with it.
async fn commit_hold<S>(
    store: &S,
    mut order: Order,
    (acting, reservation_id): (&Acting, &ReservationId),
    fingerprint: &str,
) -> Result<Recorded<Order>>
where
    S: ReadReservation + WriteHold + ReadRecord,
{
    let at = order.created_at;
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let reservation = holds::reservation(store, acting, reservation_id).await?;
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
    views: &StockViews,
    mut order: Order,
    (lines, terms): (&Lines, Terms<'_>),
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
        terms,
    };
    take_lines(store, views, taking, |allocations| {
        order.allocations = allocations;
        (order.clone(), Answer::Created)
    })
    .await
}

/// The order with its refunds, if the caller may see it: a customer sees only their own.
pub async fn order(store: &impl ReadOrder, acting: &Acting, id: &OrderId) -> Result<Order> {
    match store.order(id).await? {
        Some(order) if acting.may_see(order.customer_id.as_ref()) => Ok(order),
        _ => Err(Error::OrderNotFound(id.to_string())),
    }
}

/// A refund as the client asked for it, with the id its idempotency key gives.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub acting: Acting,
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
        let order = order(store, &request.acting, &request.order_id).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Shown;
    use crate::domain::{Allocation, CommandStatus};
    use crate::identity::Acting;
    use crate::store::{MemoryStore, ReadCommand, TakeStock, Taker};
    use crate::usecases::holds::{self, NewHold};
    use crate::usecases::testing::*;

    fn units(allocations: &[Allocation]) -> u64 {
        allocations.iter().map(|a| a.take.quantity).sum()
    }

    async fn commit(store: &MemoryStore, request: NewOrder) -> Result<Recorded<Order>> {
        place(store, &StockViews::default(), request).await
    }

    #[tokio::test]
    async fn an_order_from_a_hold_sells_its_units_and_takes_its_lines_and_customer() {
        let store = stocked(&[("tea", 10, 3)]).await;
        let request = NewHold {
            customer_id: Some(customer("ann")),
            ..hold(&[("tea", 5)])
        };
        let held = placed(&store, request).await;
        let id = held.reservation_id.clone();
        let (answer, order) =
            created(commit(&store, order_for(Source::Hold(id.clone()), later(899))).await);
        assert_eq!(answer, Answer::Created);
        assert_eq!(order.status, OrderStatus::Confirmed);
        assert_eq!(order.reservation_id, Some(id.clone()));
        assert_eq!(order.customer_id, Some(customer("ann")));
        assert_eq!(order.lines, vec![OrderLine::new(&line("tea", 5))]);
        assert_eq!(order.allocations, held.allocations);
        assert_eq!(order.created_at, later(899));
        assert_eq!(counters(&store, "tea").await, (5, 0, 5));
        let committed = holds::reservation(&store, &Acting::Staff, &id)
            .await
            .unwrap();
        assert_eq!(committed.status, ReservationStatus::Committed);
        assert_eq!(committed.order_id, Some(order.order_id.clone()));
        assert_eq!(
            super::order(&store, &Acting::Staff, &order.order_id)
                .await
                .unwrap(),
            order
        );
    }

    #[tokio::test]
    async fn committing_a_hold_again_replays_the_first_order() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let held = placed(&store, hold(&[("tea", 5)])).await;
        let request = order_for(Source::Hold(held.reservation_id.clone()), now());
        let (_, order) = created(commit(&store, request.clone()).await);
        let again = commit(&store, request.clone()).await;
        let Ok(Recorded::Replayed(first)) = again else {
            panic!("expected a replay, got {again:?}");
        };
        assert_eq!(first.status, 201);
        assert_eq!(first.body, serde_json::to_string(&order.shown()).unwrap());
        let other_body = NewOrder {
            fingerprint: "another body".into(),
            ..request
        };
        let e = refused(commit(&store, other_body).await);
        assert!(matches!(e, Error::IdempotencyKeyReused), "{e:?}");
        assert_eq!(counters(&store, "tea").await, (5, 0, 5));
    }

    #[tokio::test]
    async fn only_a_held_hold_in_time_can_be_committed() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let commit_at = |id: &ReservationId, at| order_for(Source::Hold(id.clone()), at);

        let held = placed(&store, hold(&[("tea", 1)])).await;
        let id = &held.reservation_id;
        // Past its expiry, before the sweep, and after.
        let e = refused(commit(&store, commit_at(id, later(900))).await);
        assert!(
            matches!(&e, Error::ReservationExpired(r) if r == id),
            "{e:?}"
        );
        holds::expire(&store, id, later(900)).await.unwrap();
        let e = refused(commit(&store, commit_at(id, now())).await);
        assert!(
            matches!(&e, Error::ReservationExpired(r) if r == id),
            "{e:?}"
        );

        let released = placed(&store, hold(&[("tea", 1)])).await;
        let id = &released.reservation_id;
        holds::release(&store, &Acting::Staff, id, now())
            .await
            .unwrap();
        let e = refused(commit(&store, commit_at(id, now())).await);
        let status = ReservationStatus::Released;
        assert!(
            matches!(&e, Error::ReservationNotHeld { id: r, status: s } if r == id && *s == status),
            "{e:?}"
        );

        let sold = placed(&store, hold(&[("tea", 1)])).await;
        let id = &sold.reservation_id;
        created(commit(&store, commit_at(id, now())).await);
        let e = refused(commit(&store, commit_at(id, now())).await);
        let status = ReservationStatus::Committed;
        assert!(
            matches!(&e, Error::ReservationNotHeld { status: s, .. } if *s == status),
            "{e:?}"
        );

        let e = refused(commit(&store, commit_at(&ReservationId::generate(), now())).await);
        assert!(matches!(e, Error::ReservationNotFound(_)), "{e:?}");
        assert_eq!(counters(&store, "tea").await, (9, 0, 1));
    }

    #[tokio::test]
    async fn a_sale_from_stock_sells_every_line_or_nothing() {
        let store = stocked(&[("tea", 10, 4), ("cup", 2, 1)]).await;
        let request = order_for(Source::Stock(lines(&[("tea", 7), ("cup", 2)])), now());
        let (answer, order) = created(commit(&store, request.clone()).await);
        assert_eq!(answer, Answer::Created);
        assert_eq!(
            order.lines,
            vec![
                OrderLine::new(&line("tea", 7)),
                OrderLine::new(&line("cup", 2))
            ]
        );
        assert_eq!(order.reservation_id, None);
        assert_eq!(units(&order.allocations), 9);
        assert_eq!(counters(&store, "tea").await, (3, 0, 7));
        assert_eq!(counters(&store, "cup").await, (0, 0, 2));

        let again = commit(&store, request).await;
        let Ok(Recorded::Replayed(first)) = again else {
            panic!("expected a replay, got {again:?}");
        };
        assert_eq!(first.body, serde_json::to_string(&order.shown()).unwrap());

        let short = order_for(Source::Stock(lines(&[("tea", 3), ("cup", 1)])), now());
        let e = refused(commit(&store, short).await);
        assert!(
            matches!(&e, Error::InsufficientStock { sku: s } if *s == sku("cup")),
            "{e:?}"
        );
        let unknown = order_for(Source::Stock(lines(&[("lid", 1)])), now());
        let e = refused(commit(&store, unknown).await);
        assert!(matches!(e, Error::SkuNotFound(_)), "{e:?}");
        assert_eq!(counters(&store, "tea").await, (3, 0, 7));
        let e = refused(super::order(&store, &Acting::Staff, &OrderId::generate()).await);
        assert!(matches!(e, Error::OrderNotFound(_)), "{e:?}");
    }

    fn refund_of(order: &Order, items: Option<&[(&str, u64)]>, restock: bool) -> RefundRequest {
        RefundRequest {
            acting: Acting::Staff,
            refund_id: RefundId::generate(),
            order_id: order.order_id.clone(),
            lines: items.map(|items| items.iter().map(|(of, q)| line(of, *q)).collect()),
            restock,
            reason: Some("damaged".into()),
            at: later(60),
            fingerprint: "first body".into(),
        }
    }

    #[tokio::test]
    async fn a_refund_without_lines_refunds_everything_left_at_once() {
        let store = stocked(&[("tea", 10, 1), ("cup", 5, 1)]).await;
        let order = sold(&store, &[("tea", 3), ("cup", 2)]).await;
        let queue = RecordingQueue::default();
        let part = refund_of(&order, Some(&[("tea", 1)]), false);
        created(refund(&store, &queue, &part).await);

        let rest = refund_of(&order, None, false);
        let (answer, refunded) = created(refund(&store, &queue, &rest).await);
        assert_eq!(answer, Answer::Created);
        assert_eq!(refunded.status, RefundStatus::Completed);
        assert_eq!(refunded.lines, vec![line("tea", 2), line("cup", 2)]);
        assert_eq!(refunded.reason.as_deref(), Some("damaged"));
        assert!(queue.sent().is_empty());
        let after = super::order(&store, &Acting::Staff, &order.order_id)
            .await
            .unwrap();
        assert_eq!(after.status, OrderStatus::Refunded);
        assert_eq!(after.refunds.len(), 2);
        // Without restock the units stay sold.
        assert_eq!(counters(&store, "tea").await, (7, 0, 3));

        let nothing_left = refund_of(&order, None, false);
        let e = refused(refund(&store, &queue, &nothing_left).await);
        assert!(
            matches!(e, Error::RefundExceedsOrder { sku: None }),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_refund_never_passes_what_was_ordered() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let order = sold(&store, &[("tea", 3)]).await;
        let queue = RecordingQueue::default();
        created(
            refund(
                &store,
                &queue,
                &refund_of(&order, Some(&[("tea", 2)]), true),
            )
            .await,
        );
        for too_much in [("tea", 2), ("cup", 1)] {
            let request = refund_of(&order, Some(&[too_much]), true);
            let e = refused(refund(&store, &queue, &request).await);
            let named = Some(sku(too_much.0));
            assert!(
                matches!(&e, Error::RefundExceedsOrder { sku } if *sku == named),
                "{e:?}"
            );
        }
        let after = super::order(&store, &Acting::Staff, &order.order_id)
            .await
            .unwrap();
        assert_eq!(
            (after.status, after.refunds.len()),
            (OrderStatus::PartiallyRefunded, 1)
        );
        assert_eq!(after.lines[0].refunded, 2);
        assert_eq!(queue.sent().len(), 1);
        let e = refused(
            refund(
                &store,
                &queue,
                &RefundRequest {
                    order_id: OrderId::generate(),
                    ..refund_of(&order, None, false)
                },
            )
            .await,
        );
        assert!(matches!(e, Error::OrderNotFound(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_refund_with_restock_is_accepted_pending_and_its_command_sent() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let order = sold(&store, &[("tea", 3)]).await;
        let queue = RecordingQueue::default();
        let request = refund_of(&order, Some(&[("tea", 2)]), true);
        let (answer, refunded) = created(refund(&store, &queue, &request).await);
        assert_eq!(answer, Answer::Accepted);
        assert_eq!(refunded.status, RefundStatus::Pending);
        assert!(refunded.restock);
        let command_id = CommandId::from_ulid(request.refund_id.ulid());
        let sent: Vec<_> = queue.sent().into_iter().map(|m| m.command_id).collect();
        assert_eq!(sent, vec![command_id.clone()]);
        let (status, restock) = store.command(&command_id).await.unwrap().unwrap();
        assert_eq!(status, CommandStatus::Pending);
        assert_eq!(
            (restock.order_id, restock.refund_id),
            (order.order_id.clone(), request.refund_id.clone())
        );
        assert_eq!(units(&restock.units), 2);
        assert_eq!(restock.created_at, later(60));
        // The units come back when the command is applied, not before.
        assert_eq!(counters(&store, "tea").await, (7, 0, 3));

        let again = refund(&store, &queue, &request).await;
        let Ok(Recorded::Replayed(first)) = again else {
            panic!("expected a replay, got {again:?}");
        };
        assert_eq!(first.status, 202);
        assert_eq!(
            first.body,
            serde_json::to_string(&refunded.shown()).unwrap()
        );
        let other_body = RefundRequest {
            fingerprint: "another body".into(),
            ..request
        };
        let e = refused(refund(&store, &queue, &other_body).await);
        assert!(matches!(e, Error::IdempotencyKeyReused), "{e:?}");
        assert_eq!(queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_refund_stands_when_its_command_cannot_be_sent() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let order = sold(&store, &[("tea", 3)]).await;
        let queue = RecordingQueue {
            refuse: true,
            ..RecordingQueue::default()
        };
        let request = refund_of(&order, None, true);
        let (answer, _) = created(refund(&store, &queue, &request).await);
        assert_eq!(answer, Answer::Accepted);
        let command_id = CommandId::from_ulid(request.refund_id.ulid());
        assert!(store.command(&command_id).await.unwrap().is_some());
    }

    /// An order that does not say which shards its units came from (written before
    /// orders kept their allocations) has nowhere to put units back.
    #[tokio::test]
    async fn a_restock_with_no_shard_to_go_back_to_completes_at_once() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let mut order = sold(&store, &[("tea", 3)]).await;
        order.order_id = OrderId::generate();
        order.allocations.clear();
        let receipt = RecordedRequest::new("first body", Answer::Created, &order).unwrap();
        let write = TakeStock {
            allocations: &[],
            movement: StockMove::SELL,
            record: Taker::Order(&order),
            receipt: &receipt,
            campaign: None,
            terms: None,
            at: now(),
        };
        assert_eq!(store.take(write).await.unwrap(), Attempt::Committed);
        let queue = RecordingQueue::default();
        let (answer, refunded) =
            created(refund(&store, &queue, &refund_of(&order, None, true)).await);
        assert_eq!(
            (answer, refunded.status),
            (Answer::Created, RefundStatus::Completed)
        );
        assert!(refunded.restock);
        assert!(queue.sent().is_empty());
    }
}
