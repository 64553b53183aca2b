//! reserve-stock: hold units for a while, read a hold, release it.
//!
//! `POST /reservations`, `GET /reservations/{id}`, `DELETE /reservations/{id}`.

use std::sync::Arc;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use stockroom::domain::{
    CampaignId, CampaignRefusal, CustomerId, HoldDuration, Lines, Reservation, ReservationId,
    ReservationStatus, Timestamp,
};
use stockroom::http::{self, json_body, JsonBody};
use stockroom::idempotency::{IdempotencyKey, Recorded, RequestKey, RouteScope};
use stockroom::store::{CampaignHold, EndHold, PlaceHold, ReadCampaign, ReadReservation};
use stockroom::{Clock, Error, Result};
use tracing::Instrument;

#[derive(Debug, Deserialize)]
pub struct NewReservation {
    pub lines: Lines,
    pub customer_id: Option<CustomerId>,
    pub campaign_id: Option<CampaignId>,
    pub hold_seconds: Option<HoldDuration>,
}

/// A request to this function, checked before anything is read or written.
pub enum Call {
    Reserve {
        key: IdempotencyKey,
        body: JsonBody<NewReservation>,
    },
    Get(ReservationId),
    Release(ReservationId),
}

impl Call {
    /// The route template and the ids parsed from the path.
    pub fn scope(&self) -> RouteScope {
        match self {
            Call::Reserve { .. } => RouteScope::new("POST /reservations", &[]),
            Call::Get(id) => RouteScope::new("GET /reservations/{id}", &[id.as_str()]),
            Call::Release(id) => RouteScope::new("DELETE /reservations/{id}", &[id.as_str()]),
        }
    }
}

/// The route, the key and the body of `req`, or the 4xx problem with them.
pub fn parse(req: &Request) -> Result<Call> {
    match http::segments(req)?[..] {
        ["reservations"] => {
            if !http::is(req, &Method::POST) {
                return Err(http::method_not_allowed(req, &["POST"]));
            }
            let key = IdempotencyKey::from_headers(req.headers())?;
            let body: JsonBody<NewReservation> = json_body(req)?;
            if body.value.campaign_id.is_some() && body.value.customer_id.is_none() {
                return Err(Error::InvalidRequest(
                    "a reservation in a campaign needs a customer_id".into(),
                ));
            }
            Ok(Call::Reserve { key, body })
        }
        ["reservations", id] => {
            let method = req.method().clone();
            if method != Method::GET && method != Method::DELETE {
                return Err(http::method_not_allowed(req, &["GET", "DELETE"]));
            }
            let id =
                ReservationId::parse(id).map_err(|_| Error::ReservationNotFound(id.to_owned()))?;
            if method == Method::GET {
                Ok(Call::Get(id))
            } else {
                Ok(Call::Release(id))
            }
        }
        _ => Err(http::route_not_found(req)),
    }
}

pub struct ReserveStock<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: PlaceHold + ReadReservation + EndHold + ReadCampaign> ReserveStock<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        let span = http::request_span(&req);
        http::respond(&req, self.route(&req).instrument(span).await)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>> {
        let call = parse(req)?;
        let scope = call.scope();
        match call {
            Call::Reserve { key, body } => self.reserve(req, &scope, key, body).await,
            Call::Get(id) => self.get(id).await,
            Call::Release(id) => self.release(id).await,
        }
    }

    async fn reserve(
        &self,
        req: &Request,
        scope: &RouteScope,
        key: IdempotencyKey,
        body: JsonBody<NewReservation>,
    ) -> Result<Response<Body>> {
        let request = body.value;
        let campaign = match &request.campaign_id {
            None => None,
            Some(id) => {
                let campaign = self.store.campaign(id).await?;
                Some(campaign.ok_or_else(|| Error::CampaignNotFound(id.clone()))?)
            }
        };
        let caller = http::caller(req);
        let now = Timestamp::new(self.clock.now());
        let hold = request.hold_seconds.unwrap_or_default();
        let id = RequestKey {
            route: scope,
            caller: &caller,
            key: &key,
        }
        .derive();
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
        let skus: Vec<_> = reservation.lines.iter().map(|l| l.sku.clone()).collect();
        let units = reservation.units();
        let placed = self
            .store
            .place_hold(reservation, terms, &body.fingerprint)
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
                Ok(http::json(201, &reservation))
            }
            Recorded::Existing(first) => Ok(http::replay(first.replay(&body.fingerprint)?)),
        }
    }

    async fn get(&self, id: ReservationId) -> Result<Response<Body>> {
        match self.store.reservation(&id).await? {
            Some(reservation) => Ok(http::json(200, &reservation)),
            None => Err(Error::ReservationNotFound(id.to_string())),
        }
    }

    async fn release(&self, id: ReservationId) -> Result<Response<Body>> {
        let now = Timestamp::new(self.clock.now());
        let reservation = self
            .store
            .end_hold(&id, ReservationStatus::Released, now)
            .await?;
        Ok(http::json(200, &reservation))
    }
}
