//! stock-admin: set, adjust and read a sku's stock; define flash-sale campaigns.
//!
//! `PUT /skus/{sku}`, `POST /skus/{sku}/adjustments`, `GET /skus/{sku}`,
//! `PUT /campaigns/{id}`, `GET /campaigns/{id}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stockroom::domain::{
    Adjustment, AdjustmentId, CampaignId, CampaignTerms, Delta, OnHand, Reason, ShardCount, Sku,
    Timestamp,
};
use stockroom::http::{self, Id, Idempotent, Json, Response, Routes, Serve};
use stockroom::idempotency::Recorded;
use stockroom::store::{AdjustStock, ReadCampaign, ReadStock, SetCampaign, SetStock};
use stockroom::{Clock, Error, Result};

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

/// A request to this function, checked before anything is read or written.
pub enum Call {
    SetStock(Sku, SetStockBody),
    GetStock(Sku),
    Adjust(Sku, Idempotent<AdjustmentBody>),
    PutCampaign(CampaignId, CampaignTerms),
    GetCampaign(CampaignId),
}

/// This function's routes, each reading its request into a `Call` for `H` to serve.
pub fn routes<H: Serve<Call>>() -> Routes<Arc<H>> {
    Routes::new()
        .put(
            "/skus/{sku}",
            |State(h): State<Arc<H>>, Id(sku), Json(body)| async move {
                h.serve(Call::SetStock(sku, body)).await
            },
        )
        .get(
            "/skus/{sku}",
            |State(h): State<Arc<H>>, Id(sku)| async move { h.serve(Call::GetStock(sku)).await },
        )
        .post(
            "/skus/{sku}/adjustments",
            |State(h): State<Arc<H>>, Id(sku), request| async move {
                h.serve(Call::Adjust(sku, request)).await
            },
        )
        .put(
            "/campaigns/{id}",
            |State(h): State<Arc<H>>, Id(id), Json(terms)| async move {
                h.serve(Call::PutCampaign(id, terms)).await
            },
        )
        .get(
            "/campaigns/{id}",
            |State(h): State<Arc<H>>, Id(id)| async move { h.serve(Call::GetCampaign(id)).await },
        )
}

pub struct StockAdmin<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S> Serve<Call> for StockAdmin<S>
where
    S: ReadStock + SetStock + AdjustStock + SetCampaign + ReadCampaign + Send + Sync + 'static,
{
    async fn serve(&self, call: Call) -> Result<Response> {
        match call {
            Call::SetStock(sku, body) => self.set_stock(sku, body).await,
            Call::GetStock(sku) => self.get_stock(sku).await,
            Call::Adjust(sku, request) => self.adjust(sku, request).await,
            Call::PutCampaign(id, terms) => self.put_campaign(id, terms).await,
            Call::GetCampaign(id) => self.get_campaign(id).await,
        }
    }
}

impl<S: ReadStock + SetStock + AdjustStock + SetCampaign + ReadCampaign> StockAdmin<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    async fn get_stock(&self, sku: Sku) -> Result<Response> {
        match self.store.stock(&sku).await? {
            Some(levels) => Ok(http::json(StatusCode::OK, &levels)),
            None => Err(Error::SkuNotFound(sku)),
        }
    }

    async fn set_stock(&self, sku: Sku, body: SetStockBody) -> Result<Response> {
        let now = Timestamp::new(self.clock.now());
        let set = self
            .store
            .set_on_hand(&sku, body.on_hand.get(), body.shards, now)
            .await?;
        Ok(match set.created {
            true => http::created(&format!("/skus/{sku}"), &set.levels),
            false => http::json(StatusCode::OK, &set.levels),
        })
    }

    async fn adjust(&self, sku: Sku, request: Idempotent<AdjustmentBody>) -> Result<Response> {
        let adjustment = Adjustment {
            id: AdjustmentId::from_ulid(request.id),
            sku,
            delta: request.body.delta.get(),
            reason: request.body.reason,
            at: Timestamp::new(self.clock.now()),
        };
        match self.store.adjust(&adjustment, &request.fingerprint).await? {
            Recorded::Created(levels) => Ok(http::json(StatusCode::OK, &levels)),
            Recorded::Existing(first) => http::replay(first, &request.fingerprint, None),
        }
    }

    async fn put_campaign(&self, id: CampaignId, terms: CampaignTerms) -> Result<Response> {
        let now = Timestamp::new(self.clock.now());
        let (campaign, created) = self.store.put_campaign(&id, &terms, now).await?;
        Ok(match created {
            true => http::created(&format!("/campaigns/{id}"), &campaign),
            false => http::json(StatusCode::OK, &campaign),
        })
    }

    async fn get_campaign(&self, id: CampaignId) -> Result<Response> {
        match self.store.campaign(&id).await? {
            Some(campaign) => Ok(http::json(StatusCode::OK, &campaign)),
            None => Err(Error::CampaignNotFound(id)),
        }
    }
}
