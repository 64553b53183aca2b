//! Applying compensation commands, once.

use async_trait::async_trait;

use super::codec::{get_json, get_parsed, n, s, values, Attributes};
use super::keys;
use super::orders::{parse_status, status_text};
use super::{Cancel, DynamoStore, Transaction, ATTEMPTS};
use crate::domain::{CommandId, CommandStatus, RefundStatus, Restock, StockMove, Timestamp};
use crate::error::{Error, Result};
use crate::idempotency::RETENTION_SECONDS;
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

    /// The command leaving PENDING for `to`, and its refund with it.
    fn settle(
        &self,
        restock: &Restock,
        to: CommandStatus,
        refund_to: RefundStatus,
        at: Timestamp,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>> {
        let pending = |status: &str| values([(":pending", s(status)), (":at", s(at.to_string()))]);
        let mut command: Attributes = pending(&status_text(CommandStatus::Pending));
        command.insert(":to".into(), s(status_text(to)));
        command.insert(
            ":ttl".into(),
            n(at.unix_seconds() + i64::from(RETENTION_SECONDS)),
        );
        let mut refund = pending(&status_text(RefundStatus::Pending));
        refund.insert(":to".into(), s(status_text(refund_to)));
        Ok(vec![
            self.update(
                keys::command(&restock.command_id),
                keys::COMMAND.into(),
                "SET #status = :to, updated_at = :at, #ttl = :ttl REMOVE sweep_bucket, sweep_at",
                "#status = :pending",
                command,
            )?,
            self.update(
                keys::order(&restock.order_id),
                keys::refund(&restock.refund_id),
                "SET #status = :to, updated_at = :at",
                "#status = :pending",
                refund,
            )?,
        ])
    }
}

#[async_trait]
impl ApplyRestock for DynamoStore {
    async fn apply_restock(&self, id: &CommandId, at: Timestamp) -> Result<Applied> {
        for _ in 0..ATTEMPTS {
            let Some((status, restock)) = self.command(id).await? else {
                return Err(Error::Store {
                    message: format!("no command {id} is recorded"),
                    retryable: false,
                });
            };
            if status != CommandStatus::Pending {
                return Ok(Applied::Before);
            }
            let mut items = self.settle(
                &restock,
                CommandStatus::Applied,
                RefundStatus::Completed,
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
                    return Err(Error::Store {
                        message: format!("command {id}: fewer units sold than it puts back"),
                        retryable: true,
                    });
                }
                _ => continue,
            }
        }
        Err(Error::Contention)
    }

    async fn fail_restock(&self, id: &CommandId, at: Timestamp) -> Result<()> {
        if let Some((CommandStatus::Pending, restock)) = self.command(id).await? {
            let items = self.settle(&restock, CommandStatus::Failed, RefundStatus::Failed, at)?;
            self.transact(items).await?;
        }
        Ok(())
    }
}
