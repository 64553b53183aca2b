//! A fault injector under the AWS SDK, for the chaos suite.
//!
//! It is the HTTP client of the functions' `SdkConfig`, so every DynamoDB and SQS call
//! of every function goes through it, and each call may be:
//! - throttled or answered 500 before it reaches the emulator;
//! - forwarded and applied, with its answer lost (a timeout, a broken connection or a
//!   500 instead), so the SDK retries something that already took effect;
//! - the last thing the function did: an invocation (one HTTP request, one SQS batch,
//!   one sweep) can be given a crash point k, and right after its k-th call to the
//!   emulator returns, the handler's future is dropped, as if Lambda's process died.
//!
//! Its pump feeds the compensation queue to reconcile as Lambda's event source does,
//! and also delivers messages twice, late and out of order.
//!
//! Decisions come from seeded generators: one per invocation (seeded by the client that
//! sent it) and one for calls outside any invocation, so a run replays from its seed as
//! far as the interleaving of concurrent requests allows.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use stockroom_local::{server, Functions};
use tokio::sync::Notify;

/// The header a test client sets to name its invocation and seed its faults:
/// `<kind> <seed>`.
pub const INVOCATION_HEADER: &str = "chaos-invocation";

/// How often each fault strikes. Probabilities are per AWS call, per invocation or per
/// message, as named.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    pub seed: u64,
    /// Per call: a throttling error before the emulator sees it.
    pub throttle: f64,
    /// Per call: a 500 before the emulator sees it.
    pub server_error: f64,
    /// Per call: forwarded and applied, but the answer is lost.
    pub lost_response: f64,
    /// Per HTTP request or sweep: the process dies right after one of its calls.
    pub crash: f64,
    /// Per SQS batch: reconcile dies right after one of its calls.
    pub batch_crash: f64,
    /// Per received message: also delivered once more, later, in another batch.
    pub duplicate: f64,
    /// Per message reconcile handled: not deleted, so SQS delivers it again.
    pub redeliver: f64,
}

impl FaultPlan {
    /// Every fault at once, at rates that leave most requests some way through.
    pub fn all(seed: u64) -> Self {
        Self {
            seed,
            throttle: 0.04,
            server_error: 0.03,
            lost_response: 0.05,
            crash: 0.15,
            batch_crash: 0.3,
            duplicate: 0.2,
            redeliver: 0.1,
        }
    }
}

/// What was injected, for the run's report.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub calls: AtomicU64,
    pub throttles: AtomicU64,
    pub server_errors: AtomicU64,
    pub lost_timeouts: AtomicU64,
    pub lost_disconnects: AtomicU64,
    pub lost_500s: AtomicU64,
    pub batches: AtomicU64,
    pub duplicates: AtomicU64,
    pub redeliveries: AtomicU64,
    pub shuffled_batches: AtomicU64,
    /// Crashes by invocation kind, crash point k and the call that was the last.
    crashes: Mutex<BTreeMap<(String, usize, String), u64>>,
    /// Invocations stopped at their timeout, by kind.
    timeouts: Mutex<BTreeMap<String, u64>>,
}

impl FaultCounts {
    /// `(kind, k, last call) -> crashes`.
    pub fn crashes(&self) -> BTreeMap<(String, usize, String), u64> {
        self.crashes.lock().expect("crash counts").clone()
    }

    pub fn crash_total(&self) -> u64 {
        self.crashes().values().sum()
    }

    pub fn report(&self) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let mut by_kind: BTreeMap<String, (u64, BTreeMap<usize, u64>)> = BTreeMap::new();
        for ((kind, k, _), count) in self.crashes() {
            let entry = by_kind.entry(kind).or_default();
            entry.0 += count;
            *entry.1.entry(k).or_default() += count;
        }
        let crashes: Vec<String> = by_kind
            .iter()
            .map(|(kind, (total, ks))| {
                let ks: Vec<String> = ks.iter().map(|(k, c)| format!("k{k}:{c}")).collect();
                format!("{kind} {total} ({})", ks.join(" "))
            })
            .collect();
        format!(
            "AWS calls forwarded {}; injected: throttles {}, 500s before the call {}, \
             answers lost {} (timeouts {}, disconnects {}, 500s {}); SQS: batches {}, duplicates {}, \
             redeliveries {}, shuffled batches {}; stopped at their timeout: {:?}; crashes {}: {}",
            n(&self.calls),
            n(&self.throttles),
            n(&self.server_errors),
            n(&self.lost_timeouts) + n(&self.lost_disconnects) + n(&self.lost_500s),
            n(&self.lost_timeouts),
            n(&self.lost_disconnects),
            n(&self.lost_500s),
            n(&self.batches),
            n(&self.duplicates),
            n(&self.redeliveries),
            n(&self.shuffled_batches),
            self.timeouts.lock().expect("timeouts"),
            self.crash_total(),
            crashes.join("; ")
        )
    }
}

/// The template's `Timeout` of the API functions (Globals) and of reconcile: Lambda
/// stops an invocation that runs longer.
pub const API_FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);
pub const RECONCILE_TIMEOUT: Duration = Duration::from_secs(30);

/// An invocation that did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Died {
    /// Its process died right after call `k`, `last_call`.
    Crashed { k: usize, last_call: String },
    /// Lambda stopped it at its timeout.
    TimedOut,
}

/// One running invocation: its faults' generator, its calls so far and where it dies.
struct Invocation {
    rng: Mutex<StdRng>,
    calls: AtomicUsize,
    crash_at: Option<CrashAt>,
    crashed: Notify,
    last_call: Mutex<String>,
}

impl Invocation {
    /// Counts a call that reached the emulator; true when the process dies now.
    fn completed(&self, operation: &str) -> bool {
        let k = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let due = match &self.crash_at {
            Some(CrashAt::Call(n)) => k == *n,
            Some(CrashAt::First(name)) => operation == *name,
            None => false,
        };
        if !due {
            return false;
        }
        *self.last_call.lock().expect("last call") = operation.to_owned();
        self.crashed.notify_one();
        true
    }
}

/// Where an invocation dies.
#[derive(Debug, Clone, Copy)]
enum CrashAt {
    /// Right after its k-th call.
    Call(usize),
    /// Right after its first call of this operation.
    First(&'static str),
}

/// How many more invocations a crash point is given when one ends before reaching it.
const REARMS: usize = 3;

/// The crash points of one kind of invocation.
#[derive(Debug, Default)]
struct Dealer {
    dealt: usize,
    most_calls: usize,
    /// Points that invocations ended before reaching, each with the tries it has left:
    /// the next invocations of the kind get them, so each boundary is really crossed.
    owed: Vec<(CrashAt, usize)>,
}

impl Dealer {
    fn deal(&mut self, points: CrashPoints) -> (CrashAt, usize) {
        self.dealt += 1;
        let calls = points.calls.unwrap_or(self.most_calls).max(1);
        let at = match points.every_other_after {
            Some(operation) if self.dealt.is_multiple_of(2) => CrashAt::First(operation),
            Some(_) => CrashAt::Call((self.dealt / 2) % calls + 1),
            None => CrashAt::Call((self.dealt - 1) % calls + 1),
        };
        (at, REARMS)
    }
}

/// Which crash points an invocation may get: the next of `1..=calls` for its kind,
/// round and round (without `calls`, the most calls an invocation of its kind has made
/// so far); with `every_other_after`, every other crash of the kind is instead right
/// after its first call of that operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashPoints {
    pub calls: Option<usize>,
    pub every_other_after: Option<&'static str>,
}

tokio::task_local! {
    static INVOCATION: Arc<Invocation>;
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Throttle,
    ServerError,
    LostTimeout,
    LostDisconnect,
    Lost500,
}

/// The injector: an SDK HTTP client over `inner`, and the invocations' crash points.
pub struct Faults {
    plan: FaultPlan,
    inner: SharedHttpClient,
    rng: Mutex<StdRng>,
    enabled: AtomicBool,
    /// Per kind of invocation, the crash points dealt: they go round, so every step
    /// boundary comes up.
    crash_points: Mutex<HashMap<String, Dealer>>,
    pub counts: FaultCounts,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").field("plan", &self.plan).finish()
    }
}

impl Faults {
    /// Faults over the SDK's own HTTPS client.
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        Self::over(plan, inner)
    }

    pub fn over(plan: FaultPlan, inner: SharedHttpClient) -> Arc<Self> {
        Arc::new(Self {
            plan,
            inner,
            rng: Mutex::new(StdRng::seed_from_u64(plan.seed)),
            enabled: AtomicBool::new(false),
            crash_points: Mutex::default(),
            counts: FaultCounts::default(),
        })
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Faults on or off (off, as they start: calls pass through, nothing crashes, the
    /// pump is plain).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// The HTTP client to put in the functions' `SdkConfig`.
    pub fn http_client(self: &Arc<Self>) -> SharedHttpClient {
        SharedHttpClient::new(FaultyClient(self.clone()))
    }

    /// A seed from the run's own generator, for invocations no client seeded.
    pub fn next_seed(&self) -> u64 {
        self.rng.lock().expect("rng").random()
    }

    fn draw(&self, rng: &mut StdRng) -> Option<Fault> {
        if !self.enabled() {
            return None;
        }
        let p = &self.plan;
        let x: f64 = rng.random();
        let mut bound = p.throttle;
        if x < bound {
            return Some(Fault::Throttle);
        }
        bound += p.server_error;
        if x < bound {
            return Some(Fault::ServerError);
        }
        bound += p.lost_response;
        if x < bound {
            return Some(
                [Fault::LostTimeout, Fault::LostDisconnect, Fault::Lost500][rng.random_range(0..3)],
            );
        }
        None
    }

    /// Runs `handler` as one invocation of kind `kind`, seeded by `seed`, which dies
    /// with probability `chance` at one of `points`, or when it runs past `timeout`.
    /// Either drops the handler.
    pub async fn invoke<F: Future>(
        &self,
        kind: &str,
        seed: u64,
        chance: f64,
        points: CrashPoints,
        timeout: Duration,
        handler: F,
    ) -> Result<F::Output, Died> {
        let mut rng = StdRng::seed_from_u64(seed ^ self.plan.seed);
        let armed = if self.enabled() {
            let mut kinds = self.crash_points.lock().expect("crash points");
            let dealer = kinds.entry(kind.to_owned()).or_default();
            match dealer.owed.pop() {
                Some(owed) => Some(owed),
                None => rng.random_bool(chance).then(|| dealer.deal(points)),
            }
        } else {
            None
        };
        let crash_at = armed.map(|(at, _)| at);
        let invocation = Arc::new(Invocation {
            rng: Mutex::new(rng),
            calls: AtomicUsize::new(0),
            crash_at,
            crashed: Notify::new(),
            last_call: Mutex::default(),
        });
        let running = INVOCATION.scope(invocation.clone(), handler);
        tokio::pin!(running);
        tokio::select! {
            biased;
            () = invocation.crashed.notified() => {
                let k = invocation.calls.load(Ordering::SeqCst);
                let last_call = invocation.last_call.lock().expect("last call").clone();
                *self
                    .counts
                    .crashes
                    .lock()
                    .expect("crash counts")
                    .entry((kind.to_owned(), k, last_call.clone()))
                    .or_default() += 1;
                Err(Died::Crashed { k, last_call })
            }
            () = tokio::time::sleep(timeout) => {
                *self
                    .counts
                    .timeouts
                    .lock()
                    .expect("timeouts")
                    .entry(kind.to_owned())
                    .or_default() += 1;
                Err(Died::TimedOut)
            }
            output = &mut running => {
                let calls = invocation.calls.load(Ordering::SeqCst);
                let mut kinds = self.crash_points.lock().expect("crash points");
                let dealer = kinds.entry(kind.to_owned()).or_default();
                dealer.most_calls = dealer.most_calls.max(calls);
                if let Some((at, tries @ 1..)) = armed {
                    dealer.owed.push((at, tries - 1));
                }
                Ok(output)
            }
        }
    }

    /// The local server's app, each request one invocation: a crashed one answers as
    /// API Gateway does when the function dies, 502.
    pub fn app(self: &Arc<Self>, functions: Arc<Functions>) -> axum::Router {
        let faults = self.clone();
        axum::Router::new().fallback(move |req: axum::extract::Request| {
            let functions = functions.clone();
            let faults = faults.clone();
            async move {
                let named = req
                    .headers()
                    .get(INVOCATION_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split_once(' '))
                    .and_then(|(kind, seed)| Some((kind.to_owned(), seed.parse().ok()?)));
                let (kind, seed) = named.unwrap_or_else(|| ("unnamed".into(), faults.next_seed()));
                let served = faults
                    .invoke(
                        &kind,
                        seed,
                        faults.plan.crash,
                        CrashPoints::default(),
                        API_FUNCTION_TIMEOUT,
                        server::serve_one(&functions, req),
                    )
                    .await;
                served.unwrap_or_else(|_| {
                    axum::response::Response::builder()
                        .status(502)
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(
                            r#"{"message":"Internal Server Error"}"#,
                        ))
                        .expect("a 502")
                })
            }
        })
    }

    /// One round of Lambda's SQS event source, with faults: receive up to 10 messages,
    /// add copies of earlier ones, shuffle, hand the batch to reconcile as one
    /// invocation, then delete what it did not report failed, except what is left for
    /// SQS to deliver again. A crash deletes nothing; the messages come back at once
    /// (as after their visibility timeout). `sqs` is the event source's own client,
    /// beneath the faults. Returns how many messages it received.
    pub async fn pump_once(
        &self,
        functions: &Functions,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        delivered: &Mutex<Vec<SqsMessage>>,
    ) -> Result<usize, aws_sdk_sqs::Error> {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        let mut rng = StdRng::seed_from_u64(self.next_seed());
        let fresh: Vec<SqsMessage> = received.iter().map(server::sqs_record).collect();
        let mut batch = SqsEvent::default();
        batch.records = fresh.clone();
        if self.enabled() {
            let mut earlier = delivered.lock().expect("delivered");
            for _ in 0..fresh.len().max(1) {
                if !earlier.is_empty() && rng.random_bool(self.plan.duplicate) {
                    let which = rng.random_range(0..earlier.len());
                    let again = earlier.swap_remove(which);
                    batch.records.push(again);
                    self.counts.duplicates.fetch_add(1, Ordering::SeqCst);
                }
            }
            if batch.records.len() > 1 {
                batch.records.shuffle(&mut rng);
                self.counts.shuffled_batches.fetch_add(1, Ordering::SeqCst);
            }
            earlier.extend(fresh.iter().cloned());
        }
        if batch.records.is_empty() {
            return Ok(0);
        }
        self.counts.batches.fetch_add(1, Ordering::SeqCst);
        // Each message is a read and a transaction: any boundary between them, and
        // often just after a command was applied, before any message is deleted.
        let crash_points = CrashPoints {
            calls: Some(2 * batch.records.len()),
            every_other_after: Some("TransactWriteItems"),
        };
        let outcome = self
            .invoke(
                "reconcile",
                rng.random(),
                self.plan.batch_crash,
                crash_points,
                RECONCILE_TIMEOUT,
                functions.reconcile().apply_batch(batch),
            )
            .await;
        for (message, record) in received.iter().zip(&fresh) {
            let Some(receipt) = &message.receipt_handle else {
                continue;
            };
            let failed = match &outcome {
                Err(_) => true,
                Ok(response) => response
                    .batch_item_failures
                    .iter()
                    .any(|f| Some(&f.item_identifier) == record.message_id.as_ref()),
            };
            if outcome.is_err() {
                sqs.change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await?;
            } else if failed {
                // Reconcile pushed it back with its back-off; SQS brings it back then.
            } else if self.enabled() && rng.random_bool(self.plan.redeliver) {
                self.counts.redeliveries.fetch_add(1, Ordering::SeqCst);
                sqs.change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(rng.random_range(0..3))
                    .send()
                    .await?;
            } else {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
            }
        }
        Ok(received.len())
    }
}

#[derive(Debug)]
struct FaultyClient(Arc<Faults>);

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            faults: self.0.clone(),
            inner: self.0.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    faults: Arc<Faults>,
    inner: SharedHttpConnector,
}

/// `DynamoDB_20120810.TransactWriteItems` -> `TransactWriteItems`.
fn operation(request: &HttpRequest) -> String {
    let target = request.headers().get("x-amz-target").unwrap_or("unknown");
    target.rsplit('.').next().unwrap_or(target).to_owned()
}

fn is_sqs(request: &HttpRequest) -> bool {
    request
        .headers()
        .get("x-amz-target")
        .is_some_and(|t| t.starts_with("AmazonSQS"))
}

/// An AWS JSON-protocol error answer.
fn error_answer(status: u16, sqs: bool, code: &str, message: &str) -> HttpResponse {
    let namespace = if sqs {
        "com.amazonaws.sqs"
    } else {
        "com.amazonaws.dynamodb.v20120810"
    };
    let body = serde_json::json!({"__type": format!("{namespace}#{code}"), "message": message});
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("a status code"),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    if sqs {
        response
            .headers_mut()
            .insert("x-amzn-query-error", format!("{code};Sender"));
    }
    response
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // Read here, not in the future: this runs inside the invocation's task.
        let invocation = INVOCATION.try_with(Arc::clone).ok();
        let fault = match &invocation {
            Some(inv) => self.faults.draw(&mut inv.rng.lock().expect("rng")),
            None => self.faults.draw(&mut self.faults.rng.lock().expect("rng")),
        };
        let operation = operation(&request);
        let sqs = is_sqs(&request);
        let faults = self.faults.clone();
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let counts = &faults.counts;
            match fault {
                Some(Fault::Throttle) => {
                    counts.throttles.fetch_add(1, Ordering::SeqCst);
                    let code = if sqs || operation.starts_with("Transact") {
                        "ThrottlingException"
                    } else {
                        "ProvisionedThroughputExceededException"
                    };
                    return Ok(error_answer(
                        400,
                        sqs,
                        code,
                        "Rate of requests exceeds the allowed throughput.",
                    ));
                }
                Some(Fault::ServerError) => {
                    counts.server_errors.fetch_add(1, Ordering::SeqCst);
                    return Ok(error_answer(
                        500,
                        sqs,
                        "InternalServerError",
                        "Internal server error",
                    ));
                }
                _ => {}
            }
            let answer = inner.call(request).await;
            counts.calls.fetch_add(1, Ordering::SeqCst);
            if invocation
                .as_ref()
                .is_some_and(|inv| inv.completed(&operation))
            {
                // The process is gone: nothing after this call happens.
                return std::future::pending().await;
            }
            match fault {
                Some(Fault::LostTimeout) => {
                    counts.lost_timeouts.fetch_add(1, Ordering::SeqCst);
                    Err(ConnectorError::timeout(
                        "injected: the answer never came".into(),
                    ))
                }
                Some(Fault::LostDisconnect) => {
                    counts.lost_disconnects.fetch_add(1, Ordering::SeqCst);
                    Err(ConnectorError::io("injected: connection reset".into()))
                }
                Some(Fault::Lost500) => {
                    counts.lost_500s.fetch_add(1, Ordering::SeqCst);
                    Ok(error_answer(
                        500,
                        sqs,
                        "InternalServerError",
                        "Internal server error",
                    ))
                }
                _ => answer,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::http_client_fn;

    /// A stand-in for the emulator: counts the calls that reach it, answers `{}`.
    #[derive(Debug, Clone, Default)]
    struct Emulator(Arc<AtomicUsize>);

    impl HttpConnector for Emulator {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            self.0.fetch_add(1, Ordering::SeqCst);
            let mut answer =
                HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::from("{}"));
            answer
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            HttpConnectorFuture::ready(Ok(answer))
        }
    }

    fn quiet(seed: u64) -> FaultPlan {
        FaultPlan {
            seed,
            throttle: 0.0,
            server_error: 0.0,
            lost_response: 0.0,
            crash: 0.0,
            batch_crash: 0.0,
            duplicate: 0.0,
            redeliver: 0.0,
        }
    }

    fn setup(plan: FaultPlan) -> (Arc<Faults>, Arc<AtomicUsize>, aws_sdk_dynamodb::Client) {
        let emulator = Emulator::default();
        let reached = emulator.0.clone();
        let inner = http_client_fn(move |_, _| SharedHttpConnector::new(emulator.clone()));
        let faults = Faults::over(plan, inner);
        faults.set_enabled(true);
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
            .http_client(faults.http_client())
            .build();
        (faults, reached, aws_sdk_dynamodb::Client::from_conf(config))
    }

    async fn get(client: &aws_sdk_dynamodb::Client) -> bool {
        client
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
            .send()
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn throttles_and_500s_never_reach_the_emulator() {
        let (faults, reached, client) = setup(FaultPlan {
            throttle: 1.0,
            ..quiet(1)
        });
        assert!(
            !get(&client).await,
            "a throttled call fails once retries run out"
        );
        assert_eq!(reached.load(Ordering::SeqCst), 0);
        assert_eq!(
            faults.counts.throttles.load(Ordering::SeqCst),
            3,
            "the SDK tried 3 times"
        );

        let (faults, reached, client) = setup(FaultPlan {
            server_error: 1.0,
            ..quiet(1)
        });
        assert!(!get(&client).await);
        assert_eq!(reached.load(Ordering::SeqCst), 0);
        assert_eq!(faults.counts.server_errors.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_lost_answer_was_applied_and_the_sdk_sends_it_again() {
        let (faults, reached, client) = setup(FaultPlan {
            lost_response: 1.0,
            ..quiet(2)
        });
        assert!(!get(&client).await);
        assert_eq!(
            reached.load(Ordering::SeqCst),
            3,
            "every attempt reached the emulator"
        );
        let counts = &faults.counts;
        let lost = counts.lost_timeouts.load(Ordering::SeqCst)
            + counts.lost_disconnects.load(Ordering::SeqCst)
            + counts.lost_500s.load(Ordering::SeqCst);
        assert_eq!(lost, 3);

        faults.set_enabled(false);
        assert!(get(&client).await, "switched off, calls pass");
    }

    #[tokio::test]
    async fn a_crash_drops_the_handler_right_after_its_kth_call() {
        let (faults, reached, client) = setup(FaultPlan {
            crash: 1.0,
            ..quiet(3)
        });
        let after = Arc::new(AtomicUsize::new(0));
        let handler = |after: Arc<AtomicUsize>| {
            let client = client.clone();
            async move {
                for _ in 0..5 {
                    assert!(get(&client).await);
                    after.fetch_add(1, Ordering::SeqCst);
                }
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            reached.store(0, Ordering::SeqCst);
            after.store(0, Ordering::SeqCst);
            let died = faults
                .invoke(
                    "test",
                    seed,
                    1.0,
                    CrashPoints {
                        calls: Some(5),
                        every_other_after: None,
                    },
                    Duration::from_secs(5),
                    handler(after.clone()),
                )
                .await
                .expect_err("every invocation crashes");
            let Died::Crashed { k, last_call } = died else {
                panic!("{died:?}");
            };
            assert_eq!(last_call, "GetItem");
            assert_eq!(
                reached.load(Ordering::SeqCst),
                k,
                "call k reached the emulator"
            );
            assert_eq!(
                after.load(Ordering::SeqCst),
                k - 1,
                "its answer was never seen"
            );
            seen.insert(k);
        }
        assert_eq!(seen, (1..=5).collect(), "every crash point came up");
        assert_eq!(faults.counts.crash_total(), 40);

        after.store(0, Ordering::SeqCst);
        let spared = faults
            .invoke(
                "test",
                7,
                0.0,
                CrashPoints {
                    calls: Some(5),
                    every_other_after: None,
                },
                Duration::from_secs(5),
                handler(after.clone()),
            )
            .await;
        assert!(spared.is_ok(), "no chance, no crash");
        assert_eq!(after.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn an_invocation_past_its_timeout_is_stopped() {
        let (faults, _, _) = setup(quiet(4));
        let finished = Arc::new(AtomicBool::new(false));
        let slow = {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                finished.store(true, Ordering::SeqCst);
            }
        };
        let points = CrashPoints::default();
        let stopped = faults
            .invoke("slow", 1, 0.0, points, Duration::from_millis(20), slow)
            .await;
        assert_eq!(stopped, Err(Died::TimedOut));
        assert!(!finished.load(Ordering::SeqCst));
        assert!(faults.counts.report().contains(r#""slow": 1"#));
    }

    #[tokio::test]
    async fn the_same_seed_draws_the_same_faults() {
        let draws = |seed| {
            let (faults, _, _) = setup(FaultPlan::all(seed));
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200)
                .map(|_| format!("{:?}", faults.draw(&mut rng)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(11), draws(11));
        assert_ne!(draws(11), draws(12));
        assert!(draws(11).iter().any(|d| d != "None"));
    }
}
