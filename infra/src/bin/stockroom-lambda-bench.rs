//! `stockroom-lambda-bench`: each function's release binary run the way Lambda runs it,
//! under a stub of the Lambda Runtime API, against a fresh emulator per function, for
//! the function's main event in `events/`. Per function it prints init (spawn to the
//! first `GET /next`), cold (spawn to the first response), warm p50/p99 (event handed
//! out to response), the CPU of the process (user + system, from `/proc`) until it waits
//! for its second event and per warm invocation, peak RSS (`VmHWM`), and the DynamoDB
//! and SQS calls per invocation (the emulator counts them).
//!
//! Options: `--runs 3 --warm 20 --functions reserve-stock,refund --bin-dir DIR`.
//! Traffic goes only to 127.0.0.1; every run is bounded in count and time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_dynamodb::config::Credentials;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use stockroom_local::server::{sqs_record, Function};
use stockroom_local::{project_root, Emulator, TemplateResources};
use tokio::sync::{mpsc, watch, Mutex};

const RUNTIME: &str = "/2018-06-01/runtime";
/// The sku, campaign and customer the events in `events/` name.
const SKU: &str = "tea-1";
const CUSTOMER: &str = "customer-42";
/// A sku no campaign sells: a customer reserves it without one.
const PLAIN_SKU: &str = "tea-2";

/// Every function's release binary under a Lambda Runtime API stub, against the emulator.
#[derive(Debug, Clone, clap::Parser)]
struct Options {
    /// Fresh processes per function (1 cold + `warm` invocations each).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
    /// Warm invocations per process.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
    warm: u32,
    /// Functions to measure (default: all).
    #[arg(long, value_delimiter = ',')]
    functions: Vec<String>,
    /// Where the functions' release binaries are.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Seconds to wait for any one answer of a function.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Runs each measured process under `perf record` (call graphs), writing
    /// `DIR/<function>-<event>-<run>.data`: for a profile, with a build that keeps its
    /// symbols (`--profile profiling`). The times then include perf's own.
    #[arg(long, value_name = "DIR")]
    perf_record: Option<PathBuf>,
}

// --- The Runtime API stub ----------------------------------------------------------------

/// What a function posted back for an invocation (`None`: an init error).
struct Posted {
    request_id: Option<String>,
    kind: &'static str,
    body: Bytes,
    at: Instant,
}

/// The Runtime API for one process: events are handed out in order, one per `GET /next`.
struct Stub {
    events: Mutex<mpsc::UnboundedReceiver<(String, Bytes)>>,
    /// How many `GET /next` the function has sent, and when the first came.
    nexts: watch::Sender<(u64, Option<Instant>)>,
    /// When each event was handed out.
    released: std::sync::Mutex<BTreeMap<String, Instant>>,
    posted: mpsc::UnboundedSender<Posted>,
}

async fn next_event(State(stub): State<Arc<Stub>>) -> axum::response::Response {
    stub.nexts.send_modify(|(count, first)| {
        *count += 1;
        first.get_or_insert_with(Instant::now);
    });
    let Some((id, body)) = stub.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    stub.released
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), Instant::now());
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(30);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", id.clone());
    set(
        "lambda-runtime-deadline-ms",
        deadline.as_millis().to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            deadline.as_secs(),
            &id.replace('-', "")[..24],
            &id.replace('-', "")[..16]
        ),
    );
    (headers, body).into_response()
}

async fn post_result(
    State(stub): State<Arc<Stub>>,
    UrlPath((id, kind)): UrlPath<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let kind = if kind == "response" {
        "response"
    } else {
        "error"
    };
    let _ = stub.posted.send(Posted {
        request_id: Some(id),
        kind,
        body,
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(stub): State<Arc<Stub>>, body: Bytes) -> StatusCode {
    let _ = stub.posted.send(Posted {
        request_id: None,
        kind: "init error",
        body,
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}

// --- One process ---------------------------------------------------------------------

/// CPU time (user + system) of every live thread of `pid`, from the scheduler's
/// nanosecond counts.
fn cpu(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let nanos = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Peak resident set of `pid` in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// AWS calls so far, by `service:Operation`.
async fn calls(http: &reqwest::Client, emulator: &str) -> BTreeMap<String, u64> {
    let stats: Value = match http.get(format!("{emulator}/_emulator/stats")).send().await {
        Ok(answer) => answer.json().await.unwrap_or_default(),
        Err(_) => Value::Null,
    };
    stats["calls"]
        .as_object()
        .map(|calls| {
            calls
                .iter()
                .map(|(call, n)| (call.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn added(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(call, n)| (call.clone(), n - before.get(call).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// How a function is started: its binary, environment and where its output goes.
struct Process<'a> {
    binary: &'a Path,
    env: &'a [(String, String)],
    log: &'a Path,
    timeout: Duration,
    http: &'a reqwest::Client,
    emulator: &'a str,
    /// Where `perf record` writes this process's profile, if it runs under it.
    perf_data: Option<PathBuf>,
}

/// The function `perf` started: its only child.
async fn child_of(perf: u32) -> Result<u32, String> {
    for _ in 0..500 {
        let children = std::fs::read_to_string(format!("/proc/{perf}/task/{perf}/children"));
        if let Some(pid) = children
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
        {
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err("perf started no function within 5 s".into())
}

/// What one process did with its events.
#[derive(Default)]
struct Run {
    init: Duration,
    cold: Duration,
    /// CPU until it asked for its second event (init and the first invocation).
    cold_cpu: Duration,
    warm: Vec<Duration>,
    warm_cpu: Vec<Duration>,
    peak_rss_mb: f64,
    cold_calls: BTreeMap<String, u64>,
    warm_calls: BTreeMap<String, u64>,
    /// Each answer as the function posted it.
    answers: Vec<Value>,
}

impl Process<'_> {
    /// Starts the binary, hands it `events` one at a time, each once it waits for one.
    async fn run(&self, events: Vec<Value>) -> Result<Run, String> {
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (posted_tx, mut posted) = mpsc::unbounded_channel();
        let (nexts, mut nexts_seen) = watch::channel((0u64, None));
        let stub = Arc::new(Stub {
            events: Mutex::new(event_rx),
            nexts,
            released: Default::default(),
            posted: posted_tx,
        });
        let app = Router::new()
            .route(&format!("{RUNTIME}/invocation/next"), get(next_event))
            .route(
                &format!("{RUNTIME}/invocation/{{id}}/{{kind}}"),
                post(post_result),
            )
            .route(&format!("{RUNTIME}/init/error"), post(init_error))
            .with_state(stub.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("stub: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let ids: Vec<String> = events
            .iter()
            .map(|_| ulid::Ulid::generate().to_string())
            .collect();
        let mut events = events.into_iter().zip(ids.iter());
        if let Some((event, id)) = events.next() {
            let _ = event_tx.send((id.to_string(), Bytes::from(event.to_string())));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let calls_before = calls(self.http, self.emulator).await;
        let started = Instant::now();
        let mut command = match &self.perf_data {
            Some(data) => {
                let mut perf = tokio::process::Command::new("perf");
                perf.args([
                    "record",
                    "-q",
                    "-F",
                    "10000",
                    "--call-graph",
                    "dwarf,32768",
                    "-o",
                ])
                .arg(data)
                .arg("--")
                .arg(self.binary);
                perf
            }
            None => tokio::process::Command::new(self.binary),
        };
        let mut child = command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let pid = child.id().ok_or("the function exited at once")?;
        let pid = match self.perf_data {
            Some(_) => child_of(pid).await?,
            None => pid,
        };

        let mut run = Run::default();
        let outcome = async {
            let mut cpu_parked = Duration::ZERO;
            let mut calls_parked = calls_before.clone();
            let mut calls_after_cold = calls_before.clone();
            let mut index = 0u64;
            for id in &ids {
                let answer = tokio::time::timeout(self.timeout, posted.recv())
                    .await
                    .map_err(|_| format!("no answer to event {index} within {:?}", self.timeout))?
                    .ok_or("the stub stopped")?;
                if answer.request_id.as_deref() != Some(id.as_str()) {
                    return Err(format!(
                        "{}: {}",
                        answer.kind,
                        String::from_utf8_lossy(&answer.body)
                    ));
                }
                run.answers
                    .push(serde_json::from_slice(&answer.body).unwrap_or(Value::Null));
                let released = stub.released.lock().unwrap_or_else(|e| e.into_inner())[id];
                // Parked again in GET /next: whatever this invocation cost is spent.
                index += 1;
                tokio::time::timeout(self.timeout, nexts_seen.wait_for(|(n, _)| *n > index))
                    .await
                    .map_err(|_| "the function did not ask for another event".to_string())?
                    .map_err(|e| e.to_string())?;
                let cpu_now = cpu(pid);
                let calls_now = calls(self.http, self.emulator).await;
                if index == 1 {
                    run.init = nexts_seen
                        .borrow()
                        .1
                        .map_or(Duration::ZERO, |t| t - started);
                    run.cold = answer.at - started;
                    run.cold_cpu = cpu_now;
                    run.cold_calls = added(&calls_parked, &calls_now);
                    calls_after_cold = calls_now.clone();
                } else {
                    run.warm.push(answer.at.duration_since(released));
                    run.warm_cpu.push(cpu_now.saturating_sub(cpu_parked));
                }
                cpu_parked = cpu_now;
                calls_parked = calls_now;
                if let Some((event, id)) = events.next() {
                    let _ = event_tx.send((id.to_string(), Bytes::from(event.to_string())));
                }
            }
            run.warm_calls = added(&calls_after_cold, &calls_parked);
            run.peak_rss_mb = peak_rss_mb(pid);
            Ok::<(), String>(())
        }
        .await;
        if self.perf_data.is_some() {
            // perf writes its profile once the function is gone.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(120), child.wait()).await;
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
        server.abort();
        outcome.map(|()| run)
    }
}

// --- The functions and their events ------------------------------------------------------

fn event(function: &str, name: &str) -> Result<Value, String> {
    let path = project_root().join(format!("events/{function}/{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `event` as a new request: its own idempotency key and, with `customer`, its own caller.
fn fresh(mut event: Value, tag: &str, customer: Option<&str>) -> Value {
    if let Some(key) = event["headers"].get_mut("idempotency-key") {
        *key = json!(format!("{}-{tag}", key.as_str().unwrap_or("bench")));
    }
    match customer {
        Some(customer) => {
            serde_json::from_str(&event.to_string().replace(CUSTOMER, customer)).unwrap_or(event)
        }
        None => event,
    }
}

/// Invocation `i` of run `run`: `event` as a new request of a customer of its own.
fn by_new_customers(event: &Value) -> impl Fn(u32, u32) -> Value + '_ {
    move |run, i| {
        let tag = format!("{run}-{i}");
        fresh(event.clone(), &tag, Some(&format!("customer-{tag}")))
    }
}

fn with_body(mut event: Value, body: Value) -> Value {
    event["body"] = json!(body.to_string());
    event
}

/// `event` sent to another resource id in its path (`/orders/{id}/refunds`).
fn at_id(event: Value, old: &str, new: &str) -> Value {
    serde_json::from_str(&event.to_string().replace(old, new)).unwrap_or(event)
}

/// The stock, campaign and orders every function's main event finds.
struct Seeds<'a> {
    bench: &'a Bench,
    env: &'a [(String, String)],
}

impl Seeds<'_> {
    async fn invoke(&self, function: Function, events: Vec<Value>) -> Result<Vec<Value>, String> {
        let env = self.bench.env_for(function, self.env);
        let binary = self.bench.binary(function);
        Ok(self.bench.process(&binary, &env).run(events).await?.answers)
    }

    /// `units` of the events' sku and of `PLAIN_SKU` on hand, and the events' campaign
    /// selling the first.
    async fn stock(&self, units: u64) -> Result<(), String> {
        let sku = with_body(
            event("stock-admin", "put-sku")?,
            json!({ "on_hand": units }),
        );
        let plain = at_id(sku.clone(), SKU, PLAIN_SKU);
        let campaign = event("stock-admin", "put-campaign")?;
        let answers = self
            .invoke(Function::StockAdmin, vec![sku, plain, campaign])
            .await?;
        expect_2xx("seeding stock", &answers)
    }

    /// `count` orders of the events' customer for one unit of the sku each, placed by
    /// staff: an order is refunded a few times at most, so each refund gets its own.
    async fn orders(&self, count: u64) -> Result<Vec<String>, String> {
        let order = event("place-order", "create-order")?;
        let body = json!({"lines": [{"sku": SKU, "quantity": 1}], "customer_id": CUSTOMER});
        let orders = (0..count)
            .map(|i| {
                with_body(
                    fresh(order.clone(), &format!("seed-{i}"), None),
                    body.clone(),
                )
            })
            .collect();
        let answers = self.invoke(Function::PlaceOrder, orders).await?;
        expect_2xx("seeding orders", &answers)?;
        // `/orders/{id}`, where each 201 says its order is.
        answers
            .iter()
            .map(|answer| {
                answer["headers"]["location"]
                    .as_str()
                    .and_then(|location| location.strip_prefix("/orders/"))
                    .map(str::to_owned)
                    .ok_or_else(|| format!("a seeded order has no Location: {answer}"))
            })
            .collect()
    }

    /// `count` `create-refund` events, each of an order of its own.
    async fn refunds_of_new_orders(&self, count: u64) -> Result<Vec<Value>, String> {
        let refund = event("refund", "create-refund")?;
        let old = refund["pathParameters"]["id"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let orders = self.orders(count).await?;
        Ok(orders
            .iter()
            .enumerate()
            .map(|(i, order)| fresh(at_id(refund.clone(), &old, order), &i.to_string(), None))
            .collect())
    }
}

/// The HTTP status of an API function's answer.
fn status(answer: &Value) -> Option<u64> {
    answer["statusCode"].as_u64()
}

fn expect_2xx(what: &str, answers: &[Value]) -> Result<(), String> {
    match answers
        .iter()
        .find(|a| !status(a).is_some_and(|s| (200..300).contains(&s)))
    {
        Some(other) => Err(format!("{what}: the function answered {other}")),
        None => Ok(()),
    }
}

struct Bench {
    options: Options,
    emulator: String,
    http: reqwest::Client,
    log: PathBuf,
}

impl Bench {
    fn binary(&self, function: Function) -> PathBuf {
        self.options.bin_dir.join(name(function))
    }

    fn process<'a>(&'a self, binary: &'a Path, env: &'a [(String, String)]) -> Process<'a> {
        Process {
            binary,
            env,
            log: &self.log,
            timeout: Duration::from_secs(self.options.timeout),
            http: &self.http,
            emulator: &self.emulator,
            perf_data: None,
        }
    }

    /// What Lambda sets for `function`, its identity (the emulator's IAM gate holds it to
    /// its policy) and the template's variables.
    fn env_for(&self, function: Function, common: &[(String, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = common.to_vec();
        let name = name(function);
        env.extend(
            [
                ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
                ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
                ("AWS_ACCESS_KEY_ID", function.logical_id().into()),
                ("AWS_SECRET_ACCESS_KEY", "local".into()),
                ("AWS_SESSION_TOKEN", "local".into()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_DEFAULT_REGION", "us-east-1".into()),
                ("AWS_ENDPOINT_URL", self.emulator.clone()),
                ("RUST_LOG", "info".into()),
                ("TZ", ":UTC".into()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }
}

fn name(function: Function) -> &'static str {
    match function {
        Function::StockAdmin => "stock-admin",
        Function::ReserveStock => "reserve-stock",
        Function::PlaceOrder => "place-order",
        Function::Refund => "refund",
        Function::Reconcile => "reconcile",
    }
}

/// A function and the event it is measured with: each function's main event, and a
/// reservation without a campaign (what a cold process sells with one write).
#[derive(Debug, Clone, Copy)]
struct Scenario {
    function: Function,
    event: &'static str,
}

const PLAIN_RESERVATION: &str = "create-reservation, no campaign";

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        function: Function::StockAdmin,
        event: "adjust-sku",
    },
    Scenario {
        function: Function::ReserveStock,
        event: "create-reservation",
    },
    Scenario {
        function: Function::ReserveStock,
        event: PLAIN_RESERVATION,
    },
    Scenario {
        function: Function::PlaceOrder,
        event: "create-order",
    },
    Scenario {
        function: Function::Refund,
        event: "create-refund",
    },
    Scenario {
        function: Function::Reconcile,
        event: "compensation-message",
    },
];

/// One scenario's process runs.
struct Measured {
    scenario: Scenario,
    runs: Vec<Run>,
}

/// Every invocation of a measurement: `runs` processes of 1 + `warm` events each.
fn batches(runs: u32, warm: u32, make: impl Fn(u32, u32) -> Value) -> Vec<Vec<Value>> {
    (0..runs)
        .map(|run| (0..=warm).map(|i| make(run, i)).collect())
        .collect()
}

/// `scenario` on a fresh emulator: its seeds, then `runs` processes.
async fn measure(
    options: &Options,
    http: &reqwest::Client,
    log: &Path,
    scenario: Scenario,
) -> Result<Measured, String> {
    let function = scenario.function;
    let template = TemplateResources::load().map_err(|e| e.to_string())?;
    let emulator = Emulator::start(0).await.map_err(|e| e.to_string())?;
    let bench = Bench {
        options: options.clone(),
        emulator: emulator.endpoint.clone(),
        http: http.clone(),
        log: log.to_owned(),
    };
    let aws = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&bench.emulator)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let resources = template
        .create(
            &aws_sdk_dynamodb::Client::new(&aws),
            &sqs,
            "stockroom-bench",
        )
        .await
        .map_err(|e| e.to_string())?;
    let queue_url = resources
        .compensation_queue()
        .unwrap_or_default()
        .to_owned();
    let common = vec![
        ("STOCKROOM_TABLE".to_owned(), resources.table.clone()),
        ("STOCKROOM_QUEUE_URL".to_owned(), queue_url.clone()),
    ];
    let seeds = Seeds {
        bench: &bench,
        env: &common,
    };
    let (runs, warm) = (bench.options.runs, bench.options.warm);
    let invocations = u64::from(runs * (warm + 1));
    seeds.stock(1_000_000).await?;
    let batches = match scenario.event {
        "adjust-sku" => {
            let adjust = event("stock-admin", "adjust-sku")?;
            let make = |run, i| fresh(adjust.clone(), &format!("{run}-{i}"), None);
            batches(runs, warm, make)
        }
        "create-reservation" => {
            let reserve = event("reserve-stock", "create-reservation")?;
            batches(runs, warm, by_new_customers(&reserve))
        }
        PLAIN_RESERVATION => {
            let reserve = event("reserve-stock", "create-reservation")?;
            let body = json!({"lines": [{"sku": PLAIN_SKU, "quantity": 2}], "hold_seconds": 600});
            batches(runs, warm, by_new_customers(&with_body(reserve, body)))
        }
        "create-order" => {
            let order = event("place-order", "create-order")?;
            batches(runs, warm, by_new_customers(&order))
        }
        "create-refund" => {
            let refunds = seeds.refunds_of_new_orders(invocations).await?;
            let make = |run, i| refunds[(run * (warm + 1) + i) as usize].clone();
            batches(runs, warm, make)
        }
        "compensation-message" => {
            // Restocking refunds record commands and send them to the queue, as in AWS.
            let refunds = seeds.refunds_of_new_orders(invocations).await?;
            expect_2xx(
                "seeding refunds",
                &seeds.invoke(Function::Refund, refunds).await?,
            )?;
            let mut messages = Vec::new();
            for _ in 0..invocations {
                if messages.len() as u64 >= invocations {
                    break;
                }
                let received = sqs
                    .receive_message()
                    .queue_url(&queue_url)
                    .max_number_of_messages(10)
                    .visibility_timeout(600)
                    .send()
                    .await
                    .map_err(|e| format!("receiving the seeded commands: {e}"))?;
                messages.extend(received.messages.unwrap_or_default());
            }
            if (messages.len() as u64) < invocations {
                return Err(format!(
                    "{} of {invocations} seeded commands reached the queue",
                    messages.len()
                ));
            }
            let message_events: Vec<Value> = messages
                .iter()
                .map(|m| {
                    let mut event = SqsEvent::default();
                    event.records.push(sqs_record(m));
                    serde_json::to_value(event).unwrap_or_default()
                })
                .collect();
            let make = |run, i| message_events[(run * (warm + 1) + i) as usize].clone();
            batches(runs, warm, make)
        }
        other => return Err(format!("no such event: {other}")),
    };
    let binary = bench.binary(function);
    let env = bench.env_for(function, &common);
    if let Some(dir) = &options.perf_record {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut measured = Vec::new();
    for (run, events) in batches.into_iter().enumerate() {
        let mut process = bench.process(&binary, &env);
        process.perf_data = options.perf_record.as_ref().map(|dir| {
            let event = scenario.event.replace([',', ' '], "-").replace("--", "-");
            dir.join(format!("{}-{event}-{run}.data", name(function)))
        });
        measured.push(process.run(events).await?);
    }
    drop(emulator);
    Ok(Measured {
        scenario,
        runs: measured,
    })
}

// --- The table -----------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// Nearest-rank percentile.
fn percentile(mut xs: Vec<Duration>, p: usize) -> Duration {
    xs.sort();
    let rank = (xs.len() * p).div_ceil(100).max(1);
    xs.get(rank - 1).copied().unwrap_or_default()
}

/// Calls per invocation, summed by service: `dynamodb 1.0 (TransactWriteItems 1.0)`.
fn per_invocation(calls: &[BTreeMap<String, u64>], invocations: usize, service: &str) -> String {
    let mut by_operation = BTreeMap::<&str, u64>::new();
    for map in calls {
        for (call, n) in map {
            if let Some(operation) = call.strip_prefix(&format!("{service}:")) {
                *by_operation.entry(operation).or_default() += n;
            }
        }
    }
    let per = |n: u64| n as f64 / invocations.max(1) as f64;
    let total: u64 = by_operation.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = by_operation
        .iter()
        .map(|(op, n)| format!("{op} {:.1}", per(*n)))
        .collect();
    format!("{:.1} ({})", per(total), parts.join(", "))
}

fn report(measured: &Measured) {
    let runs = &measured.runs;
    let warm: Vec<Duration> = runs.iter().flat_map(|r| r.warm.clone()).collect();
    let warm_cpu: Vec<Duration> = runs.iter().flat_map(|r| r.warm_cpu.clone()).collect();
    let mut answers = BTreeMap::<String, usize>::new();
    for answer in runs.iter().flat_map(|r| &r.answers) {
        let shown = match status(answer) {
            Some(status) => status.to_string(),
            None => answer.to_string().chars().take(60).collect(),
        };
        *answers.entry(shown).or_default() += 1;
    }
    let cold_calls: Vec<_> = runs.iter().map(|r| r.cold_calls.clone()).collect();
    let warm_invocations = runs.iter().map(|r| r.warm.len()).sum();
    let warm_calls: Vec<_> = runs.iter().map(|r| r.warm_calls.clone()).collect();
    println!(
        "| {} | {} | {:.1} | {:.1} | {:.2} / {:.2} | {:.2} | {:.3} / {:.3} | {:.1} | {} / {} | {} / {} | {:?} |",
        name(measured.scenario.function),
        measured.scenario.event,
        ms(median(runs.iter().map(|r| r.init).collect())),
        ms(median(runs.iter().map(|r| r.cold).collect())),
        ms(percentile(warm.clone(), 50)),
        ms(percentile(warm, 99)),
        ms(median(runs.iter().map(|r| r.cold_cpu).collect())),
        ms(percentile(warm_cpu.clone(), 50)),
        ms(percentile(warm_cpu, 90)),
        runs.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
        per_invocation(&cold_calls, runs.len(), "dynamodb"),
        per_invocation(&warm_calls, warm_invocations, "dynamodb"),
        per_invocation(&cold_calls, runs.len(), "sqs"),
        per_invocation(&warm_calls, warm_invocations, "sqs"),
        answers,
    );
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = <Options as clap::Parser>::parse();
    let scenarios: Vec<Scenario> = SCENARIOS
        .into_iter()
        .filter(|s| {
            options.functions.is_empty() || options.functions.iter().any(|n| n == name(s.function))
        })
        .collect();
    let log =
        std::env::temp_dir().join(format!("stockroom-lambda-bench-{}.log", std::process::id()));
    println!(
        "{} runs of 1 cold + {} warm invocations per function; function output in {}",
        options.runs,
        options.warm,
        log.display()
    );
    println!("| function | event | init ms | cold ms | warm p50 / p99 ms | CPU cold ms | CPU per warm p50 / p90 ms | peak RSS MB | DynamoDB calls cold / warm | SQS calls cold / warm | answers |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let http = reqwest::Client::new();
    let mut failed = false;
    for scenario in scenarios {
        match measure(&options, &http, &log, scenario).await {
            Ok(measured) => report(&measured),
            Err(e) => {
                failed = true;
                eprintln!("{} {}: {e}", name(scenario.function), scenario.event);
            }
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
