//! Reserving and releasing stock against the emulator, many clients at once.

use futures::future::join_all;
use serde_json::json;
use stockroom_tests::{levels, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_on_fifty_units_never_oversell() {
    let app = TestApp::spawn().await;
    // As on DynamoDB: a transaction holds its items for a while, and any other
    // transaction touching one of them meanwhile is cancelled as a conflict.
    app.emulate(json!({"conflicts": true, "transaction_hold_ms": 20}))
        .await;
    app.set_stock("flash-1", 50).await;

    let answers = join_all((0..64).map(|i| {
        let app = &app;
        async move {
            app.reserve_retrying(&format!("client-{i}"), &[("flash-1", 1)], 5)
                .await
        }
    }))
    .await;
    let client_retries: usize = answers.iter().map(|(_, busy)| busy).sum();
    let answers: Vec<_> = answers.into_iter().map(|(a, _)| a).collect();
    let stats = app.emulator_stats().await;
    let n = |f: &str| {
        stats[f]
            .as_u64()
            .unwrap_or_else(|| panic!("{f} in {stats}"))
    };
    let (attempted, committed) = (n("transactions_attempted"), n("transactions_committed"));
    println!(
        "64 clients on 50 units: {attempted} transactions for {committed} commits, {} cancelled \
         by conflict, {} by condition; {client_retries} client retries after 503",
        n("transactions_cancelled_conflict"),
        n("transactions_cancelled_condition"),
    );
    assert!(
        n("transactions_cancelled_conflict") > 0,
        "the race must have produced conflicts: {stats}"
    );
    assert!(attempted > committed, "conflicts were retried: {stats}");

    let won = answers.iter().filter(|a| a.status == 201).count();
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 409).collect();
    assert_eq!(
        won,
        50,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 14);
    for answer in refused {
        assert_eq!(answer.code(), "insufficient_stock");
        assert_eq!(answer.body["sku"], "flash-1");
    }
    assert_eq!(levels(&app.stock("flash-1").await), (0, 50, 0, 50));
    app.cleanup().await;
}

#[tokio::test]
async fn a_short_line_refuses_the_whole_reservation_and_names_its_sku() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cups", 2).await;
    app.set_stock("lids", 10).await;

    let answer = app
        .reserve("k", &[("tea", 5), ("cups", 3), ("lids", 1)])
        .await;

    assert_eq!(answer.status, 409, "{}", answer.text);
    assert_eq!(answer.code(), "insufficient_stock");
    assert_eq!(answer.body["sku"], "cups");
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    assert_eq!(levels(&app.stock("cups").await), (2, 0, 0, 2));
    assert_eq!(levels(&app.stock("lids").await), (10, 0, 0, 10));

    let unknown = app.reserve("k2", &[("tea", 1), ("ghost", 1)]).await;
    assert_eq!((unknown.status, unknown.code()), (404, "sku_not_found"));
    assert_eq!(unknown.body["sku"], "ghost");
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    app.cleanup().await;
}

#[tokio::test]
async fn a_multi_line_reservation_moves_every_line() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cups", 4).await;

    let answer = app.reserve("k", &[("tea", 5), ("cups", 4)]).await;

    assert_eq!(answer.status, 201, "{}", answer.text);
    let r = &answer.body;
    assert!(r["reservation_id"].as_str().unwrap().starts_with("res_"));
    assert_eq!(r["status"], "HELD");
    assert_eq!(
        r["lines"],
        json!([{"sku": "tea", "quantity": 5}, {"sku": "cups", "quantity": 4}])
    );
    assert!(r["expires_at"].as_str().unwrap() > r["created_at"].as_str().unwrap());
    assert_eq!(levels(&app.stock("tea").await), (5, 5, 0, 10));
    assert_eq!(levels(&app.stock("cups").await), (0, 4, 0, 4));

    let id = r["reservation_id"].as_str().unwrap();
    let read = app
        .send("GET", &format!("/reservations/{id}"), None, None)
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, answer.body);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_one_effect_sequentially_and_concurrently() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 100).await;
    let body = json!({"lines": [{"sku": "tea", "quantity": 2}], "customer_id": "c-1"});

    let mut sequential = Vec::new();
    for _ in 0..10 {
        sequential.push(app.post("/reservations", "seq-key", &body).await);
    }
    let concurrent = join_all((0..10).map(|_| app.post("/reservations", "conc-key", &body))).await;

    for answers in [&sequential, &concurrent] {
        assert!(
            answers.iter().all(|a| a.status == 201),
            "{:?}",
            answers.iter().map(|a| &a.text).collect::<Vec<_>>()
        );
        assert!(
            answers.iter().all(|a| a.text == answers[0].text),
            "every answer is the first one"
        );
        let replays = answers
            .iter()
            .filter(|a| a.header("idempotent-replayed") == Some("true"))
            .count();
        assert_eq!(replays, 9, "all but the first are marked as replays");
    }
    assert_eq!(sequential[0].header("idempotent-replayed"), None);
    assert_ne!(
        sequential[0].body["reservation_id"],
        concurrent[0].body["reservation_id"]
    );
    // Two keys, two reservations of 2 units: one decrement each.
    assert_eq!(levels(&app.stock("tea").await), (96, 4, 0, 100));

    let other_body = json!({"lines": [{"sku": "tea", "quantity": 3}]});
    let reused = app.post("/reservations", "seq-key", &other_body).await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "idempotency_key_reused")
    );

    let legacy = app
        .send("POST", "/reservations", None, Some(body.to_string()))
        .await;
    assert_eq!(
        (legacy.status, legacy.code()),
        (400, "idempotency_key_required")
    );
    assert_eq!(levels(&app.stock("tea").await), (96, 4, 0, 100));

    // Key order and spacing do not make another request.
    let same = app
        .send(
            "POST",
            "/reservations",
            Some("seq-key"),
            Some(r#"{ "customer_id":"c-1", "lines":[{"quantity":2,"sku":"tea"}] }"#.into()),
        )
        .await;
    assert_eq!(same.status, 201);
    assert_eq!(same.header("idempotent-replayed"), Some("true"));
    app.cleanup().await;
}

#[tokio::test]
async fn x_idempotency_key_is_accepted_too() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 5).await;
    let body = json!({"lines": [{"sku": "tea", "quantity": 1}]}).to_string();
    let send = || {
        app.http
            .post(format!("{}/reservations", app.base))
            .bearer_auth(app.default_token("POST", "/reservations").expect("a token"))
            .header("X-Idempotency-Key", "legacy-1")
            .body(body.clone())
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(levels(&app.stock("tea").await), (4, 1, 0, 5));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releasing_gives_units_back_once_however_often_it_is_called() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cups", 10).await;
    let a = app.reserve("a", &[("tea", 3), ("cups", 1)]).await;
    let b = app.reserve("b", &[("tea", 4)]).await;
    assert_eq!(levels(&app.stock("tea").await), (3, 7, 0, 10));

    let path_a = format!(
        "/reservations/{}",
        a.body["reservation_id"].as_str().unwrap()
    );
    for _ in 0..3 {
        let released = app.send("DELETE", &path_a, None, None).await;
        assert_eq!(released.status, 200, "{}", released.text);
        assert_eq!(released.body["status"], "RELEASED");
    }
    assert_eq!(levels(&app.stock("tea").await), (6, 4, 0, 10));
    assert_eq!(levels(&app.stock("cups").await), (10, 0, 0, 10));

    let path_b = format!(
        "/reservations/{}",
        b.body["reservation_id"].as_str().unwrap()
    );
    let answers = join_all((0..16).map(|_| app.send("DELETE", &path_b, None, None))).await;
    assert!(answers
        .iter()
        .all(|r| r.status == 200 && r.body["status"] == "RELEASED"));
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));

    let read = app.send("GET", &path_b, None, None).await;
    assert_eq!(read.body["status"], "RELEASED");
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_reservations_are_not_found() {
    let app = TestApp::spawn().await;
    for path in [
        "/reservations/res_01J9Z3K8Q4W6N2V5T7R0XGHPBM",
        "/reservations/nonsense",
    ] {
        for method in ["GET", "DELETE"] {
            let answer = app.send(method, path, None, None).await;
            assert_eq!(
                (answer.status, answer.code()),
                (404, "reservation_not_found"),
                "{method} {path}"
            );
        }
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_replay_still_answers_after_the_stock_ran_out() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 1).await;
    let first = app.reserve("only", &[("tea", 1)]).await;
    assert_eq!(first.status, 201);
    let again = app.reserve("only", &[("tea", 1)]).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.text, first.text);
    let other = app.reserve("another", &[("tea", 1)]).await;
    assert_eq!((other.status, other.code()), (409, "insufficient_stock"));
    app.cleanup().await;
}
