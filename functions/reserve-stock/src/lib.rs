//! reserve-stock: hold units for a while, read a hold, release it.
//!
//! `POST /reservations`, `GET /reservations/{id}`, `DELETE /reservations/{id}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stockroom::domain::{
    CampaignId, CampaignRefusal, CustomerId, HoldDuration, Lines, Reservation, ReservationId,
    ReservationStatus, Timestamp,
};
use stockroom::http::{self, Id, Idempotent, Response, Routes, Serve};
use stockroom::idempotency::Recorded;
use stockroom::store::{CampaignHold, EndHold, PlaceHold, ReadCampaign, ReadReservation};
use stockroom::{Clock, Error, Result};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewReservation {
    pub lines: Lines,
    pub customer_id: Option<CustomerId>,
    pub campaign_id: Option<CampaignId>,
    pub hold_seconds: Option<HoldDuration>,
}

impl NewReservation {
    fn checked(self) -> Result<Self> {
        if self.campaign_id.is_some() && self.customer_id.is_none() {
            return Err(Error::InvalidRequest(
                "a reservation in a campaign needs a customer_id".into(),
            ));
        }
        Ok(self)
    }
}

/// A request to this function, checked before anything is read or written.
pub enum Call {
    Reserve(Idempotent<NewReservation>),
    Get(ReservationId),
    Release(ReservationId),
}

/// This function's routes, each reading its request into a `Call` for `H` to serve.
pub fn routes<H: Serve<Call>>() -> Routes<Arc<H>> {
    Routes::new()
        .post(
            "/reservations",
            |State(h): State<Arc<H>>, request: Idempotent<NewReservation>| async move {
                let request = request.try_map(NewReservation::checked)?;
                h.serve(Call::Reserve(request)).await
            },
        )
        .get(
            "/reservations/{id}",
            |State(h): State<Arc<H>>, Id(id)| async move { h.serve(Call::Get(id)).await },
        )
        .delete(
            "/reservations/{id}",
            |State(h): State<Arc<H>>, Id(id)| async move { h.serve(Call::Release(id)).await },
        )
}

pub struct ReserveStock<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S> Serve<Call> for ReserveStock<S>
where
    S: PlaceHold + ReadReservation + EndHold + ReadCampaign + Send + Sync + 'static,
{
    async fn serve(&self, call: Call) -> Result<Response> {
        match call {
            Call::Reserve(request) => self.reserve(request).await,
            Call::Get(id) => self.get(id).await,
            Call::Release(id) => self.release(id).await,
        }
    }
}

impl<S: PlaceHold + ReadReservation + EndHold + ReadCampaign> ReserveStock<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    async fn reserve(&self, request: Idempotent<NewReservation>) -> Result<Response> {
        let Idempotent {
            body: request,
            fingerprint,
            id,
        } = request;
        let campaign = match &request.campaign_id {
            None => None,
            Some(id) => {
                let campaign = self.store.campaign(id).await?;
                Some(campaign.ok_or_else(|| Error::CampaignNotFound(id.clone()))?)
            }
        };
        let now = Timestamp::new(self.clock.now());
        let hold = request.hold_seconds.unwrap_or_default();
        let reservation = Reservation {
            reservation_id: ReservationId::from_ulid(id),
            status: ReservationStatus::Held,
            lines: request.lines,
            customer_id: request.customer_id,
            campaign_id: request.campaign_id,
            expires_at: now.plus(hold.seconds()),
            created_at: now,
            order_id: None,
            allocations: Vec::new(),
        };
        let terms = campaign.as_ref().map(|c| CampaignHold {
            limit: c.per_customer_limit,
        });
        let location = format!("/reservations/{}", reservation.reservation_id);
        let skus: Vec<_> = reservation.lines.iter().map(|l| l.sku.clone()).collect();
        let units = reservation.units();
        let placed = self
            .store
            .place_hold(reservation, terms, &fingerprint)
            .await;
        let placed = match (placed, &campaign) {
            // The transaction only knows a condition failed; the campaign says which.
            (Err(Error::CampaignNotActive { campaign: id, .. }), Some(campaign)) => {
                let sku = match campaign.admits(now, skus.iter(), units) {
                    Err(CampaignRefusal::SkuNotOnSale(sku)) => Some(sku),
                    _ => None,
                };
                Err(Error::CampaignNotActive { campaign: id, sku })
            }
            (placed, _) => placed,
        };
        match placed? {
            Recorded::Created(reservation) => {
                tracing::info!(reservation_id = %reservation.reservation_id, "reserved");
                stockroom::metrics::count("Reservations", 1, &[]);
                Ok(http::created(&location, &reservation))
            }
            Recorded::Existing(first) => http::replay(first, &fingerprint, Some(&location)),
        }
    }

    async fn get(&self, id: ReservationId) -> Result<Response> {
        match self.store.reservation(&id).await? {
            Some(reservation) => Ok(http::json(StatusCode::OK, &reservation)),
            None => Err(Error::ReservationNotFound(id.to_string())),
        }
    }

    async fn release(&self, id: ReservationId) -> Result<Response> {
        let now = Timestamp::new(self.clock.now());
        let reservation = self
            .store
            .end_hold(&id, ReservationStatus::Released, now)
            .await?;
        Ok(http::json(StatusCode::OK, &reservation))
    }
}
