//! place-order: confirm a sale, from a hold or straight from stock, and read orders.
//!
//! `POST /orders`, `GET /orders/{id}`.

use std::sync::Arc;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use stockroom::domain::{
    CustomerId, Lines, Order, OrderId, OrderLine, OrderStatus, ReservationId, Timestamp,
};
use stockroom::http::{self, json_body};
use stockroom::idempotency::{IdempotencyKey, Recorded, RequestKey};
use stockroom::store::{PlaceOrder, ReadOrder};
use stockroom::{Clock, Error, Result};
use tracing::Instrument;

/// Either `{"reservation_id"}` or `{"lines", "customer_id"?}`.
#[derive(Debug, Deserialize)]
struct NewOrder {
    reservation_id: Option<String>,
    lines: Option<Lines>,
    customer_id: Option<CustomerId>,
}

pub struct PlaceOrders<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: PlaceOrder + ReadOrder> PlaceOrders<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        let span = http::request_span(&req);
        http::respond(self.route(&req).instrument(span).await)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>> {
        match http::segments(req)[..] {
            ["orders"] if http::is(req, &Method::POST) => self.place(req).await,
            ["orders"] => Err(http::method_not_allowed(req, &["POST"])),
            ["orders", id] if http::is(req, &Method::GET) => self.get(id).await,
            ["orders", _] => Err(http::method_not_allowed(req, &["GET"])),
            _ => Err(http::route_not_found(req)),
        }
    }

    async fn place(&self, req: &Request) -> Result<Response<Body>> {
        let key = IdempotencyKey::from_headers(req.headers())?;
        let body = json_body::<NewOrder>(req)?;
        let scope = http::route_scope(req);
        let caller = http::caller(req);
        let mut order = Order {
            order_id: OrderId::from_ulid(
                RequestKey {
                    route: &scope,
                    caller: &caller,
                    key: &key,
                }
                .derive(),
            ),
            status: OrderStatus::Confirmed,
            lines: Vec::new(),
            customer_id: body.value.customer_id,
            reservation_id: None,
            created_at: Timestamp::new(self.clock.now()),
            refunds: Vec::new(),
            allocations: Vec::new(),
            version: 0,
        };
        let recorded = match (body.value.reservation_id, body.value.lines) {
            (Some(id), None) => {
                // An id that cannot exist is simply not found.
                let id = ReservationId::parse(&id).map_err(|_| Error::ReservationNotFound(id))?;
                order.reservation_id = Some(id);
                self.store.commit_hold(order, &body.fingerprint).await?
            }
            (None, Some(lines)) => {
                order.lines = lines.iter().map(OrderLine::new).collect();
                self.store.sell(order, &lines, &body.fingerprint).await?
            }
            _ => {
                return Err(Error::InvalidRequest(
                    "an order needs either reservation_id or lines, not both".into(),
                ))
            }
        };
        match recorded {
            Recorded::Created(order) => {
                tracing::info!(order_id = %order.order_id, "order placed");
                stockroom::metrics::count("Orders", 1, &[]);
                Ok(http::json(201, &order))
            }
            Recorded::Existing(first) => Ok(http::replay(first.replay(&body.fingerprint)?)),
        }
    }

    async fn get(&self, id: &str) -> Result<Response<Body>> {
        let not_found = || Error::OrderNotFound(id.to_owned());
        let id = OrderId::parse(id).map_err(|_| not_found())?;
        match self.store.order(&id).await? {
            Some(order) => Ok(http::json(200, &order)),
            None => Err(not_found()),
        }
    }
}
