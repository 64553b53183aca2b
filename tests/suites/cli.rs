//! The operator CLI's `stock import` against the local server.

use serde_json::Value;
use stockroom_cli::{
    campaign_put, campaign_show, import, read_rows, Api, CampaignTerms, CliError, Exit,
    ImportSummary,
};
use stockroom_tests::{levels, TestApp, TokenKind};

/// 1,000 rows: 990 good ones (skus `sku-0000`..), and 10 that cannot be applied.
fn thousand_rows() -> String {
    let bad = [
        (17, "bad sku,1,"),
        (101, "sku/slash,1,"),
        (202, "sku-x202,-5,"),
        (303, "sku-x303,ten,"),
        (404, "sku-x404,1,65"),
        (505, "sku-x505,1,0"),
        (606, "sku-x606,2000000000,"),
        (707, ",3,"),
        (808, "sku-x808,,"),
        (909, "sku-x909,1,x"),
    ];
    let mut csv = String::from("sku,on_hand,shards\n");
    for i in 0..1000 {
        match bad.iter().find(|(line, _)| *line == i) {
            Some((_, row)) => csv.push_str(row),
            None => csv.push_str(&format!(
                "sku-{i:04},{},{}",
                i % 50,
                if i % 7 == 0 { "4" } else { "" }
            )),
        }
        csv.push('\n');
    }
    csv
}

async fn run(api: &Api, csv: &str) -> ImportSummary {
    let (rows, refused) = read_rows(csv.as_bytes()).expect("a CSV with the columns");
    import(api, rows, refused, 8, || {})
        .await
        .expect("the API answers")
}

/// Every sku the API lists, a page of 100 at a time.
async fn listed(app: &TestApp) -> Vec<Value> {
    let mut skus = Vec::new();
    let mut path = "/skus?limit=100".to_owned();
    for _ in 0..20 {
        let page = app.send("GET", &path, None, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        skus.extend(page.body["skus"].as_array().unwrap().iter().cloned());
        match page.body["next"].as_str() {
            Some(next) => path = format!("/skus?limit=100&after={next}"),
            None => break,
        }
    }
    skus
}

#[tokio::test]
async fn an_import_applies_the_good_rows_reports_the_bad_and_a_second_run_changes_nothing() {
    let app = TestApp::spawn().await;
    app.set_stock("sku-0003", 99).await;
    let api = Api::new(&app.base, Some(app.token_for(TokenKind::Admin, "operator")));
    let csv = thousand_rows();

    let first = run(&api, &csv).await;
    assert_eq!(
        (first.created, first.updated, first.unchanged),
        (989, 1, 0),
        "{:?}",
        first.refused
    );
    let lines: Vec<u64> = first.refused.iter().map(|r| r.line).collect();
    assert_eq!(lines, [19, 103, 204, 305, 406, 507, 608, 709, 810, 911]);
    assert!(first.refused.iter().all(|r| !r.reason.is_empty()));
    assert_eq!(first.exit(), Exit::Refused);

    let skus = listed(&app).await;
    assert_eq!(skus.len(), 990);
    let tea = skus.iter().find(|s| s["sku"] == "sku-0049").unwrap();
    assert_eq!(levels(tea), (49, 0, 0, 49));
    let sharded = skus.iter().find(|s| s["sku"] == "sku-0014").unwrap();
    assert_eq!(sharded["shards"], 4);
    assert_eq!(
        skus.iter().find(|s| s["sku"] == "sku-0003").unwrap()["on_hand"],
        3
    );

    let again = run(&api, &csv).await;
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 990));
    assert_eq!(again.refused, first.refused);
    assert_eq!(listed(&app).await, skus, "a second run changed the stock");
    app.cleanup().await;
}

#[tokio::test]
async fn an_import_without_an_admin_token_stops_at_once_and_changes_nothing() {
    let app = TestApp::spawn().await;
    for token in [None, Some(app.token_for(TokenKind::Staff, "not-an-admin"))] {
        let api = Api::new(&app.base, token);
        let (rows, refused) = read_rows("sku,on_hand\ntea,5\n".as_bytes()).unwrap();
        let e = import(&api, rows, refused, 1, || {}).await.unwrap_err();
        assert_eq!(e.exit(), Exit::ApiUnavailable, "{e}");
        assert!(e.to_string().contains("--token"), "{e}");
    }
    assert!(listed(&app).await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn a_campaign_is_put_and_shown_and_refusals_say_why() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let api = Api::new(&app.base, Some(app.token_for(TokenKind::Admin, "operator")));
    let terms = CampaignTerms {
        skus: vec!["tea".into()],
        starts_at: "2026-11-11T00:00:00Z".into(),
        ends_at: "2036-11-12T00:00:00Z".into(),
        per_customer_limit: 2,
    };
    let put = campaign_put(&api, "singles-day", &terms).await.unwrap();
    assert_eq!(put["campaign_id"], "singles-day");
    assert_eq!(put["per_customer_limit"], 2);
    let shown = campaign_show(&api, "singles-day").await.unwrap();
    assert_eq!(
        shown,
        app.send("GET", "/campaigns/singles-day", None, None)
            .await
            .body
    );

    let missing = campaign_show(&api, "nope").await.unwrap_err();
    assert!(
        matches!(&missing, CliError::Refused { status: 404, code, .. } if code == "campaign_not_found"),
        "{missing}"
    );
    assert_eq!(missing.exit(), Exit::Refused);
    let backwards = CampaignTerms {
        ends_at: "2026-11-10T00:00:00Z".into(),
        ..terms
    };
    let bad = campaign_put(&api, "backwards", &backwards)
        .await
        .unwrap_err();
    assert_eq!(bad.exit(), Exit::BadInput, "{bad}");
    assert_eq!(
        app.send("GET", "/campaigns/backwards", None, None)
            .await
            .status,
        404
    );
    app.cleanup().await;
}
