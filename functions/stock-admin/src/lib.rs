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
use stockroom::http::{self, json_body, JsonBody};
use stockroom::idempotency::{IdempotencyKey, Recorded, RequestKey, RouteScope};
use stockroom::store::{AdjustStock, ReadCampaign, ReadStock, SetCampaign, SetStock};
use stockroom::{Clock, Error, Result};
use tracing::Instrument;

#[derive(Debug, Deserialize)]
pub struct SetStockBody {
    pub on_hand: OnHand,
    pub shards: Option<ShardCount>,
}

#[derive(Debug, Deserialize)]
pub struct AdjustmentBody {
    pub delta: Delta,
    pub reason: Reason,
}

/// A request to this function, checked before anything is read or written.
pub enum Call {
    SetStock(Sku, SetStockBody),
    GetStock(Sku),
    Adjust {
        sku: Sku,
        key: IdempotencyKey,
        body: JsonBody<AdjustmentBody>,
    },
    PutCampaign(CampaignId, CampaignTerms),
    GetCampaign(CampaignId),
}

impl Call {
    /// The route template and the ids parsed from the path.
    pub fn scope(&self) -> RouteScope {
        match self {
            Call::SetStock(sku, _) => RouteScope::new("PUT /skus/{sku}", &[sku.as_str()]),
            Call::GetStock(sku) => RouteScope::new("GET /skus/{sku}", &[sku.as_str()]),
            Call::Adjust { sku, .. } => {
                RouteScope::new("POST /skus/{sku}/adjustments", &[sku.as_str()])
            }
            Call::PutCampaign(id, _) => RouteScope::new("PUT /campaigns/{id}", &[id.as_str()]),
            Call::GetCampaign(id) => RouteScope::new("GET /campaigns/{id}", &[id.as_str()]),
        }
    }
}

/// The route, the key and the body of `req`, or the 4xx problem with them.
pub fn parse(req: &Request) -> Result<Call> {
    match http::segments(req)?[..] {
        ["skus", sku] => {
            let sku = Sku::parse(sku)?;
            match *req.method() {
                Method::PUT => Ok(Call::SetStock(sku, json_body(req)?.value)),
                Method::GET => Ok(Call::GetStock(sku)),
                _ => Err(http::method_not_allowed(req, &["GET", "PUT"])),
            }
        }
        ["skus", sku, "adjustments"] => {
            if !http::is(req, &Method::POST) {
                return Err(http::method_not_allowed(req, &["POST"]));
            }
            let sku = Sku::parse(sku)?;
            let key = IdempotencyKey::from_headers(req.headers())?;
            let body = json_body(req)?;
            Ok(Call::Adjust { sku, key, body })
        }
        ["campaigns", id] => {
            let id = CampaignId::parse(id)?;
            match *req.method() {
                Method::PUT => Ok(Call::PutCampaign(id, json_body(req)?.value)),
                Method::GET => Ok(Call::GetCampaign(id)),
                _ => Err(http::method_not_allowed(req, &["GET", "PUT"])),
            }
        }
        _ => Err(http::route_not_found(req)),
    }
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
        http::respond(&req, self.route(&req).instrument(span).await)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>> {
        let call = parse(req)?;
        let scope = call.scope();
        match call {
            Call::SetStock(sku, body) => self.set_stock(sku, body).await,
            Call::GetStock(sku) => self.get_stock(sku).await,
            Call::Adjust { sku, key, body } => self.adjust(req, &scope, sku, key, body).await,
            Call::PutCampaign(id, terms) => self.put_campaign(id, terms).await,
            Call::GetCampaign(id) => self.get_campaign(id).await,
        }
    }

    async fn get_stock(&self, sku: Sku) -> Result<Response<Body>> {
        match self.store.stock(&sku).await? {
            Some(levels) => Ok(http::json(200, &levels)),
            None => Err(Error::SkuNotFound(sku)),
        }
    }

    async fn set_stock(&self, sku: Sku, body: SetStockBody) -> Result<Response<Body>> {
        let now = Timestamp::new(self.clock.now());
        let set = self
            .store
            .set_on_hand(&sku, body.on_hand.get(), body.shards, now)
            .await?;
        Ok(http::json(if set.created { 201 } else { 200 }, &set.levels))
    }

    async fn adjust(
        &self,
        req: &Request,
        scope: &RouteScope,
        sku: Sku,
        key: IdempotencyKey,
        body: JsonBody<AdjustmentBody>,
    ) -> Result<Response<Body>> {
        let caller = http::caller(req);
        let id = RequestKey {
            route: scope,
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

    async fn put_campaign(&self, id: CampaignId, terms: CampaignTerms) -> Result<Response<Body>> {
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
