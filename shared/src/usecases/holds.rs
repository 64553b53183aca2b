//! Reservations: placing a hold, reading it, and ending it (release or expiry).

use super::taking::{take_lines, Taking};
use super::ShardCounts;
use crate::domain::{
    CampaignId, CampaignRefusal, CustomerId, HoldDuration, Lines, Reservation, ReservationId,
    ReservationStatus, StockMove, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded};
use crate::retry::Backoff;
use crate::store::{
    Attempt, CampaignGuard, EndHold, ReadCampaign, ReadRecord, ReadReservation, ReadStock,
    RecordKey, WriteHold, WriteStock,
};

/// A reservation as the client asked for it, with the id its idempotency key gives.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub reservation_id: ReservationId,
    pub lines: Lines,
    pub customer_id: Option<CustomerId>,
    pub campaign_id: Option<CampaignId>,
    pub hold: HoldDuration,
    pub at: Timestamp,
    pub fingerprint: String,
}

/// Holds every line's units for a while, all or nothing. A campaign reservation also
/// needs the campaign open for its skus and room in the customer's allowance, checked
/// in the same transaction.
pub async fn reserve<S>(
    store: &S,
    shard_counts: &ShardCounts,
    request: NewHold,
) -> Result<Recorded<Reservation>>
where
    S: ReadCampaign + ReadStock + WriteStock + ReadRecord,
{
    if request.campaign_id.is_some() && request.customer_id.is_none() {
        return Err(Error::InvalidRequest(
            "a reservation in a campaign needs a customer_id".into(),
        ));
    }
    let campaign = match &request.campaign_id {
        None => None,
        Some(id) => Some(
            store
                .campaign(id)
                .await?
                .ok_or_else(|| Error::CampaignNotFound(id.clone()))?,
        ),
    };
    let mut reservation = Reservation {
        reservation_id: request.reservation_id.clone(),
        status: ReservationStatus::Held,
        lines: request.lines.clone(),
        customer_id: request.customer_id.clone(),
        campaign_id: request.campaign_id.clone(),
        expires_at: request.at.plus(request.hold.seconds()),
        created_at: request.at,
        order_id: None,
        allocations: Vec::new(),
    };
    let units = reservation.units();
    let guard = match (&campaign, &request.customer_id) {
        (Some(campaign), Some(customer)) => Some(CampaignGuard {
            campaign_id: campaign.campaign_id.clone(),
            customer_id: customer.clone(),
            skus: request.lines.iter().map(|l| l.sku.clone()).collect(),
            limit: campaign.per_customer_limit,
            // More than the limit in one request can never have succeeded: nothing to replay.
            room: u64::from(campaign.per_customer_limit)
                .checked_sub(units)
                .ok_or_else(|| Error::PurchaseLimitExceeded(campaign.campaign_id.clone()))?,
            units,
        }),
        _ => None,
    };
    let taking = Taking {
        lines: &request.lines,
        movement: StockMove::RESERVE,
        at: request.at,
        record: RecordKey::Reservation(request.reservation_id.clone()),
        fingerprint: &request.fingerprint,
        campaign: guard.as_ref(),
    };
    let placed = take_lines(store, shard_counts, taking, |allocations| {
        reservation.allocations = allocations;
        (reservation.clone(), Answer::Created)
    })
    .await;
    match (placed, &campaign) {
        // The transaction only knows a condition failed; the campaign says which sku.
        (Err(Error::CampaignNotActive { campaign: id, .. }), Some(campaign)) => {
            let sku = match campaign.admits(request.at, request.lines.iter().map(|l| &l.sku), units)
            {
                Err(CampaignRefusal::SkuNotOnSale(sku)) => Some(sku),
                _ => None,
            };
            Err(Error::CampaignNotActive { campaign: id, sku })
        }
        (placed, _) => placed,
    }
}

pub async fn reservation(store: &impl ReadReservation, id: &ReservationId) -> Result<Reservation> {
    store
        .reservation(id)
        .await?
        .ok_or_else(|| Error::ReservationNotFound(id.to_string()))
}

/// Gives a HELD reservation's units back (RELEASED), once however often it is asked;
/// a committed one cannot be released, and one already ended stays as it is.
pub async fn release(
    store: &(impl ReadReservation + WriteHold),
    id: &ReservationId,
    at: Timestamp,
) -> Result<Reservation> {
    end(store, id, ReservationStatus::Released, at).await
}

/// Expires a HELD reservation past its `expires_at`; any other is left as it is.
pub async fn expire(
    store: &(impl ReadReservation + WriteHold),
    id: &ReservationId,
    at: Timestamp,
) -> Result<Reservation> {
    end(store, id, ReservationStatus::Expired, at).await
}

async fn end(
    store: &(impl ReadReservation + WriteHold),
    id: &ReservationId,
    to: ReservationStatus,
    at: Timestamp,
) -> Result<Reservation> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let mut reservation = reservation(store, id).await?;
        match reservation.status {
            ReservationStatus::Held => {}
            ReservationStatus::Committed if to == ReservationStatus::Released => {
                return Err(Error::ReservationCommitted(id.clone()))
            }
            _ => return Ok(reservation),
        }
        if to == ReservationStatus::Expired && !reservation.is_overdue(at) {
            return Ok(reservation);
        }
        let ending = EndHold {
            reservation: &reservation,
            to,
            order: None,
            at,
        };
        if let Attempt::Committed = store.end_hold(ending).await? {
            reservation.status = to;
            return Ok(reservation);
        }
        // It changed meanwhile (committed, released, expired): read it again.
    }
    Err(Error::Contention)
}
