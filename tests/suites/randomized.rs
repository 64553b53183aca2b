//! A randomized run of mixed operations from concurrent clients, ended by a sweep:
//! afterwards the audit finds no drift, and every sku's counters add up with nothing
//! lost, nothing negative and nothing still held.

use std::sync::Mutex;

use futures::future::join_all;
use serde_json::json;
use stockroom_tests::{levels, TestApp};

const SKUS: [&str; 4] = ["tea", "cups", "lids", "mugs"];
const CLIENTS: usize = 16;
/// Units of each sku: enough that most reservations succeed, few enough to run out.
const STOCK: u64 = 400;
const OPERATIONS_PER_CLIENT: usize = 55;
/// Rounds, each on a fresh table: 3 x 16 clients x 55 steps.
const ROUNDS: usize = 3;

/// A small deterministic generator per client, so a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Shared {
    holds: Vec<String>,
    orders: Vec<String>,
}

async fn client(app: &TestApp, shared: &Mutex<Shared>, n: usize) -> Vec<(String, u16)> {
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut seen = Vec::new();
    for i in 0..OPERATIONS_PER_CLIENT {
        let key = format!("c{n}-{i}");
        let lines = |dice: &mut Dice| {
            let count = 1 + dice.roll(3) as usize;
            let start = dice.roll(4) as usize;
            (0..count)
                .map(|k| json!({"sku": SKUS[(start + k) % 4], "quantity": 1 + dice.roll(4)}))
                .collect::<Vec<_>>()
        };
        let (op, answer) = match dice.roll(10) {
            0..=3 => {
                let hold = 60 + dice.roll(600);
                let a = app
                    .post(
                        "/reservations",
                        &key,
                        &json!({"lines": lines(&mut dice), "hold_seconds": hold}),
                    )
                    .await;
                if a.status == 201 {
                    shared
                        .lock()
                        .unwrap()
                        .holds
                        .push(a.body["reservation_id"].as_str().unwrap().to_owned());
                }
                ("reserve", a)
            }
            4 => {
                let Some(id) = pick(&mut dice, &shared.lock().unwrap().holds) else {
                    continue;
                };
                (
                    "release",
                    app.send("DELETE", &format!("/reservations/{id}"), None, None)
                        .await,
                )
            }
            5 | 6 => {
                let Some(id) = pick(&mut dice, &shared.lock().unwrap().holds) else {
                    continue;
                };
                let a = app
                    .post("/orders", &key, &json!({"reservation_id": id}))
                    .await;
                if a.status == 201 {
                    shared
                        .lock()
                        .unwrap()
                        .orders
                        .push(a.body["order_id"].as_str().unwrap().to_owned());
                }
                ("order from hold", a)
            }
            7 => {
                let a = app
                    .post("/orders", &key, &json!({"lines": lines(&mut dice)}))
                    .await;
                if a.status == 201 {
                    shared
                        .lock()
                        .unwrap()
                        .orders
                        .push(a.body["order_id"].as_str().unwrap().to_owned());
                }
                ("one-shot order", a)
            }
            8 => {
                let Some(id) = pick(&mut dice, &shared.lock().unwrap().orders) else {
                    continue;
                };
                let restock = dice.roll(4) != 0;
                let body = if dice.roll(2) == 0 {
                    json!({"restock": restock})
                } else {
                    json!({"restock": restock, "lines": [{"sku": SKUS[dice.roll(4) as usize], "quantity": 1}]})
                };
                (
                    "refund",
                    app.post(&format!("/orders/{id}/refunds"), &key, &body)
                        .await,
                )
            }
            _ => {
                // Time moves on: some holds run out; now and then reconcile works.
                app.clock.advance(dice.roll(90) as i64);
                if dice.roll(4) == 0 {
                    app.drain_queue().await;
                }
                continue;
            }
        };
        // A 503 is a legitimate answer while many clients race (nothing was done; the
        // client may retry); a 500, or a 503 without Retry-After, never is.
        if answer.status == 503 {
            assert!(
                answer.header("retry-after").is_some()
                    && matches!(answer.code(), "contention" | "service_unavailable"),
                "{op}: {}",
                answer.text
            );
        } else {
            assert!(answer.status < 500, "{op}: {}", answer.text);
        }
        seen.push((op.to_owned(), answer.status));
    }
    seen
}

/// One of the 16 newest ids, so that most picks still find something to act on, and
/// now and then one that is long done.
fn pick(dice: &mut Dice, ids: &[String]) -> Option<String> {
    let recent = &ids[ids.len().saturating_sub(16)..];
    let from = if dice.roll(8) == 0 { ids } else { recent };
    (!from.is_empty()).then(|| from[dice.roll(from.len() as u64) as usize].clone())
}

const OPERATIONS: [&str; 5] = [
    "reserve",
    "release",
    "order from hold",
    "one-shot order",
    "refund",
];

/// One round on a table of its own (the emulator slows as a table grows): concurrent
/// clients, then every hold runs out, the sweep expires them, the queue is drained, and
/// the books must be straight. Returns what the clients saw.
async fn round(number: usize) -> Vec<(String, u16)> {
    let app = TestApp::spawn().await;
    for sku in SKUS {
        app.set_stock(sku, STOCK).await;
    }
    let shared = Mutex::new(Shared::default());
    let seen: Vec<_> = join_all((0..CLIENTS).map(|n| client(&app, &shared, number * CLIENTS + n)))
        .await
        .into_iter()
        .flatten()
        .collect();

    app.clock.advance(3600);
    app.drain_queue().await;
    let summary = app.sweep().await;
    assert!(summary.errors.is_empty(), "round {number}: {summary:?}");
    app.drain_queue().await;
    let summary = app.sweep().await;
    assert!(
        summary.drift.is_empty(),
        "round {number}: drift: {summary:?}"
    );
    assert_eq!(summary.skus_audited, 4);
    for sku in SKUS {
        let (available, reserved, sold, on_hand) = levels(&app.stock(sku).await);
        assert_eq!(
            on_hand, STOCK,
            "{sku}: on_hand never changes without an adjustment"
        );
        assert_eq!(reserved, 0, "{sku}: every hold ended");
        assert_eq!(available + sold, on_hand, "{sku}");
    }
    app.cleanup().await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_mixed_operations_leave_the_books_straight() {
    let mut seen = Vec::new();
    for number in 0..ROUNDS {
        seen.extend(round(number).await);
    }
    let succeeded = |op: &str| seen.iter().filter(|(o, s)| o == op && *s < 300).count();
    for op in OPERATIONS {
        assert!(
            succeeded(op) > 0,
            "no {op} succeeded: the run did not exercise it"
        );
    }
    assert!(
        seen.iter().any(|(_, s)| *s == 409),
        "the run never ran short of anything"
    );
    let counts: Vec<String> = OPERATIONS
        .iter()
        .map(|op| {
            format!(
                "{op}: {} of {}",
                succeeded(op),
                seen.iter().filter(|(o, _)| o == op).count()
            )
        })
        .collect();
    eprintln!(
        "{} operations answered; succeeded {}",
        seen.len(),
        counts.join(", ")
    );
}
