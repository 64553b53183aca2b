//! Reservations: the hold item, reading it, and ending it (release, expiry, commit).

use async_trait::async_trait;

use super::codec::{
    corrupt, get_json, get_parsed, get_status, key_of, n, opt_parsed, s, to_json, values,
    Attributes,
};
use super::orders::order_item;
use super::records::with_receipt;
use super::schema::{self, ItemKey, StoredStatus, Sweep};
use super::{DynamoStore, Transaction};
use crate::domain::{
    CampaignId, CustomerId, OrderId, Reservation, ReservationId, ReservationStatus, Timestamp,
};
use crate::error::Result;
use crate::idempotency::{RecordedRequest, RETENTION_SECONDS};
use crate::store::{Attempt, EndHold, ReadReservation, RecordExists, WriteHold};

pub(super) fn reservation_from(item: &Attributes) -> Result<Reservation> {
    let reservation_id = get_parsed(item, "reservation_id", |t| ReservationId::parse(t).ok())?;
    if key_of(item)? != ItemKey::Reservation(reservation_id.clone()) {
        return Err(corrupt(item, "its key is not its reservation's"));
    }
    Ok(Reservation {
        reservation_id,
        status: get_status(item)?,
        lines: get_json(item, "lines")?,
        customer_id: opt_parsed(item, "customer_id", |t| CustomerId::parse(t).ok())?,
        campaign_id: opt_parsed(item, "campaign_id", |t| CampaignId::parse(t).ok())?,
        expires_at: get_parsed(item, "expires_at", Timestamp::parse)?,
        created_at: get_parsed(item, "created_at", Timestamp::parse)?,
        order_id: opt_parsed(item, "order_id", |t| OrderId::parse(t).ok())?,
        allocations: get_json(item, "allocations")?,
    })
}

/// The item of a new hold, with the request's receipt.
pub(super) fn hold_item(
    reservation: &Reservation,
    receipt: &RecordedRequest,
) -> Result<Attributes> {
    let id = &reservation.reservation_id;
    let (pk, sk) = schema::reservation_key(id);
    let expires_at = reservation.expires_at.to_string();
    let mut item = values([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("entity", s("reservation")),
        ("reservation_id", s(id.as_str())),
        ("status", s(reservation.status.text())),
        ("lines", s(to_json(&reservation.lines)?)),
        ("allocations", s(to_json(&reservation.allocations)?)),
        ("expires_at", s(&expires_at)),
        ("created_at", s(reservation.created_at.to_string())),
        ("updated_at", s(reservation.created_at.to_string())),
        ("sweep_bucket", s(Sweep::Hold.bucket_of(id.as_str()))),
        ("sweep_at", s(expires_at)),
    ]);
    if let Some(customer) = &reservation.customer_id {
        item.insert("customer_id".into(), s(customer.as_str()));
    }
    if let Some(campaign) = &reservation.campaign_id {
        item.insert("campaign_id".into(), s(campaign.as_str()));
    }
    Ok(with_receipt(item, receipt))
}

#[async_trait]
impl ReadReservation for DynamoStore {
    async fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>> {
        self.get(schema::reservation_key(id))
            .await?
            .as_ref()
            .map(reservation_from)
            .transpose()
    }
}

#[async_trait]
impl WriteHold for DynamoStore {
    async fn end_hold(&self, end: EndHold<'_>) -> Result<Attempt<RecordExists>> {
        let EndHold {
            reservation,
            to,
            order,
            at,
        } = end;
        let mut set = "SET #status = :to, updated_at = :at, #ttl = :ttl".to_owned();
        let mut condition = "#status = :held".to_owned();
        let mut vals = values([
            (":to", s(to.text())),
            (":held", s(ReservationStatus::Held.text())),
            (":at", s(at.to_string())),
            (":ttl", n(at.unix_seconds() + i64::from(RETENTION_SECONDS))),
        ]);
        match to {
            ReservationStatus::Expired => condition.push_str(" AND expires_at <= :at"),
            ReservationStatus::Committed => condition.push_str(" AND expires_at > :at"),
            _ => {}
        }
        if let Some((order, _)) = order {
            set.push_str(", order_id = :order");
            vals.insert(":order".into(), s(order.order_id.as_str()));
        }
        let mut items = vec![self.update(
            schema::reservation_key(&reservation.reservation_id),
            &format!("{set} REMOVE sweep_bucket, sweep_at"),
            &condition,
            vals,
        )?];
        if let (Some(campaign), Some(customer), true) = (
            &reservation.campaign_id,
            &reservation.customer_id,
            to.returns_allowance(),
        ) {
            items.push(self.update(
                schema::counter_key(campaign, customer),
                "SET units = units - :q, updated_at = :at",
                "units >= :q",
                values([(":q", n(reservation.units())), (":at", s(at.to_string()))]),
            )?);
        }
        for a in &reservation.allocations {
            items.push(self.move_stock(a, to.ending_move(), at)?);
        }
        let record_index = items.len();
        if let Some((order, receipt)) = order {
            items.push(self.put_new(order_item(order, receipt)?)?);
        }
        Ok(match self.transact(items).await? {
            Transaction::Committed => Attempt::Committed,
            outcome if order.is_some() && outcome.condition_failed(record_index) => {
                Attempt::Refused(RecordExists)
            }
            _ => Attempt::Stale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Allocation, Take};
    use crate::store::dynamo::codec::tests::{assert_corrupt, receipt};

    fn reservation() -> Reservation {
        let at = |t| Timestamp::parse(t).unwrap();
        Reservation {
            reservation_id: ReservationId::parse("res_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            status: ReservationStatus::Held,
            lines: serde_json::from_str(r#"[{"sku":"A-1","quantity":3}]"#).unwrap(),
            customer_id: Some(CustomerId::parse("alice").unwrap()),
            campaign_id: Some(CampaignId::parse("spring").unwrap()),
            expires_at: at("2026-11-22T05:00:00Z"),
            created_at: at("2026-11-22T04:00:00Z"),
            order_id: None,
            allocations: vec![Allocation {
                sku: crate::domain::Sku::parse("A-1").unwrap(),
                take: Take {
                    shard: 2,
                    quantity: 3,
                },
            }],
        }
    }

    const PK: &str = "RESERVATION#res_01J9Z3K8Q4W6N2V5T7R0XGHPBM";

    #[test]
    fn a_hold_reads_back_as_written() {
        let item = hold_item(&reservation(), &receipt()).unwrap();
        assert_eq!(reservation_from(&item).unwrap(), reservation());
    }

    #[test]
    fn a_corrupted_hold_is_a_store_error_naming_its_key() {
        let with = |name: &str, value: &str| {
            let mut item = hold_item(&reservation(), &receipt()).unwrap();
            item.insert(name.to_owned(), s(value));
            reservation_from(&item)
        };
        // Each of these was once a 200 with a guess, or a 400 blamed on the client.
        assert_corrupt(with("status", "ON_HOLD"), PK, "status");
        assert_corrupt(with("customer_id", "two words"), PK, "customer_id");
        assert_corrupt(with("order_id", "ord_nonsense"), PK, "order_id");
        assert_corrupt(with("allocations", "[{}]"), PK, "allocations");
        assert_corrupt(
            with("reservation_id", "res_01J9Z3K8Q4W6N2V5T7R0XGHPBN"),
            PK,
            "key",
        );
    }
}
