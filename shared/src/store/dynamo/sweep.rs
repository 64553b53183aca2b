//! What the scheduled sweep reads: overdue holds, unapplied commands, every sku's books.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::future::try_join_all;

use super::codec::{get_n, get_s, s};
use super::holds::reservation_from;
use super::keys::{self, Sweep, BUCKETS};
use super::{store_error, DynamoStore};
use crate::domain::{
    CommandId, CommandStatus, ReservationId, ReservationStatus, Restock, Sku, Timestamp,
};
use crate::error::{Error, Result};
use crate::store::{FindOverdueHolds, FindUnappliedCommands, ReadBooks, SkuBooks};

impl DynamoStore {
    /// The `pk` of every item in one index bucket, up to `upto` when given.
    async fn bucket(&self, bucket: String, upto: Option<String>) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::SWEEP_INDEX)
                .expression_attribute_values(":b", s(bucket.clone()))
                .set_exclusive_start_key(start);
            query = match &upto {
                Some(upto) => query
                    .key_condition_expression("sweep_bucket = :b AND sweep_at <= :upto")
                    .expression_attribute_values(":upto", s(upto)),
                None => query.key_condition_expression("sweep_bucket = :b"),
            };
            let out = query.send().await.map_err(|e| store_error("Query", e))?;
            for item in out.items() {
                keys.push(get_s(item, "pk")?.to_owned());
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    async fn buckets(&self, kind: Sweep, upto: Option<String>) -> Result<Vec<String>> {
        let all =
            try_join_all((0..BUCKETS).map(|b| self.bucket(kind.bucket(b), upto.clone()))).await?;
        Ok(all.into_iter().flatten().collect())
    }

    async fn sku_books(&self, sku: Sku, held: u64) -> Result<SkuBooks> {
        let snapshot = self.snapshot(&sku).await?.ok_or_else(|| Error::Store {
            message: format!("sku {sku} has no sku item"),
            retryable: false,
        })?;
        let mut adjustments = 0i64;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :adj)")
                .expression_attribute_values(":pk", s(keys::sku(&sku)))
                .expression_attribute_values(":adj", s("ADJ#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            for item in out.items() {
                adjustments += get_n::<i64>(item, "delta")?;
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(SkuBooks {
            levels: snapshot.levels(&sku),
            recorded_on_hand: snapshot.on_hand,
            adjustments,
            held,
        })
    }
}

fn id_after<'a>(pk: &'a str, prefix: &str) -> Option<&'a str> {
    pk.strip_prefix(prefix)
}

#[async_trait]
impl FindOverdueHolds for DynamoStore {
    async fn overdue_holds(&self, now: Timestamp) -> Result<Vec<ReservationId>> {
        let keys = self.buckets(Sweep::Hold, Some(now.to_string())).await?;
        Ok(keys
            .iter()
            .filter_map(|pk| {
                id_after(pk, "RESERVATION#").and_then(|id| ReservationId::parse(id).ok())
            })
            .collect())
    }
}

#[async_trait]
impl FindUnappliedCommands for DynamoStore {
    async fn unapplied_commands(&self, cutoff: Timestamp) -> Result<Vec<Restock>> {
        let keys = self
            .buckets(Sweep::Command, Some(cutoff.to_string()))
            .await?;
        let ids: Vec<CommandId> = keys
            .iter()
            .filter_map(|pk| id_after(pk, "COMMAND#").and_then(|id| CommandId::parse(id).ok()))
            .collect();
        let commands = try_join_all(ids.iter().map(|id| self.command(id))).await?;
        Ok(commands
            .into_iter()
            .flatten()
            .filter(|(status, _)| *status == CommandStatus::Pending)
            .map(|(_, restock)| restock)
            .collect())
    }

    async fn mark_resent(&self, id: &CommandId, at: Timestamp) -> Result<()> {
        let pending = serde_json::to_value(CommandStatus::Pending).unwrap_or_default();
        let item = self.update(
            keys::command(id),
            keys::COMMAND.into(),
            "SET sweep_at = :at",
            "#status = :pending",
            super::codec::values([
                (":at", s(at.to_string())),
                (":pending", s(pending.as_str().unwrap_or_default())),
            ]),
        )?;
        // A command applied in the meantime fails the condition, and needs nothing more.
        self.transact(vec![item]).await?;
        Ok(())
    }
}

#[async_trait]
impl ReadBooks for DynamoStore {
    async fn books(&self) -> Result<Vec<SkuBooks>> {
        let hold_keys = self.buckets(Sweep::Hold, None).await?;
        let holds = try_join_all(
            hold_keys
                .into_iter()
                .map(|pk| self.get(pk, keys::RESERVATION.into())),
        )
        .await?;
        let mut held: BTreeMap<Sku, u64> = BTreeMap::new();
        for item in holds.iter().flatten() {
            let reservation = reservation_from(item)?;
            if reservation.status == ReservationStatus::Held {
                for a in &reservation.allocations {
                    *held.entry(a.sku.clone()).or_default() += a.take.quantity;
                }
            }
        }
        let skus: Vec<Sku> = self
            .bucket(keys::SKUS_BUCKET.into(), None)
            .await?
            .iter()
            .filter_map(|pk| id_after(pk, "SKU#").and_then(|sku| Sku::parse(sku).ok()))
            .collect();
        try_join_all(skus.into_iter().map(|sku| {
            let held = held.get(&sku).copied().unwrap_or(0);
            self.sku_books(sku, held)
        }))
        .await
    }
}
