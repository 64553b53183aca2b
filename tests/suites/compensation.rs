//! Refunds and the restock commands they leave behind: applied once, re-sent when lost,
//! retried with back-off, dead-lettered when they keep failing.

use futures::future::join_all;
use serde_json::json;
use stockroom_tests::{levels, Options, TestApp};

/// The status of the order's first refund, as `GET /orders/{id}` shows it.
async fn first_refund_status(app: &TestApp, order_id: &str) -> String {
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    read.body["refunds"][0]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn dead_letters(app: &TestApp) -> Vec<String> {
    let out = app
        .sqs
        .receive_message()
        .queue_url(app.dead_letter_queue_url())
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive from the dead-letter queue");
    out.messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect()
}

#[tokio::test]
async fn reserve_order_refund_with_restock_and_reconcile_put_everything_back() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.set_stock("cups", 6).await;
    let held = app.reserve("r1", &[("tea", 4), ("cups", 2)]).await;
    assert_eq!(levels(&app.stock("tea").await).3, 10);
    let placed = app
        .post(
            "/orders",
            "o1",
            &json!({"reservation_id": held.body["reservation_id"]}),
        )
        .await;
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(levels(&app.stock("tea").await), (6, 0, 4, 10));

    let refund = app
        .post(
            &format!("/orders/{order_id}/refunds"),
            "f1",
            &json!({"reason": "damaged"}),
        )
        .await;
    assert_eq!(refund.status, 202, "{}", refund.text);
    assert_eq!(refund.body["status"], "PENDING");
    assert_eq!(refund.body["restock"], true);
    assert!(refund.body["refund_id"]
        .as_str()
        .unwrap()
        .starts_with("rfd_"));
    assert_eq!(
        refund.body["lines"],
        json!([{"sku": "tea", "quantity": 4}, {"sku": "cups", "quantity": 2}])
    );
    // Money back now; units once reconcile has run.
    assert_eq!(levels(&app.stock("tea").await), (6, 0, 4, 10));

    assert_eq!(app.drain_queue().await, 1);
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    assert_eq!(levels(&app.stock("cups").await), (6, 0, 0, 6));
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(read.body["status"], "REFUNDED");
    assert_eq!(read.body["refunds"][0]["status"], "COMPLETED");
    assert_eq!(
        read.body["refunds"][0]["refund_id"],
        refund.body["refund_id"]
    );

    let summary = app.sweep().await;
    assert!(
        summary.drift.is_empty() && summary.errors.is_empty(),
        "{summary:?}"
    );
    assert_eq!(summary.skus_audited, 2);

    let nothing_left = app
        .post(&format!("/orders/{order_id}/refunds"), "f2", &json!({}))
        .await;
    assert_eq!(
        (nothing_left.status, nothing_left.code()),
        (409, "refund_exceeds_order")
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_refund_without_restock_completes_at_once_and_keeps_units_sold() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let order_id = app
        .order("o1", json!([{"sku": "tea", "quantity": 5}]))
        .await;
    let path = format!("/orders/{order_id}/refunds");
    let refund = app
        .post(
            &path,
            "f1",
            &json!({"lines": [{"sku": "tea", "quantity": 2}], "restock": false}),
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    assert_eq!(refund.body["status"], "COMPLETED");
    assert_eq!(app.drain_queue().await, 0);
    assert_eq!(levels(&app.stock("tea").await), (5, 0, 5, 10));
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(read.body["status"], "PARTIALLY_REFUNDED");
    assert_eq!(read.body["lines"][0]["refunded"], 2);

    // Idempotency as for every POST.
    let again = app
        .post(
            &path,
            "f1",
            &json!({"lines": [{"sku": "tea", "quantity": 2}], "restock": false}),
        )
        .await;
    assert_eq!(
        (again.status, again.header("idempotent-replayed")),
        (201, Some("true"))
    );
    assert_eq!(again.text, refund.text);
    let reused = app
        .post(
            &path,
            "f1",
            &json!({"lines": [{"sku": "tea", "quantity": 1}], "restock": false}),
        )
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "idempotency_key_reused")
    );
    let no_key = app.send("POST", &path, None, Some("{}".into())).await;
    assert_eq!(
        (no_key.status, no_key.code()),
        (400, "idempotency_key_required")
    );
    let unknown = app
        .post(
            "/orders/ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM/refunds",
            "f9",
            &json!({}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "order_not_found"));
    let other_sku = app
        .post(
            &path,
            "f8",
            &json!({"lines": [{"sku": "cups", "quantity": 1}]}),
        )
        .await;
    assert_eq!(
        (other_sku.status, other_sku.code()),
        (409, "refund_exceeds_order")
    );
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(read.body["refunds"].as_array().unwrap().len(), 1);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refunds_never_refund_more_than_was_ordered() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let order_id = app
        .order("o1", json!([{"sku": "tea", "quantity": 5}]))
        .await;
    let path = format!("/orders/{order_id}/refunds");
    let first = app
        .post(
            &path,
            "f0",
            &json!({"lines": [{"sku": "tea", "quantity": 3}]}),
        )
        .await;
    assert_eq!(first.status, 202);

    // Two units left; eight clients race for them, two units each or one each.
    let racers = join_all((0..8).map(|i| {
        let body = json!({"lines": [{"sku": "tea", "quantity": 1 + i % 2}]});
        let path = path.clone();
        let app = &app;
        async move { app.post(&path, &format!("race-{i}"), &body).await }
    }))
    .await;
    let won: u64 = racers
        .iter()
        .filter(|a| a.status == 202)
        .map(|a| a.body["lines"][0]["quantity"].as_u64().unwrap())
        .sum();
    assert_eq!(
        won,
        2,
        "{:?}",
        racers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    assert!(racers
        .iter()
        .all(|a| a.status == 202 || (a.status == 409 && a.code() == "refund_exceeds_order")));

    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(read.body["lines"][0]["refunded"], 5);
    assert_eq!(read.body["status"], "REFUNDED");
    app.drain_queue().await;
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    app.cleanup().await;
}

#[tokio::test]
async fn a_restock_lost_after_its_transaction_is_resent_by_the_sweep_and_applied_once() {
    let app = TestApp::spawn_with(Options {
        lost_sends: 1,
        ..Options::default()
    })
    .await;
    app.set_stock("tea", 10).await;
    let order_id = app
        .order("o1", json!([{"sku": "tea", "quantity": 3}]))
        .await;
    let refund = app
        .post(&format!("/orders/{order_id}/refunds"), "f1", &json!({}))
        .await;
    assert_eq!(refund.status, 202);

    // The "crash": nothing reached the queue.
    assert_eq!(app.drain_queue().await, 0);
    assert_eq!(levels(&app.stock("tea").await), (7, 0, 3, 10));
    // Within the grace period the sweep leaves it alone (its message may be on its way).
    assert_eq!(app.sweep().await.commands_resent, 0);

    app.clock.advance(61);
    let summary = app.sweep().await;
    assert_eq!(summary.commands_resent, 1, "{summary:?}");
    assert_eq!(
        app.sweep().await.commands_resent,
        0,
        "a resent command waits another grace period"
    );
    assert_eq!(app.drain_queue().await, 1);
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(read.body["refunds"][0]["status"], "COMPLETED");

    // The same command again changes nothing.
    let message = json!({"command_id": refund.body["refund_id"].as_str().unwrap().replace("rfd_", "cmd_"), "kind": "restock"});
    for _ in 0..2 {
        app.sqs
            .send_message()
            .queue_url(app.queue_url())
            .message_body(message.to_string())
            .send()
            .await
            .unwrap();
    }
    assert_eq!(app.drain_queue().await, 2);
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    assert_eq!(app.sweep().await.commands_resent, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_poison_message_is_retried_then_dead_lettered_while_the_rest_of_its_batch_applies() {
    let app = TestApp::spawn_with(Options {
        lost_sends: 3,
        ..Options::default()
    })
    .await;
    app.set_stock("tea", 30).await;
    let mut commands = Vec::new();
    for i in 0..3 {
        let order_id = app
            .order(&format!("o{i}"), json!([{"sku": "tea", "quantity": 2}]))
            .await;
        let refund = app
            .post(
                &format!("/orders/{order_id}/refunds"),
                &format!("f{i}"),
                &json!({}),
            )
            .await;
        commands.push(
            refund.body["refund_id"]
                .as_str()
                .unwrap()
                .replace("rfd_", "cmd_"),
        );
    }
    assert_eq!(levels(&app.stock("tea").await), (24, 0, 6, 30));

    // One batch: three good commands and one that is not a command at all.
    let send = |body: String| {
        app.sqs
            .send_message()
            .queue_url(app.queue_url())
            .message_body(body)
            .send()
    };
    send("{\"not\": \"a command\"".into()).await.unwrap();
    for id in &commands {
        send(json!({"command_id": id, "kind": "restock"}).to_string())
            .await
            .unwrap();
    }
    let received = app.drain_queue().await;
    // The three good ones once, the poison one until its receives ran out (5).
    assert_eq!(received, 3 + 5, "received {received}");
    assert_eq!(
        levels(&app.stock("tea").await),
        (30, 0, 0, 30),
        "each restock applied exactly once"
    );
    assert_eq!(
        dead_letters(&app).await,
        vec!["{\"not\": \"a command\"".to_owned()]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_command_that_keeps_failing_marks_its_refund_failed_and_is_dead_lettered() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let order_id = app
        .order("o1", json!([{"sku": "tea", "quantity": 2}]))
        .await;
    // Break the books behind the service's back: the sold units are gone.
    app.set_sold("SKU#tea#000", 0).await;
    let refund = app
        .post(&format!("/orders/{order_id}/refunds"), "f1", &json!({}))
        .await;
    assert_eq!(refund.status, 202);

    assert_eq!(app.drain_queue().await, 5);
    assert_eq!(first_refund_status(&app, &order_id).await, "FAILED");
    assert_eq!(dead_letters(&app).await.len(), 1);
    app.clock.advance(3600);
    let summary = app.sweep().await;
    assert_eq!(
        summary.commands_resent, 0,
        "a FAILED command is not sent again"
    );
    assert!(
        summary
            .drift
            .iter()
            .any(|d| d.check == "counters_equal_on_hand"),
        "the audit sees what was broken: {summary:?}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_failed_attempt_waits_out_its_back_off_before_the_next() {
    let app = TestApp::spawn_with(Options {
        backoff_seconds: 30,
        ..Options::default()
    })
    .await;
    app.sqs
        .send_message()
        .queue_url(app.queue_url())
        .message_body("poison")
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.drain_queue().await,
        1,
        "received once, then hidden for its back-off"
    );
    let attributes = app
        .sqs
        .get_queue_attributes()
        .queue_url(app.queue_url())
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    let hidden = attributes.attributes.unwrap_or_default()
        [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .clone();
    assert_eq!(hidden, "1");
    app.cleanup().await;
}

/// The dead-letter queue's messages moved back to the compensation queue by the
/// operator's `stockroom dlq redrive`.
async fn redrive(app: &TestApp) -> u32 {
    stockroom_cli::ops::redrive(&app.sqs, app.dead_letter_queue_url(), app.queue_url(), 1000)
        .await
        .expect("the redrive")
}

#[tokio::test]
async fn a_failed_refund_is_redriven_once_after_its_cause_is_fixed() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let order_id = app
        .order("o1", json!([{"sku": "tea", "quantity": 2}]))
        .await;
    app.set_sold("SKU#tea#000", 0).await;
    let refund = app
        .post(&format!("/orders/{order_id}/refunds"), "f1", &json!({}))
        .await;
    assert_eq!(refund.status, 202, "{}", refund.text);
    assert_eq!(app.drain_queue().await, 5);
    assert_eq!(first_refund_status(&app, &order_id).await, "FAILED");

    // The cause fixed by a person, the message redriven: applied, once.
    app.set_sold("SKU#tea#000", 2).await;
    assert_eq!(redrive(&app).await, 1);
    assert_eq!(redrive(&app).await, 0, "moved once");
    app.drain_queue().await;
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(
        read.body["refunds"][0]["status"], "COMPLETED",
        "{}",
        read.text
    );
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));

    // A second copy of the same message changes nothing.
    let command = format!(
        r#"{{"command_id":"cmd_{}","kind":"restock"}}"#,
        refund.body["refund_id"]
            .as_str()
            .unwrap()
            .trim_start_matches("rfd_")
    );
    app.sqs
        .send_message()
        .queue_url(app.queue_url())
        .message_body(command)
        .send()
        .await
        .unwrap();
    assert_eq!(app.drain_queue().await, 1);
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    assert!(dead_letters(&app).await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn an_sqs_event_that_does_not_parse_fails_the_invocation() {
    let app = TestApp::spawn().await;
    let reconcile = app.functions.reconcile();
    for event in [
        json!({"Records": [{"eventSource": "aws:sqs", "body": 7}]}),
        json!({"Records": "not a list"}),
        json!({"Records": []}),
        json!({"Records": [{"eventSource": "aws:s3", "messageId": "m1", "body": "{}"}]}),
    ] {
        assert!(
            reconcile.handle(event.clone()).await.is_err(),
            "{event} must fail the invocation so that SQS keeps the batch"
        );
    }
    let sweep = reconcile.handle(json!({})).await.expect("a sweep");
    assert_eq!(sweep["errors"], json!([]));
    app.cleanup().await;
}

/// The table, but applying a command fails the way a throttled or timed-out call does.
struct PassingTrouble(stockroom::store::DynamoStore);

mod passing_trouble {
    use super::PassingTrouble;
    use futures::stream::BoxStream;
    use stockroom::domain::{
        CommandId, CommandStatus, Reservation, ReservationId, Restock, Timestamp,
    };
    use stockroom::store::{
        Attempt, EndHold, FindOverdueHolds, FindUnappliedCommands, ReadBooks, ReadCommand,
        ReadReservation, RecordExists, SkuBooks, UnitsMissing, WriteCommand, WriteHold,
    };
    use stockroom::{Error, Result};

    #[async_trait::async_trait]
    impl WriteCommand for PassingTrouble {
        async fn apply_command(
            &self,
            _: &Restock,
            _: &[CommandStatus],
            _: Timestamp,
        ) -> Result<Attempt<UnitsMissing>> {
            Err(Error::Contention)
        }
        async fn fail_command(&self, restock: &Restock, at: Timestamp) -> Result<Attempt> {
            self.0.fail_command(restock, at).await
        }
    }
    #[async_trait::async_trait]
    impl ReadCommand for PassingTrouble {
        async fn command(&self, id: &CommandId) -> Result<Option<(CommandStatus, Restock)>> {
            self.0.command(id).await
        }
    }
    #[async_trait::async_trait]
    impl ReadReservation for PassingTrouble {
        async fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>> {
            self.0.reservation(id).await
        }
    }
    #[async_trait::async_trait]
    impl WriteHold for PassingTrouble {
        async fn end_hold(&self, end: EndHold<'_>) -> Result<Attempt<RecordExists>> {
            self.0.end_hold(end).await
        }
    }
    impl FindOverdueHolds for PassingTrouble {
        fn overdue_holds(&self, now: Timestamp) -> BoxStream<'_, Result<Vec<ReservationId>>> {
            self.0.overdue_holds(now)
        }
    }
    #[async_trait::async_trait]
    impl FindUnappliedCommands for PassingTrouble {
        async fn unapplied_commands(&self, cutoff: Timestamp) -> Result<Vec<Restock>> {
            self.0.unapplied_commands(cutoff).await
        }
        async fn mark_resent(&self, id: &CommandId, at: Timestamp) -> Result<()> {
            self.0.mark_resent(id, at).await
        }
    }
    #[async_trait::async_trait]
    impl ReadBooks for PassingTrouble {
        async fn books(&self) -> Result<Vec<SkuBooks>> {
            self.0.books().await
        }
    }
}

/// The compensation queue, but sending to it fails: no fresh copy of a message can be made.
struct NoSends(stockroom::queue::SqsQueue);

#[async_trait::async_trait]
impl stockroom::queue::CommandQueue for NoSends {
    async fn send(&self, _: &stockroom::queue::CommandMessage) -> stockroom::Result<()> {
        Err(stockroom::Error::Contention)
    }
    async fn delay(&self, receipt_handle: &str, seconds: u32) -> stockroom::Result<()> {
        self.0.delay(receipt_handle, seconds).await
    }
}

#[tokio::test]
async fn a_passing_error_on_the_last_receive_without_a_fresh_copy_leaves_the_refund_pending_for_the_sweep(
) {
    use reconcile::{Reconcile, Settings};
    use std::sync::Arc;
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    let order_id = app
        .order("o1", json!([{"sku": "tea", "quantity": 2}]))
        .await;
    let refund = app
        .post(&format!("/orders/{order_id}/refunds"), "f1", &json!({}))
        .await;
    assert_eq!(refund.status, 202, "{}", refund.text);

    // One receive is the last one here; it meets only passing trouble, and the queue
    // takes no fresh copy.
    let queue = Arc::new(NoSends(stockroom::queue::SqsQueue::new(
        app.sqs.clone(),
        app.queue_url(),
    )));
    let troubled = Reconcile::new(
        PassingTrouble(app.store()),
        queue,
        app.clock.clone(),
        Settings {
            max_receives: 1,
            backoff_seconds: 0,
            ..Settings::default()
        },
    );
    let received = app
        .sqs
        .receive_message()
        .queue_url(app.queue_url())
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .unwrap();
    let m = &received.messages.unwrap_or_default()[0];
    let event = json!({"Records": [{
        "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
        "eventSource": "aws:sqs", "attributes": {"ApproximateReceiveCount": "1"},
    }]});
    let answer = troubled.handle(event).await.expect("a batch");
    assert_eq!(
        answer["batchItemFailures"].as_array().map(Vec::len),
        Some(1)
    );
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(
        read.body["refunds"][0]["status"], "PENDING",
        "{}",
        read.text
    );

    // The message is gone (dead-lettered in AWS); the sweep sends the command again.
    app.sqs
        .delete_message()
        .queue_url(app.queue_url())
        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
        .send()
        .await
        .unwrap();
    app.clock.advance(120);
    assert_eq!(app.sweep().await.commands_resent, 1);
    assert_eq!(app.drain_queue().await, 1);
    let read = app
        .send("GET", &format!("/orders/{order_id}"), None, None)
        .await;
    assert_eq!(
        read.body["refunds"][0]["status"], "COMPLETED",
        "{}",
        read.text
    );
    assert_eq!(levels(&app.stock("tea").await), (10, 0, 0, 10));
    app.cleanup().await;
}
