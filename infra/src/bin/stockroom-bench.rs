//! `stockroom-bench`: reservations per second on one hot sku through the local server,
//! next to the emulator's raw conditional-write rate measured the same way in the same
//! run. The emulator is the bottleneck locally, so the ratio is the figure to watch.
//!
//! Options (all optional): `--clients 64 --seconds 10 --max-requests 20000 --shards 1,16`.
//! Traffic goes only to 127.0.0.1; every loop is bounded in count and time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use reconcile::Settings;
use stockroom::queue::SqsQueue;
use stockroom::{Config, SystemClock};
use stockroom_local::server::Wiring;
use stockroom_local::tokens::{self, SigningKey, TokenKind};
use stockroom_local::{server, Emulator, Functions, Gateway, TemplateResources};

/// DynamoDB allows 1,000 write units per second per partition; a stock item updated in
/// a transaction costs 2 (items up to 1 KB). Each shard has a partition key of its own.
const AWS_RESERVATIONS_PER_SHARD: u64 = 1_000 / 2;

/// Reservations per second on one hot sku through the local server, next to the
/// emulator's raw rates in the same run. Traffic goes only to 127.0.0.1.
#[derive(Debug, clap::Parser)]
struct Options {
    /// Concurrent clients per phase.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds per phase at most.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Requests per phase at most.
    #[arg(long, default_value_t = 20_000)]
    max_requests: u64,
    /// Shard counts of the hot sku, one reservation phase each.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    shards: Vec<u16>,
}

/// What one load phase saw.
struct Phase {
    ok: u64,
    refused: u64,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut l = self.latencies_ms.clone();
        l.sort_by(|a, b| a.total_cmp(b));
        l.get(((l.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    }
}

/// Runs `op` from `clients` tasks until `seconds` pass or `max` operations started.
async fn load<F, Fut>(clients: usize, seconds: u64, max: u64, op: F) -> Phase
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let begin = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let op = op.clone();
            let started = started.clone();
            tokio::spawn(async move {
                let (mut ok, mut refused, mut latencies) = (0u64, 0u64, Vec::new());
                loop {
                    let n = started.fetch_add(1, Ordering::SeqCst);
                    if n >= max || Instant::now() >= deadline {
                        break;
                    }
                    let t = Instant::now();
                    if op(n).await {
                        ok += 1;
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        refused += 1;
                    }
                }
                (ok, refused, latencies)
            })
        })
        .collect();
    let mut phase = Phase {
        ok: 0,
        refused: 0,
        elapsed: Duration::ZERO,
        latencies_ms: Vec::new(),
    };
    for task in tasks {
        let (ok, refused, latencies) = task.await.expect("load task");
        phase.ok += ok;
        phase.refused += refused;
        phase.latencies_ms.extend(latencies);
    }
    phase.elapsed = begin.elapsed();
    phase
}

fn report(name: &str, phase: &Phase) {
    println!(
        "{name:<44} {:>8.1}/s  ok {:>6}  refused {:>4}  p50 {:>6.1} ms  p99 {:>6.1} ms  ({:.1} s)",
        phase.rate(),
        phase.ok,
        phase.refused,
        phase.percentile(0.5),
        phase.percentile(0.99),
        phase.elapsed.as_secs_f64()
    );
}

/// What the emulator counted on `table`: transactions attempted and committed,
/// conflicts and throttles.
async fn emulator_counts(http: &reqwest::Client, emulator: &str, table: &str) -> serde_json::Value {
    let url = format!("{emulator}/_emulator/stats?table={table}");
    match http.get(url).send().await {
        Ok(answer) => answer.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// Conflicts, throttles and retried transactions per successful operation.
fn report_contention(stats: &serde_json::Value, successes: u64) {
    let n = |f: &str| stats[f].as_u64().unwrap_or(0);
    let per = |x: u64| x as f64 / successes.max(1) as f64;
    let retries = n("transactions_attempted").saturating_sub(n("transactions_committed"));
    println!(
        "{:<44} conflicts {} ({:.2}/success)  throttles {} ({:.2}/success)  retried transactions {} ({:.2}/success)",
        "  emulator saw",
        n("transactions_cancelled_conflict") + n("single_write_conflicts"),
        per(n("transactions_cancelled_conflict") + n("single_write_conflicts")),
        n("write_throttles") + n("read_throttles"),
        per(n("write_throttles") + n("read_throttles")),
        retries,
        per(retries),
    );
}

async fn raw_reservation(dynamodb: &aws_sdk_dynamodb::Client, table: &str, n: u64) -> bool {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let Ok(update) = Update::builder()
        .table_name(table)
        .key("pk", s("SKU#raw"))
        .key("sk", s("STOCK#000"))
        .update_expression("SET available = available - :q")
        .condition_expression("available >= :q")
        .expression_attribute_values(":q", AttributeValue::N("1".into()))
        .build()
    else {
        return false;
    };
    let Ok(put) = Put::builder()
        .table_name(table)
        .item("pk", s(&format!("RESERVATION#{n}")))
        .item("sk", s("RESERVATION"))
        .condition_expression("attribute_not_exists(pk)")
        .build()
    else {
        return false;
    };
    dynamodb
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(update).build())
        .transact_items(TransactWriteItem::builder().put(put).build())
        .send()
        .await
        .is_ok()
}

#[tokio::main]
async fn main() {
    let o = <Options as clap::Parser>::parse();
    let emulator = Emulator::start(0)
        .await
        .expect("start the emulator (run infra/venv first)");
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&emulator.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let template = TemplateResources::load().expect("read template.yaml");
    println!(
        "{} clients, up to {} s or {} requests per phase, emulator {}",
        o.clients, o.seconds, o.max_requests, emulator.endpoint
    );

    // The emulator's raw rate: one conditional decrement per request on one item.
    let raw_table = template
        .create(&dynamodb, &sqs, "bench-raw")
        .await
        .expect("raw table");
    dynamodb
        .put_item()
        .table_name(&raw_table.table)
        .item("pk", AttributeValue::S("SKU#raw".into()))
        .item("sk", AttributeValue::S("STOCK#000".into()))
        .item(
            "available",
            AttributeValue::N(u64::MAX.to_string()[..15].into()),
        )
        .send()
        .await
        .expect("seed raw item");
    let raw = {
        let dynamodb = dynamodb.clone();
        let table = raw_table.table.clone();
        load(o.clients, o.seconds, o.max_requests, move |_| {
            let dynamodb = dynamodb.clone();
            let table = table.clone();
            async move {
                dynamodb
                    .update_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S("SKU#raw".into()))
                    .key("sk", AttributeValue::S("STOCK#000".into()))
                    .update_expression("SET available = available - :q")
                    .condition_expression("available >= :q")
                    .expression_attribute_values(":q", AttributeValue::N("1".into()))
                    .send()
                    .await
                    .is_ok()
            }
        })
        .await
    };
    report("emulator: raw conditional UpdateItem", &raw);

    // The same decrement inside a transaction that also puts a new record, the shape
    // of a one-line reservation without the request around it.
    let raw_transaction = {
        let dynamodb = dynamodb.clone();
        let table = raw_table.table.clone();
        load(o.clients, o.seconds, o.max_requests, move |n| {
            let dynamodb = dynamodb.clone();
            let table = table.clone();
            async move { raw_reservation(&dynamodb, &table, n).await }
        })
        .await
    };
    report(
        "emulator: raw TransactWriteItems (2 items)",
        &raw_transaction,
    );
    let http = reqwest::Client::new();
    report_contention(
        &emulator_counts(&http, &emulator.endpoint, &raw_table.table).await,
        raw_transaction.ok,
    );
    raw_table.delete(&dynamodb, &sqs).await;

    for shards in &o.shards {
        // A fresh table per phase: the emulator slows as a table grows.
        let resources = template
            .create(&dynamodb, &sqs, &format!("bench-{shards}-shards"))
            .await
            .expect("bench table");
        let queue_url = resources
            .compensation_queue()
            .expect("compensation queue")
            .to_owned();
        let config = Config {
            table: resources.table.clone(),
            queue_url: Some(queue_url.clone()),
        };
        let functions = Arc::new(Functions::new(Wiring {
            aws: &aws,
            config: &config,
            clock: Arc::new(SystemClock),
            settings: Settings::default(),
            queue: &|queue: SqsQueue| Arc::new(queue),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let key = SigningKey::generate();
        let app = server::app(functions, &Gateway::new(key.clone()));
        let admin = tokens::mint(&key, TokenKind::Admin, "bench", 3600).expect("admin token");
        let staff = tokens::mint(&key, TokenKind::Staff, "bench", 3600).expect("staff token");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let put = http
            .put(format!("{base}/skus/hot"))
            .bearer_auth(&admin)
            .body(format!(r#"{{"on_hand": 1000000000, "shards": {shards}}}"#))
            .send()
            .await
            .expect("set stock");
        assert!(put.status().is_success(), "set stock: {}", put.status());

        let clients = http.clone();
        let url = format!("{base}/reservations");
        let phase = load(o.clients, o.seconds, o.max_requests, move |n| {
            let http = clients.clone();
            let url = url.clone();
            let staff = staff.clone();
            async move {
                http.post(url)
                    .bearer_auth(staff)
                    .header("Idempotency-Key", format!("bench-{n}"))
                    .body(r#"{"lines":[{"sku":"hot","quantity":1}]}"#)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 201)
            }
        })
        .await;
        report(
            &format!("local server: POST /reservations, {shards} shard(s)"),
            &phase,
        );
        report_contention(
            &emulator_counts(&http, &emulator.endpoint, &resources.table).await,
            phase.ok,
        );
        println!(
            "{:<44} {:>8.2}  (reservations per raw conditional write)",
            "ratio",
            phase.rate() / raw.rate()
        );
        println!(
            "{:<44} {:>8}/s  (calculated: {shards} x 1,000 WCU/s per partition / 2 WCU per transactional write)",
            "AWS ceiling for this sku",
            u64::from(*shards) * AWS_RESERVATIONS_PER_SHARD
        );
        server.abort();
        resources.delete(&dynamodb, &sqs).await;
    }
    // The whole process: local server with every function, plus the load clients.
    if let Some(peak) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
    {
        println!(
            "{:<44} {}",
            "peak memory of this process",
            peak.trim_start_matches("VmHWM:").trim()
        );
    }
}
