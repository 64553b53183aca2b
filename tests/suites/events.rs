//! Every file under `events/` is an event its function accepts (a 2xx answer), fed in
//! the order a user would send them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::tower::ServiceExt;
use lambda_http::Request;
use place_order::PlaceOrders;
use reconcile::{Reconcile, Settings};
use refund::Refunds;
use reserve_stock::ReserveStock;
use stock_admin::StockAdmin;
use stockroom::http::{self, Routes};
use stockroom::queue::SqsQueue;
use stockroom_tests::{levels, TestApp, TokenKind};

fn read(function: &str, name: &str) -> String {
    let path = stockroom_local::project_root()
        .join("events")
        .join(function)
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn event(function: &str, name: &str) -> Request {
    lambda_http::request::from_str(&read(function, name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn files(function: &str) -> BTreeSet<String> {
    let dir = stockroom_local::project_root()
        .join("events")
        .join(function);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| Path::new(name).extension().is_some_and(|e| e == "json"))
        .collect()
}

/// A function as its `main` runs it: its routes in front of `app`.
fn function<H: Send + Sync + 'static>(routes: Routes<Arc<H>>, app: H) -> axum::Router {
    http::api(routes.with_state(Arc::new(app)))
}

/// The status of the function's answer to one event, and its JSON body.
async fn handle(function: &axum::Router, event: Request) -> (StatusCode, serde_json::Value) {
    let response = function.clone().oneshot(event).await.expect("an answer");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn every_api_event_is_accepted_by_its_handler() {
    let app = TestApp::spawn().await;
    let stock_admin = function(
        stock_admin::routes(),
        StockAdmin::new(app.store(), app.clock.clone()),
    );
    let reserve_stock = function(
        reserve_stock::routes(),
        ReserveStock::new(app.store(), app.clock.clone()),
    );

    let admin_order = [
        "put-sku.json",
        "adjust-sku.json",
        "get-sku.json",
        "put-campaign.json",
        "get-campaign.json",
    ];
    assert_eq!(
        files("stock-admin"),
        admin_order.iter().map(|s| s.to_string()).collect()
    );
    for name in admin_order {
        let (status, body) = handle(&stock_admin, event("stock-admin", name)).await;
        assert!(status.is_success(), "{name}: {body:?}");
    }
    let (_, stock) = handle(&stock_admin, event("stock-admin", "get-sku.json")).await;
    assert_eq!(stock["on_hand"], 120, "put 100, then +20");

    let reserve_order = [
        "create-reservation.json",
        "get-reservation.json",
        "release-reservation.json",
    ];
    assert_eq!(
        files("reserve-stock"),
        reserve_order.iter().map(|s| s.to_string()).collect()
    );
    let mut answers = Vec::new();
    for name in reserve_order {
        let (status, body) = handle(&reserve_stock, event("reserve-stock", name)).await;
        assert!(status.is_success(), "{name}: {body:?}");
        answers.push(body);
    }
    // The get and release events name the reservation the create event makes.
    assert_eq!(answers[0]["reservation_id"], answers[1]["reservation_id"]);
    assert_eq!(answers[2]["status"], "RELEASED");

    // place-order: one order from a hold the API made with the key the event expects,
    // one straight from stock, and reading the latter.
    let place_order = function(
        place_order::routes(),
        PlaceOrders::new(app.store(), app.clock.clone()),
    );
    // customer-42's hold, through the campaign on tea-1 (its id is derived from the
    // caller the local gateway vouches for and the key, as the event expects).
    let customer = app.token_for(TokenKind::Customer, "customer-42");
    let hold = serde_json::json!({"lines": [{"sku": "tea-1", "quantity": 1}], "campaign_id": "singles-day"});
    let hold = app
        .send_as(
            Some(&customer),
            "POST",
            "/reservations",
            Some("example-order-hold"),
            Some(hold.to_string()),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    let order_order = [
        "create-order-from-reservation.json",
        "create-order.json",
        "get-order.json",
    ];
    assert_eq!(files("place-order"), names(&order_order));
    for name in order_order {
        let (status, body) = handle(&place_order, event("place-order", name)).await;
        assert!(status.is_success(), "{name}: {body:?}");
    }
    assert_eq!(levels(&app.stock("tea-1").await), (116, 0, 4, 120));

    // refund: one unit of that order, restocked by the queue event below.
    let queue = Arc::new(SqsQueue::new(app.sqs.clone(), app.queue_url()));
    let refund = function(
        refund::routes(),
        Refunds::new(app.store(), queue.clone(), app.clock.clone()),
    );
    assert_eq!(files("refund"), names(&["create-refund.json"]));
    let (status, body) = handle(&refund, event("refund", "create-refund.json")).await;
    assert_eq!(status, 202, "{body:?}");

    // reconcile: the queue event carries that refund's command; the schedule sweeps.
    let reconcile = Reconcile::new(app.store(), queue, app.clock.clone(), Settings::default());
    assert_eq!(
        files("reconcile"),
        names(&["compensation-message.json", "scheduled-sweep.json"])
    );
    let message: serde_json::Value =
        serde_json::from_str(&read("reconcile", "compensation-message.json")).unwrap();
    let answer = reconcile.handle(message).await.expect("an SQS batch");
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    assert_eq!(levels(&app.stock("tea-1").await), (117, 0, 3, 120));
    let schedule: serde_json::Value =
        serde_json::from_str(&read("reconcile", "scheduled-sweep.json")).unwrap();
    let summary = reconcile.handle(schedule).await.expect("a sweep");
    assert_eq!(summary["skus_audited"], 1, "{summary}");
    assert_eq!(summary["drift"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["errors"], serde_json::json!([]), "{summary}");
    app.cleanup().await;
}
