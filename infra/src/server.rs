//! One HTTP server for every function's routes, as API Gateway would route them, and
//! the two triggers of reconcile: the compensation queue and the schedule.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::body::Body as AxumBody;
use http_body_util::BodyExt;
use lambda_http::{Body, Request, Response};
use place_order::PlaceOrders;
use reconcile::{Reconcile, Settings};
use refund::Refunds;
use reserve_stock::ReserveStock;
use stock_admin::StockAdmin;
use stockroom::queue::{CommandQueue, SqsQueue};
use stockroom::store::DynamoStore;
use stockroom::{http, Clock, Config, Error};

/// API Gateway's own payload limit; the functions enforce their smaller one.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// A Lambda function of the template: each has its own role, so each signs its AWS
/// calls as itself here (the access key id is its logical id) and the emulator's IAM gate
/// holds it to its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    StockAdmin,
    ReserveStock,
    PlaceOrder,
    Refund,
    Reconcile,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::StockAdmin,
        Function::ReserveStock,
        Function::PlaceOrder,
        Function::Refund,
        Function::Reconcile,
    ];

    /// The function's logical id in `template.yaml`.
    pub fn logical_id(self) -> &'static str {
        match self {
            Function::StockAdmin => "StockAdminFunction",
            Function::ReserveStock => "ReserveStockFunction",
            Function::PlaceOrder => "PlaceOrderFunction",
            Function::Refund => "RefundFunction",
            Function::Reconcile => "ReconcileFunction",
        }
    }

    /// `aws` (endpoint, region, HTTP client) with this function's identity.
    pub fn sdk_config(self, aws: &SdkConfig) -> SdkConfig {
        aws.to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                self.logical_id(),
                "local",
                None,
                None,
                "stockroom-local",
            )))
            .build()
    }
}

/// What the functions are built from, as each `main` would build them in Lambda.
pub struct Wiring<'a> {
    /// Endpoint, region and HTTP client shared by every function; identities are added.
    pub aws: &'a SdkConfig,
    pub config: &'a Config,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Wraps each function's compensation queue (tests lose sends with it).
    pub queue: &'a dyn Fn(SqsQueue) -> Arc<dyn CommandQueue>,
}

/// Every function's handler, each with the clients its `main` would build.
pub struct Functions {
    stock_admin: StockAdmin<DynamoStore>,
    reserve_stock: ReserveStock<DynamoStore>,
    place_order: PlaceOrders<DynamoStore>,
    refund: Refunds<DynamoStore>,
    reconcile: Reconcile<DynamoStore>,
    /// Reconcile's SQS client: Lambda's event source polls with the function's role.
    reconcile_sqs: aws_sdk_sqs::Client,
}

impl Functions {
    pub fn new(wiring: Wiring<'_>) -> Self {
        let Wiring {
            aws,
            config,
            clock,
            settings,
            queue,
        } = wiring;
        let store = |function: Function| {
            let client = aws_sdk_dynamodb::Client::new(&function.sdk_config(aws));
            DynamoStore::new(client, config.table.clone())
        };
        let sqs = |function: Function| aws_sdk_sqs::Client::new(&function.sdk_config(aws));
        let queue_of = |function: Function| {
            queue(SqsQueue::new(
                sqs(function),
                config.queue_url.clone().unwrap_or_default(),
            ))
        };
        Self {
            stock_admin: StockAdmin::new(store(Function::StockAdmin), clock.clone()),
            reserve_stock: ReserveStock::new(store(Function::ReserveStock), clock.clone()),
            place_order: PlaceOrders::new(store(Function::PlaceOrder), clock.clone()),
            refund: Refunds::new(
                store(Function::Refund),
                queue_of(Function::Refund),
                clock.clone(),
            ),
            reconcile: Reconcile::new(
                store(Function::Reconcile),
                queue_of(Function::Reconcile),
                clock,
                settings,
            ),
            reconcile_sqs: sqs(Function::Reconcile),
        }
    }

    pub fn reconcile(&self) -> &Reconcile<DynamoStore> {
        &self.reconcile
    }

    /// Sends the request to the function that owns its route.
    pub async fn dispatch(&self, req: Request) -> Response<Body> {
        let segments = match http::segments(&req) {
            Ok(segments) => segments,
            Err(not_canonical) => return http::problem(&not_canonical),
        };
        match segments.as_slice() {
            ["skus", ..] | ["campaigns", ..] => self.stock_admin.handle(req).await,
            ["reservations", ..] => self.reserve_stock.handle(req).await,
            ["orders", _, "refunds"] => self.refund.handle(req).await,
            ["orders", ..] => self.place_order.handle(req).await,
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

/// What Lambda does when an SQS event source mapping is created: it reads the queue's
/// attributes with the function's role, so the role must allow it.
pub async fn connect_event_source(
    functions: &Functions,
    queue_url: &str,
) -> Result<(), aws_sdk_sqs::Error> {
    functions
        .reconcile_sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await?;
    Ok(())
}

/// One round of what Lambda's SQS event source does: receive up to 10 messages (waiting
/// up to `wait`), hand them to reconcile as one batch, delete those it did not report
/// as failed. Returns how many messages it received.
pub async fn pump_once(
    functions: &Functions,
    queue_url: &str,
    wait: Duration,
) -> Result<usize, aws_sdk_sqs::Error> {
    let sqs = &functions.reconcile_sqs;
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait.as_secs() as i32)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let mut batch = SqsEvent::default();
    batch.records = messages.iter().map(sqs_record).collect();
    let response = functions.reconcile.apply_batch(batch).await;
    for m in &messages {
        let failed = response
            .batch_item_failures
            .iter()
            .any(|f| Some(&f.item_identifier) == m.message_id.as_ref());
        if let (false, Some(receipt)) = (failed, &m.receipt_handle) {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(receipt)
                .send()
                .await?;
        }
    }
    Ok(messages.len())
}

/// A received message as Lambda puts it in an SQS event.
pub fn sqs_record(m: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id.clone();
    record.receipt_handle = m.receipt_handle.clone();
    record.body = m.body.clone();
    record.event_source = Some("aws:sqs".into());
    record.attributes = m
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect();
    record
}

/// Feeds the compensation queue to reconcile until the task is dropped.
pub async fn pump_queue(functions: Arc<Functions>, queue_url: String) {
    if let Err(e) = connect_event_source(&functions, &queue_url).await {
        tracing::error!(error = %e, "the compensation queue cannot be read; reconcile gets no messages");
        return;
    }
    loop {
        if let Err(e) = pump_once(&functions, &queue_url, Duration::from_secs(2)).await {
            tracing::warn!(error = %e, "receiving from the compensation queue failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Runs the reconcile sweep every `every`, as the schedule does in AWS.
pub async fn schedule(functions: Arc<Functions>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        functions.reconcile.sweep().await;
    }
}
