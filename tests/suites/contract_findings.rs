//! What the contract run (`infra/contract`: schemathesis against a local server) found
//! in `openapi.json`: requests the document allowed and the server refuses. Each test
//! shows the server's refusal and that the document now leaves the request out.

use serde_json::{json, Value};
use stockroom_local::openapi;
use stockroom_tests::TestApp;

fn document() -> Value {
    serde_json::from_str(&openapi::json()).expect("JSON")
}

fn component<'a>(document: &'a Value, name: &str) -> &'a Value {
    &document["components"]["schemas"][name]
}

/// The `required` lists of the `key` ("oneOf", "anyOf") alternatives of `schema`'s
/// cross-member rule (the second item of its `allOf`), and their null-only members.
fn alternatives(schema: &Value, key: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let rule = &schema["allOf"][1];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().expect("a name").to_owned())
            .collect()
    };
    rule[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} rule in {schema}"))
        .iter()
        .map(|alternative| {
            let null_only = alternative["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, member)| member["type"] == "null")
                .map(|(name, _)| name.clone())
                .collect();
            (strings(&alternative["required"]), null_only)
        })
        .collect()
}

#[tokio::test]
async fn a_zero_delta_is_refused_and_outside_the_document() {
    let document = document();
    let ranges: Vec<(i64, i64)> = component(&document, "Delta")["oneOf"]
        .as_array()
        .expect("Delta is two ranges")
        .iter()
        .map(|r| {
            (
                r["minimum"].as_i64().expect("minimum"),
                r["maximum"].as_i64().expect("maximum"),
            )
        })
        .collect();
    assert_eq!(ranges, [(-1_000_000_000, -1), (1, 1_000_000_000)]);

    let app = TestApp::spawn().await;
    let set = app.set_stock("tea", 5).await;
    assert_eq!(set.status, 201, "{}", set.text);
    let zero = app
        .post(
            "/skus/tea/adjustments",
            "zero",
            &json!({"delta": 0, "reason": "nothing"}),
        )
        .await;
    assert_eq!((zero.status, zero.code()), (400, "invalid_request"));
}

#[tokio::test]
async fn an_order_needs_exactly_one_source_and_the_document_says_so() {
    let document = document();
    let sources = alternatives(component(&document, "OrderBody"), "oneOf");
    let required: Vec<_> = sources.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(required, [vec!["reservation_id"], vec!["lines"]]);

    let app = TestApp::spawn().await;
    let lines = json!([{"sku": "tea", "quantity": 1}]);
    let reservation = "res_00000000000000000000000000";
    for (key, body) in [
        ("neither", json!({})),
        (
            "both",
            json!({"reservation_id": reservation, "lines": lines}),
        ),
        ("nulls", json!({"reservation_id": null, "lines": null})),
    ] {
        let answer = app.post("/orders", key, &body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_request"),
            "{key}: {}",
            answer.text
        );
    }
}

/// A campaign hold counts against a customer's limit: a customer's token names them; staff
/// (the harness's default caller on customer routes) must name one in the body.
#[tokio::test]
async fn a_staff_hold_in_a_campaign_names_its_customer() {
    let document = document();
    let customer = &component(&document, "NewReservation")["properties"]["customer_id"];
    assert!(
        customer.to_string().contains("Staff name one"),
        "the document says who the customer is: {customer}"
    );
    let app = TestApp::spawn().await;
    let answer = app
        .post(
            "/reservations",
            "no-customer",
            &json!({"lines": [{"sku": "tea", "quantity": 1}], "campaign_id": "spring"}),
        )
        .await;
    assert_eq!((answer.status, answer.code()), (400, "invalid_request"));
}

#[tokio::test]
async fn dot_names_reach_no_route_and_are_outside_the_document() {
    let document = document();
    for name in ["Sku", "CampaignId"] {
        let pattern = component(&document, name)["pattern"]
            .as_str()
            .expect("a pattern");
        assert!(pattern.starts_with(r"^(?!\.\.?$)"), "{name}: {pattern}");
    }

    // A dot segment never reaches a route, even percent-encoded: the server answers that
    // there is no route, a code the operation does not document.
    let app = TestApp::spawn().await;
    for path in ["/skus/%2E", "/skus/%2E%2E", "/campaigns/%2E%2E"] {
        let answer = app.send("GET", path, None, None).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "route_not_found"),
            "{path}: {}",
            answer.text
        );
    }
}
