//! The DynamoDB adapter: one table, `pk`/`sk` strings (see `keys`).

mod campaigns;
mod codec;
mod commands;
mod holds;
mod keys;
mod orders;
mod stock;
mod sweep;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::TransactWriteItem;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;

use crate::domain::Sku;

use crate::error::{Error, Result};

/// How long a remembered shard count is trusted.
const SHARD_COUNT_MAX_AGE: Duration = Duration::from_secs(10);

/// How often an operation re-reads and tries again when its conditions lost a race.
const ATTEMPTS: usize = 12;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How many shards each sku had when last read, and when: lets a reservation go
    /// straight to a shard without reading first. A wrong guess only fails its condition
    /// and the next attempt reads; the age limit makes a process notice a reshard (else
    /// it would keep guessing among the old shards while they still have stock).
    shard_counts: Arc<Mutex<HashMap<Sku, (u16, Instant)>>>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            shard_counts: Arc::default(),
        }
    }

    fn known_shards(&self, sku: &Sku) -> Option<u16> {
        let counts = self.shard_counts.lock().ok()?;
        let (count, seen) = counts.get(sku)?;
        (seen.elapsed() < SHARD_COUNT_MAX_AGE).then_some(*count)
    }

    fn remember_shards(&self, sku: &Sku, active: u16) {
        if let Ok(mut counts) = self.shard_counts.lock() {
            counts.insert(sku.clone(), (active, Instant::now()));
        }
    }

    /// One item, read consistently.
    async fn get(&self, pk: String, sk: String) -> Result<Option<codec::Attributes>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", codec::s(pk))
            .key("sk", codec::s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item)
    }

    /// What the record at this key remembers of the request that created it.
    async fn recorded_at(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<crate::idempotency::RecordedRequest>> {
        self.get(pk, sk)
            .await?
            .as_ref()
            .map(stock::recorded_request)
            .transpose()
    }

    /// Runs a transaction; a cancellation is an answer, not an error.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Transaction> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        if items.len() > 100 {
            // DynamoDB's limit per transaction; only a request split over very many shards gets here.
            return Err(Error::Contention);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Transaction::Committed),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    Ok(Transaction::Cancelled(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| Cancel::from_code(r.code()))
                            .collect(),
                    ))
                }
                other => Err(service_error("TransactWriteItems", &other)),
            },
            Err(e) => Err(store_error("TransactWriteItems", e)),
        }
    }
}

/// Why one item of a cancelled transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    Fine,
    ConditionFailed,
    Conflict,
    Other,
}

impl Cancel {
    fn from_code(code: Option<&str>) -> Self {
        match code {
            None | Some("None") => Cancel::Fine,
            Some("ConditionalCheckFailed") => Cancel::ConditionFailed,
            Some("TransactionConflict") => Cancel::Conflict,
            Some(_) => Cancel::Other,
        }
    }
}

#[derive(Debug)]
enum Transaction {
    Committed,
    Cancelled(Vec<Cancel>),
}

impl Transaction {
    fn len(&self) -> usize {
        match self {
            Transaction::Committed => 0,
            Transaction::Cancelled(reasons) => reasons.len(),
        }
    }

    fn reason(&self, index: usize) -> Cancel {
        match self {
            Transaction::Committed => Cancel::Fine,
            Transaction::Cancelled(reasons) => reasons.get(index).copied().unwrap_or(Cancel::Fine),
        }
    }
}

const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

fn service_error(operation: &str, e: &impl ProvideErrorMetadata) -> Error {
    let code = e.code().unwrap_or("Unknown");
    Error::Store {
        message: format!("{operation}: {code}: {}", e.message().unwrap_or_default()),
        retryable: RETRYABLE_CODES.contains(&code),
    }
}

fn store_error<E, R>(operation: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(s) => service_error(operation, s.err()),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::Store {
                message: format!(
                    "{operation}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                ),
                retryable: true,
            }
        }
        other => Error::Store {
            message: format!(
                "{operation}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&other)
            ),
            retryable: false,
        },
    }
}
