//! One HTTP server for every function's routes, as API Gateway would route them, and
//! the two triggers of reconcile: the compensation queue and the schedule.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use lambda_http::tower::ServiceExt;
use place_order::PlaceOrders;
use reconcile::{Reconcile, Settings};
use refund::Refunds;
use reserve_stock::ReserveStock;
use stock_admin::StockAdmin;
use stockroom::http::{self, Capture, Route, Routes};
use stockroom::queue::{CommandQueue, SqsQueue};
use stockroom::store::DynamoStore;
use stockroom::{Clock, Config};

use crate::Gateway;

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

    /// The routes API Gateway sends to this function, as its router declares them.
    pub fn routes(self) -> Vec<Route> {
        match self {
            Function::StockAdmin => stock_admin::routes::<Capture<_>>().list(),
            Function::ReserveStock => reserve_stock::routes::<Capture<_>>().list(),
            Function::PlaceOrder => place_order::routes::<Capture<_>>().list(),
            Function::Refund => refund::routes::<Capture<_>>().list(),
            Function::Reconcile => Vec::new(),
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

/// Every function, each with the clients its `main` would build.
pub struct Functions {
    /// Every API function's routes in one router, as API Gateway routes them.
    api: axum::Router,
    reconcile: Reconcile<DynamoStore>,
    /// Reconcile as the local schedule runs it: its calls to the table paced by `pace`.
    scheduled: Reconcile<DynamoStore>,
    pace: Paced,
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
        let stock_admin = StockAdmin::new(store(Function::StockAdmin), clock.clone());
        let reserve_stock = ReserveStock::new(store(Function::ReserveStock), clock.clone());
        let place_order = PlaceOrders::new(store(Function::PlaceOrder), clock.clone());
        let refund = Refunds::new(
            store(Function::Refund),
            queue_of(Function::Refund),
            clock.clone(),
        );
        let routes: Routes = stock_admin::routes()
            .with_state(Arc::new(stock_admin))
            .merge(reserve_stock::routes().with_state(Arc::new(reserve_stock)))
            .merge(place_order::routes().with_state(Arc::new(place_order)))
            .merge(refund::routes().with_state(Arc::new(refund)));
        let reconcile_aws = Function::Reconcile.sdk_config(aws);
        let pace = Paced::new(reconcile_aws.http_client().unwrap_or_else(|| {
            // What the SDK would pick itself.
            use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build_https()
        }));
        let mut paced = reconcile_aws.to_builder();
        paced.set_http_client(Some(SharedHttpClient::new(pace.clone())));
        let paced = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&paced.build()),
            config.table.clone(),
        );
        Self {
            api: http::api(routes),
            reconcile: Reconcile::new(
                store(Function::Reconcile),
                queue_of(Function::Reconcile),
                clock.clone(),
                settings.clone(),
            ),
            scheduled: Reconcile::new(paced, queue_of(Function::Reconcile), clock, settings),
            pace,
            reconcile_sqs: sqs(Function::Reconcile),
        }
    }

    pub fn reconcile(&self) -> &Reconcile<DynamoStore> {
        &self.reconcile
    }
}

/// One request through the function that owns its route.
pub async fn serve_one(
    functions: &Functions,
    req: axum::extract::Request,
) -> axum::response::Response {
    match functions.api.clone().oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Where the local run serves the counts the functions made (CloudWatch's job in AWS).
pub const METRICS_PATH: &str = "/_local/metrics";

/// The axum app that serves every route through `functions` behind `gateway`; the API's
/// OpenAPI document at `GET /openapi.json`, open to all (API Gateway does not serve it;
/// the repository has it); and at `GET /_local/metrics` every count the functions made
/// so far, `{"counts":[{"name","dimensions","value"}]}`, which `stockroom sale watch`
/// reads where a deployed stack has CloudWatch.
pub fn app(functions: Arc<Functions>, gateway: &Arc<Gateway>) -> axum::Router {
    stockroom::metrics::keep_tally();
    let document = crate::openapi::json();
    let openapi = axum::routing::get(|| async move {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            document,
        )
    });
    let metrics = axum::routing::get(|| async {
        let counts = serde_json::json!({ "counts": stockroom::metrics::tally() });
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            counts.to_string(),
        )
    });
    gateway.guard(
        functions
            .api
            .clone()
            .route("/openapi.json", openapi)
            .route(METRICS_PATH, metrics),
    )
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

/// How often the local run sweeps unless `STOCKROOM_SWEEP_SECONDS` says otherwise.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Runs the reconcile sweep as the schedule does in AWS, `every` after the last one
/// ended (never back to back), through `Functions::scheduled`: paced, so that the one
/// emulator of the local run stays free for the API.
pub async fn schedule(functions: Arc<Functions>, every: Duration) {
    loop {
        functions.pace.start();
        functions.scheduled.sweep().await;
        tokio::time::sleep(every).await;
    }
}

/// How much longer than it worked the local schedule's sweep rests before each of its
/// calls to the table.
const REST_PER_WORK: u32 = 49;

/// An HTTP client that, before each call, rests `REST_PER_WORK` times as long as its
/// caller worked since its last rest (waited for the table, read the answers, computed).
/// The local run's one emulator and two cores serve the API and the schedule's sweeps
/// alike; paced, a sweep takes at most a fiftieth of them while it runs (a quiet sweep
/// of 1,000 skus, two seconds of work, takes two minutes).
#[derive(Debug, Clone)]
struct Paced {
    inner: SharedHttpClient,
    /// When the caller last went back to work.
    resumed: Arc<Mutex<Instant>>,
}

impl Paced {
    fn new(inner: SharedHttpClient) -> Self {
        Self {
            inner,
            resumed: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// The caller starts work now: what it did before (or the idle time since) is not
    /// counted.
    fn start(&self) {
        *self.resumed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

impl HttpClient for Paced {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            paced: self.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    paced: Paced,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, resumed) = (self.inner.clone(), self.paced.resumed.clone());
        HttpConnectorFuture::new(async move {
            let worked = resumed.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            tokio::time::sleep(worked * REST_PER_WORK).await;
            *resumed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            inner.call(request).await
        })
    }
}
