//! Reservations: placing a hold, reading it, and ending it (release or expiry).

use async_trait::async_trait;
use futures::future::try_join_all;

use super::codec::{get_json, get_parsed, n, opt_s, s, to_json, values, Attributes};
use super::stock::{random_start, recorded_attributes, recorded_request};
use super::{keys, store_error, Cancel, DynamoStore, Transaction, ATTEMPTS};
use crate::domain::{
    plan_decrement, Allocation, CustomerId, Reservation, ReservationId, ReservationStatus,
    Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Recorded, RecordedRequest, RETENTION_SECONDS};
use crate::store::{EndHold, PlaceHold, ReadReservation};

fn reservation_from(item: &Attributes) -> Result<Reservation> {
    Ok(Reservation {
        reservation_id: get_parsed(item, "reservation_id", |t| ReservationId::parse(t).ok())?,
        status: get_parsed(item, "status", ReservationStatus::parse)?,
        lines: get_json(item, "lines")?,
        customer_id: opt_s(item, "customer_id")
            .map(CustomerId::parse)
            .transpose()?,
        campaign_id: opt_s(item, "campaign_id").map(str::to_owned),
        expires_at: get_parsed(item, "expires_at", Timestamp::parse)?,
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
        order_id: opt_s(item, "order_id").map(str::to_owned),
        allocations: get_json(item, "allocations")?,
    })
}

impl DynamoStore {
    async fn reservation_item(&self, id: &ReservationId) -> Result<Option<Attributes>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(keys::reservation(id)))
            .key("sk", s(keys::RESERVATION))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item)
    }

    async fn recorded_hold(&self, id: &ReservationId) -> Result<Option<RecordedRequest>> {
        self.reservation_item(id)
            .await?
            .as_ref()
            .map(recorded_request)
            .transpose()
    }

    /// Where each line's units come from, or why they cannot be had.
    async fn allocate(&self, reservation: &Reservation) -> Result<Result<Vec<Allocation>, Error>> {
        let snapshots =
            try_join_all(reservation.lines.iter().map(|l| self.snapshot(&l.sku))).await?;
        let mut allocations = Vec::new();
        for (line, snapshot) in reservation.lines.iter().zip(snapshots) {
            let Some(snapshot) = snapshot else {
                return Ok(Err(Error::SkuNotFound(line.sku.clone())));
            };
            let start = random_start(snapshot.shards.len());
            let Some(takes) =
                plan_decrement(&snapshot.shards, u64::from(line.quantity.get()), start)
            else {
                return Ok(Err(Error::InsufficientStock {
                    sku: line.sku.clone(),
                }));
            };
            allocations.extend(takes.into_iter().map(|take| Allocation {
                sku: line.sku.clone(),
                take,
            }));
        }
        Ok(Ok(allocations))
    }

    fn hold_item(&self, reservation: &Reservation, fingerprint: &str) -> Attributes {
        let id = &reservation.reservation_id;
        let mut item = values([
            ("pk", s(keys::reservation(id))),
            ("sk", s(keys::RESERVATION)),
            ("entity", s("reservation")),
            ("reservation_id", s(id.as_str())),
            ("status", s(reservation.status.as_str())),
            ("lines", s(to_json(&reservation.lines))),
            ("allocations", s(to_json(&reservation.allocations))),
            ("expires_at", s(reservation.expires_at.to_string())),
            ("created_at", s(reservation.created_at.to_string())),
            ("updated_at", s(reservation.created_at.to_string())),
            ("hold_bucket", s(keys::hold_bucket(id))),
        ]);
        if let Some(customer) = &reservation.customer_id {
            item.insert("customer_id".into(), s(customer.as_str()));
        }
        if let Some(campaign) = &reservation.campaign_id {
            item.insert("campaign_id".into(), s(campaign));
        }
        recorded_attributes(&mut item, fingerprint, 201, to_json(reservation));
        item
    }
}

#[async_trait]
impl PlaceHold for DynamoStore {
    async fn place_hold(
        &self,
        mut reservation: Reservation,
        fingerprint: &str,
    ) -> Result<Recorded<Reservation>> {
        let id = reservation.reservation_id.clone();
        let mut rejection = Error::Contention;
        for _ in 0..ATTEMPTS {
            reservation.allocations = match self.allocate(&reservation).await? {
                Ok(allocations) => allocations,
                Err(refused) => {
                    rejection = refused;
                    break;
                }
            };
            let at = s(reservation.created_at.to_string());
            let mut items = Vec::with_capacity(reservation.allocations.len() + 1);
            for a in &reservation.allocations {
                items.push(self.update(
                    keys::sku(&a.sku),
                    keys::stock(a.take.shard),
                    "SET available = available - :q, reserved = reserved + :q, updated_at = :at",
                    "available >= :q",
                    values([(":q", n(a.take.quantity)), (":at", at.clone())]),
                )?);
            }
            let record_index = items.len();
            items.push(self.put_new(self.hold_item(&reservation, fingerprint))?);
            match self.transact(items).await? {
                Transaction::Committed => return Ok(Recorded::Created(reservation)),
                outcome if outcome.reason(record_index) == Cancel::ConditionFailed => break,
                // Another request took the units this plan counted on: look again.
                _ => continue,
            }
        }
        match self.recorded_hold(&id).await? {
            Some(recorded) => Ok(Recorded::Existing(recorded)),
            None => Err(rejection),
        }
    }
}

#[async_trait]
impl ReadReservation for DynamoStore {
    async fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>> {
        self.reservation_item(id)
            .await?
            .as_ref()
            .map(reservation_from)
            .transpose()
    }
}

#[async_trait]
impl EndHold for DynamoStore {
    async fn end_hold(
        &self,
        id: &ReservationId,
        to: ReservationStatus,
        at: Timestamp,
    ) -> Result<Reservation> {
        for _ in 0..ATTEMPTS {
            let Some(mut reservation) = self.reservation(id).await? else {
                return Err(Error::ReservationNotFound(id.to_string()));
            };
            match reservation.status {
                ReservationStatus::Held => {}
                ReservationStatus::Committed if to == ReservationStatus::Released => {
                    return Err(Error::ReservationCommitted(id.clone()))
                }
                _ => return Ok(reservation),
            }
            let expiring = to == ReservationStatus::Expired;
            if expiring && !reservation.is_overdue(at) {
                return Ok(reservation);
            }
            let at_text = s(at.to_string());
            let mut items = vec![self.update(
                keys::reservation(id),
                keys::RESERVATION.into(),
                "SET #status = :to, updated_at = :at, #ttl = :ttl REMOVE hold_bucket",
                if expiring {
                    "#status = :held AND expires_at <= :at"
                } else {
                    "#status = :held"
                },
                values([
                    (":to", s(to.as_str())),
                    (":held", s(ReservationStatus::Held.as_str())),
                    (":at", at_text.clone()),
                    (":ttl", n(at.unix_seconds() + i64::from(RETENTION_SECONDS))),
                ]),
            )?];
            for a in &reservation.allocations {
                items.push(self.update(
                    keys::sku(&a.sku),
                    keys::stock(a.take.shard),
                    "SET available = available + :q, reserved = reserved - :q, updated_at = :at",
                    "reserved >= :q",
                    values([(":q", n(a.take.quantity)), (":at", at_text.clone())]),
                )?);
            }
            if let Transaction::Committed = self.transact(items).await? {
                reservation.status = to;
                return Ok(reservation);
            }
        }
        Err(Error::Contention)
    }
}
