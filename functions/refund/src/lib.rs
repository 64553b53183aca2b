//! refund: give money (and, unless told otherwise, units) back for an order's lines.
//!
//! `POST /orders/{id}/refunds`. With restock the answer is 202 and the refund PENDING
//! until reconcile has put the units back; without, 201 and COMPLETED. Refunds have no
//! route of their own: the order (`GET /orders/{id}`) lists them, so a 201 names the
//! order in `Location`.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use stockroom::domain::{Lines, OrderId, Reason, RefundId, Timestamp};
use stockroom::http::{self, Id, Idempotent, Response, Routes, Serve};
use stockroom::idempotency::Recorded;
use stockroom::identity::{Acting, Principal};
use stockroom::queue::CommandQueue;
use stockroom::store::{ReadOrder, ReadRecord, WriteRefund};
use stockroom::usecases::orders::{self, RefundRequest};
use stockroom::{Clock, Result};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewRefund {
    pub lines: Option<Lines>,
    pub restock: Option<bool>,
    pub reason: Option<Reason>,
}

/// A request to this function, checked before anything is read or written.
pub struct Call {
    pub acting: Acting,
    pub order_id: OrderId,
    pub request: Idempotent<NewRefund>,
}

/// This function's route, reading its request into a `Call` for `H` to serve.
pub fn routes<H: Serve<Call>>() -> Routes<Arc<H>> {
    Routes::new().post(
        "/orders/{id}/refunds",
        |State(h): State<Arc<H>>, caller: Principal, Id(order_id), request| async move {
            let acting = caller.acting();
            h.serve(Call {
                acting,
                order_id,
                request,
            })
            .await
        },
    )
}

pub struct Refunds<S> {
    store: S,
    queue: Arc<dyn CommandQueue>,
    clock: Arc<dyn Clock>,
}

impl<S> Refunds<S> {
    pub fn new(store: S, queue: Arc<dyn CommandQueue>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            queue,
            clock,
        }
    }
}

impl<S: ReadOrder + WriteRefund + ReadRecord + 'static> Serve<Call> for Refunds<S> {
    async fn serve(&self, call: Call) -> Result<Response> {
        let Call {
            acting,
            order_id,
            request,
        } = call;
        let location = format!("/orders/{order_id}");
        let refund = RefundRequest {
            acting,
            refund_id: RefundId::from_ulid(request.id),
            order_id,
            lines: request.body.lines.map(Vec::from),
            restock: request.body.restock.unwrap_or(true),
            reason: request.body.reason.map(String::from),
            at: Timestamp::new(self.clock.now()),
            fingerprint: request.fingerprint,
        };
        let recorded = orders::refund(&self.store, self.queue.as_ref(), &refund).await?;
        if let Recorded::Created(..) = &recorded {
            stockroom::metrics::count("Refunds", 1, &[]);
        }
        Ok(http::recorded(recorded, &location))
    }
}
