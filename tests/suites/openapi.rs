//! `openapi.json` at the top of the repository is the document the code generates: the
//! same paths as the routers' routes, the same shapes as the types the handlers read and
//! write. The local run serves it at `GET /openapi.json`.

use std::collections::BTreeSet;

use serde_json::Value;
use stockroom_local::openapi;
use stockroom_local::project_root;
use stockroom_tests::TestApp;

const REGENERATE: &str =
    "STOCKROOM_WRITE_OPENAPI=1 cargo nextest run -p stockroom-tests --test openapi";

fn committed() -> String {
    let path = project_root().join("openapi.json");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate with `{REGENERATE}`", path.display()))
}

#[test]
fn committed_document_is_what_the_code_generates() {
    let generated = openapi::json();
    if std::env::var_os("STOCKROOM_WRITE_OPENAPI").is_some() {
        std::fs::write(project_root().join("openapi.json"), &generated)
            .expect("write openapi.json");
    }
    assert!(
        committed() == generated,
        "openapi.json differs from the document the code generates; regenerate it with `{REGENERATE}` and commit it"
    );
}

#[test]
fn document_has_exactly_the_routers_routes() {
    let document: Value = serde_json::from_str(&openapi::json()).expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let routed: BTreeSet<String> = openapi::routes().iter().map(|r| r.to_string()).collect();
    assert_eq!(documented, routed);
}

#[test]
fn every_created_answer_names_location_and_every_post_its_idempotency_key() {
    let document = openapi::json();
    let document: Value = serde_json::from_str(&document).expect("JSON");
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let responses = op["responses"].as_object().expect("responses");
            if let Some(created) = responses.get("201") {
                assert!(
                    created["headers"]["Location"].is_object(),
                    "{method} {path}"
                );
            }
            assert!(
                responses["503"]["headers"]["Retry-After"].is_object(),
                "{method} {path}"
            );
            let keyed = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "Idempotency-Key" && p["required"] == true);
            assert!(
                method != "post" || keyed,
                "{method} {path} documents no Idempotency-Key"
            );
        }
    }
}

#[tokio::test]
async fn local_run_serves_the_document() {
    let app = TestApp::spawn().await;
    let answer = app.send("GET", "/openapi.json", None, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.text, openapi::json());
}

#[test]
fn every_link_names_an_operation_of_the_document_in_openapi_spelling() {
    let document: Value = serde_json::from_str(&openapi::json()).expect("JSON");
    let operations: Vec<&Value> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("a path item").values())
        .collect();
    let ids: BTreeSet<&str> = operations
        .iter()
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    assert_eq!(ids.len(), operations.len(), "operation ids are unique");
    let mut links = 0;
    for op in &operations {
        for response in op["responses"].as_object().expect("responses").values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let target = link["operationId"].as_str();
                assert!(
                    target.is_some_and(|id| ids.contains(id)),
                    "{} link {name}: {link}",
                    op["operationId"]
                );
                links += 1;
            }
        }
    }
    assert!(links > 0, "the document links no operations");
}
