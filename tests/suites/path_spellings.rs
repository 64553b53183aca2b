//! One `Idempotency-Key` and one body, sent to every spelling of a path (trailing slash,
//! doubled slash, the id in lower case or with another first character): exactly one
//! effect. The canonical spelling takes effect and replays; every other spelling is a
//! 404 that changes nothing.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use stockroom_tests::{levels, TestApp};

/// How many items of each kind the test's table holds.
async fn entities(app: &TestApp) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut start = None;
    for _ in 0..100 {
        let page = app
            .dynamodb
            .scan()
            .table_name(&app.resources.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items() {
            let entity = item
                .get("entity")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            *counts.entry(entity).or_default() += 1;
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return counts;
        }
    }
    panic!("the table did not fit in 100 pages");
}

fn count(counts: &BTreeMap<String, usize>, entity: &str) -> usize {
    counts.get(entity).copied().unwrap_or(0)
}

/// The same id with a first character that decodes to the same 128 bits (`0` and `8`
/// differ only in a bit above them).
fn aliased(id: &str, prefix: &str) -> String {
    let ulid = &id[prefix.len()..];
    let first = ulid.as_bytes()[0];
    assert!(first <= b'7', "{id}");
    format!("{prefix}{}{}", (first + 8) as char, &ulid[1..])
}

/// Sends `body` with `key` to each spelling; the canonical one first.
async fn send_all(
    app: &TestApp,
    canonical: &str,
    others: &[String],
    key: &str,
    body: &Value,
) -> Vec<(String, u16, String)> {
    let mut answers = Vec::new();
    for path in std::iter::once(canonical.to_owned()).chain(others.iter().cloned()) {
        let answer = app.post(&path, key, body).await;
        answers.push((path, answer.status, answer.code().to_owned()));
    }
    answers
}

fn assert_refused(answers: &[(String, u16, String)], code_for: impl Fn(&str) -> &'static str) {
    for (path, status, code) in &answers[1..] {
        assert_eq!(
            (*status, code.as_str()),
            (404, code_for(path)),
            "{path} must be refused, not take effect"
        );
    }
}

#[tokio::test]
async fn a_reservation_under_every_spelling_holds_once() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let body = json!({"lines": [{"sku": "tea", "quantity": 3}]});
    let others = ["/reservations/", "//reservations", "//reservations/"].map(str::to_owned);
    let answers = send_all(&app, "/reservations", &others, "hold-1", &body).await;
    assert_eq!(answers[0].1, 201, "{answers:?}");
    assert_refused(&answers, |_| "route_not_found");

    let again = app.post("/reservations", "hold-1", &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(levels(&app.stock("tea").await), (7, 3, 0, 10));
    assert_eq!(count(&entities(&app).await, "reservation"), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_adjustment_under_every_spelling_applies_once() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let before = count(&entities(&app).await, "adjustment");
    let body = json!({"delta": 5, "reason": "delivery"});
    let others = [
        "/skus/tea/adjustments/",
        "/skus//tea/adjustments",
        "//skus/tea/adjustments",
        "/skus/tea//adjustments",
    ]
    .map(str::to_owned);
    let answers = send_all(&app, "/skus/tea/adjustments", &others, "delivery-1", &body).await;
    assert_eq!(answers[0].1, 200, "{answers:?}");
    assert_refused(&answers, |_| "route_not_found");

    assert_eq!(levels(&app.stock("tea").await), (15, 0, 0, 15));
    assert_eq!(count(&entities(&app).await, "adjustment"), before + 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_order_under_every_spelling_sells_once() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let body = json!({"lines": [{"sku": "tea", "quantity": 2}]});
    let others = ["/orders/", "//orders"].map(str::to_owned);
    let answers = send_all(&app, "/orders", &others, "order-1", &body).await;
    assert_eq!(answers[0].1, 201, "{answers:?}");
    assert_refused(&answers, |_| "route_not_found");

    assert_eq!(levels(&app.stock("tea").await), (8, 0, 2, 10));
    assert_eq!(count(&entities(&app).await, "order"), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_refund_under_every_spelling_refunds_once() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let id = app
        .order("order-1", json!([{"sku": "tea", "quantity": 4}]))
        .await;
    let canonical = format!("/orders/{id}/refunds");
    let lower = format!("ord_{}", id[4..].to_lowercase());
    let others = [
        format!("/orders/{lower}/refunds"),
        format!("/orders/{}/refunds", aliased(&id, "ord_")),
        format!("/orders/{id}/refunds/"),
        format!("/orders//{id}/refunds"),
        format!("//orders/{id}/refunds"),
    ];
    // Without restock the refund completes in its own transaction: nothing to wait for.
    let body = json!({"lines": [{"sku": "tea", "quantity": 1}], "restock": false});
    let answers = send_all(&app, &canonical, &others, "refund-1", &body).await;
    assert_eq!(answers[0].1, 201, "{answers:?}");
    assert_refused(&answers, |path| {
        if path.contains("//") || path.ends_with('/') {
            "route_not_found"
        } else {
            "order_not_found"
        }
    });

    let again = app.post(&canonical, "refund-1", &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let read = app.send("GET", &format!("/orders/{id}"), None, None).await;
    assert_eq!(
        read.body["refunds"].as_array().map(Vec::len),
        Some(1),
        "{}",
        read.text
    );
    assert_eq!(read.body["lines"][0]["refunded"], 1, "{}", read.text);
    assert_eq!(count(&entities(&app).await, "refund"), 1);
    // The other spellings of the id read nothing either.
    for other in [lower, aliased(&id, "ord_")] {
        let answer = app
            .send("GET", &format!("/orders/{other}"), None, None)
            .await;
        assert_eq!((answer.status, answer.code()), (404, "order_not_found"));
    }
    app.cleanup().await;
}
