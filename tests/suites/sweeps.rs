//! Sweeps that keep up: overdue holds expire many at a time within a time budget, and
//! the next sweep goes on where the last one stopped; the audit's reads do not grow with
//! the history of adjustments, and it finds no drift where there is none.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{stream, StreamExt};
use reconcile::{Reconcile, Settings, SweepSummary};
use serde_json::json;
use stockroom::queue::SqsQueue;
use stockroom::store::DynamoStore;
use stockroom_tests::reads::ItemsRead;
use stockroom_tests::{levels, TestApp};

const SKUS: usize = 8;

/// How many holds expire together: 1,000 in `./infra/test` (CI's time budget), 2,000 or
/// more with `STOCKROOM_SWEEP_HOLDS`; rounded down to a multiple of `SKUS`.
fn holds() -> usize {
    let asked = std::env::var("STOCKROOM_SWEEP_HOLDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000usize);
    (asked / SKUS).max(1) * SKUS
}
/// How many reservations the test sends at once while it fills the table.
const CLIENTS: usize = 32;

fn sku(n: usize) -> String {
    format!("sku-{n}")
}

/// A reconcile on the test's table whose every read is counted.
fn counted_reconcile(app: &TestApp) -> (Reconcile<DynamoStore>, ItemsRead) {
    let read = ItemsRead::default();
    let store = read.store(app);
    (reconcile_on(app, store, 20), read)
}

/// A reconcile on the test's table with its own expiry budget.
fn reconcile(app: &TestApp, expiry_budget_seconds: u32) -> Reconcile<DynamoStore> {
    reconcile_on(app, app.store(), expiry_budget_seconds)
}

fn reconcile_on(
    app: &TestApp,
    store: DynamoStore,
    expiry_budget_seconds: u32,
) -> Reconcile<DynamoStore> {
    let queue = Arc::new(SqsQueue::new(app.sqs.clone(), app.queue_url()));
    Reconcile::new(
        store,
        queue,
        app.clock.clone(),
        Settings {
            expiry_budget_seconds,
            ..Settings::default()
        },
    )
}

/// `holds()` one-unit holds over `SKUS` skus, each sku stocked with exactly its share.
async fn fill_with_holds(app: &TestApp) {
    for n in 0..SKUS {
        app.set_stock(&sku(n), (holds() / SKUS) as u64).await;
    }
    let started = Instant::now();
    let placed: Vec<(u16, usize)> = stream::iter(0..holds())
        .map(|i| async move {
            let sku = sku(i % SKUS);
            let (answer, busy) = app
                .reserve_retrying(&format!("hold-{i}"), &[(&sku, 1)], 20)
                .await;
            (answer.status, busy)
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    assert!(
        placed.iter().all(|(status, _)| *status == 201),
        "{placed:?}"
    );
    eprintln!(
        "placed {} holds in {:.1} s",
        holds(),
        started.elapsed().as_secs_f64()
    );
}

async fn assert_all_back_on_sale(app: &TestApp) {
    for n in 0..SKUS {
        let share = (holds() / SKUS) as u64;
        assert_eq!(
            levels(&app.stock(&sku(n)).await),
            (share, 0, 0, share),
            "{}",
            sku(n)
        );
    }
}

#[tokio::test]
async fn holds_expiring_together_are_all_expired_by_repeated_sweeps() {
    let app = TestApp::spawn().await;
    fill_with_holds(&app).await;
    app.clock.advance(901);

    // A budget of one second makes each sweep stop early: the next one resumes.
    let reconcile = reconcile(&app, 1);
    let started = Instant::now();
    let mut sweeps: Vec<SweepSummary> = Vec::new();
    for _ in 0..200 {
        let summary = reconcile.sweep().await;
        assert_eq!(summary.errors, Vec::<String>::new());
        let done = !summary.holds_left_for_next_sweep;
        sweeps.push(summary);
        if done {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let expired: usize = sweeps.iter().map(|s| s.holds_expired).sum();
    eprintln!(
        "expired {expired} holds in {} sweeps, {seconds:.1} s: {:.0} expiries/s on the emulator",
        sweeps.len(),
        expired as f64 / seconds
    );
    assert!(
        sweeps.len() > 1,
        "one sweep expired everything: the budget was never tested"
    );
    assert!(sweeps[0].holds_left_for_next_sweep);
    assert!(sweeps[0].holds_expired > 0);
    assert_eq!(expired, holds(), "each hold is counted once");
    let last = sweeps.last().expect("a sweep");
    assert!(!last.holds_left_for_next_sweep);
    assert_eq!(last.drift, vec![], "the audit after the last expiry");

    assert_all_back_on_sale(&app).await;
    let again = reconcile.sweep().await;
    assert_eq!((again.holds_expired, again.drift.len()), (0, 0));
    assert_eq!(again.skus_audited, SKUS);
    app.cleanup().await;
}

#[tokio::test]
async fn the_audits_reads_do_not_grow_with_the_history_of_adjustments() {
    const ADJUSTMENTS_PER_SKU: usize = 40;
    let app = TestApp::spawn().await;
    for n in 0..SKUS {
        app.set_stock(&sku(n), 10).await;
    }
    let (reconcile, read) = counted_reconcile(&app);
    let clean = reconcile.sweep().await;
    assert_eq!((clean.drift.len(), clean.errors.len()), (0, 0));
    let before = read.take().0;

    // Each sku's adjustments one after the other (each is conditioned on the on_hand
    // it saw), the skus side by side.
    let adjusted: Vec<u16> = stream::iter(0..SKUS)
        .map(|n| {
            let app = &app;
            async move {
                let mut statuses = Vec::new();
                for i in 0..ADJUSTMENTS_PER_SKU {
                    let delta = if i % 2 == 0 { 3 } else { -1 };
                    let answer = app
                        .post(
                            &format!("/skus/{}/adjustments", sku(n)),
                            &format!("adj-{n}-{i}"),
                            &json!({"delta": delta, "reason": "count"}),
                        )
                        .await;
                    statuses.push(answer.status);
                }
                statuses
            }
        })
        .buffer_unordered(SKUS)
        .concat()
        .await;
    assert!(adjusted.iter().all(|s| *s == 200), "{adjusted:?}");
    let expected_on_hand = 10 + (ADJUSTMENTS_PER_SKU / 2) as u64 * 2;
    assert_eq!(levels(&app.stock(&sku(0)).await).3, expected_on_hand);

    let after = reconcile.sweep().await;
    assert_eq!((after.drift, after.errors), (vec![], Vec::<String>::new()));
    let read_after = read.take().0;
    eprintln!(
        "a sweep over {SKUS} skus read {before} items; after {} adjustments, {read_after}",
        SKUS * ADJUSTMENTS_PER_SKU
    );
    assert_eq!(read_after, before, "the sweep read the history");
    app.cleanup().await;
}

#[tokio::test]
async fn a_sku_written_before_the_running_total_gets_it_from_one_sum_of_its_history() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let add = json!({"delta": 5, "reason": "delivery"});
    let added = app.post("/skus/tea/adjustments", "adj-1", &add).await;
    assert_eq!(added.status, 200, "{}", added.text);
    let (reconcile, read) = counted_reconcile(&app);
    reconcile.sweep().await;
    let with_total = read.take().0;

    // As an item written before the total was kept.
    let key = |pk: &str, sk: &str| {
        [
            ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        ]
    };
    app.dynamodb
        .update_item()
        .table_name(&app.resources.table)
        .set_key(Some(key("SKU#tea", "META").into_iter().collect()))
        .update_expression("REMOVE adjusted")
        .send()
        .await
        .expect("remove the running total");
    // Through the function as deployed, whose policy must allow the one sum.
    let summed = app.sweep().await;
    assert_eq!(
        (summed.drift, summed.errors),
        (vec![], Vec::<String>::new())
    );
    let meta = app
        .dynamodb
        .get_item()
        .table_name(&app.resources.table)
        .set_key(Some(key("SKU#tea", "META").into_iter().collect()))
        .send()
        .await
        .expect("read the sku item");
    let total = meta.item().and_then(|i| i.get("adjusted"));
    assert_eq!(total, Some(&AttributeValue::N("15".into())));
    let again = reconcile.sweep().await;
    assert_eq!(again.drift, vec![]);
    assert_eq!(read.take().0, with_total, "the sum was kept");
    app.cleanup().await;
}

#[tokio::test]
async fn an_audit_during_a_burst_of_reservations_reports_no_drift() {
    const BURST: usize = 600;
    let app = TestApp::spawn().await;
    for n in 0..SKUS {
        app.set_stock(&sku(n), BURST as u64).await;
    }
    let reconcile = reconcile(&app, 20);
    let done = AtomicBool::new(false);
    let burst = async {
        let placed: Vec<u16> = stream::iter(0..BURST)
            .map(|i| {
                let app = &app;
                async move {
                    let sku = sku(i % SKUS);
                    let (answer, _) = app
                        .reserve_retrying(&format!("burst-{i}"), &[(&sku, 1)], 20)
                        .await;
                    answer.status
                }
            })
            .buffer_unordered(CLIENTS)
            .collect()
            .await;
        done.store(true, Ordering::SeqCst);
        placed
    };
    let audits = async {
        let mut summaries = Vec::new();
        while !done.load(Ordering::SeqCst) && summaries.len() < 100 {
            summaries.push(reconcile.sweep().await);
        }
        summaries
    };
    let (placed, during) = futures::join!(burst, audits);
    assert!(placed.iter().all(|s| *s == 201), "{placed:?}");
    assert!(!during.is_empty());
    for summary in &during {
        assert_eq!(summary.drift, vec![], "{summary:?}");
        assert_eq!(summary.errors, Vec::<String>::new());
    }
    let unsettled: usize = during.iter().map(|s| s.skus_unsettled).sum();
    eprintln!(
        "{} audits during {BURST} reservations: {unsettled} sku comparisons left for later",
        during.len()
    );
    let quiet = reconcile.sweep().await;
    assert_eq!((quiet.drift.len(), quiet.skus_unsettled), (0, 0));
    app.cleanup().await;
}
