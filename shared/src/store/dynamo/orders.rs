//! Orders (from a hold or straight from stock) and refunds.

use async_trait::async_trait;

use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::{
    corrupt, get_bool, get_json, get_n, get_parsed, get_status, key_of, n, opt_parsed, opt_s, s,
    to_json, values, Attributes,
};
use super::schema::{self, ItemKey, StoredStatus, Sweep};
use super::stock::{recorded_attributes, recorded_request, Taken};
use super::{DynamoStore, Transaction};
use crate::domain::{
    CommandId, CommandStatus, CustomerId, Lines, Order, OrderId, OrderLine, Refund, RefundId,
    RefundRejected, RefundStatus, ReservationId, ReservationStatus, Restock, StockMove, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::Recorded;
use crate::retry::Backoff;
use crate::store::{PlaceOrder, ReadOrder, ReadReservation, RecordRefund, RefundRequest};

fn order_key(id: &OrderId) -> (String, String) {
    (schema::order(id), schema::ORDER.to_owned())
}

fn order_from(item: &Attributes) -> Result<Order> {
    let order_id = get_parsed(item, "order_id", |t| OrderId::parse(t).ok())?;
    if key_of(item)? != ItemKey::Order(order_id.clone()) {
        return Err(corrupt(item, "its key is not its order's"));
    }
    Ok(Order {
        order_id,
        status: get_status(item)?,
        lines: get_json(item, "lines")?,
        customer_id: opt_parsed(item, "customer_id", |t| CustomerId::parse(t).ok())?,
        reservation_id: opt_parsed(item, "reservation_id", |t| ReservationId::parse(t).ok())?,
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
        refunds: Vec::new(),
        allocations: get_json(item, "allocations")?,
        version: get_n(item, "version")?,
    })
}

fn refund_from(item: &Attributes) -> Result<Refund> {
    let refund_id = get_parsed(item, "refund_id", |t| RefundId::parse(t).ok())?;
    let order_id = get_parsed(item, "order_id", |t| OrderId::parse(t).ok())?;
    if key_of(item)? != ItemKey::Refund(order_id.clone(), refund_id.clone()) {
        return Err(corrupt(item, "its key is not its refund's"));
    }
    Ok(Refund {
        refund_id,
        order_id,
        status: get_status(item)?,
        lines: get_json(item, "lines")?,
        restock: get_bool(item, "restock")?,
        reason: opt_s(item, "reason")?.map(str::to_owned),
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
    })
}

/// The order's item, with the request's record.
fn order_item(order: &Order, fingerprint: &str) -> Result<Attributes> {
    let (pk, sk) = order_key(&order.order_id);
    let mut item = values([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("entity", s("order")),
        ("order_id", s(order.order_id.as_str())),
        ("status", s(order.status.text())),
        ("lines", s(to_json(&order.lines)?)),
        ("allocations", s(to_json(&order.allocations)?)),
        ("created_at", s(order.created_at.to_string())),
        ("updated_at", s(order.created_at.to_string())),
        ("version", n(order.version)),
    ]);
    if let Some(customer) = &order.customer_id {
        item.insert("customer_id".into(), s(customer.as_str()));
    }
    if let Some(reservation) = &order.reservation_id {
        item.insert("reservation_id".into(), s(reservation.as_str()));
    }
    recorded_attributes(&mut item, fingerprint, 201, to_json(order)?);
    Ok(item)
}

/// The refund's item, with the request's record.
fn refund_item(refund: &Refund, fingerprint: &str, status: u16) -> Result<Attributes> {
    let mut item = values([
        ("pk", s(schema::order(&refund.order_id))),
        ("sk", s(schema::refund(&refund.refund_id))),
        ("entity", s("refund")),
        ("refund_id", s(refund.refund_id.as_str())),
        ("order_id", s(refund.order_id.as_str())),
        ("status", s(refund.status.text())),
        ("lines", s(to_json(&refund.lines)?)),
        ("restock", AttributeValue::Bool(refund.restock)),
        ("created_at", s(refund.created_at.to_string())),
    ]);
    if let Some(reason) = &refund.reason {
        item.insert("reason".into(), s(reason));
    }
    recorded_attributes(&mut item, fingerprint, status, to_json(refund)?);
    Ok(item)
}

/// The compensation command a refund with restock leaves, due for the sweep at once.
fn command_item(restock: &Restock) -> Result<Attributes> {
    Ok(values([
        ("pk", s(schema::command(&restock.command_id))),
        ("sk", s(schema::COMMAND)),
        ("entity", s("command")),
        ("command_id", s(restock.command_id.as_str())),
        ("kind", s("restock")),
        ("status", s(CommandStatus::Pending.text())),
        ("command", s(to_json(restock)?)),
        ("created_at", s(restock.created_at.to_string())),
        (
            "sweep_bucket",
            s(Sweep::Command.bucket_of(restock.command_id.as_str())),
        ),
        ("sweep_at", s(restock.created_at.to_string())),
    ]))
}

#[async_trait]
impl PlaceOrder for DynamoStore {
    async fn commit_hold(&self, mut order: Order, fingerprint: &str) -> Result<Recorded<Order>> {
        let Some(reservation_id) = order.reservation_id.clone() else {
            return Err(Error::InvalidRequest(
                "an order from a hold names its reservation".into(),
            ));
        };
        let at = order.created_at;
        let (pk, sk) = order_key(&order.order_id);
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let Some(reservation) = ReadReservation::reservation(self, &reservation_id).await?
            else {
                return Err(Error::ReservationNotFound(reservation_id.to_string()));
            };
            if reservation.order_id.as_ref() == Some(&order.order_id) {
                break; // This very request committed it before: replay below.
            }
            match reservation.status {
                ReservationStatus::Held if !reservation.is_overdue(at) => {}
                ReservationStatus::Held | ReservationStatus::Expired => {
                    return Err(Error::ReservationExpired(reservation_id))
                }
                status => {
                    return Err(Error::ReservationNotHeld {
                        id: reservation_id,
                        status,
                    })
                }
            }
            order.lines = reservation.lines.iter().map(OrderLine::new).collect();
            order.customer_id = reservation.customer_id.clone();
            order.allocations = reservation.allocations.clone();
            let commit = (
                ", order_id = :order",
                " AND expires_at > :at",
                values([(":order", s(order.order_id.as_str()))]),
            );
            let mut items = self.end_hold_items(
                &reservation,
                ReservationStatus::Committed,
                StockMove::COMMIT,
                Some(commit),
                at,
            )?;
            let record_index = items.len();
            items.push(self.put_new(order_item(&order, fingerprint)?)?);
            match self.transact(items).await? {
                Transaction::Committed => return Ok(Recorded::Created(order)),
                outcome if outcome.condition_failed(record_index) => break,
                _ => continue,
            }
        }
        match self.recorded_at(pk, sk).await? {
            Some(recorded) => Ok(Recorded::Existing(recorded)),
            None => Err(Error::Contention),
        }
    }

    async fn sell(
        &self,
        mut order: Order,
        lines: &Lines,
        fingerprint: &str,
    ) -> Result<Recorded<Order>> {
        let at = order.created_at;
        let key = order_key(&order.order_id);
        let taken = self
            .take_lines(lines, StockMove::SELL, at, key, Vec::new(), |allocations| {
                order.allocations = allocations.to_vec();
                order_item(&order, fingerprint)
            })
            .await?;
        Ok(match taken {
            Taken::Done(allocations) => {
                order.allocations = allocations;
                Recorded::Created(order)
            }
            Taken::Existing(recorded) => Recorded::Existing(recorded),
        })
    }
}

impl DynamoStore {
    /// The order item and its refund items (by refund id), read together from the
    /// order's partition.
    async fn order_partition(
        &self,
        id: &OrderId,
    ) -> Result<(Option<Order>, Vec<(RefundId, Attributes)>)> {
        let mut order = None;
        let mut refunds = Vec::new();
        self.query_partition(schema::order(id), None, |item| {
            match key_of(item)? {
                ItemKey::Order(_) => order = Some(order_from(item)?),
                ItemKey::Refund(_, refund_id) => refunds.push((refund_id, item.clone())),
                _ => return Err(corrupt(item, "an order's partition holds only its refunds")),
            }
            Ok(())
        })
        .await?;
        Ok((order, refunds))
    }
}

#[async_trait]
impl ReadOrder for DynamoStore {
    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        let (order, refund_items) = self.order_partition(id).await?;
        let Some(mut order) = order else {
            return Ok(None);
        };
        order.refunds = refund_items
            .iter()
            .map(|(_, item)| refund_from(item))
            .collect::<Result<_>>()?;
        order
            .refunds
            .sort_by(|a, b| (a.created_at, &a.refund_id).cmp(&(b.created_at, &b.refund_id)));
        Ok(Some(order))
    }
}

#[async_trait]
impl RecordRefund for DynamoStore {
    async fn record_refund(
        &self,
        request: &RefundRequest,
        fingerprint: &str,
    ) -> Result<Recorded<(Refund, Option<Restock>)>> {
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let (order, refund_items) = self.order_partition(&request.order_id).await?;
            if let Some((_, item)) = refund_items.iter().find(|(id, _)| *id == request.refund_id) {
                return Ok(Recorded::Existing(recorded_request(item)?));
            }
            let Some(order) = order else {
                return Err(Error::OrderNotFound(request.order_id.to_string()));
            };
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
            let refund = Refund {
                refund_id: request.refund_id.clone(),
                order_id: request.order_id.clone(),
                status: if restock.is_some() {
                    RefundStatus::Pending
                } else {
                    RefundStatus::Completed
                },
                lines: plan.lines.clone(),
                restock: request.restock,
                reason: request.reason.clone(),
                created_at: request.at,
            };
            let (pk, sk) = order_key(&request.order_id);
            let mut items = vec![self.update(
                pk,
                sk,
                "SET #status = :status, #lines = :lines, version = version + :one, updated_at = :at",
                "version = :seen",
                values([
                    (":status", s(plan.status.text())),
                    (":lines", s(to_json(&plan.order_lines)?)),
                    (":one", n(1)),
                    (":seen", n(order.version)),
                    (":at", s(request.at.to_string())),
                ]),
            )?];
            let status = if restock.is_some() { 202 } else { 201 };
            items.push(self.put_new(refund_item(&refund, fingerprint, status)?)?);
            if let Some(restock) = &restock {
                items.push(self.put_new(command_item(restock)?)?);
            }
            if let Transaction::Committed = self.transact(items).await? {
                return Ok(Recorded::Created((refund, restock)));
            }
        }
        Err(Error::Contention)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Allocation, OrderStatus, Take};
    use crate::store::dynamo::codec::tests::assert_corrupt;

    const ORDER: &str = "ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM";
    const PK: &str = "ORDER#ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM";

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn order() -> Order {
        Order {
            order_id: OrderId::parse(ORDER).unwrap(),
            status: OrderStatus::PartiallyRefunded,
            lines: serde_json::from_str(r#"[{"sku":"A-1","quantity":3,"refunded":1}]"#).unwrap(),
            customer_id: Some(CustomerId::parse("alice").unwrap()),
            reservation_id: None,
            created_at: at("2026-11-22T04:00:00Z"),
            refunds: Vec::new(),
            allocations: vec![Allocation {
                sku: crate::domain::Sku::parse("A-1").unwrap(),
                take: Take {
                    shard: 0,
                    quantity: 3,
                },
            }],
            version: 1,
        }
    }

    fn refund() -> Refund {
        Refund {
            refund_id: RefundId::parse("rfd_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            order_id: OrderId::parse(ORDER).unwrap(),
            status: RefundStatus::Pending,
            lines: serde_json::from_str(r#"[{"sku":"A-1","quantity":1}]"#).unwrap(),
            restock: true,
            reason: Some("damaged".into()),
            created_at: at("2026-11-22T04:30:00Z"),
        }
    }

    #[test]
    fn orders_and_refunds_read_back_as_written() {
        assert_eq!(
            order_from(&order_item(&order(), "f").unwrap()).unwrap(),
            order()
        );
        assert_eq!(
            refund_from(&refund_item(&refund(), "f", 202).unwrap()).unwrap(),
            refund()
        );
    }

    #[test]
    fn a_corrupted_order_or_refund_is_a_store_error_naming_its_key() {
        let order_with = |name: &str, value: AttributeValue| {
            let mut item = order_item(&order(), "f").unwrap();
            item.insert(name.to_owned(), value);
            order_from(&item)
        };
        assert_corrupt(order_with("status", s("SHIPPED")), PK, "status");
        assert_corrupt(
            order_with("reservation_id", s("res_")),
            PK,
            "reservation_id",
        );
        assert_corrupt(order_with("version", s("1")), PK, "version");
        let refund_with = |change: &dyn Fn(&mut Attributes)| {
            let mut item = refund_item(&refund(), "f", 202).unwrap();
            change(&mut item);
            refund_from(&item)
        };
        // A refund without its restock flag is not taken for one without restock.
        assert_corrupt(refund_with(&|i| drop(i.remove("restock"))), PK, "restock");
        assert_corrupt(
            refund_with(&|i| drop(i.insert("reason".into(), n(4)))),
            PK,
            "reason",
        );
        assert_corrupt(
            refund_with(&|i| drop(i.insert("sk".into(), s("REFUND#ref_")))),
            PK,
            "key",
        );
    }
}
