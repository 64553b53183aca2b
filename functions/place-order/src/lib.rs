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
use stockroom::idempotency::{IdempotencyKey, Recorded, RequestKey, RouteScope};
use stockroom::store::{PlaceOrder, ReadOrder};
use stockroom::{Clock, Error, Result};
use tracing::Instrument;

/// Either `{"reservation_id"}` or `{"lines", "customer_id"?}`.
#[derive(Debug, Deserialize)]
struct OrderBody {
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
    pub fingerprint: String,
}

impl NewOrder {
    fn parse(req: &Request) -> Result<Self> {
        let body = json_body::<OrderBody>(req)?;
        let source = match (body.value.reservation_id, body.value.lines) {
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
            customer_id: body.value.customer_id,
            fingerprint: body.fingerprint,
        })
    }
}

/// A request to this function, checked before anything is read or written.
pub enum Call {
    Place {
        key: IdempotencyKey,
        order: NewOrder,
    },
    Get(OrderId),
}

impl Call {
    /// The route template and the ids parsed from the path.
    pub fn scope(&self) -> RouteScope {
        match self {
            Call::Place { .. } => RouteScope::new("POST /orders", &[]),
            Call::Get(id) => RouteScope::new("GET /orders/{id}", &[id.as_str()]),
        }
    }
}

/// The route, the key and the body of `req`, or the 4xx problem with them.
pub fn parse(req: &Request) -> Result<Call> {
    match http::segments(req)?[..] {
        ["orders"] if http::is(req, &Method::POST) => {
            let key = IdempotencyKey::from_headers(req.headers())?;
            let order = NewOrder::parse(req)?;
            Ok(Call::Place { key, order })
        }
        ["orders"] => Err(http::method_not_allowed(req, &["POST"])),
        ["orders", id] if http::is(req, &Method::GET) => OrderId::parse(id)
            .map(Call::Get)
            .map_err(|_| Error::OrderNotFound(id.to_owned())),
        ["orders", _] => Err(http::method_not_allowed(req, &["GET"])),
        _ => Err(http::route_not_found(req)),
    }
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
        http::respond(&req, self.route(&req).instrument(span).await)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>> {
        let call = parse(req)?;
        let scope = call.scope();
        match call {
            Call::Place { key, order } => self.place(req, &scope, key, order).await,
            Call::Get(id) => self.get(id).await,
        }
    }

    async fn place(
        &self,
        req: &Request,
        scope: &RouteScope,
        key: IdempotencyKey,
        new: NewOrder,
    ) -> Result<Response<Body>> {
        let caller = http::caller(req);
        let mut order = Order {
            order_id: OrderId::from_ulid(
                RequestKey {
                    route: scope,
                    caller: &caller,
                    key: &key,
                }
                .derive(),
            ),
            status: OrderStatus::Confirmed,
            lines: Vec::new(),
            customer_id: new.customer_id,
            reservation_id: None,
            created_at: Timestamp::new(self.clock.now()),
            refunds: Vec::new(),
            allocations: Vec::new(),
            version: 0,
        };
        let recorded = match new.source {
            Source::Hold(id) => {
                order.reservation_id = Some(id);
                self.store.commit_hold(order, &new.fingerprint).await?
            }
            Source::Stock(lines) => {
                order.lines = lines.iter().map(OrderLine::new).collect();
                self.store.sell(order, &lines, &new.fingerprint).await?
            }
        };
        match recorded {
            Recorded::Created(order) => {
                tracing::info!(order_id = %order.order_id, "order placed");
                stockroom::metrics::count("Orders", 1, &[]);
                Ok(http::json(201, &order))
            }
            Recorded::Existing(first) => Ok(http::replay(first.replay(&new.fingerprint)?)),
        }
    }

    async fn get(&self, id: OrderId) -> Result<Response<Body>> {
        match self.store.order(&id).await? {
            Some(order) => Ok(http::json(200, &order)),
            None => Err(Error::OrderNotFound(id.to_string())),
        }
    }
}
