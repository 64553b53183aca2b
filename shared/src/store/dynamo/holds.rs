//! Reservations: placing a hold, reading it, and ending it (release or expiry).

use async_trait::async_trait;

use super::codec::{
    corrupt, get_json, get_parsed, get_status, key_of, n, opt_parsed, s, to_json, values,
    Attributes,
};
use super::schema::{self, ItemKey, StoredStatus, Sweep};
use super::stock::{recorded_attributes, Taken};
use super::{DynamoStore, Transaction};
use crate::domain::{
    CampaignId, CustomerId, OrderId, Reservation, ReservationId, ReservationStatus, StockMove,
    Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Recorded, RETENTION_SECONDS};
use crate::retry::Backoff;
use crate::store::{CampaignHold, EndHold, PlaceHold, ReadReservation};

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

fn reservation_key(id: &ReservationId) -> (String, String) {
    (schema::reservation(id), schema::RESERVATION.to_owned())
}

/// The item of a new hold, with the request's record.
fn hold_item(reservation: &Reservation, fingerprint: &str) -> Result<Attributes> {
    let id = &reservation.reservation_id;
    let (pk, sk) = reservation_key(id);
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
    recorded_attributes(&mut item, fingerprint, 201, to_json(reservation)?);
    Ok(item)
}

impl DynamoStore {
    /// The items that end a HELD reservation: its new status (conditioned on HELD, and
    /// for `condition_extra` more) and its units moved by `mv` on their shards.
    pub(super) fn end_hold_items(
        &self,
        reservation: &Reservation,
        to: ReservationStatus,
        mv: StockMove,
        extra: Option<(&str, &str, Attributes)>,
        at: Timestamp,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>> {
        let (pk, sk) = reservation_key(&reservation.reservation_id);
        let (set_extra, condition_extra, mut vals) = extra.unwrap_or(("", "", Attributes::new()));
        vals.extend(values([
            (":to", s(to.text())),
            (":held", s(ReservationStatus::Held.text())),
            (":at", s(at.to_string())),
            (":ttl", n(at.unix_seconds() + i64::from(RETENTION_SECONDS))),
        ]));
        let mut items = vec![self.update(
            pk,
            sk,
            &format!("SET #status = :to, updated_at = :at, #ttl = :ttl{set_extra} REMOVE sweep_bucket, sweep_at"),
            &format!("#status = :held{condition_extra}"),
            vals,
        )?];
        // Released and expired holds give the campaign allowance back; orders keep it.
        if let (Some(campaign), Some(customer), true) = (
            &reservation.campaign_id,
            &reservation.customer_id,
            mv == StockMove::RELEASE,
        ) {
            items.push(self.update(
                schema::campaign(campaign),
                schema::customer_counter(customer),
                "SET units = units - :q, updated_at = :at",
                "units >= :q",
                values([(":q", n(reservation.units())), (":at", s(at.to_string()))]),
            )?);
        }
        for a in &reservation.allocations {
            items.push(self.move_stock(a, mv, at)?);
        }
        Ok(items)
    }
}

#[async_trait]
impl PlaceHold for DynamoStore {
    async fn place_hold(
        &self,
        mut reservation: Reservation,
        campaign: Option<CampaignHold>,
        fingerprint: &str,
    ) -> Result<Recorded<Reservation>> {
        let key = reservation_key(&reservation.reservation_id);
        let lines = reservation.lines.clone();
        let guards = match (&campaign, &reservation.campaign_id) {
            (Some(terms), Some(_)) => self.campaign_guards(&reservation, terms)?,
            _ => Vec::new(),
        };
        let taken = self
            .take_lines(
                &lines,
                StockMove::RESERVE,
                reservation.created_at,
                key,
                guards,
                |allocations| {
                    reservation.allocations = allocations.to_vec();
                    hold_item(&reservation, fingerprint)
                },
            )
            .await?;
        Ok(match taken {
            Taken::Done(allocations) => {
                reservation.allocations = allocations;
                Recorded::Created(reservation)
            }
            Taken::Existing(recorded) => Recorded::Existing(recorded),
        })
    }
}

#[async_trait]
impl ReadReservation for DynamoStore {
    async fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>> {
        let (pk, sk) = reservation_key(id);
        self.get(pk, sk)
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
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
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
            let overdue = expiring.then(|| ("", " AND expires_at <= :at", Attributes::new()));
            let items = self.end_hold_items(&reservation, to, StockMove::RELEASE, overdue, at)?;
            if let Transaction::Committed = self.transact(items).await? {
                reservation.status = to;
                return Ok(reservation);
            }
        }
        Err(Error::Contention)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Allocation, Take};
    use crate::store::dynamo::codec::tests::assert_corrupt;

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
        let item = hold_item(&reservation(), "fingerprint").unwrap();
        assert_eq!(reservation_from(&item).unwrap(), reservation());
    }

    #[test]
    fn a_corrupted_hold_is_a_store_error_naming_its_key() {
        let with = |name: &str, value: &str| {
            let mut item = hold_item(&reservation(), "fingerprint").unwrap();
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
