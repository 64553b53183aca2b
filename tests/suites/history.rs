//! A table with 1,000 skus and their history (adjustments, orders, committed and expired
//! holds): a sweep reads as many items as before the history was written, and while the
//! local run's schedule sweeps, the API answers an idle `GET` within twice the time it
//! takes on an empty table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use reconcile::{Reconcile, Settings, SweepSummary};
use serde_json::json;
use stockroom::queue::SqsQueue;
use stockroom::store::DynamoStore;
use stockroom_local::server;
use stockroom_tests::reads::ItemsRead;
use stockroom_tests::TestApp;

/// How many skus: 1,000 in `./infra/test`, more with `STOCKROOM_HISTORY_SKUS`; a
/// multiple of `LINES`.
fn skus() -> usize {
    let asked = std::env::var("STOCKROOM_HISTORY_SKUS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000usize);
    (asked / LINES).max(1) * LINES
}
/// Lines per hold and per order: each one touches `LINES` skus.
const LINES: usize = 10;
/// Requests the test sends at once while it writes the history.
const CLIENTS: usize = 16;

fn sku(n: usize) -> String {
    format!("sku-{n}")
}

/// One unit of each of the `g`-th group of `LINES` skus.
fn group(g: usize) -> serde_json::Value {
    (g * LINES..(g + 1) * LINES)
        .map(|n| json!({"sku": sku(n), "quantity": 1}))
        .collect()
}

async fn all_ok<F: std::future::Future<Output = u16>>(
    requests: impl Iterator<Item = F>,
    ok: &[u16],
    what: &str,
) {
    let statuses: Vec<u16> = stream::iter(requests)
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| ok.contains(s)),
        "{what}: {statuses:?}"
    );
}

/// Every sku stocked: each one's first adjustment.
async fn stock_every_sku(app: &TestApp) {
    let body = json!({ "on_hand": 100 }).to_string();
    all_ok(
        (0..skus()).map(|n| {
            let body = body.clone();
            async move {
                app.send("PUT", &format!("/skus/{}", sku(n)), None, Some(body))
                    .await
                    .status
            }
        }),
        &[200, 201],
        "stocking",
    )
    .await;
}

/// History on every sku: an adjustment, a unit ordered at once, a unit held then
/// ordered, and a unit held until it expired (the sweep expires it).
async fn write_history(app: &TestApp, reconcile: &Reconcile<DynamoStore>) {
    all_ok(
        (0..skus()).map(|n| async move {
            app.post(
                &format!("/skus/{}/adjustments", sku(n)),
                &format!("adj-{n}"),
                &json!({"delta": 2, "reason": "count"}),
            )
            .await
            .status
        }),
        &[200],
        "adjustments",
    )
    .await;
    let groups = skus() / LINES;
    all_ok(
        (0..groups).map(|g| async move {
            let key = format!("order-{g}");
            app.post("/orders", &key, &json!({ "lines": group(g) }))
                .await
                .status
        }),
        &[201],
        "orders",
    )
    .await;
    all_ok(
        (0..groups).map(|g| async move {
            let held = app
                .post(
                    "/reservations",
                    &format!("hold-{g}"),
                    &json!({ "lines": group(g) }),
                )
                .await;
            assert_eq!(held.status, 201, "{}", held.text);
            let id = &held.body["reservation_id"];
            app.post(
                "/orders",
                &format!("commit-{g}"),
                &json!({ "reservation_id": id }),
            )
            .await
            .status
        }),
        &[201],
        "held then ordered",
    )
    .await;
    all_ok(
        (0..groups).map(|g| async move {
            app.post(
                "/reservations",
                &format!("lapse-{g}"),
                &json!({ "lines": group(g) }),
            )
            .await
            .status
        }),
        &[201],
        "held to expire",
    )
    .await;
    app.clock.advance(901);
    let mut expired = 0;
    for _ in 0..20 {
        let summary = reconcile.sweep().await;
        assert_eq!(summary.errors, Vec::<String>::new());
        expired += summary.holds_expired;
        if !summary.holds_left_for_next_sweep {
            break;
        }
    }
    assert_eq!(expired, groups, "every lapsed hold expired");
}

/// A sweep in a steady state (nothing to expire, send or fix), and what it read.
async fn quiet_sweep(
    reconcile: &Reconcile<DynamoStore>,
    read: &ItemsRead,
) -> (SweepSummary, (usize, usize), Duration) {
    read.take();
    let started = Instant::now();
    let summary = reconcile.sweep().await;
    let took = started.elapsed();
    assert_eq!(
        (
            summary.holds_expired,
            summary.commands_resent,
            &summary.drift,
            &summary.errors
        ),
        (0, 0, &vec![], &Vec::<String>::new())
    );
    assert_eq!(summary.skus_audited, skus());
    (summary, read.take(), took)
}

/// Milliseconds of sequential `GET /skus/{sku}`, a few milliseconds apart, for
/// `window` (at most `MAX_SAMPLES` of them).
async fn idle_gets(app: &TestApp, sku: &str, window: Duration) -> Vec<f64> {
    let started = Instant::now();
    let mut took = Vec::new();
    while took.len() < MAX_SAMPLES && started.elapsed() < window {
        let sent = Instant::now();
        let answer = app.send("GET", &format!("/skus/{sku}"), None, None).await;
        took.push(sent.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(answer.status, 200, "{}", answer.text);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    took
}
const MAX_SAMPLES: usize = 2_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn p50_p99(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 50.0), percentile(&samples, 99.0))
}

// Several threads, as the local run has (a sweep parsing a page does not hold up the API).
#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_over_skus_with_history_reads_no_more_and_leaves_the_api_quick() {
    let started = Instant::now();
    let app = TestApp::spawn().await;
    let read = ItemsRead::default();
    let reconcile = Reconcile::new(
        read.store(&app),
        Arc::new(SqsQueue::new(app.sqs.clone(), app.queue_url())),
        app.clock.clone(),
        Settings::default(),
    );
    stock_every_sku(&app).await;
    let (_, before, fresh_took) = quiet_sweep(&reconcile, &read).await;
    let stocked_at = started.elapsed();

    write_history(&app, &reconcile).await;
    let (_, after, history_took) = quiet_sweep(&reconcile, &read).await;
    eprintln!(
        "{} skus stocked in {:.1} s, their history written in {:.1} s more; a quiet sweep \
         read {} items in {} requests ({:.2} s) before the history, {} in {} ({:.2} s) after",
        skus(),
        stocked_at.as_secs_f64(),
        (started.elapsed() - stocked_at).as_secs_f64(),
        before.0,
        before.1,
        fresh_took.as_secs_f64(),
        after.0,
        after.1,
        history_took.as_secs_f64(),
    );
    assert_eq!(after, before, "the sweep's reads grew with the history");

    // The same GET on an empty table, then on this one, each for one period of the local
    // run's schedule from its first sweep on.
    let empty = TestApp::spawn().await;
    empty.set_stock(&sku(0), 100).await;
    let mut latencies = Vec::new();
    let mut swept = 0;
    for target in [&empty, &app] {
        let items_read = || async { target.emulator_stats().await["items_read"].as_u64() };
        let before = items_read().await;
        let sweeping = tokio::spawn(server::schedule(
            target.functions.clone(),
            server::SWEEP_EVERY,
        ));
        let samples = idle_gets(target, &sku(0), server::SWEEP_EVERY).await;
        sweeping.abort();
        // Each GET reads the sku item and its one shard; the rest is the sweep's.
        let gets = 2 * samples.len() as u64;
        swept = items_read()
            .await
            .zip(before)
            .map_or(0, |(a, b)| a - b - gets);
        latencies.push(p50_p99(samples));
    }
    assert!(
        swept > 0,
        "the schedule swept the table with history meanwhile"
    );
    let [(empty_p50, empty_p99), (history_p50, history_p99)] = latencies[..] else {
        unreachable!("two tables were sampled");
    };
    eprintln!(
        "idle GET over {} s of the local schedule: p50 {empty_p50:.1} ms, p99 {empty_p99:.1} ms \
         on an empty table; p50 {history_p50:.1} ms, p99 {history_p99:.1} ms with {} skus and \
         their history, the sweep meanwhile reading {swept} items (the test took {:.1} s)",
        server::SWEEP_EVERY.as_secs(),
        skus(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        history_p50 <= 2.0 * empty_p50 && history_p99 <= 2.0 * empty_p99,
        "idle latency more than doubled"
    );
    empty.cleanup().await;
    app.cleanup().await;
}
