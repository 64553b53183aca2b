//! Campaigns with windows and per-customer limits, and hot skus split into shards.

use futures::future::join_all;
use serde_json::{json, Value};
use stockroom::idempotency::Recorded;
use stockroom::Error;
use stockroom_tests::reads::ItemsRead;
use stockroom_tests::{levels, Answer, TestApp};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn at(offset_seconds: i64) -> String {
    (OffsetDateTime::now_utc() + Duration::seconds(offset_seconds))
        .format(&Rfc3339)
        .unwrap()
}

async fn campaign(
    app: &TestApp,
    id: &str,
    skus: &[&str],
    starts_in: i64,
    lasts: i64,
    limit: u32,
) -> Answer {
    let body = json!({"skus": skus, "starts_at": at(starts_in), "ends_at": at(starts_in + lasts), "per_customer_limit": limit});
    let answer = app
        .send(
            "PUT",
            &format!("/campaigns/{id}"),
            None,
            Some(body.to_string()),
        )
        .await;
    assert!(matches!(answer.status, 200 | 201), "{}", answer.text);
    answer
}

async fn reserve_in(
    app: &TestApp,
    key: &str,
    campaign: &str,
    customer: Option<&str>,
    lines: &[(&str, u64)],
) -> Answer {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(s, q)| json!({"sku": s, "quantity": q}))
        .collect();
    let mut body = json!({"lines": lines, "campaign_id": campaign});
    if let Some(customer) = customer {
        body["customer_id"] = json!(customer);
    }
    app.post("/reservations", key, &body).await
}

#[tokio::test]
async fn campaigns_are_created_replaced_and_read() {
    let app = TestApp::spawn().await;
    let created = campaign(&app, "singles-day", &["tea", "cups"], -60, 3600, 3).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["campaign_id"], "singles-day");
    assert_eq!(created.body["skus"], json!(["cups", "tea"]));
    assert_eq!(created.body["per_customer_limit"], 3);
    let replaced = campaign(&app, "singles-day", &["tea"], -60, 3600, 5).await;
    assert_eq!(replaced.status, 200);
    let read = app.send("GET", "/campaigns/singles-day", None, None).await;
    assert_eq!(read.body, replaced.body);
    assert_eq!(read.body["created_at"], created.body["created_at"]);
    let missing = app.send("GET", "/campaigns/nope", None, None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "campaign_not_found")
    );
    let bad = app
        .send(
            "PUT",
            "/campaigns/x",
            None,
            Some(
                json!({"skus": [], "starts_at": at(0), "ends_at": at(1), "per_customer_limit": 1})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_request"));
    let backwards = app
        .send("PUT", "/campaigns/x", None, Some(json!({"skus": ["tea"], "starts_at": at(10), "ends_at": at(0), "per_customer_limit": 1}).to_string()))
        .await;
    assert_eq!(
        (backwards.status, backwards.code()),
        (400, "invalid_request")
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_customer_gets_exactly_the_limit_however_many_ask_at_once() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 100).await;
    campaign(&app, "drop", &["tea"], -60, 3600, 5).await;

    let burst =
        join_all(
            (0..20).map(|i| {
                let app = &app;
                async move {
                    reserve_in(app, &format!("c1-{i}"), "drop", Some("c1"), &[("tea", 1)]).await
                }
            }),
        )
        .await;
    let held: Vec<&Answer> = burst.iter().filter(|a| a.status == 201).collect();
    assert_eq!(
        held.len(),
        5,
        "{:?}",
        burst.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    assert!(burst
        .iter()
        .filter(|a| a.status != 201)
        .all(|a| a.status == 409 && a.code() == "purchase_limit_exceeded"));
    assert_eq!(levels(&app.stock("tea").await), (95, 5, 0, 100));

    // A release gives the allowance back.
    let first = held[0].body["reservation_id"].as_str().unwrap();
    app.send("DELETE", &format!("/reservations/{first}"), None, None)
        .await;
    assert_eq!(
        reserve_in(&app, "c1-again", "drop", Some("c1"), &[("tea", 1)])
            .await
            .status,
        201
    );
    assert_eq!(
        reserve_in(&app, "c1-over", "drop", Some("c1"), &[("tea", 1)])
            .await
            .code(),
        "purchase_limit_exceeded"
    );

    // An order keeps it.
    let second = held[1].body["reservation_id"].as_str().unwrap();
    assert_eq!(
        app.post("/orders", "o1", &json!({"reservation_id": second}))
            .await
            .status,
        201
    );
    assert_eq!(
        reserve_in(&app, "c1-after-order", "drop", Some("c1"), &[("tea", 1)])
            .await
            .code(),
        "purchase_limit_exceeded"
    );

    // Other customers are unaffected; one request over the limit alone is refused too.
    assert_eq!(
        reserve_in(&app, "c2-1", "drop", Some("c2"), &[("tea", 5)])
            .await
            .status,
        201
    );
    let too_many = reserve_in(&app, "c3-1", "drop", Some("c3"), &[("tea", 6)]).await;
    assert_eq!(
        (too_many.status, too_many.code()),
        (409, "purchase_limit_exceeded")
    );

    // An expiry gives it back as well.
    app.clock.advance(901);
    assert!(app.sweep().await.holds_expired >= 3);
    assert_eq!(
        reserve_in(&app, "c1-next-day", "drop", Some("c1"), &[("tea", 4)])
            .await
            .status,
        201
    );
    app.cleanup().await;
}

#[tokio::test]
async fn outside_the_window_or_the_campaign_nothing_is_held() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cups", 10).await;
    campaign(&app, "later", &["tea"], 3600, 3600, 5).await;
    campaign(&app, "now", &["tea"], -60, 600, 5).await;

    let early = reserve_in(&app, "k1", "later", Some("c1"), &[("tea", 1)]).await;
    assert_eq!(
        (early.status, early.code()),
        (409, "campaign_not_active"),
        "{}",
        early.text
    );
    let off_campaign = reserve_in(&app, "k2", "now", Some("c1"), &[("tea", 1), ("cups", 1)]).await;
    assert_eq!(
        (off_campaign.status, off_campaign.code()),
        (409, "campaign_not_active")
    );
    assert_eq!(off_campaign.body["sku"], "cups");
    let anonymous = reserve_in(&app, "k3", "now", None, &[("tea", 1)]).await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (400, "invalid_request")
    );
    let unknown = reserve_in(&app, "k4", "never", Some("c1"), &[("tea", 1)]).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "campaign_not_found")
    );

    let inside = reserve_in(&app, "k5", "now", Some("c1"), &[("tea", 1)]).await;
    assert_eq!(inside.status, 201, "{}", inside.text);
    assert_eq!(inside.body["campaign_id"], "now");
    app.clock.advance(700);
    let late = reserve_in(&app, "k6", "now", Some("c1"), &[("tea", 1)]).await;
    assert_eq!((late.status, late.code()), (409, "campaign_not_active"));
    // A replay of what was accepted still gets its first answer after the window.
    let replay = reserve_in(&app, "k5", "now", Some("c1"), &[("tea", 1)]).await;
    assert_eq!(
        (replay.status, replay.header("idempotent-replayed")),
        (201, Some("true"))
    );

    assert_eq!(levels(&app.stock("tea").await), (9, 1, 0, 10));
    assert_eq!(levels(&app.stock("cups").await), (10, 0, 0, 10));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_sku_on_sixteen_shards_never_oversells_and_sells_its_last_units() {
    let app = TestApp::spawn().await;
    // Conflicts as on DynamoDB, and each shard's partition throttled at a few
    // transactions a second, so that throttling shows at the emulator's speed.
    app.emulate(json!({"conflicts": true, "transaction_hold_ms": 10, "partition_wcu": 4}))
        .await;
    let created = app
        .send(
            "PUT",
            "/skus/hot",
            None,
            Some(json!({"on_hand": 1000, "shards": 16}).to_string()),
        )
        .await;
    assert_eq!(created.body["shards"], 16);

    // 128 clients, random quantities 1..=5, until each is refused for lack of stock.
    let clients = join_all((0..128u64).map(|c| {
        let app = &app;
        async move {
            let mut held = 0;
            let mut seed = c * 7 + 3;
            for i in 0..40 {
                seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
                let quantity = 1 + seed % 5;
                let (answer, _) = app
                    .reserve_retrying(&format!("c{c}-{i}"), &[("hot", quantity)], 20)
                    .await;
                match answer.status {
                    201 => held += quantity,
                    409 => {
                        assert_eq!(answer.code(), "insufficient_stock");
                        break;
                    }
                    other => panic!("{other}: {}", answer.text),
                }
            }
            held
        }
    }))
    .await;
    let held: u64 = clients.iter().sum();
    let stats = app.emulator_stats().await;
    println!("a hot sku on 16 shards under conflicts and throttling: {stats}");
    assert!(
        stats["transactions_cancelled_throttle"].as_u64() > Some(0),
        "throttling must have happened: {stats}"
    );
    let (available, reserved, sold, on_hand) = levels(&app.stock("hot").await);
    assert_eq!(reserved, held, "the units held are exactly what succeeded");
    assert!(held <= 1000);
    assert_eq!((available + reserved + sold, on_hand), (1000, 1000));

    // Whatever is left, however it is spread over the shards, can be had at once.
    if available > 0 {
        let last = app.reserve("the-rest", &[("hot", available)]).await;
        assert_eq!(last.status, 201, "{}", last.text);
    }
    assert_eq!(levels(&app.stock("hot").await), (0, 1000, 0, 1000));
    let summary = app.sweep().await;
    assert!(summary.drift.is_empty(), "{summary:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn units_spread_thin_over_shards_are_still_sold_in_one_line() {
    let app = TestApp::spawn().await;
    app.send(
        "PUT",
        "/skus/thin",
        None,
        Some(json!({"on_hand": 16, "shards": 16}).to_string()),
    )
    .await;
    let all = app.reserve("all", &[("thin", 16)]).await;
    assert_eq!(all.status, 201, "{}", all.text);
    assert_eq!(levels(&app.stock("thin").await), (0, 16, 0, 16));
    let id = all.body["reservation_id"].as_str().unwrap();
    app.send("DELETE", &format!("/reservations/{id}"), None, None)
        .await;
    assert_eq!(levels(&app.stock("thin").await), (16, 0, 0, 16));
    app.cleanup().await;
}

#[tokio::test]
async fn changing_the_shard_count_with_holds_outstanding_loses_nothing() {
    let app = TestApp::spawn().await;
    app.send(
        "PUT",
        "/skus/tea",
        None,
        Some(json!({"on_hand": 100, "shards": 4}).to_string()),
    )
    .await;
    let mut holds = Vec::new();
    for (i, q) in [7u64, 3, 12, 5, 9].iter().enumerate() {
        let answer = app.reserve(&format!("h{i}"), &[("tea", *q)]).await;
        holds.push(answer.body["reservation_id"].as_str().unwrap().to_owned());
    }
    let order = app
        .post("/orders", "o1", &json!({"reservation_id": holds[0]}))
        .await;
    assert_eq!(order.status, 201);
    assert_eq!(levels(&app.stock("tea").await), (64, 29, 7, 100));

    let grown = app
        .send(
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": 100, "shards": 16}).to_string()),
        )
        .await;
    assert_eq!(grown.status, 200, "{}", grown.text);
    assert_eq!(grown.body["shards"], 16);
    assert_eq!(levels(&grown.body), (64, 29, 7, 100));

    let shrunk = app
        .send(
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": 100, "shards": 2}).to_string()),
        )
        .await;
    assert_eq!(shrunk.body["shards"], 2);
    assert_eq!(levels(&shrunk.body), (64, 29, 7, 100));

    // Holds taken on shards that no longer take new stock still release and commit.
    app.send("DELETE", &format!("/reservations/{}", holds[1]), None, None)
        .await;
    assert_eq!(
        app.post("/orders", "o2", &json!({"reservation_id": holds[2]}))
            .await
            .status,
        201
    );
    let refund = app
        .post(
            &format!(
                "/orders/{}/refunds",
                order.body["order_id"].as_str().unwrap()
            ),
            "f1",
            &json!({}),
        )
        .await;
    assert_eq!(refund.status, 202);
    app.drain_queue().await;
    assert_eq!(levels(&app.stock("tea").await), (74, 14, 12, 100));

    // Every available unit can be had, wherever it sits.
    let rest = app.reserve("rest", &[("tea", 74)]).await;
    assert_eq!(rest.status, 201, "{}", rest.text);
    let summary = app.sweep().await;
    assert!(summary.drift.is_empty(), "{summary:?}");
    assert_eq!(levels(&app.stock("tea").await), (0, 88, 12, 100));
    app.cleanup().await;
}

#[tokio::test]
async fn a_hold_over_more_stock_items_than_one_transaction_takes_is_refused_up_front() {
    let app = TestApp::spawn().await;
    // 25 skus with one unit on each of 8 shards: 5 units of each must come from 5 shards,
    // 125 stock items for one hold, where one transaction takes 100 actions.
    let skus: Vec<String> = (0..25).map(|i| format!("thin-{i}")).collect();
    for sku in &skus {
        let put = app
            .send(
                "PUT",
                &format!("/skus/{sku}"),
                None,
                Some(json!({"on_hand": 8, "shards": 8}).to_string()),
            )
            .await;
        assert_eq!(put.status, 201, "{}", put.text);
    }
    let mut lines: Vec<(&str, u64)> = skus.iter().map(|s| (s.as_str(), 5)).collect();
    let answer = app.reserve("too-wide", &lines).await;
    assert_eq!(
        (answer.status, answer.code()),
        (409, "too_many_stock_items"),
        "{}",
        answer.text
    );
    let stats = app.emulator_stats().await;
    assert_eq!(
        stats["limit_refusals"], 0,
        "refused before DynamoDB: {stats}"
    );
    for sku in &skus {
        assert_eq!(levels(&app.stock(sku).await), (8, 0, 0, 8));
    }
    // 19 lines of 5 and one of 2: 97 stock items, the most a hold may take. Its commit
    // (the items, the hold, the order) and its refund's restock (the items, the command,
    // the refund) each fit one transaction.
    lines.truncate(20);
    lines[19].1 = 2;
    let held = app.reserve("widest", &lines).await;
    assert_eq!(held.status, 201, "{}", held.text);
    let reservation_id = held.body["reservation_id"].as_str().unwrap();
    let order = app
        .post(
            "/orders",
            "widest-order",
            &json!({"reservation_id": reservation_id}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_id = order.body["order_id"].as_str().unwrap();
    let refund = app
        .post(
            &format!("/orders/{order_id}/refunds"),
            "widest-refund",
            &json!({"restock": true}),
        )
        .await;
    assert_eq!(refund.status, 202, "{}", refund.text);
    app.drain_queue().await;
    for sku in &skus {
        assert_eq!(levels(&app.stock(sku).await), (8, 0, 0, 8), "{sku}");
    }
    assert_eq!(app.emulator_stats().await["limit_refusals"], 0);
    app.cleanup().await;
}

/// The emulator's count of items read on the test's table so far.
async fn items_read(app: &TestApp) -> u64 {
    app.emulator_stats().await["items_read"].as_u64().unwrap()
}

#[tokio::test]
async fn a_campaign_of_128_buyers_on_16_shards_holds_the_stock_and_never_touches_the_campaign_item()
{
    let app = TestApp::spawn().await;
    app.emulate(json!({"conflicts": true, "transaction_hold_ms": 10}))
        .await;
    let created = app
        .send(
            "PUT",
            "/skus/hot",
            None,
            Some(json!({"on_hand": 100, "shards": 16}).to_string()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    campaign(&app, "drop", &["hot"], -60, 3600, 2).await;
    let campaign_writes =
        |stats: &Value| stats["transactions_by_partition_key"]["CAMPAIGN#drop"].clone();
    let before = campaign_writes(&app.emulator_stats().await);
    assert_eq!(before, 1, "the campaign's own write");
    // 64 customers, two clients each asking for 2 units at once: the limit lets one of
    // each pair through, the stock 50 of them.
    let asked = join_all((0..128u32).map(|c| {
        let app = &app;
        async move {
            let customer = format!("buyer-{}", c / 2);
            for attempt in 0..20 {
                let answer = reserve_in(
                    app,
                    &format!("c{c}"),
                    "drop",
                    Some(&customer),
                    &[("hot", 2)],
                )
                .await;
                if answer.status != 503 {
                    return (customer, answer);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            panic!("client {c} got nothing but 503s");
        }
    }))
    .await;
    let mut by_customer = std::collections::BTreeMap::<&str, u64>::new();
    for (customer, answer) in &asked {
        match (answer.status, answer.code()) {
            (201, _) => *by_customer.entry(customer).or_default() += 2,
            (409, "purchase_limit_exceeded" | "insufficient_stock") => {}
            _ => panic!("{}", answer.text),
        }
    }
    assert!(
        by_customer.values().all(|units| *units <= 2),
        "{by_customer:?}"
    );
    let held: u64 = by_customer.values().sum();
    assert_eq!(held, 100, "exactly the stock is held");
    assert_eq!(levels(&app.stock("hot").await), (0, 100, 0, 100));

    let stats = app.emulator_stats().await;
    assert_eq!(
        campaign_writes(&stats),
        before,
        "a reservation touched the campaign's item"
    );
    let by_key = stats["transactions_by_partition_key"].as_object().unwrap();
    // Each buyer's counter is a partition of its own; the stock is spread over 16.
    let counters = by_key
        .keys()
        .filter(|k| k.starts_with("COUNTER#drop#"))
        .count();
    assert_eq!(counters, 64);
    let shards = by_key.keys().filter(|k| k.starts_with("SKU#hot#")).count();
    assert_eq!(shards, 16);
    app.cleanup().await;
}

#[tokio::test]
async fn after_a_sell_out_each_refusal_reads_a_constant_few_items_whatever_the_shards() {
    let app = TestApp::spawn().await;
    for (sku, shards) in [("narrow", 4), ("wide", 64)] {
        let created = app
            .send(
                "PUT",
                &format!("/skus/{sku}"),
                None,
                Some(json!({"on_hand": shards, "shards": shards}).to_string()),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let taken = app.reserve(&format!("all-{sku}"), &[(sku, shards)]).await;
        assert_eq!(taken.status, 201, "{}", taken.text);
    }
    const REFUSALS: usize = 300;
    for sku in ["narrow", "wide"] {
        let before = items_read(&app).await;
        let started = std::time::Instant::now();
        let refused = join_all((0..8).map(|client| {
            let app = &app;
            async move {
                let mut codes = Vec::new();
                for i in 0..REFUSALS / 8 {
                    let answer = app
                        .reserve(&format!("{sku}-{client}-{i}"), &[(sku, 1)])
                        .await;
                    codes.push((answer.status, answer.code().to_owned()));
                }
                codes
            }
        }))
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        assert!(refused
            .iter()
            .flatten()
            .all(|(status, code)| (*status, code.as_str()) == (409, "insufficient_stock")));
        let read = items_read(&app).await - before;
        let per_refusal = read as f64 / REFUSALS as f64;
        println!("{sku}: {read} items read for {REFUSALS} refusals in {elapsed:.1} s");
        // Each refusal reads its own record (was it seen before?); the sku itself is read
        // whole at most once a second.
        assert!(per_refusal <= 2.0, "{sku}: {per_refusal} items per refusal");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_reshard_during_reservations_loses_no_unit_and_a_refused_put_changes_nothing() {
    let app = TestApp::spawn().await;
    app.emulate(json!({"conflicts": true, "transaction_hold_ms": 10}))
        .await;
    app.set_stock("busy", 300).await;
    // Held before the reshards start, so that a cut to 1 can never be had.
    let first = app.reserve("first", &[("busy", 10)]).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let reservations = join_all((0..24u32).map(|c| {
        let app = &app;
        async move {
            let mut held = 0;
            for i in 0..11 {
                let (answer, _) = app
                    .reserve_retrying(&format!("r{c}-{i}"), &[("busy", 1)], 20)
                    .await;
                match answer.status {
                    201 => held += 1,
                    409 => assert_eq!(answer.code(), "insufficient_stock"),
                    other => panic!("{other}: {}", answer.text),
                }
            }
            held
        }
    }));
    let reshards = async {
        let mut refused = 0;
        for (shards, on_hand) in [(16, 300), (4, 300), (8, 1), (8, 300)] {
            let body = json!({"on_hand": on_hand, "shards": shards}).to_string();
            let put = app.send("PUT", "/skus/busy", None, Some(body)).await;
            match put.status {
                200 => assert_eq!(put.body["shards"], shards),
                // Cutting to 1 needs 299 units on sale: refused, and nothing of it applied.
                409 => {
                    assert_eq!(put.code(), "insufficient_stock");
                    let after = app.stock("busy").await;
                    assert_eq!(
                        (after["shards"].as_u64(), after["on_hand"].as_u64()),
                        (Some(4), Some(300))
                    );
                    refused += 1;
                }
                other => panic!("{other}: {}", put.text),
            }
        }
        refused
    };
    let (held, refused) = futures::join!(reservations, reshards);
    assert_eq!(refused, 1);
    let held: u64 = held.iter().sum();
    assert_eq!(held, 24 * 11);
    let held = held + 10;
    let (available, reserved, sold, on_hand) = levels(&app.stock("busy").await);
    assert_eq!((reserved, sold), (held, 0));
    assert_eq!((available + reserved + sold, on_hand), (300, 300));
    let stock = app.stock("busy").await;
    assert_eq!(stock["shards"], 8);
    let summary = app.sweep().await;
    assert!(summary.drift.is_empty(), "{summary:?}");
    app.cleanup().await;
}

/// A hold of `customer`'s in `campaign` by a process that never saw the sku.
async fn reserve_from_a_new_process(
    store: &stockroom::store::DynamoStore,
    campaign: &str,
    customer: &str,
    lines: &[(&str, u64)],
) -> stockroom::Result<stockroom::idempotency::Recorded<stockroom::domain::Reservation>> {
    use stockroom::domain::{CampaignId, CustomerId, Line, Lines, Quantity, ReservationId, Sku};
    let lines: Vec<Line> = lines
        .iter()
        .map(|(sku, quantity)| Line {
            sku: Sku::parse(sku).unwrap(),
            quantity: Quantity::new(*quantity).unwrap(),
        })
        .collect();
    let request = stockroom::usecases::holds::NewHold {
        acting: stockroom::identity::Acting::Customer(CustomerId::parse(customer).unwrap()),
        reservation_id: ReservationId::generate(),
        lines: Lines::try_from(lines).unwrap(),
        customer_id: None,
        campaign_id: Some(CampaignId::parse(campaign).unwrap()),
        hold: Default::default(),
        at: stockroom::domain::Timestamp::new(OffsetDateTime::now_utc()),
        fingerprint: "from a new process".into(),
    };
    let fresh = stockroom::usecases::StockViews::default();
    stockroom::usecases::holds::reserve(store, &fresh, request).await
}

#[tokio::test]
async fn a_new_process_takes_a_customers_first_campaign_units_with_one_write_and_no_read() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cup", 10).await;
    // A dot and a dash: the campaign id is a map key the condition names by placeholder.
    campaign(&app, "drop-11.11", &["tea"], -60, 3600, 3).await;
    campaign(&app, "over", &["cup"], -7200, 3600, 3).await;
    let read = ItemsRead::default();
    let store = read.store(&app);
    let counter_writes = |stats: &Value, customer: &str| {
        stats["transactions_by_partition_key"][format!("COUNTER#drop-11.11#{customer}")].clone()
    };

    for customer in ["ann", "bob"] {
        let taken = reserve_from_a_new_process(&store, "drop-11.11", customer, &[("tea", 2)]).await;
        assert!(matches!(taken, Ok(Recorded::Created(..))), "{taken:?}");
        assert_eq!(
            read.take(),
            (0, 0),
            "a new process read before its first take"
        );
        assert_eq!(counter_writes(&app.emulator_stats().await, customer), 1);
    }
    // What the customer holds already is counted: the guess is refused and the terms read.
    let over = reserve_from_a_new_process(&store, "drop-11.11", "ann", &[("tea", 2)]).await;
    assert!(
        matches!(over, Err(Error::PurchaseLimitExceeded(_))),
        "{over:?}"
    );
    let last = reserve_from_a_new_process(&store, "drop-11.11", "ann", &[("tea", 1)]).await;
    assert!(matches!(last, Ok(Recorded::Created(..))), "{last:?}");
    // Over the offer's limit, off the offer, out of the window: refused, nothing moves.
    let refusals = [
        ("drop-11.11", "cid", "tea", 4, "purchase_limit_exceeded"),
        ("drop-11.11", "cid", "cup", 1, "campaign_not_active"),
        ("over", "cid", "cup", 1, "campaign_not_active"),
    ];
    for (campaign, customer, sku, units, code) in refusals {
        let refused = reserve_from_a_new_process(&store, campaign, customer, &[(sku, units)]).await;
        match refused {
            Err(e) => assert_eq!(e.problem().code, code, "{e:?}"),
            Ok(taken) => panic!("{campaign} {sku} x{units}: {taken:?}"),
        }
    }
    assert_eq!(levels(&app.stock("tea").await), (5, 5, 0, 10));
    assert_eq!(levels(&app.stock("cup").await), (10, 0, 0, 10));
    app.cleanup().await;
}
