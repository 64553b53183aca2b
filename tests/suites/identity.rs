//! Identity and ownership through the whole stack (local gateway, functions, emulator):
//! the customer is who the token says, customers touch only their own holds and orders,
//! campaign limits cannot be dodged, keys are scoped per caller.

use futures::future::join_all;
use serde_json::{json, Value};
use stockroom_tests::{levels, Answer, TestApp, TokenKind};

/// `app` sends `body` to `path` as the holder of `token`.
async fn post_as(app: &TestApp, token: &str, path: &str, key: &str, body: &Value) -> Answer {
    app.send_as(Some(token), "POST", path, Some(key), Some(body.to_string()))
        .await
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> Answer {
    app.send_as(Some(token), "GET", path, None, None).await
}

/// A campaign on `skus`, running now, with a limit of `limit` units per customer.
async fn campaign(app: &TestApp, id: &str, skus: &[&str], limit: u32) {
    let terms = json!({
        "skus": skus,
        "starts_at": "2000-01-01T00:00:00Z",
        "ends_at": "2999-01-01T00:00:00Z",
        "per_customer_limit": limit,
    });
    let put = app
        .send(
            "PUT",
            &format!("/campaigns/{id}"),
            None,
            Some(terms.to_string()),
        )
        .await;
    assert!(put.status == 201 || put.status == 200, "{}", put.text);
}

#[tokio::test]
async fn one_customer_firing_twenty_requests_every_way_gets_exactly_the_limit() {
    let app = TestApp::spawn().await;
    app.set_stock("drop", 100).await;
    campaign(&app, "drop-day", &["drop"], 3).await;
    let token = app.token_for(TokenKind::Customer, "bot-1");
    let line = json!([{"sku": "drop", "quantity": 1}]);
    // 20 at once: through the campaign (some with invented customer ids), without it, and
    // as one-shot orders.
    let requests = (0..20).map(|i| {
        let (path, body) = match i % 4 {
            0 => ("/reservations", json!({"lines": line, "campaign_id": "drop-day"})),
            1 => (
                "/reservations",
                json!({"lines": line, "campaign_id": "drop-day", "customer_id": format!("invented-{i}")}),
            ),
            2 => ("/reservations", json!({"lines": line})),
            _ => ("/orders", json!({"lines": line})),
        };
        let (app, token) = (&app, &token);
        async move { post_as(app, token, path, &format!("k{i}"), &body).await }
    });
    let answers = join_all(requests).await;
    let mut held = 0;
    let mut refusals: Vec<(u16, String)> = Vec::new();
    for answer in &answers {
        match answer.status {
            201 => held += 1,
            _ => refusals.push((answer.status, answer.code().to_owned())),
        }
    }
    assert_eq!(held, 3, "{refusals:?}");
    for (status, code) in &refusals {
        assert!(
            matches!(
                (*status, code.as_str()),
                (409, "purchase_limit_exceeded") | (403, "forbidden") | (409, "campaign_required")
            ),
            "{status} {code}"
        );
    }
    let forbidden = refusals.iter().filter(|(s, _)| *s == 403).count();
    let required = refusals
        .iter()
        .filter(|(_, c)| c == "campaign_required")
        .count();
    assert_eq!((forbidden, required), (5, 10));
    // Only the three holds moved stock.
    assert_eq!(levels(&app.stock("drop").await), (97, 3, 0, 100));
    app.cleanup().await;
}

#[tokio::test]
async fn a_customer_cannot_touch_another_customers_hold_or_order_but_staff_can() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let ann = app.token_for(TokenKind::Customer, "ann");
    let bob = app.token_for(TokenKind::Customer, "bob");
    let staff = app.token_for(TokenKind::Staff, "sam");
    let lines = json!([{"sku": "tea", "quantity": 1}]);

    let hold = post_as(&app, &ann, "/reservations", "h1", &json!({"lines": lines})).await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    assert_eq!(hold.body["customer_id"], "ann");
    let hold_id = hold.body["reservation_id"].as_str().unwrap().to_owned();
    let hold_path = format!("/reservations/{hold_id}");
    let sold = post_as(&app, &ann, "/orders", "o1", &json!({"lines": lines})).await;
    assert_eq!(sold.status, 201, "{}", sold.text);
    let order_path = format!("/orders/{}", sold.body["order_id"].as_str().unwrap());
    let before = app.stock("tea").await;

    // Bob: as if neither existed, and nothing changes.
    let read = get_as(&app, &bob, &hold_path).await;
    assert_eq!((read.status, read.code()), (404, "reservation_not_found"));
    let release = app
        .send_as(Some(&bob), "DELETE", &hold_path, None, None)
        .await;
    assert_eq!(
        (release.status, release.code()),
        (404, "reservation_not_found")
    );
    let commit = post_as(
        &app,
        &bob,
        "/orders",
        "b1",
        &json!({"reservation_id": hold_id}),
    )
    .await;
    assert_eq!(
        (commit.status, commit.code()),
        (404, "reservation_not_found")
    );
    let read = get_as(&app, &bob, &order_path).await;
    assert_eq!((read.status, read.code()), (404, "order_not_found"));
    let refund = post_as(
        &app,
        &bob,
        &format!("{order_path}/refunds"),
        "b2",
        &json!({}),
    )
    .await;
    assert_eq!((refund.status, refund.code()), (404, "order_not_found"));
    assert_eq!(app.stock("tea").await, before);

    // Ann and staff see both; staff may release ann's hold and refund her order.
    assert_eq!(get_as(&app, &ann, &hold_path).await.status, 200);
    assert_eq!(get_as(&app, &staff, &order_path).await.status, 200);
    let released = app
        .send_as(Some(&staff), "DELETE", &hold_path, None, None)
        .await;
    assert_eq!(
        (released.status, released.body["status"].as_str()),
        (200, Some("RELEASED"))
    );
    let refunded = post_as(
        &app,
        &staff,
        &format!("{order_path}/refunds"),
        "s1",
        &json!({"restock": false}),
    )
    .await;
    assert_eq!(refunded.status, 201, "{}", refunded.text);
    app.cleanup().await;
}

#[tokio::test]
async fn the_same_key_from_two_customers_is_two_requests() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let body = json!({"lines": [{"sku": "tea", "quantity": 2}]});
    let ann = app.token_for(TokenKind::Customer, "ann");
    let bob = app.token_for(TokenKind::Customer, "bob");
    let first = post_as(&app, &ann, "/reservations", "same-key", &body).await;
    let second = post_as(&app, &bob, "/reservations", "same-key", &body).await;
    assert_eq!((first.status, second.status), (201, 201), "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), None);
    assert_ne!(first.body["reservation_id"], second.body["reservation_id"]);
    assert_eq!(
        (
            first.body["customer_id"].as_str(),
            second.body["customer_id"].as_str()
        ),
        (Some("ann"), Some("bob"))
    );
    // Each one's retry is its own replay.
    let again = post_as(&app, &bob, "/reservations", "same-key", &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, second.body);
    assert_eq!(levels(&app.stock("tea").await), (6, 4, 0, 10));
    app.cleanup().await;
}

#[tokio::test]
async fn staff_sell_campaign_skus_outside_the_campaign_and_a_sku_taken_out_sells_again() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cup", 10).await;
    campaign(&app, "sale", &["tea", "cup"], 2).await;
    let ann = app.token_for(TokenKind::Customer, "ann");
    let staff = app.token_for(TokenKind::Staff, "sam");
    let cup = json!({"lines": [{"sku": "cup", "quantity": 1}]});
    let refused = post_as(&app, &ann, "/orders", "a1", &cup).await;
    assert_eq!((refused.status, refused.code()), (409, "campaign_required"));
    assert_eq!(
        (
            refused.body["campaign_id"].as_str(),
            refused.body["sku"].as_str()
        ),
        (Some("sale"), Some("cup"))
    );
    let by_staff = post_as(&app, &staff, "/orders", "s1", &cup).await;
    assert_eq!(by_staff.status, 201, "{}", by_staff.text);

    campaign(&app, "sale", &["tea"], 2).await;
    let now_free = post_as(&app, &ann, "/orders", "a2", &cup).await;
    assert_eq!(now_free.status, 201, "{}", now_free.text);
    assert_eq!(levels(&app.stock("cup").await), (8, 0, 2, 10));
    app.cleanup().await;
}
