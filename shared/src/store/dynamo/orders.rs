//! Orders (from a hold or straight from stock) and refunds.

use async_trait::async_trait;

use super::codec::{get_json, get_n, get_parsed, get_s, n, opt_s, s, to_json, values, Attributes};
use super::keys::{self, Sweep};
use super::stock::{recorded_attributes, recorded_request, Taken};
use super::{Cancel, DynamoStore, Transaction};
use crate::domain::{
    CommandId, CommandStatus, CustomerId, Lines, Order, OrderId, OrderLine, Refund, RefundId,
    RefundRejected, RefundStatus, ReservationId, ReservationStatus, Restock, StockMove, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::Recorded;
use crate::retry::Backoff;
use crate::store::{PlaceOrder, ReadOrder, ReadReservation, RecordRefund, RefundRequest};

fn order_key(id: &OrderId) -> (String, String) {
    (keys::order(id), keys::ORDER.to_owned())
}

/// Statuses are stored as the API shows them (`HELD`, `PARTIALLY_REFUNDED`, ...).
pub(super) fn parse_status<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

pub(super) fn status_text<T: serde::Serialize>(status: T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn order_from(item: &Attributes) -> Result<Order> {
    Ok(Order {
        order_id: get_parsed(item, "order_id", |t| OrderId::parse(t).ok())?,
        status: get_parsed(item, "status", parse_status)?,
        lines: get_json(item, "lines")?,
        customer_id: opt_s(item, "customer_id")
            .map(CustomerId::parse)
            .transpose()?,
        reservation_id: opt_s(item, "reservation_id")
            .map(ReservationId::parse)
            .transpose()?,
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
        refunds: Vec::new(),
        allocations: get_json(item, "allocations")?,
        version: get_n(item, "version")?,
    })
}

fn refund_from(item: &Attributes) -> Result<Refund> {
    Ok(Refund {
        refund_id: get_parsed(item, "refund_id", |t| RefundId::parse(t).ok())?,
        order_id: get_parsed(item, "order_id", |t| OrderId::parse(t).ok())?,
        status: get_parsed(item, "status", parse_status)?,
        lines: get_json(item, "lines")?,
        restock: item
            .get("restock")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        reason: opt_s(item, "reason").map(str::to_owned),
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
    })
}

impl DynamoStore {
    fn order_item(&self, order: &Order, fingerprint: &str) -> Attributes {
        let (pk, sk) = order_key(&order.order_id);
        let mut item = values([
            ("pk", s(pk)),
            ("sk", s(sk)),
            ("entity", s("order")),
            ("order_id", s(order.order_id.as_str())),
            ("status", s(status_text(order.status))),
            ("lines", s(to_json(&order.lines))),
            ("allocations", s(to_json(&order.allocations))),
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
        recorded_attributes(&mut item, fingerprint, 201, to_json(order));
        item
    }
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
            items.push(self.put_new(self.order_item(&order, fingerprint))?);
            match self.transact(items).await? {
                Transaction::Committed => return Ok(Recorded::Created(order)),
                outcome if outcome.reason(record_index) == Cancel::ConditionFailed => break,
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
                self.order_item(&order, fingerprint)
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
    /// The order item and its refund items, read together from the order's partition.
    async fn order_partition(&self, id: &OrderId) -> Result<(Option<Order>, Vec<Attributes>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::order(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::store_error("Query", e))?;
        let mut order = None;
        let mut refunds = Vec::new();
        for item in out.items() {
            if get_s(item, "sk")? == keys::ORDER {
                order = Some(order_from(item)?);
            } else {
                refunds.push(item.clone());
            }
        }
        Ok((order, refunds))
    }

    fn command_item(&self, restock: &Restock) -> Attributes {
        values([
            ("pk", s(keys::command(&restock.command_id))),
            ("sk", s(keys::COMMAND)),
            ("entity", s("command")),
            ("command_id", s(restock.command_id.as_str())),
            ("kind", s("restock")),
            ("status", s(status_text(CommandStatus::Pending))),
            ("command", s(to_json(restock))),
            ("created_at", s(restock.created_at.to_string())),
            (
                "sweep_bucket",
                s(Sweep::Command.bucket_of(restock.command_id.as_str())),
            ),
            ("sweep_at", s(restock.created_at.to_string())),
        ])
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
            .map(refund_from)
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
        let refund_sk = keys::refund(&request.refund_id);
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let (order, refund_items) = self.order_partition(&request.order_id).await?;
            if let Some(item) = refund_items
                .iter()
                .find(|i| opt_s(i, "sk") == Some(refund_sk.as_str()))
            {
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
            let at = request.at.to_string();
            let (pk, sk) = order_key(&request.order_id);
            let mut items = vec![self.update(
                pk.clone(),
                sk,
                "SET #status = :status, #lines = :lines, version = version + :one, updated_at = :at",
                "version = :seen",
                values([
                    (":status", s(status_text(plan.status))),
                    (":lines", s(to_json(&plan.order_lines))),
                    (":one", n(1)),
                    (":seen", n(order.version)),
                    (":at", s(&at)),
                ]),
            )?];
            let mut refund_item = values([
                ("pk", s(pk)),
                ("sk", s(&refund_sk)),
                ("entity", s("refund")),
                ("refund_id", s(refund.refund_id.as_str())),
                ("order_id", s(refund.order_id.as_str())),
                ("status", s(status_text(refund.status))),
                ("lines", s(to_json(&refund.lines))),
                (
                    "restock",
                    aws_sdk_dynamodb::types::AttributeValue::Bool(refund.restock),
                ),
                ("created_at", s(&at)),
            ]);
            if let Some(reason) = &refund.reason {
                refund_item.insert("reason".into(), s(reason));
            }
            let status = if restock.is_some() { 202 } else { 201 };
            recorded_attributes(&mut refund_item, fingerprint, status, to_json(&refund));
            items.push(self.put_new(refund_item)?);
            if let Some(restock) = &restock {
                items.push(self.put_new(self.command_item(restock))?);
            }
            if let Transaction::Committed = self.transact(items).await? {
                return Ok(Recorded::Created((refund, restock)));
            }
        }
        Err(Error::Contention)
    }
}
