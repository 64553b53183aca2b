//! Bad input: every case gets a problem response with its status and code, and the
//! store does not change.

use serde_json::json;
use stockroom_tests::{levels, TestApp};

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    key: Option<&'static str>,
    body: Option<String>,
    status: u16,
    code: &'static str,
}

fn reservation(body: serde_json::Value) -> Option<String> {
    Some(body.to_string())
}

fn cases() -> Vec<Case> {
    let line =
        |q: serde_json::Value| reservation(json!({"lines": [{"sku": "tea", "quantity": q}]}));
    let case = |name, method, path, key, body, status, code| Case {
        name,
        method,
        path,
        key,
        body,
        status,
        code,
    };
    let many_lines: Vec<_> = (0..26)
        .map(|i| json!({"sku": format!("s{i}"), "quantity": 1}))
        .collect();
    vec![
        case(
            "malformed json",
            "POST",
            "/reservations",
            Some("k1"),
            Some("{\"lines\": [".into()),
            400,
            "invalid_request",
        ),
        case(
            "not an object",
            "POST",
            "/reservations",
            Some("k2"),
            Some("[1,2]".into()),
            400,
            "invalid_request",
        ),
        case(
            "empty body",
            "POST",
            "/reservations",
            Some("k3"),
            None,
            400,
            "invalid_request",
        ),
        case(
            "lines not a list",
            "POST",
            "/reservations",
            Some("k4"),
            reservation(json!({"lines": "tea"})),
            400,
            "invalid_request",
        ),
        case(
            "quantity as string",
            "POST",
            "/reservations",
            Some("k5"),
            line(json!("1")),
            400,
            "invalid_request",
        ),
        case(
            "quantity 0",
            "POST",
            "/reservations",
            Some("k6"),
            line(json!(0)),
            400,
            "invalid_request",
        ),
        case(
            "quantity -1",
            "POST",
            "/reservations",
            Some("k7"),
            line(json!(-1)),
            400,
            "invalid_request",
        ),
        case(
            "quantity 10001",
            "POST",
            "/reservations",
            Some("k8"),
            line(json!(10001)),
            400,
            "invalid_request",
        ),
        case(
            "quantity 2^64",
            "POST",
            "/reservations",
            Some("k9"),
            Some(r#"{"lines":[{"sku":"tea","quantity":18446744073709551616}]}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "quantity 1.5",
            "POST",
            "/reservations",
            Some("k10"),
            line(json!(1.5)),
            400,
            "invalid_request",
        ),
        case(
            "no lines",
            "POST",
            "/reservations",
            Some("k11"),
            reservation(json!({"lines": []})),
            400,
            "invalid_request",
        ),
        case(
            "26 lines",
            "POST",
            "/reservations",
            Some("k12"),
            reservation(json!({"lines": many_lines})),
            400,
            "invalid_request",
        ),
        case(
            "duplicate skus",
            "POST",
            "/reservations",
            Some("k13"),
            reservation(
                json!({"lines": [{"sku": "tea", "quantity": 1}, {"sku": "tea", "quantity": 2}]}),
            ),
            400,
            "invalid_request",
        ),
        case(
            "bad sku characters",
            "POST",
            "/reservations",
            Some("k14"),
            reservation(json!({"lines": [{"sku": "tea/../x", "quantity": 1}]})),
            400,
            "invalid_request",
        ),
        case(
            "sku too long",
            "POST",
            "/reservations",
            Some("k15"),
            reservation(json!({"lines": [{"sku": "a".repeat(65), "quantity": 1}]})),
            400,
            "invalid_request",
        ),
        case(
            "hold too short",
            "POST",
            "/reservations",
            Some("k16"),
            reservation(json!({"lines": [{"sku": "tea", "quantity": 1}], "hold_seconds": 59})),
            400,
            "invalid_request",
        ),
        case(
            "hold too long",
            "POST",
            "/reservations",
            Some("k17"),
            reservation(json!({"lines": [{"sku": "tea", "quantity": 1}], "hold_seconds": 3601})),
            400,
            "invalid_request",
        ),
        case(
            "customer not a string",
            "POST",
            "/reservations",
            Some("k18"),
            reservation(json!({"lines": [{"sku": "tea", "quantity": 1}], "customer_id": 7})),
            400,
            "invalid_request",
        ),
        case(
            "body over 64 KiB",
            "POST",
            "/reservations",
            Some("k19"),
            Some(format!(
                r#"{{"lines":[{{"sku":"tea","quantity":1}}],"pad":"{}"}}"#,
                "x".repeat(70_000)
            )),
            413,
            "payload_too_large",
        ),
        case(
            "no idempotency key",
            "POST",
            "/reservations",
            None,
            line(json!(1)),
            400,
            "idempotency_key_required",
        ),
        case(
            "key too long",
            "POST",
            "/reservations",
            Some(Box::leak("k".repeat(256).into_boxed_str())),
            line(json!(1)),
            400,
            "idempotency_key_required",
        ),
        case(
            "unknown route",
            "GET",
            "/warehouses",
            None,
            None,
            404,
            "route_not_found",
        ),
        case(
            "unknown nested route",
            "POST",
            "/skus/tea/whatever",
            Some("k20"),
            line(json!(1)),
            404,
            "route_not_found",
        ),
        case(
            "wrong method on reservations",
            "PUT",
            "/reservations",
            None,
            line(json!(1)),
            405,
            "method_not_allowed",
        ),
        case(
            "wrong method on a sku",
            "DELETE",
            "/skus/tea",
            None,
            None,
            405,
            "method_not_allowed",
        ),
        case(
            "wrong method on adjustments",
            "GET",
            "/skus/tea/adjustments",
            None,
            None,
            405,
            "method_not_allowed",
        ),
        case(
            "bad sku in path",
            "PUT",
            "/skus/te%20a",
            None,
            Some(json!({"on_hand": 1}).to_string()),
            400,
            "invalid_request",
        ),
        case(
            "on_hand negative",
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": -1}).to_string()),
            400,
            "invalid_request",
        ),
        case(
            "on_hand missing",
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"shards": 2}).to_string()),
            400,
            "invalid_request",
        ),
        case(
            "shards 0",
            "PUT",
            "/skus/tea",
            None,
            Some(json!({"on_hand": 5, "shards": 0}).to_string()),
            400,
            "invalid_request",
        ),
        case(
            "delta 0",
            "POST",
            "/skus/tea/adjustments",
            Some("k21"),
            Some(json!({"delta": 0, "reason": "x"}).to_string()),
            400,
            "invalid_request",
        ),
        case(
            "delta as text",
            "POST",
            "/skus/tea/adjustments",
            Some("k22"),
            Some(json!({"delta": "5", "reason": "x"}).to_string()),
            400,
            "invalid_request",
        ),
        case(
            "no reason",
            "POST",
            "/skus/tea/adjustments",
            Some("k23"),
            Some(json!({"delta": 5}).to_string()),
            400,
            "invalid_request",
        ),
    ]
}

#[tokio::test]
async fn every_bad_request_gets_its_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let before = app.stock("tea").await;

    for case in cases() {
        let answer = app
            .send(case.method, case.path, case.key, case.body.clone())
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (case.status, case.code),
            "{}: {}",
            case.name,
            answer.text
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json"),
            "{}",
            case.name
        );
        assert_eq!(answer.body["status"], case.status, "{}", case.name);
        for member in ["type", "title", "detail"] {
            assert!(
                answer.body[member].is_string(),
                "{}: {member} in {}",
                case.name,
                answer.text
            );
        }
        assert_eq!(
            app.stock("tea").await,
            before,
            "{} changed the stock",
            case.name
        );
    }
    assert_eq!(levels(&before), (10, 0, 0, 10));
    app.cleanup().await;
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let app = TestApp::spawn().await;
    let answer = app.send("PATCH", "/skus/tea", None, None).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("GET, PUT"));
    app.cleanup().await;
}
