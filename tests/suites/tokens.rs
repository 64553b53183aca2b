//! The local gateway checks tokens as API Gateway does: a customer route only with a
//! verified JWT, a stock admin route only with an admin token (IAM in AWS); a refused
//! request is a 401 or 403 problem and never reaches a function.

use serde_json::{json, Value};
use stockroom_local::tokens::{self, SigningKey, AUDIENCE, ISSUER};
use stockroom_tests::{levels, Answer, TestApp, TokenKind};

fn reservation() -> String {
    json!({"lines": [{"sku": "tea", "quantity": 1}]}).to_string()
}

fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "{}",
        answer.text
    );
    let title = if status == 401 {
        "Unauthorized"
    } else {
        "Forbidden"
    };
    assert_eq!(
        answer.body["type"],
        format!("/problems/{code}"),
        "{}",
        answer.text
    );
    assert_eq!(answer.body["title"], title);
    assert_eq!(answer.body["status"], status);
    assert_eq!(answer.code(), code);
    assert!(answer.body["detail"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
}

/// Claims `mint` would give a customer, changed by `change`, signed with `key`.
fn customer_claims(change: impl FnOnce(&mut Value)) -> Value {
    let now = tokens::now();
    let mut claims =
        json!({"iss": ISSUER, "sub": "ann", "aud": AUDIENCE, "iat": now, "exp": now + 600});
    change(&mut claims);
    claims
}

#[tokio::test]
async fn refused_tokens_get_401_on_a_customer_route_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 5).await;
    let key = app.gateway.key();
    let sign = |claims: Value| tokens::sign(key, &claims).expect("signed");
    let refused: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        (
            "expired",
            Some(tokens::mint(key, TokenKind::Customer, "ann", 0).unwrap()),
        ),
        (
            "wrongly signed",
            Some(tokens::mint(&SigningKey::generate(), TokenKind::Customer, "ann", 600).unwrap()),
        ),
        (
            "wrong audience",
            Some(sign(customer_claims(|c| c["aud"] = json!("another-api")))),
        ),
        (
            "wrong issuer",
            Some(sign(customer_claims(|c| {
                c["iss"] = json!("https://elsewhere")
            }))),
        ),
        (
            "no expiry",
            Some(sign(customer_claims(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }))),
        ),
        ("malformed", Some("not-a-jwt".into())),
        ("admin token", Some(app.token_for(TokenKind::Admin, "ops"))),
    ];
    for (i, (why, token)) in refused.iter().enumerate() {
        let answer = app
            .send_as(
                token.as_deref(),
                "POST",
                "/reservations",
                Some(&format!("refused-{i}")),
                Some(reservation()),
            )
            .await;
        assert_problem(&answer, 401, "unauthorized");
        let read = app
            .send_as(token.as_deref(), "GET", "/orders/o-1", None, None)
            .await;
        assert_eq!(read.status, 401, "{why}: {}", read.text);
    }
    // Not a bearer token at all.
    for header in ["Basic YW5uOnB3", "Bearer ", "Bearer"] {
        let answer = app
            .http
            .post(format!("{}/reservations", app.base))
            .header("authorization", header)
            .header("idempotency-key", "basic")
            .body(reservation())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{header}");
    }
    assert_eq!(levels(&app.stock("tea").await), (5, 0, 0, 5));
    app.cleanup().await;
}

#[tokio::test]
async fn only_an_admin_token_opens_the_stock_admin_routes() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 5).await;
    let body = json!({"on_hand": 50}).to_string();
    for kind in [TokenKind::Customer, TokenKind::Staff] {
        let token = app.token_for(kind, "ann");
        let put = app
            .send_as(Some(&token), "PUT", "/skus/tea", None, Some(body.clone()))
            .await;
        assert_problem(&put, 403, "forbidden");
        let get = app
            .send_as(Some(&token), "GET", "/skus/tea", None, None)
            .await;
        assert_problem(&get, 403, "forbidden");
    }
    let foreign = tokens::mint(&SigningKey::generate(), TokenKind::Admin, "ops", 600).unwrap();
    let expired = tokens::mint(app.gateway.key(), TokenKind::Admin, "ops", 0).unwrap();
    for token in [
        None,
        Some(foreign.as_str()),
        Some(expired.as_str()),
        Some("x.y.z"),
    ] {
        let put = app
            .send_as(token, "PUT", "/skus/tea", None, Some(body.clone()))
            .await;
        assert_problem(&put, 401, "unauthorized");
    }
    assert_eq!(levels(&app.stock("tea").await), (5, 0, 0, 5));
    let admin = app.token_for(TokenKind::Admin, "ops");
    let put = app
        .send_as(Some(&admin), "PUT", "/skus/tea", None, Some(body))
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    app.cleanup().await;
}

#[tokio::test]
async fn a_customer_token_reaches_the_function_as_its_subject() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 5).await;
    let ann = app.token_for(TokenKind::Customer, "ann");
    let answer = app
        .send_as(
            Some(&ann),
            "POST",
            "/reservations",
            Some("ann-1"),
            Some(reservation()),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.body["customer_id"], "ann");
    assert_eq!(levels(&app.stock("tea").await), (4, 1, 0, 5));
    app.cleanup().await;
}

#[tokio::test]
async fn the_document_and_unknown_routes_need_no_token() {
    let app = TestApp::spawn().await;
    let document = app.send_as(None, "GET", "/openapi.json", None, None).await;
    assert_eq!(document.status, 200);
    let unknown = app.send_as(None, "GET", "/nowhere", None, None).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "route_not_found");
    app.cleanup().await;
}
