//! A compensation that meets only passing trouble never reaches the dead-letter queue:
//! DynamoDB throttles its every apply for more receives than the queue's
//! maxReceiveCount, then stops, and the command applies exactly once.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use stockroom_local::server;
use stockroom_tests::{levels, TestApp};

/// The queue's maxReceiveCount in `template.yaml` (and `TestApp`'s `max_receives`).
const MAX_RECEIVES: usize = 5;

async fn queue_depth(app: &TestApp, url: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    let out = app
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let attributes = out.attributes.unwrap_or_default();
    (
        attributes[&ApproximateNumberOfMessages].clone(),
        attributes[&ApproximateNumberOfMessagesNotVisible].clone(),
    )
}

async fn refund_status(app: &TestApp, order_id: &str) -> Value {
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    read.body["refunds"][0]["status"].clone()
}

#[tokio::test]
async fn a_restock_throttled_for_more_receives_than_the_limit_applies_once_and_never_dead_letters()
{
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let order_id = app
        .order("o1", json!([{"sku": "tea", "quantity": 2}]))
        .await;
    let refund = app
        .post(&format!("/orders/{order_id}/refunds"), "f1", &json!({}))
        .await;
    assert_eq!(refund.status, 202, "{}", refund.text);

    // A trickle of write units per partition, and the tea shard's spent by one write
    // (refused by its condition, charged all the same): every apply touches that shard,
    // and is throttled until the trickle stops.
    app.emulate(json!({"partition_wcu": 0.001})).await;
    let spent = app
        .dynamodb
        .update_item()
        .table_name(&app.resources.table)
        .key("pk", AttributeValue::S("SKU#tea#000".into()))
        .key("sk", AttributeValue::S("STOCK".into()))
        .update_expression("SET sold = sold")
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert!(spent.is_err(), "the condition refuses the write");
    let throttles_before = app.emulator_stats().await["transactions_cancelled_throttle"]
        .as_u64()
        .unwrap_or_default();

    // The event source's rounds, each receive failing, well past maxReceiveCount.
    let wanted = 2 * MAX_RECEIVES;
    let mut receives = 0;
    for _ in 0..4 * wanted {
        if receives >= wanted {
            break;
        }
        receives += server::pump_once(
            &app.functions,
            app.queue_url(),
            std::time::Duration::from_secs(0),
        )
        .await
        .expect("pump the queue");
    }
    assert_eq!(receives, wanted, "the command kept coming back");
    let throttles = app.emulator_stats().await["transactions_cancelled_throttle"]
        .as_u64()
        .unwrap_or_default()
        - throttles_before;
    assert!(
        throttles >= wanted as u64,
        "every receive was throttled: {throttles} throttled transactions"
    );
    assert_eq!(levels(&app.stock("tea").await), (8, 0, 2, 10));
    assert_eq!(refund_status(&app, &order_id).await, "PENDING");
    assert_eq!(
        queue_depth(&app, app.dead_letter_queue_url()).await,
        ("0".into(), "0".into()),
        "nothing was dead-lettered"
    );
    eprintln!("{receives} receives, {throttles} throttled transactions, none dead-lettered");

    // The table has its units again.
    app.emulate(json!({"partition_wcu": 0})).await;
    assert_eq!(app.drain_queue().await, 1, "one copy left, applied");
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    assert_eq!(refund_status(&app, &order_id).await, "COMPLETED");
    assert_eq!(
        queue_depth(&app, app.queue_url()).await,
        ("0".into(), "0".into())
    );
    assert_eq!(
        queue_depth(&app, app.dead_letter_queue_url()).await,
        ("0".into(), "0".into())
    );
    app.clock.advance(3600);
    let summary = app.sweep().await;
    assert_eq!(
        (summary.commands_resent, summary.drift, summary.errors),
        (0, vec![], Vec::<String>::new())
    );
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10), "once");
    app.cleanup().await;
}
