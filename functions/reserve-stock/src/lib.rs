//! reserve-stock: hold units for a while, read a hold, release it.
//!
//! `POST /reservations`, `GET /reservations/{id}`, `DELETE /reservations/{id}`.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use stockroom::domain::{CampaignId, CustomerId, HoldDuration, Lines, ReservationId, Timestamp};
use stockroom::http::{self, Id, Idempotent, Response, Routes, Serve};
use stockroom::idempotency::Recorded;
use stockroom::identity::{Acting, Principal};
use stockroom::store::{
    ReadCampaign, ReadRecord, ReadReservation, ReadStock, WriteHold, WriteStock,
};
use stockroom::usecases::holds::{self, NewHold};
use stockroom::usecases::StockViews;
use stockroom::{Clock, Result};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewReservation {
    pub lines: Lines,
    /// Whom the hold is for. A customer's token names the customer: leave it out, or give
    /// the token's subject. Staff name one for a campaign hold (it counts against their
    /// limit).
    pub customer_id: Option<CustomerId>,
    pub campaign_id: Option<CampaignId>,
    pub hold_seconds: Option<HoldDuration>,
}

/// A request to this function, checked before anything is read or written.
/// Each names on whose behalf it acts.
pub enum Call {
    Reserve(Acting, Idempotent<NewReservation>),
    Get(Acting, ReservationId),
    Release(Acting, ReservationId),
}

/// This function's routes, each reading its request into a `Call` for `H` to serve.
pub fn routes<H: Serve<Call>>() -> Routes<Arc<H>> {
    Routes::new()
        .post(
            "/reservations",
            |State(h): State<Arc<H>>, caller: Principal, request| async move {
                h.serve(Call::Reserve(caller.acting(), request)).await
            },
        )
        .get(
            "/reservations/{id}",
            |State(h): State<Arc<H>>, caller: Principal, Id(id)| async move {
                h.serve(Call::Get(caller.acting(), id)).await
            },
        )
        .delete(
            "/reservations/{id}",
            |State(h): State<Arc<H>>, caller: Principal, Id(id)| async move {
                h.serve(Call::Release(caller.acting(), id)).await
            },
        )
}

pub struct ReserveStock<S> {
    store: S,
    clock: Arc<dyn Clock>,
    views: StockViews,
}

impl<S> Serve<Call> for ReserveStock<S>
where
    S: ReadCampaign + ReadStock + WriteStock + ReadRecord + ReadReservation + WriteHold + 'static,
{
    async fn serve(&self, call: Call) -> Result<Response> {
        let now = Timestamp::new(self.clock.now());
        match call {
            Call::Reserve(acting, request) => {
                let hold = NewHold {
                    acting,
                    reservation_id: ReservationId::from_ulid(request.id),
                    lines: request.body.lines,
                    customer_id: request.body.customer_id,
                    campaign_id: request.body.campaign_id,
                    hold: request.body.hold_seconds.unwrap_or_default(),
                    at: now,
                    fingerprint: request.fingerprint,
                };
                let location = format!("/reservations/{}", hold.reservation_id);
                let placed = holds::reserve(&self.store, &self.views, hold).await?;
                if let Recorded::Created(_, reservation) = &placed {
                    tracing::info!(reservation_id = %reservation.reservation_id, "reserved");
                    stockroom::metrics::count("Reservations", 1, &[]);
                }
                Ok(http::recorded(placed, &location))
            }
            Call::Get(acting, id) => Ok(http::shown(
                &holds::reservation(&self.store, &acting, &id).await?,
            )),
            Call::Release(acting, id) => Ok(http::shown(
                &holds::release(&self.store, &acting, &id, now).await?,
            )),
        }
    }
}

impl<S> ReserveStock<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            views: StockViews::default(),
        }
    }
}
