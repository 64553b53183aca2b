//! Orders and refunds: their items, reading an order with its refunds, and a refund's
//! transaction.

use async_trait::async_trait;

use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::{
    corrupt, get_bool, get_json, get_n, get_parsed, get_status, key_of, n, opt_parsed, opt_s, s,
    to_json, values, Attributes,
};
use super::records::with_receipt;
use super::schema::{self, ItemKey, StoredStatus, Sweep};
use super::DynamoStore;
use crate::domain::{
    CommandStatus, CustomerId, Order, OrderId, Refund, RefundId, ReservationId, Restock, Timestamp,
};
use crate::error::Result;
use crate::idempotency::RecordedRequest;
use crate::store::{Attempt, NewRefund, ReadOrder, WriteRefund};

pub(super) fn order_from(item: &Attributes) -> Result<Order> {
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

pub(super) fn refund_from(item: &Attributes) -> Result<Refund> {
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

/// The order's item, with the request's receipt.
pub(super) fn order_item(order: &Order, receipt: &RecordedRequest) -> Result<Attributes> {
    let (pk, sk) = schema::order_key(&order.order_id);
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
    Ok(with_receipt(item, receipt))
}

/// The refund's item, with the request's receipt.
fn refund_item(refund: &Refund, receipt: &RecordedRequest) -> Result<Attributes> {
    let (pk, sk) = schema::refund_key(&refund.order_id, &refund.refund_id);
    let mut item = values([
        ("pk", s(pk)),
        ("sk", s(sk)),
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
    Ok(with_receipt(item, receipt))
}

/// The compensation command a refund with restock leaves, due for the sweep at once.
fn command_item(restock: &Restock) -> Result<Attributes> {
    let (pk, sk) = schema::command_key(&restock.command_id);
    Ok(values([
        ("pk", s(pk)),
        ("sk", s(sk)),
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
impl ReadOrder for DynamoStore {
    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        let mut order = None;
        let mut refunds = Vec::new();
        self.query_partition(schema::order(id), None, |item| {
            match key_of(item)? {
                ItemKey::Order(_) => order = Some(order_from(item)?),
                ItemKey::Refund(..) => refunds.push(refund_from(item)?),
                _ => return Err(corrupt(item, "an order's partition holds only its refunds")),
            }
            Ok(())
        })
        .await?;
        let Some(mut order) = order else {
            return Ok(None);
        };
        refunds.sort_by(|a, b| (a.created_at, &a.refund_id).cmp(&(b.created_at, &b.refund_id)));
        order.refunds = refunds;
        Ok(Some(order))
    }
}

#[async_trait]
impl WriteRefund for DynamoStore {
    async fn record_refund(&self, write: NewRefund<'_>) -> Result<Attempt> {
        let NewRefund {
            order,
            refunded,
            refund,
            restock,
            receipt,
        } = write;
        let mut items = vec![self.update(
            schema::order_key(&order.order_id),
            "SET #status = :status, #lines = :lines, version = :next, updated_at = :at",
            "version = :seen",
            values([
                (":status", s(refunded.status.text())),
                (":lines", s(to_json(&refunded.lines)?)),
                (":next", n(refunded.version)),
                (":seen", n(order.version)),
                (":at", s(refund.created_at.to_string())),
            ]),
        )?];
        items.push(self.put_new(refund_item(refund, receipt)?)?);
        if let Some(restock) = restock {
            items.push(self.put_new(command_item(restock)?)?);
        }
        Ok(self.transact(items).await?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Allocation, OrderLine, OrderStatus, RefundStatus, Take};
    use crate::store::dynamo::codec::tests::{assert_corrupt, receipt};

    const ORDER: &str = "ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM";
    const PK: &str = "ORDER#ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM";

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn order() -> Order {
        Order {
            order_id: OrderId::parse(ORDER).unwrap(),
            status: OrderStatus::PartiallyRefunded,
            lines: vec![OrderLine {
                sku: crate::domain::Sku::parse("A-1").unwrap(),
                quantity: crate::domain::Quantity::new(3).unwrap(),
                refunded: 1,
            }],
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
            order_from(&order_item(&order(), &receipt()).unwrap()).unwrap(),
            order()
        );
        assert_eq!(
            refund_from(&refund_item(&refund(), &receipt()).unwrap()).unwrap(),
            refund()
        );
    }

    #[test]
    fn a_corrupted_order_or_refund_is_a_store_error_naming_its_key() {
        let order_with = |name: &str, value: AttributeValue| {
            let mut item = order_item(&order(), &receipt()).unwrap();
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
            let mut item = refund_item(&refund(), &receipt()).unwrap();
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
