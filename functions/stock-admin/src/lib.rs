//! stock-admin: set, adjust and read a sku's stock; define flash-sale campaigns.
//!
//! `PUT /skus/{sku}`, `POST /skus/{sku}/adjustments`, `GET /skus/{sku}`,
//! `PUT /campaigns/{id}`, `GET /campaigns/{id}`.

use std::sync::Arc;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use stockroom::domain::{
    Adjustment, AdjustmentId, CampaignId, CampaignTerms, Delta, OnHand, Reason, ShardCount, Sku,
    Timestamp,
};
use stockroom::http::{self, json_body};
use stockroom::idempotency::{IdempotencyKey, Recorded, RequestKey};
use stockroom::store::{AdjustStock, ReadCampaign, ReadStock, SetCampaign, SetStock};
use stockroom::{Clock, Error, Result};
use tracing::Instrument;

#[derive(Debug, Deserialize)]
struct SetStockBody {
    on_hand: OnHand,
    shards: Option<serde_json::Number>,
}

#[derive(Debug, Deserialize)]
struct AdjustmentBody {
    delta: Delta,
    reason: Reason,
}

pub struct StockAdmin<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: ReadStock + SetStock + AdjustStock + SetCampaign + ReadCampaign> StockAdmin<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        let span = http::request_span(&req);
        http::respond(self.route(&req).instrument(span).await)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>> {
        match http::segments(req)[..] {
            ["skus", sku] => {
                let sku = Sku::parse(sku)?;
                match *req.method() {
                    Method::PUT => self.set_stock(req, sku).await,
                    Method::GET => self.get_stock(sku).await,
                    _ => Err(http::method_not_allowed(req, &["GET", "PUT"])),
                }
            }
            ["skus", sku, "adjustments"] => {
                if !http::is(req, &Method::POST) {
                    return Err(http::method_not_allowed(req, &["POST"]));
                }
                self.adjust(req, Sku::parse(sku)?).await
            }
            ["campaigns", id] => {
                let id = CampaignId::parse(id)?;
                match *req.method() {
                    Method::PUT => self.put_campaign(req, id).await,
                    Method::GET => self.get_campaign(id).await,
                    _ => Err(http::method_not_allowed(req, &["GET", "PUT"])),
                }
            }
            _ => Err(http::route_not_found(req)),
        }
    }

    async fn get_stock(&self, sku: Sku) -> Result<Response<Body>> {
        match self.store.stock(&sku).await? {
            Some(levels) => Ok(http::json(200, &levels)),
            None => Err(Error::SkuNotFound(sku)),
        }
    }

    async fn set_stock(&self, req: &Request, sku: Sku) -> Result<Response<Body>> {
        let body = json_body::<SetStockBody>(req)?.value;
        let shards = body
            .shards
            .map(|n| ShardCount::new(n.as_u64().unwrap_or(0)))
            .transpose()?;
        let now = Timestamp::new(self.clock.now());
        let set = self
            .store
            .set_on_hand(&sku, body.on_hand.get(), shards, now)
            .await?;
        Ok(http::json(if set.created { 201 } else { 200 }, &set.levels))
    }

    async fn adjust(&self, req: &Request, sku: Sku) -> Result<Response<Body>> {
        let key = IdempotencyKey::from_headers(req.headers())?;
        let body = json_body::<AdjustmentBody>(req)?;
        let scope = http::route_scope(req);
        let caller = http::caller(req);
        let id = RequestKey {
            route: &scope,
            caller: &caller,
            key: &key,
        }
        .derive();
        let adjustment = Adjustment {
            id: AdjustmentId::from_ulid(id),
            sku,
            delta: body.value.delta.get(),
            reason: body.value.reason,
            at: Timestamp::new(self.clock.now()),
        };
        match self.store.adjust(&adjustment, &body.fingerprint).await? {
            Recorded::Created(levels) => Ok(http::json(200, &levels)),
            Recorded::Existing(first) => Ok(http::replay(first.replay(&body.fingerprint)?)),
        }
    }

    async fn put_campaign(&self, req: &Request, id: CampaignId) -> Result<Response<Body>> {
        let terms = json_body::<CampaignTerms>(req)?.value;
        let now = Timestamp::new(self.clock.now());
        let (campaign, created) = self.store.put_campaign(&id, &terms, now).await?;
        Ok(http::json(if created { 201 } else { 200 }, &campaign))
    }

    async fn get_campaign(&self, id: CampaignId) -> Result<Response<Body>> {
        match self.store.campaign(&id).await? {
            Some(campaign) => Ok(http::json(200, &campaign)),
            None => Err(Error::CampaignNotFound(id)),
        }
    }
}
