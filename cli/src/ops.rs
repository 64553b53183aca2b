//! `audit` and `dlq redrive`: what an operator does straight on the stack's table and
//! queues, with their own AWS credentials (for the local run, on its emulator).
//!
//! The audit is reconcile's own (`reconcile::audit` over every sku's books), read-only,
//! so running it now changes nothing. A redrive moves each dead-lettered message back to
//! the compensation queue as a new message (sent first, then deleted, so a failure in
//! between leaves a copy in both queues rather than none); the command it carries
//! applies once however many copies arrive, by its conditional writes.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::Serialize;
use stockroom::store::{DynamoStore, ReadBooks};

use crate::api::CliError;

/// Messages one redrive moves at most, unless told otherwise.
pub const REDRIVE_MAX: u32 = 1000;
/// The local run's table and queues (`./infra/run-local`).
pub const LOCAL_TABLE: &str = "stockroom";
pub const LOCAL_QUEUE: &str = "stockroom-compensation-queue";
pub const LOCAL_DEAD_LETTER_QUEUE: &str = "stockroom-compensation-dead-letter-queue";

/// The AWS configuration: the standard chain (environment, profile, SSO cache, container
/// or instance role). For the local run, what is not set in the environment points at its
/// emulator: `http://127.0.0.1:$STOCKROOM_EMULATOR_PORT` (4567), us-east-1, and
/// credentials it accepts.
pub async fn sdk_config(local: bool) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let unset = |name: &str| std::env::var_os(name).is_none();
    if local {
        if unset("AWS_ENDPOINT_URL") {
            let port = std::env::var("STOCKROOM_EMULATOR_PORT").unwrap_or_else(|_| "4567".into());
            loader = loader.endpoint_url(format!("http://127.0.0.1:{port}"));
        }
        if unset("AWS_REGION") && unset("AWS_DEFAULT_REGION") {
            loader = loader.region(Region::new("us-east-1"));
        }
        if unset("AWS_ACCESS_KEY_ID") && unset("AWS_PROFILE") {
            let local =
                aws_sdk_sqs::config::Credentials::new("local", "local", None, None, "local");
            loader = loader.credentials_provider(local);
        }
    }
    loader.load().await
}

/// The URL of the queue called `name`.
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String, CliError> {
    let found = sqs.get_queue_url().queue_name(name).send().await;
    found
        .ok()
        .and_then(|found| found.queue_url)
        .ok_or_else(|| CliError::Aws {
            what: format!("finding the queue {name}"),
            cause: "no such queue; is `./infra/run-local` running?".into(),
        })
}

/// What the audit found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub skus_audited: usize,
    /// Skus whose stock moved while their holds were read: compared on the next audit.
    pub skus_unsettled: usize,
    pub drift: Vec<reconcile::Drift>,
}

/// Audits every sku of `table`: held reservations against `reserved`, adjustments
/// against `on_hand`, counters against `on_hand`.
pub async fn audit(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<AuditReport, CliError> {
    let store = DynamoStore::new(dynamodb.clone(), table);
    let books = store.books().await.map_err(|e| CliError::Aws {
        what: format!("reading the books of table {table}"),
        cause: e.to_string(),
    })?;
    Ok(AuditReport {
        skus_audited: books.len(),
        skus_unsettled: books.iter().filter(|b| !b.settled).count(),
        drift: books.iter().flat_map(reconcile::audit).collect(),
    })
}

/// Moves up to `max` messages from `dead_letters` back to `queue`; how many it moved.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dead_letters: &str,
    queue: &str,
    max: u32,
) -> Result<u32, CliError> {
    let failed = |what: &str| {
        let what = what.to_owned();
        move |e: aws_sdk_sqs::Error| CliError::Aws {
            what,
            cause: e.to_string(),
        }
    };
    let mut moved = 0;
    while moved < max {
        let received = sqs
            .receive_message()
            .queue_url(dead_letters)
            .max_number_of_messages((max - moved).min(10) as i32)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(aws_sdk_sqs::Error::from)
            .map_err(failed(&format!("receiving from {dead_letters}")))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            sqs.send_message()
                .queue_url(queue)
                .message_body(message.body.unwrap_or_default())
                .send()
                .await
                .map_err(aws_sdk_sqs::Error::from)
                .map_err(failed(&format!("sending to {queue}")))?;
            sqs.delete_message()
                .queue_url(dead_letters)
                .receipt_handle(message.receipt_handle.unwrap_or_default())
                .send()
                .await
                .map_err(aws_sdk_sqs::Error::from)
                .map_err(failed(&format!("deleting from {dead_letters}")))?;
            moved += 1;
        }
    }
    Ok(moved)
}
