//! Applying compensation commands, once.

use async_trait::async_trait;

use super::codec::{get_json, get_parsed, n, s, values};
use super::keys;
use super::orders::{parse_status, status_text};
use super::{Cancel, DynamoStore, Transaction};
use crate::domain::{CommandId, CommandStatus, RefundStatus, Restock, StockMove, Timestamp};
use crate::error::{Error, Result};
use crate::idempotency::RETENTION_SECONDS;
use crate::retry::Backoff;
use crate::store::{Applied, ApplyRestock};

impl DynamoStore {
    pub(super) async fn command(&self, id: &CommandId) -> Result<Option<(CommandStatus, Restock)>> {
        let Some(item) = self.get(keys::command(id), keys::COMMAND.into()).await? else {
            return Ok(None);
        };
        Ok(Some((
            get_parsed(&item, "status", parse_status)?,
            get_json(&item, "command")?,
        )))
    }

    /// The command leaving `from` (PENDING, or FAILED when a redrive brings it back) for
    /// `to`, and its refund with it. Only an APPLIED command may expire: a FAILED one
    /// stays until a redrive applies it, however long its message waits in the
    /// dead-letter queue.
    fn settle(
        &self,
        restock: &Restock,
        from: &[CommandStatus],
        (to, refund_to): (CommandStatus, RefundStatus),
        at: Timestamp,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>> {
        let mut command = values([(":to", s(status_text(to))), (":at", s(at.to_string()))]);
        let mut refund = values([
            (":to", s(status_text(refund_to))),
            (":at", s(at.to_string())),
        ]);
        let mut allowed = Vec::new();
        for (i, status) in from.iter().enumerate() {
            command.insert(format!(":from{i}"), s(status_text(*status)));
            refund.insert(format!(":from{i}"), s(status_text(refund_status(*status))));
            allowed.push(format!(":from{i}"));
        }
        let condition = format!("#status IN ({})", allowed.join(", "));
        let expire = if to == CommandStatus::Applied {
            command.insert(
                ":ttl".into(),
                n(at.unix_seconds() + i64::from(RETENTION_SECONDS)),
            );
            "SET #status = :to, updated_at = :at, #ttl = :ttl REMOVE sweep_bucket, sweep_at"
        } else {
            "SET #status = :to, updated_at = :at REMOVE sweep_bucket, sweep_at"
        };
        Ok(vec![
            self.update(
                keys::command(&restock.command_id),
                keys::COMMAND.into(),
                expire,
                &condition,
                command,
            )?,
            self.update(
                keys::order(&restock.order_id),
                keys::refund(&restock.refund_id),
                "SET #status = :to, updated_at = :at",
                &condition,
                refund,
            )?,
        ])
    }
}

/// The refund's status while its command has `status`.
fn refund_status(status: CommandStatus) -> RefundStatus {
    match status {
        CommandStatus::Pending => RefundStatus::Pending,
        CommandStatus::Applied => RefundStatus::Completed,
        CommandStatus::Failed => RefundStatus::Failed,
    }
}

#[async_trait]
impl ApplyRestock for DynamoStore {
    async fn apply_restock(&self, id: &CommandId, at: Timestamp) -> Result<Applied> {
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let Some((status, restock)) = self.command(id).await? else {
                return Err(Error::Store {
                    message: format!("no command {id} is recorded"),
                    retryable: false,
                });
            };
            if status == CommandStatus::Applied {
                return Ok(Applied::Before);
            }
            // A FAILED command applies too: that is what a redrive from the dead-letter
            // queue is for, once the cause is fixed.
            let mut items = self.settle(
                &restock,
                &[CommandStatus::Pending, CommandStatus::Failed],
                (CommandStatus::Applied, RefundStatus::Completed),
                at,
            )?;
            for unit in &restock.units {
                items.push(self.move_stock(unit, StockMove::RESTOCK, at)?);
            }
            match self.transact(items).await? {
                Transaction::Committed => return Ok(Applied::Now),
                outcome
                    if (2..outcome.len()).any(|i| outcome.reason(i) == Cancel::ConditionFailed) =>
                {
                    // Nothing sells units back: this stays so until a person fixes the books.
                    return Err(Error::Store {
                        message: format!("command {id}: fewer units sold than it puts back"),
                        retryable: false,
                    });
                }
                _ => continue,
            }
        }
        Err(Error::Contention)
    }

    async fn fail_restock(&self, id: &CommandId, at: Timestamp) -> Result<()> {
        if let Some((CommandStatus::Pending, restock)) = self.command(id).await? {
            let items = self.settle(
                &restock,
                &[CommandStatus::Pending],
                (CommandStatus::Failed, RefundStatus::Failed),
                at,
            )?;
            self.transact(items).await?;
        }
        Ok(())
    }
}
