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

/// How many items the test's table holds.
async fn items(app: &TestApp) -> i32 {
    let mut total = 0;
    let mut start = None;
    for _ in 0..100 {
        let page = app
            .dynamodb
            .scan()
            .table_name(&app.resources.table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        total += page.count();
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return total;
        }
    }
    panic!("the table did not fit in 100 pages");
}

fn campaign(starts_at: &str, ends_at: &str) -> String {
    json!({
        "skus": ["tea"],
        "starts_at": starts_at,
        "ends_at": ends_at,
        "per_customer_limit": 2
    })
    .to_string()
}

/// Inputs that once panicked the handler (an offset past year 9999, `-i64::MIN`) or
/// were stored and then could not be read back (year 0): refused, nothing written, and
/// everything else still reads.
#[tokio::test]
async fn inputs_that_panicked_or_poisoned_reads_are_refused_and_store_nothing() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let sale = campaign("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
    let created = app.send("PUT", "/campaigns/sale", None, Some(sale)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let before = items(&app).await;

    let refused = [
        (
            "PUT",
            "/campaigns/late",
            campaign("2026-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"),
        ),
        (
            "PUT",
            "/campaigns/early",
            campaign("0000-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ),
        (
            "PUT",
            "/campaigns/early",
            campaign("0000-01-01T00:30:00+01:00", "2026-01-01T00:00:00Z"),
        ),
        (
            "PUT",
            "/sale",
            campaign("2026-01-01T00:00:00Z", "3000-01-01T00:00:00Z"),
        ),
        (
            "POST",
            "/skus/tea/adjustments",
            r#"{"delta": -9223372036854775808, "reason": "x"}"#.to_owned(),
        ),
        (
            "POST",
            "/skus/tea/adjustments",
            r#"{"delta": 9223372036854775807, "reason": "x"}"#.to_owned(),
        ),
        (
            "POST",
            "/skus/tea/adjustments",
            r#"{"delta": -1000000001, "reason": "x"}"#.to_owned(),
        ),
    ];
    for (i, (method, path, body)) in refused.into_iter().enumerate() {
        let key = format!("refused-{i}");
        let answer = app.send(method, path, Some(&key), Some(body.clone())).await;
        let expected = if path == "/sale" { 404 } else { 400 };
        assert_eq!(answer.status, expected, "{path} {body}: {}", answer.text);
        assert_eq!(items(&app).await, before, "{path} {body} stored something");
    }
    for path in ["/campaigns/late", "/campaigns/early"] {
        let answer = app.send("GET", path, None, None).await;
        assert_eq!((answer.status, answer.code()), (404, "campaign_not_found"));
    }
    let read = app.send("GET", "/campaigns/sale", None, None).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    app.cleanup().await;
}

/// `.` and `..` as ids, control and bidi characters in free text: refused, and said so.
#[tokio::test]
async fn dot_ids_and_hidden_characters_are_refused() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let before = items(&app).await;
    let order_id = app
        .order("order-1", json!([{"sku": "tea", "quantity": 2}]))
        .await;
    let refunds = format!("/orders/{order_id}/refunds");
    let after_order = items(&app).await;
    assert!(after_order > before);

    let cases: Vec<(&str, String, serde_json::Value, &str)> = vec![
        (
            "POST",
            "/reservations".into(),
            json!({"lines": [{"sku": ".", "quantity": 1}]}),
            "sku",
        ),
        (
            "POST",
            "/reservations".into(),
            json!({"lines": [{"sku": "..", "quantity": 1}]}),
            "sku",
        ),
        (
            "PUT",
            "/campaigns/c".into(),
            json!({"skus": [".."], "starts_at": "2026-01-01T00:00:00Z",
                   "ends_at": "2026-01-02T00:00:00Z", "per_customer_limit": 1}),
            "sku",
        ),
        (
            "POST",
            "/skus/tea/adjustments".into(),
            json!({"delta": 1, "reason": "new\nline"}),
            "control",
        ),
        (
            "POST",
            "/skus/tea/adjustments".into(),
            json!({"delta": 1, "reason": "fix\u{202E}txt"}),
            "bidirectional",
        ),
        (
            "POST",
            refunds.clone(),
            json!({"restock": false, "reason": "a\u{2066}b"}),
            "bidirectional",
        ),
        (
            "POST",
            refunds,
            json!({"restock": false, "reason": "bell\u{7}"}),
            "control",
        ),
    ];
    for (i, (method, path, body, says)) in cases.into_iter().enumerate() {
        let key = format!("hidden-{i}");
        let answer = app
            .send(method, &path, Some(&key), Some(body.to_string()))
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_request"),
            "{body}: {}",
            answer.text
        );
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{body}: {detail}");
        assert_eq!(items(&app).await, after_order, "{body} stored something");
    }
    app.cleanup().await;
}

/// Problem details are for people who call the API, not for Rust programmers: every
/// field of every body, given every wrong kind of value, is answered in plain words.
#[tokio::test]
async fn no_problem_names_a_rust_type() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let lines = json!([{"sku": "tea", "quantity": 1}]);
    let requests = [
        (
            "PUT",
            "/skus/tea".to_owned(),
            json!({"on_hand": 5, "shards": 2}),
        ),
        (
            "POST",
            "/skus/tea/adjustments".to_owned(),
            json!({"delta": 1, "reason": "r"}),
        ),
        (
            "PUT",
            "/campaigns/c".to_owned(),
            json!({"skus": ["tea"], "starts_at": "2026-01-01T00:00:00Z",
                   "ends_at": "2026-01-02T00:00:00Z", "per_customer_limit": 1}),
        ),
        (
            "POST",
            "/reservations".to_owned(),
            json!({"lines": lines, "customer_id": "c", "hold_seconds": 60}),
        ),
        (
            "POST",
            "/orders".to_owned(),
            json!({"lines": lines, "customer_id": "c"}),
        ),
        (
            "POST",
            "/orders/ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM/refunds".to_owned(),
            json!({"lines": lines, "restock": false, "reason": "r"}),
        ),
    ];
    let wrong = [
        json!(1),
        json!(-1.5),
        json!("x"),
        json!(true),
        json!(null),
        json!([]),
        json!({}),
        json!([[]]),
        json!([1]),
        json!([{"sku": 1}]),
        json!([{"sku": "tea", "quantity": "1"}]),
    ];
    let rust = [
        "struct",
        "enum",
        "u16",
        "u32",
        "u64",
        "i64",
        "usize",
        "f64",
        "Option",
        "Vec",
        "String",
        "serde",
        "invalid type",
        "invalid value",
        "invalid length",
        "unit value",
        "a sequence",
        "a map",
    ];
    let mut refused = 0;
    for (method, path, valid) in &requests {
        let fields: Vec<String> = valid.as_object().unwrap().keys().cloned().collect();
        for field in fields {
            for value in &wrong {
                let mut body = valid.clone();
                body[&field] = value.clone();
                let key = format!("rust-{refused}-{}", ulid::Ulid::generate());
                let answer = app
                    .send(method, path, Some(&key), Some(body.to_string()))
                    .await;
                assert!(answer.status < 500, "{path} {body}: {}", answer.text);
                if answer.status < 400 {
                    continue;
                }
                refused += 1;
                let detail = answer.body["detail"].as_str().unwrap_or_default();
                let words: Vec<&str> = detail
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .collect();
                for name in rust {
                    let named = if name.contains(' ') {
                        detail.contains(name)
                    } else {
                        words.contains(&name)
                    };
                    assert!(!named, "{path} {body}: {detail:?} names {name:?}");
                }
            }
        }
    }
    assert!(refused > 150, "only {refused} refusals");
    app.cleanup().await;
}
