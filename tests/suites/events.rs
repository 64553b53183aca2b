//! Every file under `events/` is an event its function accepts (a 2xx answer), fed in
//! the order a user would send them.

use std::collections::BTreeSet;
use std::path::Path;

use lambda_http::Request;
use reserve_stock::ReserveStock;
use stock_admin::StockAdmin;
use stockroom_tests::TestApp;

fn event(function: &str, name: &str) -> Request {
    let path = stockroom_local::project_root()
        .join("events")
        .join(function)
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
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

fn body(response: &lambda_http::Response<lambda_http::Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or_default()
}

#[tokio::test]
async fn every_api_event_is_accepted_by_its_handler() {
    let app = TestApp::spawn().await;
    let stock_admin = StockAdmin::new(app.store(), app.clock.clone());
    let reserve_stock = ReserveStock::new(app.store(), app.clock.clone());

    let admin_order = ["put-sku.json", "adjust-sku.json", "get-sku.json"];
    assert_eq!(
        files("stock-admin"),
        admin_order.iter().map(|s| s.to_string()).collect()
    );
    for name in admin_order {
        let response = stock_admin.handle(event("stock-admin", name)).await;
        assert!(
            response.status().is_success(),
            "{name}: {:?}",
            body(&response)
        );
    }
    let stock = body(
        &stock_admin
            .handle(event("stock-admin", "get-sku.json"))
            .await,
    );
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
        let response = reserve_stock.handle(event("reserve-stock", name)).await;
        assert!(
            response.status().is_success(),
            "{name}: {:?}",
            body(&response)
        );
        answers.push(body(&response));
    }
    // The get and release events name the reservation the create event makes.
    assert_eq!(answers[0]["reservation_id"], answers[1]["reservation_id"]);
    assert_eq!(answers[2]["status"], "RELEASED");
    app.cleanup().await;
}
