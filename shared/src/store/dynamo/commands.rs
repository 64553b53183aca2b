//! Applying compensation commands, once.

use async_trait::async_trait;

use super::codec::{corrupt, get_json, get_status, key_of, n, s, values};
use super::schema::{self, ItemKey, StoredStatus};
use super::{DynamoStore, Transaction};
use crate::domain::{CommandId, CommandStatus, RefundStatus, Restock, StockMove, Timestamp};
use crate::error::{Error, Result};
use crate::idempotency::RETENTION_SECONDS;
use crate::retry::Backoff;
use crate::store::{Applied, ApplyRestock};

impl DynamoStore {
    pub(super) async fn command(&self, id: &CommandId) -> Result<Option<(CommandStatus, Restock)>> {
        let Some(item) = self
            .get(schema::command(id), schema::COMMAND.into())
            .await?
        else {
            return Ok(None);
        };
        let restock: Restock = get_json(&item, "command")?;
        if restock.command_id != *id || key_of(&item)? != ItemKey::Command(id.clone()) {
            return Err(corrupt(&item, "its key is not its command's"));
        }
        Ok(Some((get_status(&item)?, restock)))
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
        let mut command = values([(":to", s(to.text())), (":at", s(at.to_string()))]);
        let mut refund = values([(":to", s(refund_to.text())), (":at", s(at.to_string()))]);
        let mut allowed = Vec::new();
        for (i, status) in from.iter().enumerate() {
            command.insert(format!(":from{i}"), s(status.text()));
            refund.insert(format!(":from{i}"), s(refund_status(*status).text()));
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
                schema::command(&restock.command_id),
                schema::COMMAND.into(),
                expire,
                &condition,
                command,
            )?,
            self.update(
                schema::order(&restock.order_id),
                schema::refund(&restock.refund_id),
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
                outcome if (2..outcome.len()).any(|i| outcome.condition_failed(i)) => {
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
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let Some((CommandStatus::Pending, restock)) = self.command(id).await? else {
                return Ok(()); // Applied, failed already, or never recorded: nothing to mark.
            };
            let items = self.settle(
                &restock,
                &[CommandStatus::Pending],
                (CommandStatus::Failed, RefundStatus::Failed),
                at,
            )?;
            // A failed condition means the command left PENDING meanwhile: read it again.
            if let Transaction::Committed = self.transact(items).await? {
                return Ok(());
            }
        }
        Err(Error::Contention)
    }
}
