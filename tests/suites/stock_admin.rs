//! Setting, adjusting and reading stock.

use futures::future::join_all;
use serde_json::json;
use stockroom_tests::{levels, TestApp};

#[tokio::test]
async fn put_creates_then_updates_and_get_reads() {
    let app = TestApp::spawn().await;
    let missing = app.send("GET", "/skus/tea", None, None).await;
    assert_eq!((missing.status, missing.code()), (404, "sku_not_found"));

    let created = app
        .send(
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": 20}).to_string()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["sku"], "tea");
    assert_eq!(created.body["shards"], 1);
    assert_eq!(levels(&created.body), (20, 0, 0, 20));

    app.reserve("r", &[("tea", 5)]).await;
    let updated = app
        .send(
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": 30}).to_string()),
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(levels(&updated.body), (25, 5, 0, 30));
    assert_eq!(levels(&app.stock("tea").await), (25, 5, 0, 30));

    // Cutting on_hand below what is held is refused, and changes nothing.
    let too_low = app
        .send(
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": 4}).to_string()),
        )
        .await;
    assert_eq!(
        (too_low.status, too_low.code()),
        (409, "insufficient_stock")
    );
    assert_eq!(levels(&app.stock("tea").await), (25, 5, 0, 30));

    let cut = app
        .send(
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": 5}).to_string()),
        )
        .await;
    assert_eq!(levels(&cut.body), (0, 5, 0, 5));
    let view = app.stock("tea").await;
    assert!(view["updated_at"].as_str().unwrap().ends_with('Z'));
    app.cleanup().await;
}

#[tokio::test]
async fn adjustments_apply_once_and_never_go_below_zero() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let add = json!({"delta": 5, "reason": "delivery"});

    let first = app.post("/skus/tea/adjustments", "adj-1", &add).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(levels(&first.body), (15, 0, 0, 15));
    let again = app.post("/skus/tea/adjustments", "adj-1", &add).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text);
    assert_eq!(levels(&app.stock("tea").await), (15, 0, 0, 15));

    let other = app
        .post(
            "/skus/tea/adjustments",
            "adj-1",
            &json!({"delta": 6, "reason": "delivery"}),
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused")
    );

    app.reserve("r", &[("tea", 10)]).await;
    let too_much = app
        .post(
            "/skus/tea/adjustments",
            "adj-2",
            &json!({"delta": -6, "reason": "breakage"}),
        )
        .await;
    assert_eq!(
        (too_much.status, too_much.code()),
        (409, "insufficient_stock")
    );
    let fine = app
        .post(
            "/skus/tea/adjustments",
            "adj-3",
            &json!({"delta": -5, "reason": "breakage"}),
        )
        .await;
    assert_eq!(levels(&fine.body), (0, 10, 0, 10));
    // A refused request is not recorded: the same key is evaluated afresh.
    app.post(
        "/skus/tea/adjustments",
        "adj-4",
        &json!({"delta": 6, "reason": "delivery"}),
    )
    .await;
    let retried = app
        .post(
            "/skus/tea/adjustments",
            "adj-2",
            &json!({"delta": -6, "reason": "breakage"}),
        )
        .await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(levels(&app.stock("tea").await), (0, 10, 0, 10));

    let ghost = app.post("/skus/ghost/adjustments", "adj-5", &add).await;
    assert_eq!((ghost.status, ghost.code()), (404, "sku_not_found"));
    let no_key = app
        .send("POST", "/skus/tea/adjustments", None, Some(add.to_string()))
        .await;
    assert_eq!(
        (no_key.status, no_key.code()),
        (400, "idempotency_key_required")
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adjustments_and_reservations_keep_the_books() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 100).await;
    let adjust = (0..10).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/skus/tea/adjustments",
                &format!("adj-{i}"),
                &json!({"delta": 3, "reason": "delivery"}),
            )
            .await
        }
    });
    let reserve = (0..10).map(|i| {
        let app = &app;
        async move { app.reserve(&format!("res-{i}"), &[("tea", 2)]).await }
    });
    let (adjusted, reserved) = futures::join!(join_all(adjust), join_all(reserve));
    assert!(
        adjusted.iter().all(|a| a.status == 200),
        "{:?}",
        adjusted.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    assert!(reserved.iter().all(|a| a.status == 201));
    assert_eq!(levels(&app.stock("tea").await), (110, 20, 0, 130));
    app.cleanup().await;
}

#[tokio::test]
async fn shards_given_at_creation_spread_the_units() {
    let app = TestApp::spawn().await;
    let created = app
        .send(
            "PUT",
            "/skus/hot",
            None,
            Some(json!({"on_hand": 10, "shards": 4}).to_string()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["shards"], 4);
    // Ten single units come out of four shards of 3, 3, 2 and 2.
    for i in 0..10 {
        assert_eq!(
            app.reserve(&format!("k{i}"), &[("hot", 1)]).await.status,
            201
        );
    }
    assert_eq!(
        app.reserve("k-last", &[("hot", 1)]).await.code(),
        "insufficient_stock"
    );
    assert_eq!(levels(&app.stock("hot").await), (0, 10, 0, 10));
    app.cleanup().await;
}

#[tokio::test]
async fn skus_are_listed_a_page_at_a_time_in_the_order_of_their_ids() {
    let app = TestApp::spawn().await;
    let empty = app.send("GET", "/skus", None, None).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body, json!({"skus": []}));
    for (i, sku) in ["tea", "cup", "pot", "mug", "lid"].iter().enumerate() {
        app.set_stock(sku, i as u64 + 1).await;
    }
    app.reserve("r", &[("pot", 2)]).await;

    let mut seen = Vec::new();
    let mut path = "/skus?limit=2".to_owned();
    for _ in 0..5 {
        let page = app.send("GET", &path, None, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let skus = page.body["skus"].as_array().unwrap();
        assert!(skus.len() <= 2, "{}", page.text);
        seen.extend(
            skus.iter()
                .map(|s| (s["sku"].as_str().unwrap().to_owned(), levels(s))),
        );
        match page.body["next"].as_str() {
            Some(next) => path = format!("/skus?limit=2&after={next}"),
            None => break,
        }
    }
    let names: Vec<&str> = seen.iter().map(|(sku, _)| sku.as_str()).collect();
    assert_eq!(names, ["cup", "lid", "mug", "pot", "tea"]);
    assert_eq!(seen[3].1, (1, 2, 0, 3), "pot's levels");
    // The default page holds them all, with no next page.
    let all = app.send("GET", "/skus", None, None).await;
    assert_eq!(all.body["skus"].as_array().unwrap().len(), 5);
    assert!(all.body.get("next").is_none(), "{}", all.text);

    for bad in [
        "/skus?limit=0",
        "/skus?limit=101",
        "/skus?limit=two",
        "/skus?after=a%20b",
        "/skus?page=2",
        "/skus?limit=2&limit=3",
    ] {
        let refused = app.send("GET", bad, None, None).await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "invalid_request"),
            "{bad}: {}",
            refused.text
        );
    }
    app.cleanup().await;
}
