//! Every `201 Created` names what it created in `Location`, a path that reads it back;
//! a replayed 201 names it again. Answers that create nothing (200, 202) carry none.

use serde_json::json;
use stockroom_tests::{Answer, TestApp};

/// The answer's `Location`, after checking that a GET there answers 200.
async fn location(app: &TestApp, answer: &Answer) -> String {
    assert_eq!(answer.status, 201, "{}", answer.text);
    let location = answer
        .header("location")
        .unwrap_or_else(|| panic!("no Location on {}", answer.text))
        .to_owned();
    let read = app.send("GET", &location, None, None).await;
    assert_eq!(read.status, 200, "GET {location}: {}", read.text);
    location
}

#[tokio::test]
async fn every_201_carries_location_and_a_replay_carries_it_again() {
    let app = TestApp::spawn().await;
    let put = |path: &'static str, body: serde_json::Value| {
        app.send("PUT", path, None, Some(body.to_string()))
    };

    let sku = put("/skus/tea", json!({"on_hand": 10})).await;
    assert_eq!(location(&app, &sku).await, "/skus/tea");
    let updated = put("/skus/tea", json!({"on_hand": 20})).await;
    assert_eq!((updated.status, updated.header("location")), (200, None));

    let terms = json!({"skus": ["tea"], "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2026-02-01T00:00:00Z", "per_customer_limit": 2});
    let campaign = put("/campaigns/sale", terms.clone()).await;
    assert_eq!(location(&app, &campaign).await, "/campaigns/sale");
    let redefined = put("/campaigns/sale", terms).await;
    assert_eq!(
        (redefined.status, redefined.header("location")),
        (200, None)
    );

    let reserve = || app.reserve("hold-1", &[("tea", 2)]);
    let held = reserve().await;
    let id = held.body["reservation_id"].as_str().unwrap().to_owned();
    assert_eq!(location(&app, &held).await, format!("/reservations/{id}"));
    let again = reserve().await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(location(&app, &again).await, format!("/reservations/{id}"));

    let order_body = json!({"lines": [{"sku": "tea", "quantity": 3}]});
    let order = app.post("/orders", "order-1", &order_body).await;
    let order_id = order.body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(location(&app, &order).await, format!("/orders/{order_id}"));
    let again = app.post("/orders", "order-1", &order_body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(location(&app, &again).await, format!("/orders/{order_id}"));

    // A refund has no route of its own: its order lists it.
    let refunds = format!("/orders/{order_id}/refunds");
    let kept = json!({"lines": [{"sku": "tea", "quantity": 1}], "restock": false});
    let refund = app.post(&refunds, "refund-1", &kept).await;
    assert_eq!(location(&app, &refund).await, format!("/orders/{order_id}"));
    let again = app.post(&refunds, "refund-1", &kept).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(location(&app, &again).await, format!("/orders/{order_id}"));
    let restocked = json!({"lines": [{"sku": "tea", "quantity": 1}]});
    let pending = app.post(&refunds, "refund-2", &restocked).await;
    assert_eq!((pending.status, pending.header("location")), (202, None));

    let adjusted = app
        .post(
            "/skus/tea/adjustments",
            "adjust-1",
            &json!({"delta": 1, "reason": "found"}),
        )
        .await;
    assert_eq!((adjusted.status, adjusted.header("location")), (200, None));
    app.cleanup().await;
}
