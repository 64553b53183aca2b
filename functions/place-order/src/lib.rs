//! place-order: confirm a sale, from a hold or straight from stock, and read orders.
//!
//! `POST /orders`, `GET /orders/{id}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stockroom::domain::{
    CustomerId, Lines, Order, OrderId, OrderLine, OrderStatus, ReservationId, Timestamp,
};
use stockroom::http::{self, Id, Idempotent, Response, Routes, Serve};
use stockroom::idempotency::Recorded;
use stockroom::store::{PlaceOrder, ReadOrder};
use stockroom::{Clock, Error, Result};

/// Either `{"reservation_id"}` or `{"lines", "customer_id"?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OrderBody {
    #[schema(value_type = Option<ReservationId>)]
    reservation_id: Option<String>,
    lines: Option<Lines>,
    customer_id: Option<CustomerId>,
}

/// Where an order's units come from.
#[derive(Debug)]
pub enum Source {
    Hold(ReservationId),
    Stock(Lines),
}

/// The body of `POST /orders`, checked.
#[derive(Debug)]
pub struct NewOrder {
    pub source: Source,
    pub customer_id: Option<CustomerId>,
}

impl NewOrder {
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
    Place(Idempotent<NewOrder>),
    Get(OrderId),
}

/// This function's routes, each reading its request into a `Call` for `H` to serve.
pub fn routes<H: Serve<Call>>() -> Routes<Arc<H>> {
    Routes::new()
        .post(
            "/orders",
            |State(h): State<Arc<H>>, request: Idempotent<OrderBody>| async move {
                let request = request.try_map(NewOrder::parse)?;
                h.serve(Call::Place(request)).await
            },
        )
        .get(
            "/orders/{id}",
            |State(h): State<Arc<H>>, Id(id)| async move { h.serve(Call::Get(id)).await },
        )
}

pub struct PlaceOrders<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: PlaceOrder + ReadOrder + Send + Sync + 'static> Serve<Call> for PlaceOrders<S> {
    async fn serve(&self, call: Call) -> Result<Response> {
        match call {
            Call::Place(request) => self.place(request).await,
            Call::Get(id) => self.get(id).await,
        }
    }
}

impl<S: PlaceOrder + ReadOrder> PlaceOrders<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    async fn place(&self, request: Idempotent<NewOrder>) -> Result<Response> {
        let Idempotent {
            body: new,
            fingerprint,
            id,
        } = request;
        let mut order = Order {
            order_id: OrderId::from_ulid(id),
            status: OrderStatus::Confirmed,
            lines: Vec::new(),
            customer_id: new.customer_id,
            reservation_id: None,
            created_at: Timestamp::new(self.clock.now()),
            refunds: Vec::new(),
            allocations: Vec::new(),
            version: 0,
        };
        let location = format!("/orders/{}", order.order_id);
        let recorded = match new.source {
            Source::Hold(id) => {
                order.reservation_id = Some(id);
                self.store.commit_hold(order, &fingerprint).await?
            }
            Source::Stock(lines) => {
                order.lines = lines.iter().map(OrderLine::new).collect();
                self.store.sell(order, &lines, &fingerprint).await?
            }
        };
        match recorded {
            Recorded::Created(order) => {
                tracing::info!(order_id = %order.order_id, "order placed");
                stockroom::metrics::count("Orders", 1, &[]);
                Ok(http::created(&location, &order))
            }
            Recorded::Existing(first) => http::replay(first, &fingerprint, Some(&location)),
        }
    }

    async fn get(&self, id: OrderId) -> Result<Response> {
        match self.store.order(&id).await? {
            Some(order) => Ok(http::json(StatusCode::OK, &order)),
            None => Err(Error::OrderNotFound(id.to_string())),
        }
    }
}
