//! `stockroom-bench`: what shards buy, measured through the local server against the
//! emulator with its per-partition write throttle on, scaled down so that one stock
//! item's partition, not the emulator, is the limit: `POST /reservations` per second on
//! one hot sku, plain and in a campaign, the orders that commit those holds, and
//! refusals after a sell-out, each with what the emulator counted per request (items
//! read, items written, the busiest partition key's share).
//!
//! Options (all optional): `--clients 64 --seconds 10 --max-requests 20000 --shards 1,16
//! --refusal-shards 1,16,64 --partition-wcu 12 --partition-rcu 36`.
//! Traffic goes only to 127.0.0.1; every loop is bounded in count and time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use reconcile::Settings;
use serde_json::{json, Value};
use stockroom::clock::Clock;
use stockroom::domain::Timestamp;
use stockroom::queue::SqsQueue;
use stockroom::{Config, SystemClock};
use stockroom_local::server::Wiring;
use stockroom_local::tokens::{self, SigningKey, TokenKind};
use stockroom_local::{server, Emulator, Functions, Gateway, Resources, TemplateResources};

/// A transactional write costs 2 write units per item of up to 1 KB (DynamoDB's rule,
/// which the emulator applies too).
const TRANSACTIONAL_WRITE_UNITS: f64 = 2.0;

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
    /// Shard counts of the hot sku for the reservation, order and campaign phases.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    shards: Vec<u16>,
    /// Shard counts of the sold-out skus for the refusal phases.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    refusal_shards: Vec<u16>,
    /// Write units per second per partition key (AWS: 1,000), scaled down so that 16
    /// stock items' partitions are reached before the emulator's own ceiling (at 20, a
    /// 16-shard campaign phase ran into the emulator here, never into the throttle).
    #[arg(long, default_value_t = 12.0)]
    partition_wcu: f64,
    /// Read units per second per partition key (AWS: 3,000), scaled like the writes.
    #[arg(long, default_value_t = 36.0)]
    partition_rcu: f64,
}

/// How one request ended: the phase's expected answer, or another status (0: no answer).
type Outcome = Result<(), u16>;

/// What one load phase saw.
struct Phase {
    ok: u64,
    /// Answers other than the expected one, by status.
    other: BTreeMap<u16, u64>,
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

    fn others(&self) -> String {
        if self.other.is_empty() {
            return "none".into();
        }
        self.other
            .iter()
            .map(|(status, n)| format!("{n} x {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `op` from `clients` tasks until `seconds` pass or `max` operations started.
async fn load<F, Fut>(clients: usize, seconds: u64, max: u64, op: F) -> Phase
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let started = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let begin = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let op = op.clone();
            let started = started.clone();
            tokio::spawn(async move {
                let (mut ok, mut other, mut latencies) = (0u64, BTreeMap::new(), Vec::new());
                loop {
                    let n = started.fetch_add(1, Ordering::SeqCst);
                    if n >= max || Instant::now() >= deadline {
                        break;
                    }
                    let t = Instant::now();
                    match op(n).await {
                        Ok(()) => {
                            ok += 1;
                            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        Err(status) => *other.entry(status).or_insert(0) += 1,
                    }
                }
                (ok, other, latencies)
            })
        })
        .collect();
    let mut phase = Phase {
        ok: 0,
        other: BTreeMap::new(),
        elapsed: Duration::ZERO,
        latencies_ms: Vec::new(),
    };
    for task in tasks {
        let (ok, other, latencies) = task.await.expect("load task");
        phase.ok += ok;
        for (status, n) in other {
            *phase.other.entry(status).or_insert(0) += n;
        }
        phase.latencies_ms.extend(latencies);
    }
    phase.elapsed = begin.elapsed();
    phase
}

/// The emulator's counters for one table at one moment.
#[derive(Default)]
struct Counts {
    items_read: u64,
    attempted: u64,
    committed: u64,
    conflicts: u64,
    throttles: u64,
    /// Transaction actions naming each partition key.
    actions: HashMap<String, u64>,
}

impl Counts {
    fn from(stats: &Value) -> Self {
        let n = |f: &str| stats[f].as_u64().unwrap_or(0);
        Self {
            items_read: n("items_read"),
            attempted: n("transactions_attempted"),
            committed: n("transactions_committed"),
            conflicts: n("transactions_cancelled_conflict") + n("single_write_conflicts"),
            throttles: n("write_throttles") + n("read_throttles"),
            actions: stats["transactions_by_partition_key"]
                .as_object()
                .map(|keys| {
                    keys.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// What happened between `before` and `self`.
    fn since(&self, before: &Counts) -> Delta {
        let actions: Vec<u64> = self
            .actions
            .iter()
            .map(|(k, n)| n - before.actions.get(k).copied().unwrap_or(0))
            .filter(|n| *n > 0)
            .collect();
        Delta {
            items_read: self.items_read - before.items_read,
            attempted: self.attempted - before.attempted,
            committed: self.committed - before.committed,
            conflicts: self.conflicts - before.conflicts,
            throttles: self.throttles - before.throttles,
            actions: actions.iter().sum(),
            busiest_key: actions.iter().copied().max().unwrap_or(0),
        }
    }
}

/// The emulator's counts over one phase.
struct Delta {
    items_read: u64,
    attempted: u64,
    committed: u64,
    conflicts: u64,
    throttles: u64,
    /// Transaction actions sent, committed or not.
    actions: u64,
    /// Actions on the partition key named most often: the hot item's load.
    busiest_key: u64,
}

impl Delta {
    /// Items a committed transaction wrote: every transaction of a phase has the same
    /// shape, so the actions of all attempts averaged over the attempts.
    fn items_per_transaction(&self) -> f64 {
        self.actions as f64 / self.attempted.max(1) as f64
    }

    fn items_written(&self) -> f64 {
        self.items_per_transaction() * self.committed as f64
    }
}

/// One row of the summary.
struct Row {
    phase: String,
    shards: u16,
    rate: f64,
    ok: u64,
    p50: f64,
    p99: f64,
    read: f64,
    written: f64,
    busiest: f64,
    throttles: f64,
    others: String,
}

/// Prints a phase with the emulator's counts per successful request.
fn report(name: &str, shards: u16, phase: &Phase, delta: &Delta, rows: &mut Vec<Row>) {
    let ok = phase.ok.max(1) as f64;
    println!(
        "{name} ({shards} shard(s)): {:.1}/s, {} ok, other answers: {}, p50 {:.1} ms, p99 {:.1} ms, {:.1} s",
        phase.rate(),
        phase.ok,
        phase.others(),
        phase.percentile(0.5),
        phase.percentile(0.99),
        phase.elapsed.as_secs_f64()
    );
    println!(
        "  {:.1} items read per second; per success: {:.2} items read, {:.2} items written ({:.2} per transaction, {} committed), \
         {:.2} actions on the busiest partition key, {:.2} transactions attempted, \
         {:.2} conflicts, {:.2} throttles",
        delta.items_read as f64 / phase.elapsed.as_secs_f64(),
        delta.items_read as f64 / ok,
        delta.items_written() / ok,
        delta.items_per_transaction(),
        delta.committed,
        delta.busiest_key as f64 / ok,
        delta.attempted as f64 / ok,
        delta.conflicts as f64 / ok,
        delta.throttles as f64 / ok,
    );
    rows.push(Row {
        phase: name.to_owned(),
        shards,
        rate: phase.rate(),
        ok: phase.ok,
        p50: phase.percentile(0.5),
        p99: phase.percentile(0.99),
        read: delta.items_read as f64 / ok,
        written: delta.items_written() / ok,
        busiest: delta.busiest_key as f64 / ok,
        throttles: delta.throttles as f64 / ok,
        others: phase.others(),
    });
}

/// DynamoDB's size of an attribute value: strings and binaries by length, numbers about
/// one byte per two digits plus one, maps and lists 3 bytes plus one per element.
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        _ => 1,
    }
}

/// The largest item among the first page of `table` (up to 1,000 items), in bytes.
async fn largest_item(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Option<usize> {
    let page = dynamodb
        .scan()
        .table_name(table)
        .limit(1000)
        .send()
        .await
        .ok()?;
    page.items()
        .iter()
        .map(|item| item.iter().map(|(k, v)| k.len() + value_size(v)).sum())
        .max()
}

/// A fresh table and the local server over it, with the throttle set.
struct Site {
    resources: Resources,
    base: String,
    admin: String,
    staff: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

struct Bench {
    options: Options,
    emulator: Emulator,
    aws: aws_config::SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    template: TemplateResources,
    http: reqwest::Client,
}

impl Bench {
    async fn open(&self, name: &str) -> Site {
        let resources = self
            .template
            .create(&self.dynamodb, &self.sqs, name)
            .await
            .expect("bench table");
        let throttle = json!({
            "partition_wcu": self.options.partition_wcu,
            "partition_rcu": self.options.partition_rcu,
        });
        let set = self
            .http
            .post(format!(
                "{}/_emulator/tables/{}",
                self.emulator.endpoint, resources.table
            ))
            .body(throttle.to_string())
            .send()
            .await
            .expect("emulator settings");
        assert!(set.status().is_success(), "emulator settings: {set:?}");
        let config = Config {
            table: resources.table.clone(),
            queue_url: resources.compensation_queue().map(str::to_owned),
        };
        let functions = Arc::new(Functions::new(Wiring {
            aws: &self.aws,
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
        Site {
            admin: tokens::mint(&key, TokenKind::Admin, "bench", 3600).expect("admin token"),
            staff: tokens::mint(&key, TokenKind::Staff, "bench", 3600).expect("staff token"),
            server: tokio::spawn(async move { axum::serve(listener, app).await }),
            resources,
            base,
        }
    }

    async fn close(&self, site: Site) {
        site.server.abort();
        site.resources.delete(&self.dynamodb, &self.sqs).await;
    }

    /// Whether every item stays within the 1 KB a transactional write bills 2 units for.
    async fn show_largest_item(&self, site: &Site) {
        if let Some(bytes) = largest_item(&self.dynamodb, &site.resources.table).await {
            println!("  largest item among up to 1,000 scanned: {bytes} bytes");
        }
    }

    async fn counts(&self, site: &Site) -> Counts {
        let url = format!(
            "{}/_emulator/stats?table={}",
            self.emulator.endpoint, site.resources.table
        );
        let stats = match self.http.get(url).send().await {
            Ok(answer) => answer.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        Counts::from(&stats)
    }

    async fn admin_put(&self, site: &Site, path: &str, body: Value) {
        let answer = self
            .http
            .put(format!("{}{path}", site.base))
            .bearer_auth(&site.admin)
            .body(body.to_string())
            .send()
            .await
            .expect("admin request");
        assert!(
            answer.status().is_success(),
            "PUT {path}: {}",
            answer.status()
        );
    }

    /// POSTs `body(n)` to `path` from every client, with Idempotency-Key `<keys>-<n>`;
    /// `expected` (status, problem code) is the answer that counts as a success; returns
    /// the phase and the successes' bodies.
    async fn post_load(
        &self,
        site: &Site,
        path: &str,
        keys: &str,
        expected: (u16, Option<&'static str>),
        body: impl Fn(u64) -> Value + Clone + Send + Sync + 'static,
        max: u64,
    ) -> (Phase, Vec<Value>) {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let keep = kept.clone();
        let http = self.http.clone();
        let url = format!("{}{path}", site.base);
        let staff = site.staff.clone();
        let keys = keys.to_owned();
        let phase = load(self.options.clients, self.options.seconds, max, move |n| {
            let (http, url, staff, body, keep) = (
                http.clone(),
                url.clone(),
                staff.clone(),
                body.clone(),
                keep.clone(),
            );
            let key = format!("{keys}-{n}");
            async move {
                let answer = http
                    .post(url)
                    .bearer_auth(staff)
                    .header("Idempotency-Key", key)
                    .body(body(n).to_string())
                    .send()
                    .await
                    .map_err(|_| 0u16)?;
                let status = answer.status().as_u16();
                let json: Value = answer.json().await.unwrap_or_default();
                let code_matches = expected.1.is_none_or(|code| json["code"] == code);
                if status != expected.0 || !code_matches {
                    return Err(status);
                }
                keep.lock().expect("kept answers").push(json);
                Ok(())
            }
        })
        .await;
        let bodies = std::mem::take(&mut *kept.lock().expect("kept answers"));
        (phase, bodies)
    }

    /// Plain reservations, the orders committing them, then campaign reservations on
    /// a sku of `shards` shards.
    async fn sales(&self, shards: u16, rows: &mut Vec<Row>) {
        let site = self.open(&format!("bench-{shards}-shards")).await;
        let stock = json!({"on_hand": 1_000_000_000u64, "shards": shards});
        self.admin_put(&site, "/skus/hot", stock.clone()).await;
        let max = self.options.max_requests;

        let before = self.counts(&site).await;
        let (plain, holds) = self
            .post_load(
                &site,
                "/reservations",
                "hold",
                (201, None),
                |_| json!({"lines": [{"sku": "hot", "quantity": 1}]}),
                max,
            )
            .await;
        let after = self.counts(&site).await;
        report(
            "POST /reservations",
            shards,
            &plain,
            &after.since(&before),
            rows,
        );

        let ids: Vec<String> = holds
            .iter()
            .filter_map(|hold| hold["reservation_id"].as_str().map(str::to_owned))
            .collect();
        let before = self.counts(&site).await;
        let held = ids.len() as u64;
        // Shared, not copied: the body closure is cloned for every request.
        let ids = Arc::new(ids);
        let (commits, _) = self
            .post_load(
                &site,
                "/orders",
                "order",
                (201, None),
                move |n| json!({"reservation_id": ids[n as usize]}),
                max.min(held),
            )
            .await;
        let after = self.counts(&site).await;
        report(
            "POST /orders (commit a hold)",
            shards,
            &commits,
            &after.since(&before),
            rows,
        );

        self.show_largest_item(&site).await;
        self.close(site).await;

        // A fresh table again: the emulator slows as a table fills.
        let site = self.open(&format!("bench-campaign-{shards}-shards")).await;
        self.admin_put(&site, "/skus/drop", stock).await;
        let now = Timestamp::new(SystemClock.now());
        let terms = json!({"skus": ["drop"], "starts_at": now.to_string(),
            "ends_at": now.plus(3600).to_string(), "per_customer_limit": 10});
        self.admin_put(&site, "/campaigns/flash", terms).await;
        let before = self.counts(&site).await;
        let (campaign, _) = self
            .post_load(
                &site,
                "/reservations",
                "campaign-hold",
                (201, None),
                |n| {
                    json!({"campaign_id": "flash", "customer_id": format!("buyer-{n}"),
                        "lines": [{"sku": "drop", "quantity": 1}]})
                },
                max,
            )
            .await;
        let after = self.counts(&site).await;
        report(
            "POST /reservations in a campaign",
            shards,
            &campaign,
            &after.since(&before),
            rows,
        );
        self.show_largest_item(&site).await;
        self.close(site).await;
    }

    /// Refusals of a sku of each shard count after it sold out.
    async fn refusals(&self, rows: &mut Vec<Row>) {
        let site = self.open("bench-refusals").await;
        for &shards in &self.options.refusal_shards {
            let sku = format!("gone-{shards}");
            let stock = json!({"on_hand": shards, "shards": shards});
            self.admin_put(&site, &format!("/skus/{sku}"), stock).await;
            // Sold out by single units, as buyers would; bounded by the stock.
            for n in 0..u64::from(shards) * 4 {
                let answer = self
                    .http
                    .post(format!("{}/reservations", site.base))
                    .bearer_auth(&site.staff)
                    .header("Idempotency-Key", format!("sell-{sku}-{n}"))
                    .body(json!({"lines": [{"sku": sku, "quantity": 1}]}).to_string())
                    .send()
                    .await
                    .expect("sell out");
                if answer.status().as_u16() == 409 {
                    break;
                }
            }
            let before = self.counts(&site).await;
            let (refused, _) = {
                let sku = sku.clone();
                self.post_load(
                    &site,
                    "/reservations",
                    &format!("refused-{shards}"),
                    (409, Some("insufficient_stock")),
                    move |_| json!({"lines": [{"sku": sku, "quantity": 1}]}),
                    self.options.max_requests,
                )
                .await
            };
            let after = self.counts(&site).await;
            report(
                "refusal after sell-out (409)",
                shards,
                &refused,
                &after.since(&before),
                rows,
            );
        }
        self.close(site).await;
    }
}

fn summary(rows: &[Row], wcu: f64) {
    println!();
    println!("| phase | shards | per second | ok | p50 | p99 | items read / success | items written / success | busiest key's actions / success | throttles / success | other answers |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} | {} | {:.0} ms | {:.0} ms | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.phase,
            r.shards,
            r.rate,
            r.ok,
            r.p50,
            r.p99,
            r.read,
            r.written,
            r.busiest,
            r.throttles,
            r.others
        );
    }
    let ceiling = wcu / TRANSACTIONAL_WRITE_UNITS;
    println!();
    println!(
        "one stock item's partition takes {wcu} WCU/s here, {ceiling:.0} reservations/s at {TRANSACTIONAL_WRITE_UNITS} WCU each (plus a second's burst at the start)"
    );
    let mut phases: Vec<&str> = Vec::new();
    for r in rows {
        if !phases.contains(&r.phase.as_str()) {
            phases.push(&r.phase);
        }
    }
    for phase in phases.iter().filter(|p| !p.starts_with("refusal")) {
        let of = |r: &&Row| r.phase == *phase;
        let Some(one) = rows.iter().filter(of).find(|r| r.shards == 1) else {
            continue;
        };
        for r in rows.iter().filter(of).filter(|r| r.shards > 1) {
            println!(
                "{phase}: {} shards / 1 shard = {:.1}x (the throttle's ceiling: {:.0}/s)",
                r.shards,
                r.rate / one.rate,
                f64::from(r.shards) * ceiling
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let options = <Options as clap::Parser>::parse();
    let began = Instant::now();
    let emulator = Emulator::start(0)
        .await
        .expect("start the emulator (run infra/venv first)");
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&emulator.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .load()
        .await;
    println!(
        "{} clients, up to {} s or {} requests per phase, {} WCU and {} RCU per partition key per second, emulator {}",
        options.clients,
        options.seconds,
        options.max_requests,
        options.partition_wcu,
        options.partition_rcu,
        emulator.endpoint
    );
    let bench = Bench {
        dynamodb: aws_sdk_dynamodb::Client::new(&aws),
        sqs: aws_sdk_sqs::Client::new(&aws),
        template: TemplateResources::load().expect("read template.yaml"),
        http: reqwest::Client::new(),
        aws,
        emulator,
        options,
    };
    let mut rows = Vec::new();
    for &shards in &bench.options.shards {
        bench.sales(shards, &mut rows).await;
    }
    bench.refusals(&mut rows).await;
    summary(&rows, bench.options.partition_wcu);
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
            "peak memory of this process: {}",
            peak.trim_start_matches("VmHWM:").trim()
        );
    }
    println!("wall time: {:.0} s", began.elapsed().as_secs_f64());
}
