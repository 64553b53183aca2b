//! refund: give money (and, unless told otherwise, units) back for an order's lines.
//!
//! `POST /orders/{id}/refunds`. With restock the answer is 202 and the refund PENDING
//! until reconcile has put the units back; without, 201 and COMPLETED.

use std::sync::Arc;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use stockroom::domain::{Lines, OrderId, Reason, RefundId, Timestamp};
use stockroom::http::{self, json_body};
use stockroom::idempotency::{IdempotencyKey, Recorded, RequestKey};
use stockroom::queue::{CommandMessage, CommandQueue};
use stockroom::store::{RecordRefund, RefundRequest};
use stockroom::{Clock, Error, Result};
use tracing::Instrument;

#[derive(Debug, Deserialize)]
struct NewRefund {
    lines: Option<Lines>,
    restock: Option<bool>,
    reason: Option<Reason>,
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
        http::respond(self.route(&req).instrument(span).await)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>> {
        match http::segments(req)[..] {
            ["orders", id, "refunds"] if http::is(req, &Method::POST) => self.refund(req, id).await,
            ["orders", _, "refunds"] => Err(http::method_not_allowed(req, &["POST"])),
            _ => Err(http::route_not_found(req)),
        }
    }

    async fn refund(&self, req: &Request, order_id: &str) -> Result<Response<Body>> {
        let order_id =
            OrderId::parse(order_id).map_err(|_| Error::OrderNotFound(order_id.to_owned()))?;
        let key = IdempotencyKey::from_headers(req.headers())?;
        let body = json_body::<NewRefund>(req)?;
        let scope = http::route_scope(req);
        let caller = http::caller(req);
        let request = RefundRequest {
            refund_id: RefundId::from_ulid(
                RequestKey {
                    route: &scope,
                    caller: &caller,
                    key: &key,
                }
                .derive(),
            ),
            order_id,
            lines: body.value.lines.map(Vec::from),
            restock: body.value.restock.unwrap_or(true),
            reason: body.value.reason.map(String::from),
            at: Timestamp::new(self.clock.now()),
        };
        match self
            .store
            .record_refund(&request, &body.fingerprint)
            .await?
        {
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
            Recorded::Existing(first) => Ok(http::replay(first.replay(&body.fingerprint)?)),
        }
    }
}
