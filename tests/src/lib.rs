//! Test support: every test gets its own table and queues on the emulator and its own
//! local server on a free port, and talks to it over HTTP like a shop back end would.
//!
//! The emulator is the one `infra/test` starts (`STOCKROOM_TEST_ENDPOINT`), or, when a
//! test is run on its own, one started for this test process.

pub mod faults;
pub mod reads;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::Credentials;
use reconcile::Settings;
use serde_json::Value;
use stockroom::queue::{CommandMessage, CommandQueue, SqsQueue};
use stockroom::{Clock, Config};
use stockroom_local::gateway::Authorizer;
use stockroom_local::server::Wiring;
use stockroom_local::tokens::{self, SigningKey};
use stockroom_local::{server, Emulator, Functions, Gateway, Resources, TemplateResources};

pub use stockroom_local::tokens::TokenKind;
use time::{Duration, OffsetDateTime};
use tokio::sync::OnceCell;

static OWN_EMULATOR: OnceCell<Emulator> = OnceCell::const_new();
static TEMPLATE: OnceCell<TemplateResources> = OnceCell::const_new();

async fn endpoint() -> String {
    if let Some(endpoint) = std::env::var("STOCKROOM_TEST_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    {
        return endpoint;
    }
    OWN_EMULATOR
        .get_or_init(|| async { Emulator::start(0).await.expect("start the emulator") })
        .await
        .endpoint
        .clone()
}

/// A clock the test can move forward.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_seconds: AtomicI64,
}

impl TestClock {
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::seconds(self.offset_seconds.load(Ordering::SeqCst))
    }
}

/// An HTTP answer: status, headers and the JSON body (Null when there is none).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// How a test wants its system built.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// The first this many sends to the compensation queue are lost, as if the
    /// function had crashed right after its transaction.
    pub lost_sends: usize,
    /// Reconcile's back-off after a failed attempt (0: retry at once).
    pub backoff_seconds: u32,
    /// Faults injected under every function's AWS calls, and crashes (see `faults`);
    /// off until the test switches them on.
    pub faults: Option<faults::FaultPlan>,
}

/// The crash hook: a queue whose first sends vanish.
struct LostSends {
    queue: SqsQueue,
    to_lose: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl CommandQueue for LostSends {
    async fn send(&self, message: &CommandMessage) -> stockroom::Result<()> {
        let lose = self
            .to_lose
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lose {
            return Ok(());
        }
        self.queue.send(message).await
    }

    async fn send_after(&self, message: &CommandMessage, seconds: u32) -> stockroom::Result<()> {
        self.queue.send_after(message, seconds).await
    }

    async fn delay(&self, receipt_handle: &str, seconds: u32) -> stockroom::Result<()> {
        self.queue.delay(receipt_handle, seconds).await
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub resources: Resources,
    pub clock: Arc<TestClock>,
    pub functions: Arc<Functions>,
    /// The injector under the functions' AWS calls, when `Options::faults` asked for one.
    pub faults: Option<Arc<faults::Faults>>,
    /// The emulator's base URL, for its control and stats endpoints.
    pub emulator: String,
    /// The local API Gateway in front of the functions, with this test's signing key.
    pub gateway: Arc<Gateway>,
    server: tokio::task::JoinHandle<()>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        stockroom::telemetry::init();
        let endpoint = endpoint().await;
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let template = TEMPLATE
            .get_or_try_init(|| async { TemplateResources::load() })
            .await
            .expect("read template.yaml");
        let prefix = format!("t{}", ulid::Ulid::generate().to_string().to_lowercase());
        let resources = template
            .create(&dynamodb, &sqs, &prefix)
            .await
            .expect("create the test's table and queues");
        let config = Config {
            table: resources.table.clone(),
            queue_url: resources.compensation_queue().map(str::to_owned),
        };
        let clock = Arc::new(TestClock::default());
        // One budget of lost sends shared by every function's queue.
        let lost_sends = Arc::new(std::sync::atomic::AtomicUsize::new(options.lost_sends));
        let settings = Settings {
            resend_after_seconds: 60,
            max_receives: 5,
            backoff_seconds: options.backoff_seconds,
            ..Settings::default()
        };
        let faults = options.faults.map(faults::Faults::new);
        let functions_aws = match &faults {
            Some(faults) => aws.to_builder().http_client(faults.http_client()).build(),
            None => aws.clone(),
        };
        let functions = Arc::new(Functions::new(Wiring {
            aws: &functions_aws,
            config: &config,
            clock: clock.clone(),
            settings,
            queue: &|queue: SqsQueue| {
                Arc::new(LostSends {
                    queue,
                    to_lose: lost_sends.clone(),
                })
            },
        }));
        server::connect_event_source(&functions, &config.queue_url.clone().unwrap_or_default())
            .await
            .expect("reconcile reads its queue's attributes");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        // Each test signs its own tokens; the key never leaves this process.
        let gateway = Gateway::new(SigningKey::generate());
        let app = match &faults {
            Some(faults) => gateway.guard(faults.app(functions.clone())),
            None => server::app(functions.clone(), &gateway),
        };
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            emulator: endpoint.clone(),
            base,
            http: reqwest::Client::new(),
            dynamodb,
            sqs,
            resources,
            clock,
            functions,
            faults,
            gateway,
            server,
        }
    }

    /// A bearer token this test's gateway accepts, for `kind` named `id` (for an admin
    /// token, the session name), valid for an hour.
    pub fn token_for(&self, kind: TokenKind, id: &str) -> String {
        tokens::mint(self.gateway.key(), kind, id, tokens::DEFAULT_TTL_SECONDS).expect("a token")
    }

    /// The token `send` uses on `method` `path`: an admin token on the stock admin
    /// routes, a staff token (which may name any customer) on the customer routes.
    pub fn default_token(&self, method: &str, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        match self.gateway.route(method, path)?.1 {
            Authorizer::Iam => Some(self.token_for(TokenKind::Admin, "tests")),
            Authorizer::Jwt => Some(self.token_for(TokenKind::Staff, "test-staff")),
        }
    }

    /// The store on this test's table, for handlers built by the test itself.
    pub fn store(&self) -> stockroom::store::DynamoStore {
        stockroom::store::DynamoStore::new(self.dynamodb.clone(), self.resources.table.clone())
    }

    /// Any request, with the token its route needs (see `default_token`); `key` goes
    /// into `Idempotency-Key`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        let token = self.default_token(method, path);
        self.send_as(token.as_deref(), method, path, key, body)
            .await
    }

    /// Any request with `token` as its bearer token, or none.
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Answer {
        self.send("POST", path, Some(key), Some(body.to_string()))
            .await
    }

    /// A one-shot order of `lines` (a JSON list), asserting it was placed; its id.
    pub async fn order(&self, key: &str, lines: Value) -> String {
        let answer = self
            .post("/orders", key, &serde_json::json!({ "lines": lines }))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.body["order_id"]
            .as_str()
            .expect("order_id")
            .to_owned()
    }

    pub async fn set_stock(&self, sku: &str, on_hand: u64) -> Answer {
        let body = serde_json::json!({ "on_hand": on_hand }).to_string();
        let answer = self
            .send("PUT", &format!("/skus/{sku}"), None, Some(body))
            .await;
        assert!(
            matches!(answer.status, 200 | 201),
            "set stock: {}",
            answer.text
        );
        answer
    }

    /// Sets `sold` on the stock item `shard_pk` (e.g. `SKU#tea#000`) behind the
    /// service's back, breaking its books the way only a bug or a person could.
    pub async fn set_sold(&self, shard_pk: &str, sold: u64) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.dynamodb
            .update_item()
            .table_name(&self.resources.table)
            .key("pk", AttributeValue::S(shard_pk.into()))
            .key("sk", AttributeValue::S("STOCK".into()))
            .update_expression("SET sold = :sold")
            .expression_attribute_values(":sold", AttributeValue::N(sold.to_string()))
            .send()
            .await
            .expect("set sold behind the service's back");
    }

    /// The stock view, asserting the invariant every view must keep.
    pub async fn stock(&self, sku: &str) -> Value {
        let answer = self.send("GET", &format!("/skus/{sku}"), None, None).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let v = &answer.body;
        let n = |f: &str| v[f].as_u64().unwrap_or_else(|| panic!("{f} in {v}"));
        assert_eq!(
            n("on_hand"),
            n("available") + n("reserved") + n("sold"),
            "{v}"
        );
        answer.body
    }

    pub async fn reserve(&self, key: &str, lines: &[(&str, u64)]) -> Answer {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(sku, q)| serde_json::json!({"sku": sku, "quantity": q}))
            .collect();
        self.post("/reservations", key, &serde_json::json!({ "lines": lines }))
            .await
    }

    /// Reserves as a real client does: a 503 (which must carry `Retry-After` and no
    /// internals) is sent again with the same key, at most `tries` times in all.
    /// Returns the last answer and how many 503s came before it.
    pub async fn reserve_retrying(
        &self,
        key: &str,
        lines: &[(&str, u64)],
        tries: usize,
    ) -> (Answer, usize) {
        let mut busy = 0;
        loop {
            let answer = self.reserve(key, lines).await;
            assert_ne!(answer.status, 500, "{}", answer.text);
            if answer.status != 503 || busy + 1 >= tries {
                return (answer, busy);
            }
            assert!(answer.header("retry-after").is_some(), "{}", answer.text);
            assert!(
                matches!(answer.code(), "contention" | "service_unavailable"),
                "{}",
                answer.text
            );
            busy += 1;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub fn queue_url(&self) -> &str {
        self.resources
            .compensation_queue()
            .expect("compensation queue")
    }

    pub fn dead_letter_queue_url(&self) -> &str {
        &self.resources.queue_urls["CompensationDeadLetterQueue"]
    }

    /// Feeds the compensation queue to reconcile until it stays empty for a moment.
    pub async fn drain_queue(&self) -> usize {
        let mut total = 0;
        for _ in 0..50 {
            let n = server::pump_once(
                &self.functions,
                self.queue_url(),
                std::time::Duration::from_secs(0),
            )
            .await
            .expect("pump the queue");
            if n == 0 {
                return total;
            }
            total += n;
        }
        panic!("the compensation queue did not drain");
    }

    pub async fn sweep(&self) -> reconcile::SweepSummary {
        self.functions.reconcile().sweep().await
    }

    /// Sets how the emulator treats this test's table (`transaction_hold_ms`,
    /// `partition_wcu`, `partition_rcu`, `conflicts`).
    pub async fn emulate(&self, settings: Value) {
        let url = format!(
            "{}/_emulator/tables/{}",
            self.emulator, self.resources.table
        );
        let answer = self
            .http
            .post(url)
            .body(settings.to_string())
            .send()
            .await
            .expect("emulator settings");
        assert!(
            answer.status().is_success(),
            "emulator settings: {answer:?}"
        );
    }

    /// What the emulator counted on this test's table (conflicts, throttles, ...).
    pub async fn emulator_stats(&self) -> Value {
        let url = format!(
            "{}/_emulator/stats?table={}",
            self.emulator, self.resources.table
        );
        self.http
            .get(url)
            .send()
            .await
            .expect("emulator stats")
            .json()
            .await
            .expect("emulator stats as JSON")
    }

    /// Drops the test's table and queues so the emulator stays small.
    pub async fn cleanup(self) {
        self.server.abort();
        self.resources.delete(&self.dynamodb, &self.sqs).await;
    }
}

/// `(available, reserved, sold, on_hand)` of a stock view.
pub fn levels(view: &Value) -> (u64, u64, u64, u64) {
    let n = |f: &str| view[f].as_u64().unwrap_or(u64::MAX);
    (n("available"), n("reserved"), n("sold"), n("on_hand"))
}
