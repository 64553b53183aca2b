//! The chaos run: 32 clients send mixed operations on a few hot skus while every fault
//! of `stockroom_tests::faults` strikes at once (throttles and 500s before calls,
//! answers lost after writes, the function's process dying between any two AWS calls,
//! SQS messages delivered twice, late and out of order). Clients retry on the same
//! `Idempotency-Key` after 5xx and timeouts, as real clients do.
//!
//! Afterwards, with faults off: the queue drained, one sweep, and the table read
//! directly. For every sku `on_hand = available + reserved + sold` = the sum of its
//! adjustments and no counter is negative; every shard's `sold` and `reserved` are
//! what the orders, applied restocks and held reservations say, so no effect happened
//! twice; every answer a client saw succeed is in the table once, as asked; every
//! refund with restock put its units back once; the sweep's audit is clean. Every stock
//! view a client was shown during the run added up, with no counter below 0, and no
//! request was answered 500.
//!
//! `STOCKROOM_CHAOS_SEED` replays a run (it prints its seed); `STOCKROOM_CHAOS_OPS`
//! sets its size.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use stockroom_tests::faults::{
    CrashPoints, FaultPlan, Faults, INVOCATION_HEADER, RECONCILE_TIMEOUT,
};
use stockroom_tests::{Options, TestApp};

/// `(sku, shards, opening stock)`: a few hot skus, some split into shards.
const SKUS: [(&str, u64, u64); 4] = [
    ("hot", 8, 500),
    ("warm", 4, 300),
    ("mild", 2, 200),
    ("cool", 1, 150),
];
const CLIENTS: usize = 32;
/// The size `./infra/test` runs (30 to 50 s on 2 cores on its own).
const DEFAULT_OPERATIONS: usize = 1000;
/// Tries per request, the first included.
const TRIES: u32 = 8;
/// API Gateway gives up on an integration after 30 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The clock moves on by up to 2 minutes every this many operations.
const TICK_EVERY: usize = 40;
/// How long draining the queue may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// An event source batch: reconcile's timeout, and time to receive and delete.
const BATCH_LIMIT: Duration = Duration::from_secs(60);
/// The schedule's period while the clients run.
const SWEEP_EVERY: Duration = Duration::from_secs(3);

/// How long the clients may take: a minute plus half a second an operation.
fn run_limit(operations: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(500) * operations as u32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Reserve,
    Release,
    OrderFromHold,
    OneShotOrder,
    RefundRestock,
    RefundNoRestock,
    Adjustment,
    Reshard,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Reserve => "reserve",
            Kind::Release => "release",
            Kind::OrderFromHold => "order-from-hold",
            Kind::OneShotOrder => "one-shot-order",
            Kind::RefundRestock => "refund-restock",
            Kind::RefundNoRestock => "refund-no-restock",
            Kind::Adjustment => "adjustment",
            Kind::Reshard => "reshard",
        }
    }

    /// Weighted choice of the next operation.
    fn pick(rng: &mut StdRng) -> Kind {
        match rng.random_range(0..100) {
            0..=29 => Kind::Reserve,
            30..=37 => Kind::Release,
            38..=54 => Kind::OrderFromHold,
            55..=66 => Kind::OneShotOrder,
            67..=77 => Kind::RefundRestock,
            78..=84 => Kind::RefundNoRestock,
            85..=96 => Kind::Adjustment,
            _ => Kind::Reshard,
        }
    }
}

/// What a client made of a request after its retries.
#[derive(Debug, Clone)]
enum Outcome {
    /// A 2xx, with its body.
    Done(u16, Value),
    /// A 4xx the client accepts as the answer, with its code.
    Refused(u16, String),
    /// Every try failed (5xx, timeout, still in progress): it may or may not have happened.
    Unknown(String),
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Done(status, _) => status.to_string(),
            Outcome::Refused(status, code) => format!("{status} {code}"),
            Outcome::Unknown(_) => "unknown".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Op {
    kind: Kind,
    key: String,
    /// The request's target: lines `(sku, quantity)`, an id, a delta.
    lines: Vec<(String, u64)>,
    target: String,
    delta: i64,
    outcome: Outcome,
}

/// Every answer of every try, for the report.
#[derive(Debug, Default)]
struct Tries {
    statuses: BTreeMap<String, u64>,
    retries: u64,
    /// 500s are never a fault's fair answer: each is a finding.
    internal_errors: Vec<String>,
    /// Stock views answered with a counter below 0 or not adding up.
    bad_views: Vec<String>,
}

#[derive(Default)]
struct Pool {
    holds: Vec<String>,
    /// Orders with their lines, for refunds to aim at.
    orders: Vec<(String, Vec<(String, u64)>)>,
}

struct Run {
    app: TestApp,
    faults: Arc<Faults>,
    seed: u64,
    operations: usize,
    next_op: AtomicUsize,
    pool: Mutex<Pool>,
    tries: Mutex<Tries>,
    /// Requests, batches and sweeps under way, with when they started: shown while a
    /// run is slow.
    in_flight: Mutex<BTreeMap<String, Instant>>,
}

impl Run {
    /// One request, retried on the same key as a client would; `kind` and a seed from
    /// `rng` name the invocation for the fault injector.
    async fn call(
        &self,
        rng: &mut StdRng,
        kind: &str,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Outcome {
        let mut last = String::new();
        for attempt in 0..TRIES {
            if attempt > 0 {
                self.tries.lock().unwrap().retries += 1;
                // Capped exponential back-off with full jitter.
                let cap = 25u64 << attempt.min(5);
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..=cap))).await;
            }
            let name = format!("{kind} {} {path} {key:?} try {attempt}", method.as_str());
            self.started(&name);
            let answer = self
                .try_once(rng, kind, method.clone(), path, key, body)
                .await;
            self.finished(&name);
            let (status, body) = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    last = e;
                    self.count("transport error");
                    continue;
                }
            };
            let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let code = value["code"].as_str().unwrap_or("").to_owned();
            self.count(&format!("{status} {code}"));
            if status == 500 {
                self.tries.lock().unwrap().internal_errors.push(format!(
                    "{kind} {} {path} key {key:?}: {body}",
                    method.as_str()
                ));
            }
            if status >= 500 || code == "request_in_progress" {
                last = format!("{status}: {body}");
                continue;
            }
            if status < 300 && value.get("on_hand").is_some() {
                let n = |field: &str| value[field].as_i64().unwrap_or(-1);
                let counters = [n("available"), n("reserved"), n("sold")];
                if counters.iter().any(|c| *c < 0) || n("on_hand") != counters.iter().sum::<i64>() {
                    self.tries
                        .lock()
                        .unwrap()
                        .bad_views
                        .push(format!("{path}: {value}"));
                }
            }
            return if status < 300 {
                Outcome::Done(status, value)
            } else {
                Outcome::Refused(status, code)
            };
        }
        Outcome::Unknown(last)
    }

    /// One try: the status and body, or why there is none.
    async fn try_once(
        &self,
        rng: &mut StdRng,
        kind: &str,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, String), String> {
        let mut request = self
            .app
            .http
            .request(method.clone(), format!("{}{}", self.app.base, path))
            .timeout(REQUEST_TIMEOUT)
            .header(INVOCATION_HEADER, format!("{kind} {}", rng.random::<u64>()));
        if let Some(token) = self.app.default_token(method.as_str(), path) {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| format!("sending: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        Ok((status, text))
    }

    fn count(&self, answer: &str) {
        *self
            .tries
            .lock()
            .unwrap()
            .statuses
            .entry(answer.trim().to_owned())
            .or_default() += 1;
    }

    /// One client: operations until the run's count is reached.
    async fn client(&self, n: usize) -> Vec<Op> {
        let mut rng =
            StdRng::seed_from_u64(self.seed ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut ops = Vec::new();
        loop {
            let i = self.next_op.fetch_add(1, Ordering::SeqCst);
            if i >= self.operations {
                return ops;
            }
            if i.is_multiple_of(TICK_EVERY) {
                self.app.clock.advance(rng.random_range(0..120));
            }
            let key = format!("k{i}-c{n}");
            let kind = Kind::pick(&mut rng);
            let op = match self.operation(&mut rng, kind, key.clone()).await {
                Some(op) => Some(op),
                // Nothing held or ordered yet to act on: reserve instead.
                None => self.operation(&mut rng, Kind::Reserve, key).await,
            };
            ops.extend(op);
        }
    }

    fn random_lines(rng: &mut StdRng) -> Vec<(String, u64)> {
        let count = rng.random_range(1..=2);
        let start = rng.random_range(0..SKUS.len());
        (0..count)
            .map(|k| {
                (
                    SKUS[(start + k) % SKUS.len()].0.to_owned(),
                    rng.random_range(1..=4),
                )
            })
            .collect()
    }

    fn lines_json(lines: &[(String, u64)]) -> Value {
        lines
            .iter()
            .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
            .collect()
    }

    /// One of the newest entries, now and then an old one.
    fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> Option<T> {
        let recent = &items[items.len().saturating_sub(24)..];
        let from = if rng.random_ratio(1, 8) {
            items
        } else {
            recent
        };
        (!from.is_empty()).then(|| from[rng.random_range(0..from.len())].clone())
    }

    async fn operation(&self, rng: &mut StdRng, kind: Kind, key: String) -> Option<Op> {
        use reqwest::Method;
        let mut op = Op {
            kind,
            key: key.clone(),
            lines: Vec::new(),
            target: String::new(),
            delta: 0,
            outcome: Outcome::Unknown(String::new()),
        };
        let name = kind.name();
        op.outcome = match kind {
            Kind::Reserve => {
                op.lines = Self::random_lines(rng);
                let body = json!({"lines": Self::lines_json(&op.lines), "hold_seconds": rng.random_range(60..=600)});
                let outcome = self
                    .call(
                        rng,
                        name,
                        Method::POST,
                        "/reservations",
                        Some(&key),
                        Some(&body),
                    )
                    .await;
                if let Outcome::Done(_, body) = &outcome {
                    let id = body["reservation_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    self.pool.lock().unwrap().holds.push(id);
                }
                outcome
            }
            Kind::Release => {
                op.target = Self::pick(rng, &self.pool.lock().unwrap().holds)?;
                let path = format!("/reservations/{}", op.target);
                self.call(rng, name, Method::DELETE, &path, None, None)
                    .await
            }
            Kind::OrderFromHold => {
                op.target = Self::pick(rng, &self.pool.lock().unwrap().holds)?;
                let body = json!({"reservation_id": op.target});
                let outcome = self
                    .call(rng, name, Method::POST, "/orders", Some(&key), Some(&body))
                    .await;
                self.remember_order(&outcome);
                outcome
            }
            Kind::OneShotOrder => {
                op.lines = Self::random_lines(rng);
                let body = json!({"lines": Self::lines_json(&op.lines)});
                let outcome = self
                    .call(rng, name, Method::POST, "/orders", Some(&key), Some(&body))
                    .await;
                self.remember_order(&outcome);
                outcome
            }
            Kind::RefundRestock | Kind::RefundNoRestock => {
                let (order, lines) = Self::pick(rng, &self.pool.lock().unwrap().orders)?;
                op.target = order;
                let restock = kind == Kind::RefundRestock;
                let body = if rng.random_bool(0.5) {
                    json!({"restock": restock})
                } else {
                    let (sku, quantity) = &lines[rng.random_range(0..lines.len())];
                    op.lines = vec![(sku.clone(), rng.random_range(1..=*quantity))];
                    json!({"restock": restock, "lines": Self::lines_json(&op.lines)})
                };
                let path = format!("/orders/{}/refunds", op.target);
                self.call(rng, name, Method::POST, &path, Some(&key), Some(&body))
                    .await
            }
            Kind::Adjustment => {
                op.target = SKUS[rng.random_range(0..SKUS.len())].0.to_owned();
                op.delta = if rng.random_ratio(2, 3) {
                    rng.random_range(1..=30)
                } else {
                    -rng.random_range(1..=20)
                };
                // The reason carries the key, so the table shows which request it was.
                let body = json!({"delta": op.delta, "reason": format!("chaos {key}")});
                let path = format!("/skus/{}/adjustments", op.target);
                self.call(rng, name, Method::POST, &path, Some(&key), Some(&body))
                    .await
            }
            Kind::Reshard => {
                op.target = SKUS[rng.random_range(0..SKUS.len())].0.to_owned();
                let path = format!("/skus/{}", op.target);
                let Outcome::Done(_, view) =
                    self.call(rng, "read", Method::GET, &path, None, None).await
                else {
                    return None;
                };
                // Same on_hand, another shard count: only the spread changes.
                let shards = [1, 2, 3, 4, 6, 8, 12][rng.random_range(0..7)];
                let body = json!({"on_hand": view["on_hand"], "shards": shards});
                self.call(rng, name, Method::PUT, &path, None, Some(&body))
                    .await
            }
        };
        Some(op)
    }

    fn remember_order(&self, outcome: &Outcome) {
        if let Outcome::Done(_, body) = outcome {
            let id = body["order_id"].as_str().unwrap_or_default().to_owned();
            let lines = body["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    (
                        l["sku"].as_str().unwrap_or_default().to_owned(),
                        l["quantity"].as_u64().unwrap_or(1),
                    )
                })
                .collect();
            self.pool.lock().unwrap().orders.push((id, lines));
        }
    }

    /// Lambda's event source and schedule while the clients run, both under faults.
    async fn background(&self, stop: &AtomicBool) {
        let pump = async {
            let delivered = Mutex::new(Vec::new());
            while !stop.load(Ordering::SeqCst) {
                self.started("event source batch");
                let received = self.pump_once(&delivered).await;
                self.finished("event source batch");
                if received == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let schedule = async {
            let mut rng = StdRng::seed_from_u64(self.seed.rotate_left(17));
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(SWEEP_EVERY).await;
                let sweep = self.app.functions.reconcile().sweep();
                // A sweep's outcome is checked after the run, by the last one.
                let chance = self.faults.plan().crash;
                self.started("scheduled sweep");
                let _ = self
                    .faults
                    .invoke(
                        "sweep",
                        rng.random(),
                        chance,
                        CrashPoints::default(),
                        RECONCILE_TIMEOUT,
                        sweep,
                    )
                    .await;
                self.finished("scheduled sweep");
            }
        };
        tokio::join!(pump, schedule);
    }

    fn started(&self, what: &str) {
        self.in_flight
            .lock()
            .unwrap()
            .insert(what.to_owned(), Instant::now());
    }

    fn finished(&self, what: &str) {
        self.in_flight.lock().unwrap().remove(what);
    }

    /// Every 30 s until `stop`: how far the clients are and what has waited longest.
    async fn watch(&self, stop: &AtomicBool) {
        let started = Instant::now();
        for second in 1.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if second % 30 != 0 {
                continue;
            }
            let in_flight = self.in_flight.lock().unwrap();
            let mut oldest: Vec<(&String, &Instant)> = in_flight.iter().collect();
            oldest.sort_by_key(|(_, since)| **since);
            let oldest: Vec<String> = oldest
                .iter()
                .take(3)
                .map(|(what, since)| format!("{what} for {:.0?}", since.elapsed()))
                .collect();
            eprintln!(
                "chaos: {:.0?}: {} of {} operations started, {} under way; longest: {}",
                started.elapsed(),
                self.next_op.load(Ordering::SeqCst).min(self.operations),
                self.operations,
                in_flight.len(),
                oldest.join("; ")
            );
        }
    }

    /// One batch of the event source; one that does not end in time fails the run
    /// (reconcile itself stops at its timeout: the event source's own calls hung).
    async fn pump_once(&self, delivered: &Mutex<Vec<SqsMessage>>) -> usize {
        let batch = self.faults.pump_once(
            &self.app.functions,
            &self.app.sqs,
            self.app.queue_url(),
            delivered,
        );
        match tokio::time::timeout(BATCH_LIMIT, batch).await {
            Ok(received) => received.expect("the event source receives"),
            Err(_) => panic!("seed {}: an event source batch hung", self.seed),
        }
    }

    /// Pumps until nothing is left in the queue, visible or not, or the limit passes.
    async fn drain(&self) -> usize {
        let started = Instant::now();
        let delivered = Mutex::new(Vec::new());
        let mut total = 0;
        while started.elapsed() < DRAIN_LIMIT {
            let received = self.pump_once(&delivered).await;
            total += received;
            if received == 0 {
                if self.queue_depth(self.app.queue_url()).await == 0 {
                    return total;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        total
    }

    /// Messages in a queue: visible, in flight and delayed.
    async fn queue_depth(&self, url: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .app
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::All)
            .send()
            .await
            .expect("queue attributes");
        let attributes = out.attributes.unwrap_or_default();
        [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
            A::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .map(|a| {
            attributes
                .get(a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }
}

type Item = HashMap<String, AttributeValue>;

fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(i64::MIN)
}

fn json_of(item: &Item, name: &str) -> Value {
    serde_json::from_str(text(item, name)).unwrap_or(Value::Null)
}

/// `{sku: quantity}` of a JSON list of lines or allocations.
fn per_sku(lines: &Value) -> BTreeMap<String, i64> {
    let mut sums = BTreeMap::new();
    for line in lines.as_array().into_iter().flatten() {
        *sums
            .entry(line["sku"].as_str().unwrap_or("?").to_owned())
            .or_default() += line["quantity"].as_i64().unwrap_or(0);
    }
    sums
}

/// Adds a JSON list of allocations to `{(sku, shard): quantity}`.
fn add_allocations(into: &mut BTreeMap<(String, i64), i64>, allocations: &Value, sign: i64) {
    for a in allocations.as_array().into_iter().flatten() {
        let key = (
            a["sku"].as_str().unwrap_or("?").to_owned(),
            a["shard"].as_i64().unwrap_or(-1),
        );
        *into.entry(key).or_default() += sign * a["quantity"].as_i64().unwrap_or(0);
    }
}

fn lines_map(lines: &[(String, u64)]) -> BTreeMap<String, i64> {
    let mut sums = BTreeMap::new();
    for (sku, q) in lines {
        *sums.entry(sku.clone()).or_default() += *q as i64;
    }
    sums
}

async fn scan(app: &TestApp) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = app
            .dynamodb
            .scan()
            .table_name(&app.resources.table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the table");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Everything the table must say after the run; each disagreement is one line.
fn check_books(items: &[Item], ops: &[Op]) -> Vec<String> {
    let mut problems = Vec::new();
    let of = |entity: &'static str| items.iter().filter(move |i| text(i, "entity") == entity);

    // Counters: never negative, adding up, equal to the adjustments.
    let mut shard_levels: BTreeMap<(String, i64), (i64, i64, i64)> = BTreeMap::new();
    for stock in of("stock") {
        let pk = text(stock, "pk");
        let (sku, shard) = pk
            .strip_prefix("SKU#")
            .and_then(|rest| rest.rsplit_once('#'))
            .unwrap_or(("?", "-1"));
        let levels = (
            number(stock, "available"),
            number(stock, "reserved"),
            number(stock, "sold"),
        );
        if levels.0 < 0 || levels.1 < 0 || levels.2 < 0 {
            problems.push(format!("{pk}: a counter below 0: {levels:?}"));
        }
        shard_levels.insert((sku.to_owned(), shard.parse().unwrap_or(-1)), levels);
    }
    let mut adjusted: BTreeMap<String, i64> = BTreeMap::new();
    for adjustment in of("adjustment") {
        let sku = text(adjustment, "pk").trim_start_matches("SKU#").to_owned();
        *adjusted.entry(sku).or_default() += number(adjustment, "delta");
    }
    for meta in of("sku") {
        let sku = text(meta, "sku").to_owned();
        let on_hand = number(meta, "on_hand");
        let (mut available, mut reserved, mut sold) = (0, 0, 0);
        for ((s, _), (a, r, d)) in &shard_levels {
            if *s == sku {
                available += a;
                reserved += r;
                sold += d;
            }
        }
        if on_hand != available + reserved + sold {
            problems.push(format!(
                "{sku}: on_hand {on_hand} != available {available} + reserved {reserved} + sold {sold}"
            ));
        }
        if adjusted.get(&sku).copied().unwrap_or(0) != on_hand {
            problems.push(format!(
                "{sku}: on_hand {on_hand} != its adjustments' sum {:?}",
                adjusted.get(&sku)
            ));
        }
        if reserved + sold > on_hand {
            problems.push(format!(
                "{sku}: oversold: reserved {reserved} + sold {sold} > on_hand {on_hand}"
            ));
        }
        if reserved != 0 {
            problems.push(format!(
                "{sku}: {reserved} units still reserved after every hold ran out"
            ));
        }
    }

    // Each shard's sold and reserved, rebuilt from the records: a second effect of any
    // one request would show here.
    let mut sold_by_records: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut held_by_records: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let orders: HashMap<&str, &Item> = of("order").map(|o| (text(o, "order_id"), o)).collect();
    let reservations: HashMap<&str, &Item> = of("reservation")
        .map(|r| (text(r, "reservation_id"), r))
        .collect();
    for order in orders.values() {
        add_allocations(&mut sold_by_records, &json_of(order, "allocations"), 1);
    }
    for reservation in reservations.values() {
        let id = text(reservation, "reservation_id");
        match text(reservation, "status") {
            "HELD" => {
                add_allocations(
                    &mut held_by_records,
                    &json_of(reservation, "allocations"),
                    1,
                );
                problems.push(format!("reservation {id} still HELD after the sweep"));
            }
            "COMMITTED" => {
                let order = text(reservation, "order_id");
                match orders.get(order) {
                    Some(o) if text(o, "reservation_id") == id => {}
                    _ => problems.push(format!(
                        "reservation {id} COMMITTED to {order:?}, which does not name it"
                    )),
                }
            }
            _ => {}
        }
        if per_sku(&json_of(reservation, "lines")) != per_sku(&json_of(reservation, "allocations"))
        {
            problems.push(format!(
                "reservation {id}: allocations differ from its lines"
            ));
        }
    }
    let commands: Vec<&Item> = of("command").collect();
    for command in &commands {
        let body = json_of(command, "command");
        match text(command, "status") {
            "APPLIED" => add_allocations(&mut sold_by_records, &body["units"], -1),
            status => problems.push(format!(
                "command {} is {status} after the queue drained",
                text(command, "command_id")
            )),
        }
    }
    for (shard, (_, reserved, sold)) in &shard_levels {
        let by_records = sold_by_records.get(shard).copied().unwrap_or(0);
        if *sold != by_records {
            problems.push(format!(
                "{shard:?}: sold {sold}, but orders less applied restocks say {by_records}"
            ));
        }
        let held = held_by_records.get(shard).copied().unwrap_or(0);
        if *reserved != held {
            problems.push(format!(
                "{shard:?}: reserved {reserved}, held reservations say {held}"
            ));
        }
    }

    // Orders and their refunds: refunded as recorded, never more than bought, and each
    // restock recorded once and applied.
    let refunds: Vec<&Item> = of("refund").collect();
    let mut refunded: HashMap<&str, BTreeMap<String, i64>> = HashMap::new();
    for refund in &refunds {
        let id = text(refund, "refund_id");
        let order = text(refund, "order_id");
        for (sku, q) in per_sku(&json_of(refund, "lines")) {
            *refunded.entry(order).or_default().entry(sku).or_default() += q;
        }
        let restock = refund
            .get("restock")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false);
        let its_commands: Vec<&&Item> = commands
            .iter()
            .filter(|c| json_of(c, "command")["refund_id"].as_str() == Some(id))
            .collect();
        match (restock, its_commands.as_slice()) {
            (true, [command]) => {
                let units = per_sku(&json_of(command, "command")["units"]);
                if units != per_sku(&json_of(refund, "lines")) {
                    problems.push(format!(
                        "refund {id}: restock units {units:?} differ from its lines"
                    ));
                }
            }
            (false, []) => {}
            (_, found) => problems.push(format!(
                "refund {id} (restock {restock}) has {} restock commands",
                found.len()
            )),
        }
        if text(refund, "status") != "COMPLETED" {
            problems.push(format!("refund {id} is {}", text(refund, "status")));
        }
    }
    for (id, order) in &orders {
        let bought = per_sku(&json_of(order, "allocations"));
        let lines = json_of(order, "lines");
        let mut ordered = BTreeMap::new();
        let mut marked = BTreeMap::new();
        for line in lines.as_array().into_iter().flatten() {
            let sku = line["sku"].as_str().unwrap_or("?").to_owned();
            ordered.insert(sku.clone(), line["quantity"].as_i64().unwrap_or(0));
            marked.insert(sku, line["refunded"].as_i64().unwrap_or(0));
        }
        if bought != ordered {
            problems.push(format!(
                "order {id}: allocations {bought:?} differ from lines {ordered:?}"
            ));
        }
        let recorded = refunded.remove(id).unwrap_or_default();
        for (sku, q) in &ordered {
            let r = recorded.get(sku).copied().unwrap_or(0);
            if r > *q || marked.get(sku).copied().unwrap_or(0) != r {
                problems.push(format!(
                    "order {id} {sku}: bought {q}, refunds record {r}, the order says {:?} refunded",
                    marked.get(sku)
                ));
            }
        }
        if let Some(reservation) = Some(text(order, "reservation_id")).filter(|r| !r.is_empty()) {
            let committed = reservations
                .get(reservation)
                .is_some_and(|r| text(r, "status") == "COMMITTED" && text(r, "order_id") == *id);
            if !committed {
                problems.push(format!(
                    "order {id} from {reservation}, which is not committed to it"
                ));
            }
        }
    }
    for (order, _) in refunded {
        problems.push(format!("refunds of {order}, an order not in the table"));
    }

    // What the clients saw: each success is in the table, once, as asked; nothing that
    // was refused left a record.
    let adjustments: Vec<&Item> = of("adjustment").collect();
    for op in ops {
        let key = &op.key;
        let with_reason: Vec<&&Item> = adjustments
            .iter()
            .filter(|a| text(a, "reason") == format!("chaos {key}"))
            .collect();
        match (&op.kind, &op.outcome) {
            (Kind::Reserve, Outcome::Done(_, body)) => {
                let id = body["reservation_id"].as_str().unwrap_or_default();
                match reservations.get(id) {
                    Some(r) if per_sku(&json_of(r, "lines")) == lines_map(&op.lines) => {}
                    found => problems.push(format!(
                        "reserve {key}: {id} in the table as {:?}",
                        found.map(|r| text(r, "lines"))
                    )),
                }
            }
            (Kind::Release, Outcome::Done(_, body)) => {
                let status = body["status"].as_str().unwrap_or_default();
                let stored = reservations
                    .get(op.target.as_str())
                    .map(|r| text(r, "status"));
                if stored != Some(status) {
                    problems.push(format!(
                        "release {key} of {} answered {status}, the table says {stored:?}",
                        op.target
                    ));
                }
            }
            (Kind::OrderFromHold | Kind::OneShotOrder, Outcome::Done(_, body)) => {
                let id = body["order_id"].as_str().unwrap_or_default();
                let Some(order) = orders.get(id) else {
                    problems.push(format!("order {key}: {id} is not in the table"));
                    continue;
                };
                let as_asked = match op.kind {
                    Kind::OrderFromHold => text(order, "reservation_id") == op.target,
                    _ => per_sku(&json_of(order, "allocations")) == lines_map(&op.lines),
                };
                if !as_asked {
                    problems.push(format!("order {key}: {id} is not what was asked"));
                }
            }
            (Kind::RefundRestock | Kind::RefundNoRestock, Outcome::Done(_, body)) => {
                let id = body["refund_id"].as_str().unwrap_or_default();
                let found: Vec<&&Item> = refunds
                    .iter()
                    .filter(|r| text(r, "refund_id") == id && text(r, "order_id") == op.target)
                    .collect();
                let restock = op.kind == Kind::RefundRestock;
                let as_asked = found.len() == 1
                    && found[0].get("restock").and_then(|v| v.as_bool().ok()) == Some(&restock)
                    && (op.lines.is_empty()
                        || per_sku(&json_of(found[0], "lines")) == lines_map(&op.lines));
                if !as_asked {
                    problems.push(format!(
                        "refund {key}: {id} in the table {} times, or not as asked",
                        found.len()
                    ));
                }
            }
            (Kind::Adjustment, outcome) => {
                let expected = match outcome {
                    Outcome::Done(..) => 1..=1,
                    Outcome::Refused(..) => 0..=0,
                    Outcome::Unknown(_) => 0..=1,
                };
                if !expected.contains(&with_reason.len())
                    || with_reason.iter().any(|a| number(a, "delta") != op.delta)
                {
                    problems.push(format!(
                        "adjustment {key} ({}, {}): {} records",
                        op.delta,
                        outcome.label(),
                        with_reason.len()
                    ));
                }
            }
            _ => {}
        }
    }

    // Records per kind of request: at least the successes, at most the successes plus
    // the requests whose outcome the client never learnt.
    let bounds = |kinds: &[Kind]| {
        let of_kind = || ops.iter().filter(|o| kinds.contains(&o.kind));
        let done = of_kind()
            .filter(|o| matches!(o.outcome, Outcome::Done(..)))
            .count();
        let unknown = of_kind()
            .filter(|o| matches!(o.outcome, Outcome::Unknown(_)))
            .count();
        done..=done + unknown
    };
    let counted = [
        ("reservations", reservations.len(), bounds(&[Kind::Reserve])),
        (
            "orders from holds",
            orders
                .values()
                .filter(|o| !text(o, "reservation_id").is_empty())
                .count(),
            bounds(&[Kind::OrderFromHold]),
        ),
        (
            "one-shot orders",
            orders
                .values()
                .filter(|o| text(o, "reservation_id").is_empty())
                .count(),
            bounds(&[Kind::OneShotOrder]),
        ),
        (
            "refunds",
            refunds.len(),
            bounds(&[Kind::RefundRestock, Kind::RefundNoRestock]),
        ),
    ];
    for (what, found, range) in counted {
        if !range.contains(&found) {
            problems.push(format!(
                "{found} {what} in the table; the clients account for {range:?}"
            ));
        }
    }
    problems
}

fn seed() -> u64 {
    match std::env::var("STOCKROOM_CHAOS_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .expect("STOCKROOM_CHAOS_SEED is a whole number"),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("time");
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_at_once_leaves_every_effect_exactly_once() {
    let seed = seed();
    let operations = std::env::var("STOCKROOM_CHAOS_OPS")
        .map(|v| {
            v.trim()
                .parse()
                .expect("STOCKROOM_CHAOS_OPS is a whole number")
        })
        .unwrap_or(DEFAULT_OPERATIONS);
    eprintln!("chaos: seed {seed} (replay: STOCKROOM_CHAOS_SEED={seed}), {operations} operations, {CLIENTS} clients");
    let started = Instant::now();

    let app = TestApp::spawn_with(Options {
        backoff_seconds: 1,
        faults: Some(FaultPlan::all(seed)),
        ..Options::default()
    })
    .await;
    let faults = app.faults.clone().expect("faults");
    for (sku, shards, stock) in SKUS {
        let body = json!({"on_hand": stock, "shards": shards}).to_string();
        let created = app
            .send("PUT", &format!("/skus/{sku}"), None, Some(body))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    faults.set_enabled(true);
    let run = Run {
        app,
        faults: faults.clone(),
        seed,
        operations,
        next_op: AtomicUsize::new(0),
        pool: Mutex::default(),
        tries: Mutex::default(),
        in_flight: Mutex::default(),
    };

    let stop = AtomicBool::new(false);
    let clients = async {
        let ops: Vec<Op> = join_all((0..CLIENTS).map(|n| run.client(n)))
            .await
            .into_iter()
            .flatten()
            .collect();
        stop.store(true, Ordering::SeqCst);
        ops
    };
    let limit = run_limit(operations);
    let (ops, (), ()) = tokio::time::timeout(limit, async {
        tokio::join!(clients, run.background(&stop), run.watch(&stop))
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "seed {seed}: the clients did not finish in {limit:?}; under way: {:?}",
            run.in_flight
                .lock()
                .unwrap()
                .keys()
                .take(10)
                .collect::<Vec<_>>()
        )
    });
    let client_time = started.elapsed();

    // Whatever the chaos left in the queue, under faults still; then calm: every hold
    // runs out, the queue drains, one sweep, the queue drains again.
    let drained_under_faults = run.drain().await;
    faults.set_enabled(false);
    run.app.clock.advance(3600);
    let drained = run.drain().await;
    let summary = run.app.sweep().await;
    let drained_after_sweep = run.drain().await;
    let dead_letters = run.queue_depth(run.app.dead_letter_queue_url()).await;
    let items = scan(&run.app).await;
    let mut problems = check_books(&items, &ops);
    if !summary.drift.is_empty() || !summary.errors.is_empty() {
        problems.push(format!("the sweep's audit: {summary:?}"));
    }
    let tries = std::mem::take(&mut *run.tries.lock().unwrap());
    problems.extend(tries.internal_errors.iter().map(|e| format!("500: {e}")));
    problems.extend(tries.bad_views.iter().map(|v| format!("a stock view: {v}")));

    // The report.
    let mut outcomes: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for op in &ops {
        *outcomes
            .entry((op.kind.name(), op.outcome.label()))
            .or_default() += 1;
    }
    let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((kind, label), n) in &outcomes {
        by_kind
            .entry(kind)
            .or_default()
            .push(format!("{label}: {n}"));
    }
    eprintln!(
        "chaos: {} operations in {:.1?} (all done in {:.1?})",
        ops.len(),
        client_time,
        started.elapsed()
    );
    for (kind, labels) in &by_kind {
        eprintln!("  {kind}: {}", labels.join(", "));
    }
    eprintln!("  answers to every try: {:?}", tries.statuses);
    eprintln!("  client retries: {}", tries.retries);
    eprintln!("  faults: {}", faults.counts.report());
    eprintln!(
        "  afterwards: {drained_under_faults} messages drained under faults, {drained} calm, \
         sweep expired {} holds and re-sent {} commands, {drained_after_sweep} drained after it; \
         {dead_letters} messages dead-lettered (their commands stay PENDING for the sweep); \
         {} items in the table",
        summary.holds_expired,
        summary.commands_resent,
        items.len()
    );
    for op in ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Unknown(_)))
        .take(5)
    {
        if let Outcome::Unknown(last) = &op.outcome {
            eprintln!("  outcome unknown: {} {}: {last}", op.kind.name(), op.key);
        }
    }
    for problem in &problems {
        eprintln!("  PROBLEM: {problem}");
    }

    // The run must have exercised what it claims to.
    let crashes = faults.counts.crashes();
    let crashed_between = |kind: &str, call: &str| {
        crashes
            .iter()
            .any(|((k, _, last), n)| k == kind && last == call && *n > 0)
    };
    assert!(
        crashed_between("refund-restock", "TransactWriteItems"),
        "no refund died between its transaction and its send: {crashes:?}"
    );
    assert!(
        crashed_between("reconcile", "TransactWriteItems"),
        "reconcile never died between applying a command and its message's deletion: {crashes:?}"
    );
    assert!(
        faults.counts.duplicates.load(Ordering::SeqCst) > 0,
        "no message came twice"
    );
    for kind in [
        Kind::Reserve,
        Kind::Release,
        Kind::OrderFromHold,
        Kind::OneShotOrder,
        Kind::RefundRestock,
        Kind::RefundNoRestock,
        Kind::Adjustment,
        Kind::Reshard,
    ] {
        assert!(
            ops.iter()
                .any(|o| o.kind == kind && matches!(o.outcome, Outcome::Done(..))),
            "no {} succeeded",
            kind.name()
        );
    }
    assert!(
        problems.is_empty(),
        "seed {seed}: {} problems, first: {}",
        problems.len(),
        problems[0]
    );
    run.app.cleanup().await;
}

/// The books check on a table written by hand: straight books pass, and each kind of
/// double effect is caught.
#[test]
fn the_books_check_finds_second_effects() {
    let item = |fields: &[(&str, &str)], numbers: &[(&str, i64)]| -> Item {
        let mut item: Item = fields
            .iter()
            .map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string())))
            .collect();
        for (k, v) in numbers {
            item.insert(k.to_string(), AttributeValue::N(v.to_string()));
        }
        item
    };
    let shard = |available, sold| {
        item(
            &[("entity", "stock"), ("pk", "SKU#tea#000")],
            &[("available", available), ("reserved", 0), ("sold", sold)],
        )
    };
    let adjustment = |reason: &str, delta| {
        item(
            &[
                ("entity", "adjustment"),
                ("pk", "SKU#tea"),
                ("reason", reason),
            ],
            &[("delta", delta)],
        )
    };
    let books = vec![
        item(&[("entity", "sku"), ("sku", "tea")], &[("on_hand", 10)]),
        shard(6, 4),
        adjustment("opening stock", 8),
        adjustment("chaos k1-c0", 2),
        item(
            &[
                ("entity", "order"),
                ("order_id", "ord_1"),
                ("allocations", r#"[{"sku":"tea","shard":0,"quantity":4}]"#),
                ("lines", r#"[{"sku":"tea","quantity":4,"refunded":0}]"#),
            ],
            &[],
        ),
    ];
    let adjusted = Op {
        kind: Kind::Adjustment,
        key: "k1-c0".into(),
        lines: Vec::new(),
        target: "tea".into(),
        delta: 2,
        outcome: Outcome::Done(200, Value::Null),
    };
    let ordered = Op {
        kind: Kind::OneShotOrder,
        key: "k2-c0".into(),
        lines: vec![("tea".into(), 4)],
        target: String::new(),
        delta: 0,
        outcome: Outcome::Done(201, json!({"order_id": "ord_1"})),
    };
    let ops = [adjusted, ordered];
    assert_eq!(check_books(&books, &ops), Vec::<String>::new());

    let mut sold_twice = books.clone();
    sold_twice[1] = shard(2, 8);
    assert!(!check_books(&sold_twice, &ops).is_empty());

    let mut adjusted_twice = books.clone();
    adjusted_twice.push(adjustment("chaos k1-c0", 2));
    assert!(!check_books(&adjusted_twice, &ops).is_empty());

    let mut restocked_unrecorded = books.clone();
    restocked_unrecorded[1] = shard(8, 2);
    assert!(!check_books(&restocked_unrecorded, &ops).is_empty());

    let lost = &books[..4];
    assert!(
        !check_books(lost, &ops).is_empty(),
        "a success missing from the table"
    );
}
