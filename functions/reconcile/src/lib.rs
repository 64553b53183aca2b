//! reconcile: finishes or undoes what requests left behind.
//!
//! Two triggers. The compensation queue: each message names a recorded command, applied
//! once; failures are reported per message (partial batch response) and pushed back with
//! a growing delay. A lasting cause lands in the dead-letter queue after the queue's
//! maxReceiveCount; a passing one (throttling, contention) never does: near the limit
//! the message is sent again as a fresh copy.
//! A schedule (or a direct invoke): expire overdue holds, send again commands recorded
//! but never applied, and audit every sku's books; the answer is a JSON summary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{future, stream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::Value;
use stockroom::domain::{ReservationStatus, Timestamp};
use stockroom::queue::{CommandMessage, CommandQueue};
use stockroom::store::{
    FindOverdueHolds, FindUnappliedCommands, ReadBooks, ReadCommand, ReadReservation, SkuBooks,
    WriteCommand, WriteHold,
};
use stockroom::usecases::commands::{self, Applied};
use stockroom::usecases::holds;
use stockroom::{metrics, Clock, Error, Result};

/// Knobs, from the environment in Lambda.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `STOCKROOM_RESEND_AFTER_SECONDS` (60): how long a recorded command may wait for
    /// its message before the sweep sends it again.
    pub resend_after_seconds: u32,
    /// `STOCKROOM_MAX_RECEIVES` (5): the queue's maxReceiveCount; the attempt that
    /// reaches it marks the command FAILED before the message goes to the dead-letter queue.
    pub max_receives: u32,
    /// `STOCKROOM_BACKOFF_SECONDS` (10): the delay after the first failed attempt,
    /// doubled after each further one (at most 15 minutes).
    pub backoff_seconds: u32,
    /// `STOCKROOM_EXPIRY_BUDGET_SECONDS` (20): how long a sweep may go on starting
    /// expiries. The function's timeout is 30 s; what is left is for the expiries in
    /// flight, the re-sends and the audit. Holds still overdue stay in the index, and the
    /// next sweep starts with them.
    pub expiry_budget_seconds: u32,
}

/// Receives of a message kept for failures this code never sees (an invocation
/// throttled, timed out or crashed, which SQS counts all the same): a passing failure on
/// receive `max_receives - SPARE_RECEIVES` or later sends a fresh copy instead.
pub const SPARE_RECEIVES: u32 = 2;

/// How many holds a sweep expires at once. Each expiry is one transaction over its
/// reservation and its shards; 16 in flight keep a 30 s invocation busy without
/// crowding the table's partitions.
pub const EXPIRY_CONCURRENCY: usize = 16;

impl Default for Settings {
    fn default() -> Self {
        Self {
            resend_after_seconds: 60,
            max_receives: 5,
            backoff_seconds: 10,
            expiry_budget_seconds: 20,
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        let d = Self::default();
        let read = |name: &str, default: u32| match std::env::var(name) {
            Ok(v) => v
                .parse()
                .map_err(|_| Error::Config(format!("{name}={v} is not a whole number"))),
            Err(_) => Ok(default),
        };
        Ok(Self {
            resend_after_seconds: read("STOCKROOM_RESEND_AFTER_SECONDS", d.resend_after_seconds)?,
            max_receives: read("STOCKROOM_MAX_RECEIVES", d.max_receives)?,
            backoff_seconds: read("STOCKROOM_BACKOFF_SECONDS", d.backoff_seconds)?,
            expiry_budget_seconds: read(
                "STOCKROOM_EXPIRY_BUDGET_SECONDS",
                d.expiry_budget_seconds,
            )?,
        })
    }

    /// The delay before attempt `receives + 1`.
    pub fn backoff(&self, receives: u32) -> u32 {
        let doublings = receives.saturating_sub(1).min(16);
        self.backoff_seconds.saturating_mul(1 << doublings).min(900)
    }
}

/// One way a sku's books disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub sku: String,
    pub check: &'static str,
    pub expected: i64,
    pub actual: i64,
}

/// The books must agree three ways: held reservations sum to `reserved` (when the
/// stock stood still while the holds were read: else the next sweep compares them); the
/// sku's `on_hand` is its running total of adjustments; and the counters add up to
/// `on_hand`.
pub fn audit(books: &SkuBooks) -> Vec<Drift> {
    let l = &books.levels;
    let held = match books.settled {
        true => books.held as i64,
        false => l.reserved as i64,
    };
    let checks = [
        ("held_reservations_equal_reserved", held, l.reserved as i64),
        (
            "adjustments_equal_on_hand",
            books.adjustments,
            books.recorded_on_hand as i64,
        ),
        (
            "counters_equal_on_hand",
            books.recorded_on_hand as i64,
            l.on_hand as i64,
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, expected, actual)| expected != actual)
        .map(|(check, expected, actual)| Drift {
            sku: l.sku.to_string(),
            check,
            expected,
            actual,
        })
        .collect()
}

/// What a sweep found and fixed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepSummary {
    pub started_at: String,
    pub finished_at: String,
    pub holds_expired: usize,
    /// The expiry budget ran out with overdue holds left: the next sweep goes on.
    pub holds_left_for_next_sweep: bool,
    pub commands_resent: usize,
    pub skus_audited: usize,
    /// Skus whose stock moved while the audit read the holds: their holds and their
    /// `reserved` were not compared this time.
    pub skus_unsettled: usize,
    pub drift: Vec<Drift>,
    pub errors: Vec<String>,
}

pub struct Reconcile<S> {
    store: S,
    queue: Arc<dyn CommandQueue>,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

impl<S> Reconcile<S>
where
    S: ReadCommand
        + WriteCommand
        + ReadReservation
        + WriteHold
        + FindOverdueHolds
        + FindUnappliedCommands
        + ReadBooks,
{
    pub fn new(
        store: S,
        queue: Arc<dyn CommandQueue>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            queue,
            clock,
            settings,
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::new(self.clock.now())
    }

    /// Any invocation: an SQS batch gets a partial batch response, anything else
    /// (the schedule's event, `{}`) runs a sweep and gets its summary. An event with
    /// `Records` that is not a well-formed SQS batch fails the invocation: answering
    /// nothing would tell Lambda the whole batch succeeded, and SQS would delete it.
    pub async fn handle(&self, event: Value) -> Result<Value> {
        if event.get("Records").is_some() {
            let batch = serde_json::from_value::<SqsEvent>(event)
                .ok()
                .filter(|b| {
                    !b.records.is_empty()
                        && b.records.iter().all(|m| {
                            m.event_source.as_deref() == Some("aws:sqs") && m.message_id.is_some()
                        })
                })
                .ok_or_else(|| {
                    Error::InvalidRequest(
                        "the event has Records but is not an SQS batch; nothing was applied".into(),
                    )
                })?;
            return Ok(serde_json::to_value(self.apply_batch(batch).await).unwrap_or_default());
        }
        Ok(serde_json::to_value(self.sweep().await).unwrap_or_default())
    }

    pub async fn apply_batch(&self, batch: SqsEvent) -> SqsBatchResponse {
        let outcomes =
            futures::future::join_all(batch.records.iter().map(|m| self.apply_message(m))).await;
        let mut response = SqsBatchResponse::default();
        for (message, outcome) in batch.records.iter().zip(outcomes) {
            if let Err(e) = outcome {
                let id = message.message_id.clone().unwrap_or_default();
                tracing::warn!(message_id = %id, error = %e, "compensation failed; it will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Applies one message. A failure goes back to the queue, hidden for its back-off,
    /// and counts towards the queue's maxReceiveCount. Only a lasting cause may use that
    /// count up: a passing one (throttling, contention, a timeout) on a receive within
    /// `SPARE_RECEIVES` of the limit sends a fresh copy of the message, delayed by the
    /// back-off, and reports the original done, so it never reaches the dead-letter queue.
    async fn apply_message(&self, message: &SqsMessage) -> Result<()> {
        let outcome = self.apply(message).await;
        let Err(error) = &outcome else {
            return outcome;
        };
        let receives: u32 = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let delay = self.settings.backoff(receives);
        let command = parse(message);
        let near_the_limit = receives + SPARE_RECEIVES >= self.settings.max_receives;
        if let (true, true, Some(command)) = (error.is_retryable(), near_the_limit, &command) {
            match self.queue.send_after(command, delay).await {
                Ok(()) => {
                    tracing::info!(message_id = ?message.message_id, receives, delay, error = %error, "compensation failed for a passing reason near the receive limit; a fresh copy will try again");
                    metrics::count("CompensationsSentAgain", 1, &[]);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(message_id = ?message.message_id, error = %e, "no fresh copy could be sent; the message stays on its receive count")
                }
            }
        }
        let last = receives >= self.settings.max_receives;
        if last {
            tracing::error!(message_id = ?message.message_id, receives, "compensation gave up; the message goes to the dead-letter queue");
            metrics::count("MessagesDeadLettered", 1, &[]);
            // Only a lasting cause fails the refund for good. A passing one gets here only
            // when no fresh copy could be sent: the command stays PENDING and the sweep
            // sends it again once its grace period is over.
            if let (false, Some(command)) = (error.is_retryable(), &command) {
                commands::fail_restock(&self.store, &command.command_id, self.now()).await?;
            }
        }
        if let Some(receipt) = &message.receipt_handle {
            // After the last attempt, visible at once: the next receive dead-letters it.
            self.queue
                .delay(receipt, if last { 0 } else { delay })
                .await?;
        }
        outcome
    }

    async fn apply(&self, message: &SqsMessage) -> Result<()> {
        let command = parse(message).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "message {:?} is not a compensation command",
                message.message_id
            ))
        })?;
        match commands::apply_restock(&self.store, &command.command_id, self.now()).await? {
            Applied::Now => {
                tracing::info!(command_id = %command.command_id, "restock applied");
                metrics::count("CompensationsApplied", 1, &[]);
            }
            Applied::Before => {
                tracing::info!(command_id = %command.command_id, "restock was applied before")
            }
        }
        Ok(())
    }

    pub async fn sweep(&self) -> SweepSummary {
        let now = self.now();
        let mut summary = SweepSummary {
            started_at: now.to_string(),
            ..Default::default()
        };
        let note = |summary: &mut SweepSummary, e: Error| summary.errors.push(e.to_string());

        self.expire_overdue(now, &mut summary).await;

        let cutoff = Timestamp::new(now.inner() - time_seconds(self.settings.resend_after_seconds));
        match self.store.unapplied_commands(cutoff).await {
            Ok(commands) => {
                for restock in commands {
                    let sent = self.queue.send(&CommandMessage::restock(&restock)).await;
                    // Wait another grace period before sending it yet again.
                    match sent.and(self.store.mark_resent(&restock.command_id, now).await) {
                        Ok(()) => summary.commands_resent += 1,
                        Err(e) => note(&mut summary, e),
                    }
                }
            }
            Err(e) => note(&mut summary, e),
        }

        match self.store.books().await {
            Ok(books) => {
                summary.skus_audited = books.len();
                summary.skus_unsettled = books.iter().filter(|b| !b.settled).count();
                summary.drift = books.iter().flat_map(audit).collect();
            }
            Err(e) => note(&mut summary, e),
        }
        summary.finished_at = self.now().to_string();
        let text = serde_json::to_string(&summary).unwrap_or_default();
        let eventful = summary.holds_expired
            + summary.commands_resent
            + summary.drift.len()
            + summary.errors.len()
            > 0;
        if eventful {
            tracing::info!(summary = %text, "sweep finished");
        } else {
            tracing::debug!(summary = %text, "sweep finished");
        }
        metrics::count("HoldsExpired", summary.holds_expired as u64, &[]);
        metrics::count("CommandsResent", summary.commands_resent as u64, &[]);
        metrics::count_with_total("Drift", summary.drift.len() as u64, &[]);
        summary
    }
}

impl<S> Reconcile<S>
where
    S: ReadReservation + WriteHold + FindOverdueHolds,
{
    /// Expires what is overdue at `now`, `EXPIRY_CONCURRENCY` at a time, reading the
    /// index a page at a time, and starts no expiry once the budget is spent.
    async fn expire_overdue(&self, now: Timestamp, summary: &mut SweepSummary) {
        let budget = time_seconds(self.settings.expiry_budget_seconds);
        let deadline = std::time::Instant::now() + budget;
        let out_of_time = AtomicBool::new(false);
        let expiries = self
            .store
            .overdue_holds(now)
            .map_ok(|ids| stream::iter(ids.into_iter().map(Ok::<_, Error>)))
            .try_flatten()
            .take_while(|_| {
                let in_time = std::time::Instant::now() < deadline;
                out_of_time.store(!in_time, Ordering::Relaxed);
                future::ready(in_time)
            })
            .map(|id| async move {
                let reservation = holds::expire(&self.store, &id?, now).await?;
                Ok::<_, Error>(reservation.status == ReservationStatus::Expired)
            })
            .buffer_unordered(EXPIRY_CONCURRENCY);
        let outcomes: Vec<Result<bool>> = expiries.collect().await;
        for outcome in outcomes {
            match outcome {
                Ok(true) => summary.holds_expired += 1,
                Ok(false) => {}
                Err(e) => summary.errors.push(e.to_string()),
            }
        }
        summary.holds_left_for_next_sweep = out_of_time.load(Ordering::Relaxed);
    }
}

fn time_seconds(seconds: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(seconds))
}

fn parse(message: &SqsMessage) -> Option<CommandMessage> {
    message
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockroom::domain::{Sku, StockLevels};

    fn books(reserved: u64, held: u64, on_hand: u64, adjustments: i64) -> SkuBooks {
        let sku = Sku::parse("tea").unwrap();
        SkuBooks {
            levels: StockLevels {
                sku,
                on_hand: 10,
                available: 10 - reserved,
                reserved,
                sold: 0,
                shards: 1,
                updated_at: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            },
            recorded_on_hand: on_hand,
            adjustments,
            held,
            settled: true,
        }
    }

    #[test]
    fn agreeing_books_have_no_drift() {
        assert!(audit(&books(3, 3, 10, 10)).is_empty());
    }

    #[test]
    fn each_disagreement_is_named() {
        let checks: Vec<_> = audit(&books(3, 2, 11, 12))
            .into_iter()
            .map(|d| d.check)
            .collect();
        assert_eq!(
            checks,
            [
                "held_reservations_equal_reserved",
                "adjustments_equal_on_hand",
                "counters_equal_on_hand"
            ]
        );
    }

    #[test]
    fn holds_read_while_the_stock_moved_are_not_compared() {
        let moving = SkuBooks {
            settled: false,
            ..books(3, 2, 10, 10)
        };
        assert!(audit(&moving).is_empty());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = Settings {
            backoff_seconds: 10,
            ..Settings::default()
        };
        assert_eq!([s.backoff(1), s.backoff(2), s.backoff(3)], [10, 20, 40]);
        assert_eq!(s.backoff(30), 900);
    }
}
