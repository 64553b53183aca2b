//! stock-admin: set, adjust and read a sku's stock; define flash-sale campaigns.
//!
//! `PUT /skus/{sku}`, `POST /skus/{sku}/adjustments`, `GET /skus/{sku}`, `GET /skus`,
//! `PUT /campaigns/{id}`, `GET /campaigns/{id}`.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use stockroom::domain::{
    Adjustment, AdjustmentId, CampaignId, CampaignTerms, Delta, OnHand, PageLimit, Reason,
    ShardCount, Sku, Timestamp,
};
use stockroom::http::{self, Admin, Id, Idempotent, Json, Query, Response, Routes, Serve};
use stockroom::store::{ListSkus, ReadCampaign, ReadRecord, ReadStock, WriteCampaign, WriteStock};
use stockroom::usecases::{campaigns, stock};
use stockroom::{Clock, Result};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetStockBody {
    pub on_hand: OnHand,
    pub shards: Option<ShardCount>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AdjustmentBody {
    pub delta: Delta,
    pub reason: Reason,
}

/// `GET /skus?after=SKU&limit=N`: where a page starts and how long it is.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuListQuery {
    pub after: Option<Sku>,
    #[serde(default)]
    pub limit: PageLimit,
}

/// A request to this function, checked before anything is read or written.
pub enum Call {
    SetStock(Sku, SetStockBody),
    GetStock(Sku),
    ListSkus(SkuListQuery),
    Adjust(Sku, Idempotent<AdjustmentBody>),
    PutCampaign(CampaignId, CampaignTerms),
    GetCampaign(CampaignId),
}

/// This function's routes, each reading its request into a `Call` for `H` to serve.
pub fn routes<H: Serve<Call>>() -> Routes<Arc<H>> {
    Routes::new()
        .put(
            "/skus/{sku}",
            |State(h): State<Arc<H>>, _: Admin, Id(sku), Json(body)| async move {
                h.serve(Call::SetStock(sku, body)).await
            },
        )
        .get(
            "/skus/{sku}",
            |State(h): State<Arc<H>>, _: Admin, Id(sku)| async move {
                h.serve(Call::GetStock(sku)).await
            },
        )
        .get(
            "/skus",
            |State(h): State<Arc<H>>, _: Admin, Query(query)| async move {
                h.serve(Call::ListSkus(query)).await
            },
        )
        .post(
            "/skus/{sku}/adjustments",
            |State(h): State<Arc<H>>, _: Admin, Id(sku), request| async move {
                h.serve(Call::Adjust(sku, request)).await
            },
        )
        .put(
            "/campaigns/{id}",
            |State(h): State<Arc<H>>, _: Admin, Id(id), Json(terms)| async move {
                h.serve(Call::PutCampaign(id, terms)).await
            },
        )
        .get(
            "/campaigns/{id}",
            |State(h): State<Arc<H>>, _: Admin, Id(id)| async move {
                h.serve(Call::GetCampaign(id)).await
            },
        )
}

pub struct StockAdmin<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S> Serve<Call> for StockAdmin<S>
where
    S: ReadStock + ListSkus + WriteStock + ReadRecord + ReadCampaign + WriteCampaign + 'static,
{
    async fn serve(&self, call: Call) -> Result<Response> {
        let now = Timestamp::new(self.clock.now());
        match call {
            Call::SetStock(sku, body) => {
                let on_hand = body.on_hand.get();
                let (answer, levels) =
                    stock::set_on_hand(&self.store, &sku, on_hand, body.shards, now).await?;
                Ok(http::answer(answer, &format!("/skus/{sku}"), &levels))
            }
            Call::GetStock(sku) => Ok(http::shown(&stock::levels(&self.store, &sku).await?)),
            Call::ListSkus(query) => {
                let page = stock::list(&self.store, query.after.as_ref(), query.limit).await?;
                Ok(http::shown(&page))
            }
            Call::Adjust(sku, request) => {
                let location = format!("/skus/{sku}");
                let adjustment = Adjustment {
                    id: AdjustmentId::from_ulid(request.id),
                    sku,
                    delta: request.body.delta.get(),
                    reason: request.body.reason,
                    at: now,
                };
                let recorded =
                    stock::adjust(&self.store, &adjustment, &request.fingerprint).await?;
                Ok(http::recorded(recorded, &location))
            }
            Call::PutCampaign(id, terms) => {
                let (answer, campaign) = campaigns::put(&self.store, &id, &terms, now).await?;
                Ok(http::answer(answer, &format!("/campaigns/{id}"), &campaign))
            }
            Call::GetCampaign(id) => Ok(http::shown(&campaigns::campaign(&self.store, &id).await?)),
        }
    }
}

impl<S> StockAdmin<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}
