//! What the scheduled sweep reads: overdue holds, unapplied commands, every sku's books.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::future::try_join_all;

use super::codec::{corrupt, get_n, key_of, s, values};
use super::holds::reservation_from;
use super::schema::{self, ItemKey, StoredStatus, Sweep, BUCKETS};
use super::{store_error, DynamoStore, Transaction};
use crate::domain::{
    CommandId, CommandStatus, ReservationId, ReservationStatus, Restock, Sku, Timestamp,
};
use crate::error::{Error, Result};
use crate::store::{
    FindOverdueHolds, FindUnappliedCommands, ReadBooks, ReadCommand, ReadStock, SkuBooks,
};

impl DynamoStore {
    /// What `read` makes of the key of every item in one index bucket, up to `upto` when
    /// given. An item whose key `schema` does not read, or that `read` refuses (of a kind
    /// that has no place in the bucket), is an error: the sweep fails loudly rather than
    /// pass over an item it cannot account for.
    async fn bucket<T>(
        &self,
        bucket: String,
        upto: Option<String>,
        read: impl Fn(ItemKey) -> Option<T>,
    ) -> Result<Vec<T>> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(schema::SWEEP_INDEX)
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
                let key = read(key_of(item)?).ok_or_else(|| {
                    corrupt(item, &format!("it has no place in sweep bucket {bucket}"))
                })?;
                keys.push(key);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    async fn buckets<T>(
        &self,
        kind: Sweep,
        upto: Option<String>,
        read: fn(ItemKey) -> Option<T>,
    ) -> Result<Vec<T>> {
        let all =
            try_join_all((0..BUCKETS).map(|b| self.bucket(kind.bucket(b), upto.clone(), read)))
                .await?;
        Ok(all.into_iter().flatten().collect())
    }

    async fn sku_books(&self, sku: Sku, held: u64) -> Result<SkuBooks> {
        let stock = self.sku_stock(&sku).await?.ok_or_else(|| Error::Store {
            message: format!("sku {sku} has no sku item"),
            retryable: false,
        })?;
        let mut adjustments = 0i64;
        self.query_partition(schema::sku(&sku), Some(schema::ADJUSTMENT_PREFIX), |item| {
            if !matches!(key_of(item)?, ItemKey::Adjustment(of, _) if of == sku) {
                return Err(corrupt(item, "it is not an adjustment of its sku"));
            }
            adjustments += get_n::<i64>(item, "delta")?;
            Ok(())
        })
        .await?;
        Ok(SkuBooks {
            levels: stock.levels(),
            recorded_on_hand: stock.on_hand,
            adjustments,
            held,
        })
    }
}

#[async_trait]
impl FindOverdueHolds for DynamoStore {
    async fn overdue_holds(&self, now: Timestamp) -> Result<Vec<ReservationId>> {
        self.buckets(Sweep::Hold, Some(now.to_string()), reservation_id)
            .await
    }
}

#[async_trait]
impl FindUnappliedCommands for DynamoStore {
    async fn unapplied_commands(&self, cutoff: Timestamp) -> Result<Vec<Restock>> {
        let ids = self
            .buckets(Sweep::Command, Some(cutoff.to_string()), command_id)
            .await?;
        let commands = try_join_all(ids.iter().map(|id| self.command(id))).await?;
        Ok(commands
            .into_iter()
            .flatten()
            .filter(|(status, _)| *status == CommandStatus::Pending)
            .map(|(_, restock)| restock)
            .collect())
    }

    async fn mark_resent(&self, id: &CommandId, at: Timestamp) -> Result<()> {
        let item = self.update(
            schema::command_key(id),
            "SET sweep_at = :at",
            "#status = :pending",
            values([
                (":at", s(at.to_string())),
                (":pending", s(CommandStatus::Pending.text())),
            ]),
        )?;
        let outcome = self.transact(vec![item]).await?;
        // A command applied in the meantime fails the condition, and needs nothing more;
        // a busy table leaves it due, so the next sweep sends it again (harmless: it
        // applies once).
        match outcome {
            Transaction::Committed => Ok(()),
            _ if outcome.condition_failed(0) => Ok(()),
            _ => Err(Error::Contention),
        }
    }
}

#[async_trait]
impl ReadBooks for DynamoStore {
    async fn books(&self) -> Result<Vec<SkuBooks>> {
        let held_ids = self.buckets(Sweep::Hold, None, reservation_id).await?;
        let holds = try_join_all(
            held_ids
                .iter()
                .map(|id| self.get(schema::reservation_key(id))),
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
            .bucket(schema::SKUS_BUCKET.into(), None, |key| match key {
                ItemKey::Sku(sku) => Some(sku),
                _ => None,
            })
            .await?;
        try_join_all(skus.into_iter().map(|sku| {
            let held = held.get(&sku).copied().unwrap_or(0);
            self.sku_books(sku, held)
        }))
        .await
    }
}

/// The reservation a hold bucket's item is; nothing else belongs there.
fn reservation_id(key: ItemKey) -> Option<ReservationId> {
    match key {
        ItemKey::Reservation(id) => Some(id),
        _ => None,
    }
}

/// The command a command bucket's item is; nothing else belongs there.
fn command_id(key: ItemKey) -> Option<CommandId> {
    match key {
        ItemKey::Command(id) => Some(id),
        _ => None,
    }
}
