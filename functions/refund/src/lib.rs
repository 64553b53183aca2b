//! refund: give money (and, unless told otherwise, units) back for an order's lines.
//!
//! `POST /orders/{id}/refunds`. With restock the answer is 202 and the refund PENDING
//! until reconcile has put the units back; without, 201 and COMPLETED.

use std::sync::Arc;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use stockroom::domain::{Lines, OrderId, Reason, RefundId, Timestamp};
use stockroom::http::{self, json_body, JsonBody};
use stockroom::idempotency::{IdempotencyKey, Recorded, RequestKey, RouteScope};
use stockroom::queue::{CommandMessage, CommandQueue};
use stockroom::store::{RecordRefund, RefundRequest};
use stockroom::{Clock, Error, Result};
use tracing::Instrument;

#[derive(Debug, Deserialize)]
pub struct NewRefund {
    pub lines: Option<Lines>,
    pub restock: Option<bool>,
    pub reason: Option<Reason>,
}

/// A request to this function, checked before anything is read or written.
pub struct Call {
    pub order_id: OrderId,
    pub key: IdempotencyKey,
    pub body: JsonBody<NewRefund>,
}

impl Call {
    /// The route template and the ids parsed from the path.
    pub fn scope(&self) -> RouteScope {
        RouteScope::new("POST /orders/{order_id}/refunds", &[self.order_id.as_str()])
    }
}

/// The route, the key and the body of `req`, or the 4xx problem with them.
pub fn parse(req: &Request) -> Result<Call> {
    match http::segments(req)?[..] {
        ["orders", id, "refunds"] if http::is(req, &Method::POST) => {
            let order_id = OrderId::parse(id).map_err(|_| Error::OrderNotFound(id.to_owned()))?;
            let key = IdempotencyKey::from_headers(req.headers())?;
            let body = json_body(req)?;
            Ok(Call {
                order_id,
                key,
                body,
            })
        }
        ["orders", _, "refunds"] => Err(http::method_not_allowed(req, &["POST"])),
        _ => Err(http::route_not_found(req)),
    }
}

pub struct Refunds<S> {
    store: S,
    queue: Arc<dyn CommandQueue>,
    clock: Arc<dyn Clock>,
}

impl<S: RecordRefund> Refunds<S> {
    pub fn new(store: S, queue: Arc<dyn CommandQueue>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            queue,
            clock,
        }
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        let span = http::request_span(&req);
        http::respond(&req, self.route(&req).instrument(span).await)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>> {
        let call = parse(req)?;
        let caller = http::caller(req);
        let request = RefundRequest {
            refund_id: RefundId::from_ulid(
                RequestKey {
                    route: &call.scope(),
                    caller: &caller,
                    key: &call.key,
                }
                .derive(),
            ),
            order_id: call.order_id,
            lines: call.body.value.lines.map(Vec::from),
            restock: call.body.value.restock.unwrap_or(true),
            reason: call.body.value.reason.map(String::from),
            at: Timestamp::new(self.clock.now()),
        };
        let fingerprint = call.body.fingerprint;
        match self.store.record_refund(&request, &fingerprint).await? {
            Recorded::Created((refund, restock)) => {
                stockroom::metrics::count("Refunds", 1, &[]);
                if let Some(restock) = restock {
                    // The command is recorded: if this send is lost, the sweep sends it again.
                    if let Err(e) = self.queue.send(&CommandMessage::restock(&restock)).await {
                        tracing::warn!(command_id = %restock.command_id, error = %e, "restock not sent; the sweep will");
                    }
                    Ok(http::json(202, &refund))
                } else {
                    Ok(http::json(201, &refund))
                }
            }
            Recorded::Existing(first) => Ok(http::replay(first.replay(&fingerprint)?)),
        }
    }
}
