//! Compensation commands: reading one, applying it (units back, refund completed) or
//! marking it failed, each with its refund, by conditions on their statuses.

use async_trait::async_trait;

use super::codec::{corrupt, get_json, get_status, key_of, n, s, values};
use super::schema::{self, ItemKey, StoredStatus};
use super::{DynamoStore, Transaction};
use crate::domain::{CommandId, CommandStatus, Restock, StockMove, Timestamp};
use crate::error::Result;
use crate::idempotency::RETENTION_SECONDS;
use crate::store::{Attempt, ReadCommand, UnitsMissing, WriteCommand};

#[async_trait]
impl ReadCommand for DynamoStore {
    async fn command(&self, id: &CommandId) -> Result<Option<(CommandStatus, Restock)>> {
        let Some(item) = self.get(schema::command_key(id)).await? else {
            return Ok(None);
        };
        let restock: Restock = get_json(&item, "command")?;
        if restock.command_id != *id || key_of(&item)? != ItemKey::Command(id.clone()) {
            return Err(corrupt(&item, "its key is not its command's"));
        }
        Ok(Some((get_status(&item)?, restock)))
    }
}

impl DynamoStore {
    /// The command leaving one of `from` for `to`, and its refund with it. Only an
    /// APPLIED command may expire: a FAILED one stays until a redrive applies it, however
    /// long its message waits in the dead-letter queue.
    fn settle(
        &self,
        restock: &Restock,
        from: &[CommandStatus],
        to: CommandStatus,
        at: Timestamp,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>> {
        let mut command = values([(":to", s(to.text())), (":at", s(at.to_string()))]);
        let mut refund = values([
            (":to", s(to.refund_status().text())),
            (":at", s(at.to_string())),
        ]);
        let mut allowed = Vec::new();
        for (i, status) in from.iter().enumerate() {
            command.insert(format!(":from{i}"), s(status.text()));
            refund.insert(format!(":from{i}"), s(status.refund_status().text()));
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
                schema::command_key(&restock.command_id),
                expire,
                &condition,
                command,
            )?,
            self.update(
                schema::refund_key(&restock.order_id, &restock.refund_id),
                "SET #status = :to, updated_at = :at",
                &condition,
                refund,
            )?,
        ])
    }
}

#[async_trait]
impl WriteCommand for DynamoStore {
    async fn apply_command(
        &self,
        restock: &Restock,
        from: &[CommandStatus],
        at: Timestamp,
    ) -> Result<Attempt<UnitsMissing>> {
        let mut items = self.settle(restock, from, CommandStatus::Applied, at)?;
        let statuses = items.len();
        for unit in &restock.units {
            items.push(self.move_stock(unit, StockMove::RESTOCK, at)?);
        }
        Ok(match self.transact(items).await? {
            Transaction::Committed => Attempt::Committed,
            outcome if (statuses..outcome.len()).any(|i| outcome.condition_failed(i)) => {
                Attempt::Refused(UnitsMissing)
            }
            _ => Attempt::Stale,
        })
    }

    async fn fail_command(&self, restock: &Restock, at: Timestamp) -> Result<Attempt> {
        let items = self.settle(
            restock,
            &[CommandStatus::Pending],
            CommandStatus::Failed,
            at,
        )?;
        Ok(self.transact(items).await?.into())
    }
}
