//! place-order: confirm a sale, from a hold or straight from stock, and read orders.
//!
//! `POST /orders`, `GET /orders/{id}`.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use stockroom::domain::{CustomerId, Lines, OrderId, ReservationId, Timestamp};
use stockroom::http::{self, Id, Idempotent, Response, Routes, Serve};
use stockroom::idempotency::Recorded;
use stockroom::identity::{Acting, Principal};
use stockroom::store::{
    ReadCampaign, ReadOrder, ReadRecord, ReadReservation, ReadStock, WriteHold, WriteStock,
};
use stockroom::usecases::orders::{self, NewOrder, Source};
use stockroom::usecases::StockViews;
use stockroom::{Clock, Error, Result};

/// Either `{"reservation_id"}` or `{"lines", "customer_id"?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OrderBody {
    #[schema(value_type = Option<ReservationId>)]
    reservation_id: Option<String>,
    lines: Option<Lines>,
    customer_id: Option<CustomerId>,
}

/// The body of `POST /orders`, checked: where the units come from, and for whom.
#[derive(Debug)]
pub struct OrderRequest {
    pub source: Source,
    pub customer_id: Option<CustomerId>,
}

impl OrderRequest {
    fn parse(body: OrderBody) -> Result<Self> {
        let source = match (body.reservation_id, body.lines) {
            // An id that cannot exist is simply not found.
            (Some(id), None) => {
                Source::Hold(ReservationId::parse(&id).map_err(|_| Error::ReservationNotFound(id))?)
            }
            (None, Some(lines)) => Source::Stock(lines),
            _ => {
                return Err(Error::InvalidRequest(
                    "an order needs either reservation_id or lines, not both".into(),
                ))
            }
        };
        Ok(Self {
            source,
            customer_id: body.customer_id,
        })
    }
}

/// A request to this function, checked before anything is read or written.
pub enum Call {
    Place(Acting, Idempotent<OrderRequest>),
    Get(Acting, OrderId),
}

/// This function's routes, each reading its request into a `Call` for `H` to serve.
pub fn routes<H: Serve<Call>>() -> Routes<Arc<H>> {
    Routes::new()
        .post(
            "/orders",
            |State(h): State<Arc<H>>, caller: Principal, request: Idempotent<OrderBody>| async move {
                let request = request.try_map(OrderRequest::parse)?;
                h.serve(Call::Place(caller.acting(), request)).await
            },
        )
        .get(
            "/orders/{id}",
            |State(h): State<Arc<H>>, caller: Principal, Id(id)| async move {
                h.serve(Call::Get(caller.acting(), id)).await
            },
        )
}

pub struct PlaceOrders<S> {
    store: S,
    clock: Arc<dyn Clock>,
    views: StockViews,
}

impl<S> Serve<Call> for PlaceOrders<S>
where
    S: ReadReservation
        + WriteHold
        + ReadStock
        + WriteStock
        + ReadRecord
        + ReadOrder
        + ReadCampaign
        + 'static,
{
    async fn serve(&self, call: Call) -> Result<Response> {
        match call {
            Call::Place(acting, request) => {
                let order = NewOrder {
                    acting,
                    order_id: OrderId::from_ulid(request.id),
                    source: request.body.source,
                    customer_id: request.body.customer_id,
                    at: Timestamp::new(self.clock.now()),
                    fingerprint: request.fingerprint,
                };
                let location = format!("/orders/{}", order.order_id);
                let placed = orders::place(&self.store, &self.views, order).await?;
                if let Recorded::Created(_, order) = &placed {
                    tracing::info!(order_id = %order.order_id, "order placed");
                    stockroom::metrics::count("Orders", 1, &[]);
                }
                Ok(http::recorded(placed, &location))
            }
            Call::Get(acting, id) => Ok(http::shown(
                &orders::order(&self.store, &acting, &id).await?,
            )),
        }
    }
}

impl<S> PlaceOrders<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            views: StockViews::default(),
        }
    }
}
