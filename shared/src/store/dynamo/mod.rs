//! The DynamoDB adapter: one table, `pk`/`sk` strings (see `schema`).

mod campaigns;
mod changes;
mod codec;
mod commands;
mod holds;
mod orders;
mod records;
mod schema;
mod stock;
mod stored;
mod sweep;
mod writes;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

use aws_sdk_dynamodb::Client;

use crate::error::{Error, Result};
use crate::store::Attempt;

pub use changes::{committed, CAUSE_KEY, CAUSE_TRACE};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Every item of partition `pk` (only those whose sort key starts with `sk_prefix`,
    /// when given), read consistently page by page, each handed to `each`.
    async fn query_partition(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        mut each: impl FnMut(&codec::Attributes) -> Result<()>,
    ) -> Result<()> {
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", codec::s(&pk))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query = match sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", codec::s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query.send().await.map_err(|e| store_error("Query", e))?;
            out.items().iter().try_for_each(&mut each)?;
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    /// One item, read consistently.
    async fn get(&self, (pk, sk): schema::Key) -> Result<Option<codec::Attributes>> {
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

    /// The items of `keys` that exist, read consistently, 100 keys a request (DynamoDB's
    /// limit); keys a throttled partition leaves unprocessed are asked for again with
    /// back-off, and `Contention` when some are still left.
    async fn batch_get(&self, keys: Vec<codec::Attributes>) -> Result<Vec<codec::Attributes>> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            let mut backoff = crate::retry::Backoff::default();
            while !pending.is_empty() && backoff.next_attempt().await {
                let request = writes::build(
                    "keys",
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut pending)))
                        .consistent_read(true)
                        .build(),
                )?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchGetItem", e))?;
                if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                    found.extend(items.iter().cloned());
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(Error::Contention);
            }
        }
        Ok(found)
    }

    /// Runs a transaction; a cancellation is an answer, not an error. A transaction
    /// refused whole because DynamoDB was busy (throttled, or an internal error after the
    /// SDK's own retries) is a cancellation too, so the caller backs off and tries again:
    /// its conditions make a second attempt of an applied write harmless.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Transaction> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let count = items.len();
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
                    cancellation(c.cancellation_reasons(), count)
                }
                other if other.code().is_some_and(|c| BUSY_CODES.contains(&c)) => {
                    tracing::warn!(code = other.code(), "transaction refused; backing off");
                    Ok(Transaction::Cancelled(vec![
                        Cancelled::from(Cancel::Busy);
                        count
                    ]))
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
    /// This item would have been written; another one failed.
    Fine,
    ConditionFailed,
    Conflict,
    /// Throttled, or DynamoDB could not take it now: worth another try after a pause.
    Busy,
}

impl Cancel {
    /// The codes DynamoDB documents; any other (or none) is not understood, so it is
    /// not guessed at.
    fn from_code(code: Option<&str>) -> Option<Self> {
        match code? {
            "None" => Some(Cancel::Fine),
            "ConditionalCheckFailed" => Some(Cancel::ConditionFailed),
            "TransactionConflict" => Some(Cancel::Conflict),
            "ThrottlingError" | "ProvisionedThroughputExceeded" => Some(Cancel::Busy),
            _ => None,
        }
    }
}

/// What a cancelled transaction of `count` items says of each item. One reason per
/// item, each one understood, or an error: a reason missing or unknown is never read as
/// "fine", so no caller passes over a cancellation it cannot explain.
fn cancellation(reasons: &[CancellationReason], count: usize) -> Result<Transaction> {
    if let Some(invalid) = reasons.iter().find(|r| r.code() == Some("ValidationError")) {
        return Err(invalid_item(invalid.message().unwrap_or_default()));
    }
    let read: Option<Vec<Cancelled>> = reasons
        .iter()
        .map(|r| {
            Cancel::from_code(r.code()).map(|cancel| Cancelled {
                cancel,
                found: r.item().cloned(),
            })
        })
        .collect();
    match read {
        Some(read) if read.len() == count => Ok(Transaction::Cancelled(read)),
        _ => Err(Error::Store {
            message: format!(
                "TransactWriteItems cancelled {count} items with reasons {:?}",
                reasons
                    .iter()
                    .map(|r| (r.code(), r.message()))
                    .collect::<Vec<_>>()
            ),
            retryable: false,
        }),
    }
}

/// One item of a cancelled transaction: why, and the item as it was when its condition
/// failed, if the write asked for it.
#[derive(Debug, Clone)]
struct Cancelled {
    cancel: Cancel,
    found: Option<codec::Attributes>,
}

impl From<Cancel> for Cancelled {
    fn from(cancel: Cancel) -> Self {
        Self {
            cancel,
            found: None,
        }
    }
}

#[derive(Debug)]
enum Transaction {
    Committed,
    Cancelled(Vec<Cancelled>),
}

/// A write with no refusal of its own: any cancellation means what it was conditioned
/// on changed, or the table was busy.
impl<R> From<Transaction> for Attempt<R> {
    fn from(outcome: Transaction) -> Self {
        match outcome {
            Transaction::Committed => Attempt::Committed,
            Transaction::Cancelled(_) => Attempt::Stale,
        }
    }
}

impl Transaction {
    fn len(&self) -> usize {
        match self {
            Transaction::Committed => 0,
            Transaction::Cancelled(reasons) => reasons.len(),
        }
    }

    fn reason(&self, index: usize) -> Option<&Cancelled> {
        match self {
            Transaction::Committed => None,
            Transaction::Cancelled(reasons) => reasons.get(index),
        }
    }

    /// Whether item `index` failed its condition (`cancellation` gives every item of a
    /// cancelled transaction its reason).
    fn condition_failed(&self, index: usize) -> bool {
        self.reason(index)
            .is_some_and(|r| r.cancel == Cancel::ConditionFailed)
    }

    /// Item `index` as its failed condition found it (when the write asked for it).
    fn found(&self, index: usize) -> Option<&codec::Attributes> {
        self.reason(index)
            .filter(|r| r.cancel == Cancel::ConditionFailed)
            .and_then(|r| r.found.as_ref())
    }

    /// Whether item `index` met a transaction in flight on the same item.
    fn conflicted(&self, index: usize) -> bool {
        self.reason(index)
            .is_some_and(|r| r.cancel == Cancel::Conflict)
    }
}

/// Errors that say "not now": the request may succeed if sent again after a pause.
const BUSY_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
];

fn service_error(operation: &str, e: &impl ProvideErrorMetadata) -> Error {
    let code = e.code().unwrap_or("Unknown");
    let message = e.message().unwrap_or_default();
    if code == "ValidationException" {
        return invalid_item(message);
    }
    Error::Store {
        message: format!("{operation}: {code}: {message}"),
        retryable: BUSY_CODES.contains(&code),
    }
}

/// DynamoDB refused what was written as invalid: too large for it (the request's fault),
/// or a bug of ours.
fn invalid_item(message: &str) -> Error {
    if is_size_limit(message) {
        Error::TooLarge(
            "what this request would store is larger than DynamoDB allows in one item or \
             one atomic write; send a smaller request"
                .into(),
        )
    } else {
        Error::Store {
            message: format!("ValidationException: {message}"),
            retryable: false,
        }
    }
}

/// DynamoDB's refusals of an item or transaction that is too large (400 KB per item,
/// 4 MB or 100 actions per transaction).
fn is_size_limit(message: &str) -> bool {
    [
        "has exceeded the maximum allowed size",
        "cannot be larger than",
        "must have length less than or equal to 100",
    ]
    .iter()
    .any(|m| message.contains(m))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodbs_size_refusals_are_the_requests_fault_and_not_retried() {
        for message in [
            "Item size has exceeded the maximum allowed size",
            "Item size to update has exceeded the maximum allowed size",
            "Transaction request cannot be larger than 4 MB",
            "1 validation error detected: Value '[...]' at 'transactItems' failed to satisfy \
             constraint: Member must have length less than or equal to 100",
        ] {
            let e = invalid_item(message);
            assert!(matches!(e, Error::TooLarge(_)), "{message}: {e:?}");
            assert_eq!(e.problem().status, 413);
            assert!(!e.to_string().contains("Item size"), "{e}");
        }
        let other = invalid_item("The provided key element does not match the schema");
        assert!(matches!(
            other,
            Error::Store {
                retryable: false,
                ..
            }
        ));
        assert_eq!(other.problem().status, 500);
    }

    #[test]
    fn busy_and_conflicting_cancellations_are_told_apart_from_failed_conditions() {
        assert_eq!(Cancel::from_code(Some("None")), Some(Cancel::Fine));
        assert_eq!(
            Cancel::from_code(Some("ConditionalCheckFailed")),
            Some(Cancel::ConditionFailed)
        );
        assert_eq!(
            Cancel::from_code(Some("TransactionConflict")),
            Some(Cancel::Conflict)
        );
        assert_eq!(
            Cancel::from_code(Some("ThrottlingError")),
            Some(Cancel::Busy)
        );
        assert_eq!(
            Cancel::from_code(Some("ProvisionedThroughputExceeded")),
            Some(Cancel::Busy)
        );
        assert_eq!(Cancel::from_code(Some("Whatever")), None);
        assert_eq!(Cancel::from_code(None), None);
    }

    fn reason(code: Option<&str>) -> CancellationReason {
        CancellationReason::builder()
            .set_code(code.map(str::to_owned))
            .build()
    }

    #[test]
    fn a_cancellation_is_read_item_by_item() {
        let outcome = cancellation(
            &[reason(Some("None")), reason(Some("ConditionalCheckFailed"))],
            2,
        )
        .unwrap();
        assert!(!outcome.condition_failed(0) && outcome.condition_failed(1));
        assert!(!outcome.conflicted(0));
        assert!(!outcome.condition_failed(2));
        assert_eq!(outcome.len(), 2);
    }

    #[test]
    fn a_cancellation_it_cannot_explain_is_an_error_not_a_fine_item() {
        for (reasons, count) in [
            (vec![reason(Some("None")), reason(None)], 2),
            (vec![reason(Some("ItemCollectionSizeLimitExceeded"))], 1),
            (vec![reason(Some("ConditionalCheckFailed"))], 2),
            (vec![], 1),
        ] {
            let e = cancellation(&reasons, count).expect_err("not understood");
            assert!(
                matches!(
                    e,
                    Error::Store {
                        retryable: false,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        let e = cancellation(
            &[CancellationReason::builder()
                .code("ValidationError")
                .message("Item size has exceeded the maximum allowed size")
                .build()],
            1,
        )
        .expect_err("too large");
        assert!(matches!(e, Error::TooLarge(_)), "{e:?}");
    }
}
