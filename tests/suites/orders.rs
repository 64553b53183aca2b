//! Orders from a hold and straight from stock; the states a reservation can be in.

use serde_json::json;
use stockroom_tests::{levels, TestApp};

fn id(answer: &stockroom_tests::Answer, field: &str) -> String {
    answer.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", answer.text))
        .to_owned()
}

#[tokio::test]
async fn an_order_commits_its_hold_once() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cups", 5).await;
    let held = app
        .post("/reservations", "r1", &json!({"lines": [{"sku": "tea", "quantity": 3}, {"sku": "cups", "quantity": 1}], "customer_id": "c-9"}))
        .await;
    let reservation_id = id(&held, "reservation_id");

    let body = json!({ "reservation_id": reservation_id });
    let order = app.post("/orders", "o1", &body).await;
    assert_eq!(order.status, 201, "{}", order.text);
    assert!(id(&order, "order_id").starts_with("ord_"));
    assert_eq!(order.body["status"], "CONFIRMED");
    assert_eq!(order.body["customer_id"], "c-9");
    assert_eq!(order.body["reservation_id"], reservation_id.as_str());
    assert_eq!(order.body["refunds"], json!([]));
    assert_eq!(order.body["lines"][0]["sku"], "tea");
    assert_eq!(order.body["lines"][0]["quantity"], 3);
    assert_eq!(levels(&app.stock("tea").await), (7, 0, 3, 10));
    assert_eq!(levels(&app.stock("cups").await), (4, 0, 1, 5));

    let again = app.post("/orders", "o1", &body).await;
    assert_eq!(
        (again.status, again.header("idempotent-replayed")),
        (201, Some("true"))
    );
    assert_eq!(again.text, order.text);
    assert_eq!(levels(&app.stock("tea").await), (7, 0, 3, 10));

    let other_key = app.post("/orders", "o2", &body).await;
    assert_eq!(
        (other_key.status, other_key.code()),
        (409, "reservation_not_held")
    );
    let reused = app
        .post(
            "/orders",
            "o1",
            &json!({"lines": [{"sku": "tea", "quantity": 1}]}),
        )
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "idempotency_key_reused")
    );
    let no_key = app
        .send("POST", "/orders", None, Some(body.to_string()))
        .await;
    assert_eq!(
        (no_key.status, no_key.code()),
        (400, "idempotency_key_required")
    );

    let reservation = app
        .send(
            "GET",
            &format!("/reservations/{reservation_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(reservation.body["status"], "COMMITTED");
    assert_eq!(reservation.body["order_id"], order.body["order_id"]);
    let release = app
        .send(
            "DELETE",
            &format!("/reservations/{reservation_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (release.status, release.code()),
        (409, "reservation_committed")
    );

    let read = app
        .send(
            "GET",
            &format!("/orders/{}", id(&order, "order_id")),
            None,
            None,
        )
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, order.body);
    app.cleanup().await;
}

#[tokio::test]
async fn one_shot_orders_sell_from_available_all_or_nothing() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cups", 1).await;

    let short = app
        .post(
            "/orders",
            "o1",
            &json!({"lines": [{"sku": "tea", "quantity": 2}, {"sku": "cups", "quantity": 2}]}),
        )
        .await;
    assert_eq!((short.status, short.code()), (409, "insufficient_stock"));
    assert_eq!(short.body["sku"], "cups");
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));

    let order = app
        .post("/orders", "o2", &json!({"lines": [{"sku": "tea", "quantity": 2}, {"sku": "cups", "quantity": 1}], "customer_id": "c-1"}))
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    assert_eq!(order.body["customer_id"], "c-1");
    assert!(order.body.get("reservation_id").is_none());
    assert_eq!(levels(&app.stock("tea").await), (8, 0, 2, 10));
    assert_eq!(levels(&app.stock("cups").await), (0, 0, 1, 1));

    let both = app
        .post(
            "/orders",
            "o3",
            &json!({"reservation_id": "res_01J9Z3K8Q4W6N2V5T7R0XGHPBM", "lines": []}),
        )
        .await;
    assert_eq!((both.status, both.code()), (400, "invalid_request"));
    let neither = app.post("/orders", "o4", &json!({})).await;
    assert_eq!((neither.status, neither.code()), (400, "invalid_request"));
    let unknown = app
        .post(
            "/orders",
            "o5",
            &json!({"reservation_id": "res_01J9Z3K8Q4W6N2V5T7R0XGHPBM"}),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "reservation_not_found")
    );
    for path in ["/orders/ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM", "/orders/whatever"] {
        let missing = app.send("GET", path, None, None).await;
        assert_eq!((missing.status, missing.code()), (404, "order_not_found"));
    }
    assert_eq!(levels(&app.stock("tea").await), (8, 0, 2, 10));
    app.cleanup().await;
}

#[tokio::test]
async fn an_expired_hold_cannot_be_committed_and_the_sweep_returns_its_units() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let held = app
        .post(
            "/reservations",
            "r1",
            &json!({"lines": [{"sku": "tea", "quantity": 4}], "hold_seconds": 60}),
        )
        .await;
    let reservation_id = id(&held, "reservation_id");
    let keep = app
        .post(
            "/reservations",
            "r2",
            &json!({"lines": [{"sku": "tea", "quantity": 1}], "hold_seconds": 3600}),
        )
        .await;
    assert_eq!(keep.status, 201);

    app.clock.advance(61);
    let order = app
        .post(
            "/orders",
            "o1",
            &json!({ "reservation_id": reservation_id }),
        )
        .await;
    assert_eq!(
        (order.status, order.code()),
        (409, "reservation_expired"),
        "{}",
        order.text
    );
    // Not yet swept: the units are still reserved.
    assert_eq!(levels(&app.stock("tea").await), (5, 5, 0, 10));

    let summary = app.sweep().await;
    assert_eq!(summary.holds_expired, 1, "{summary:?}");
    assert!(summary.drift.is_empty(), "{summary:?}");
    assert_eq!(levels(&app.stock("tea").await), (9, 1, 0, 10));
    let reservation = app
        .send(
            "GET",
            &format!("/reservations/{reservation_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(reservation.body["status"], "EXPIRED");
    let again = app
        .post(
            "/orders",
            "o2",
            &json!({ "reservation_id": reservation_id }),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "reservation_expired"));
    let release = app
        .send(
            "DELETE",
            &format!("/reservations/{reservation_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (release.status, release.body["status"].as_str()),
        (200, Some("EXPIRED"))
    );

    assert_eq!(
        app.sweep().await.holds_expired,
        0,
        "a second sweep finds nothing"
    );
    assert_eq!(levels(&app.stock("tea").await), (9, 1, 0, 10));
    app.cleanup().await;
}

#[tokio::test]
async fn a_released_hold_cannot_be_ordered() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let held = app.reserve("r1", &[("tea", 2)]).await;
    let reservation_id = id(&held, "reservation_id");
    app.send(
        "DELETE",
        &format!("/reservations/{reservation_id}"),
        None,
        None,
    )
    .await;
    let order = app
        .post(
            "/orders",
            "o1",
            &json!({ "reservation_id": reservation_id }),
        )
        .await;
    assert_eq!((order.status, order.code()), (409, "reservation_not_held"));
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    app.cleanup().await;
}
