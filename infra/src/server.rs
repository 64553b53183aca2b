//! One HTTP server for every function's routes, as API Gateway would route them.

use std::sync::Arc;

use axum::body::Body as AxumBody;
use http_body_util::BodyExt;
use lambda_http::{Body, Request, Response};
use reserve_stock::ReserveStock;
use stock_admin::StockAdmin;
use stockroom::store::DynamoStore;
use stockroom::{http, Clock, Config, Error};

/// API Gateway's own payload limit; the functions enforce their smaller one.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// Every function's handler, each with the state its `main` would build.
pub struct Functions {
    stock_admin: StockAdmin<DynamoStore>,
    reserve_stock: ReserveStock<DynamoStore>,
}

impl Functions {
    pub fn new(dynamodb: aws_sdk_dynamodb::Client, config: &Config, clock: Arc<dyn Clock>) -> Self {
        let store = DynamoStore::new(dynamodb, config.table.clone());
        Self {
            stock_admin: StockAdmin::new(store.clone(), clock.clone()),
            reserve_stock: ReserveStock::new(store, clock),
        }
    }

    /// Sends the request to the function that owns its route.
    pub async fn dispatch(&self, req: Request) -> Response<Body> {
        match http::segments(&req).first().copied() {
            Some("skus") | Some("campaigns") => self.stock_admin.handle(req).await,
            Some("reservations") => self.reserve_stock.handle(req).await,
            _ => http::problem(&http::route_not_found(&req)),
        }
    }
}

/// Turns an HTTP request into the request a function gets from API Gateway, and back.
pub async fn serve_one(
    functions: &Functions,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_PAYLOAD)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let too_large = Error::PayloadTooLarge { limit: MAX_PAYLOAD };
            return into_axum(http::problem(&too_large));
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    into_axum(functions.dispatch(Request::from_parts(parts, body)).await)
}

fn into_axum(response: Response<Body>) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.into_bytes(),
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    axum::response::Response::from_parts(parts, AxumBody::from(bytes))
}

/// The axum app that serves every route through `functions`.
pub fn app(functions: Arc<Functions>) -> axum::Router {
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let functions = functions.clone();
        async move { serve_one(&functions, req).await }
    })
}
