//! What the scheduled sweep reads: overdue holds, unapplied commands, every sku's books.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::future::try_join_all;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::codec::{corrupt, get_n, key_of, n, s, values, Attributes};
use super::holds::reservation_from;
use super::schema::{self, ItemKey, StoredStatus, Sweep, BUCKETS};
use super::stock::{shard_keys, stock_from};
use super::{store_error, DynamoStore, Transaction};
use crate::domain::{
    CommandId, CommandStatus, ReservationId, ReservationStatus, Restock, Sku, Timestamp,
};
use crate::error::{Error, Result};
use crate::store::{
    FindOverdueHolds, FindUnappliedCommands, ListSkus, ReadBooks, ReadCommand, SkuBooks, SkuStock,
};

/// Keys per page of an index query, and items per batch read: a stream of pages stops
/// soon after its reader does, and no one request keeps the table (or the local
/// emulator, which serves the API too) busy for long.
const PAGE_SIZE: usize = 100;

impl DynamoStore {
    /// What `read` makes of the key of every item in one index bucket, up to `upto` when
    /// given, a page per query, read only when the stream is polled. An item whose key
    /// `schema` does not read, or that `read` refuses (of a kind that has no place in the
    /// bucket), is an error: the sweep fails loudly rather than pass over an item it
    /// cannot account for.
    fn bucket_pages<T: Send + 'static>(
        &self,
        bucket: String,
        upto: Option<String>,
        read: fn(ItemKey) -> Option<T>,
    ) -> BoxStream<'_, Result<Vec<T>>> {
        // The state is where the next query starts; `None` once the last page is read.
        let first: Option<Option<Attributes>> = Some(None);
        stream::try_unfold(first, move |next| {
            let (bucket, upto) = (bucket.clone(), upto.clone());
            async move {
                let Some(start) = next else {
                    return Ok(None);
                };
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(schema::SWEEP_INDEX)
                    .limit(PAGE_SIZE as i32)
                    .expression_attribute_values(":b", s(bucket.clone()))
                    .set_exclusive_start_key(start);
                query = match upto {
                    Some(upto) => query
                        .key_condition_expression("sweep_bucket = :b AND sweep_at <= :upto")
                        .expression_attribute_values(":upto", s(upto)),
                    None => query.key_condition_expression("sweep_bucket = :b"),
                };
                let out = query.send().await.map_err(|e| store_error("Query", e))?;
                let keys = out
                    .items()
                    .iter()
                    .map(|item| {
                        read(key_of(item)?).ok_or_else(|| {
                            corrupt(item, &format!("it has no place in sweep bucket {bucket}"))
                        })
                    })
                    .collect::<Result<Vec<T>>>()?;
                Ok(Some((keys, out.last_evaluated_key.map(Some))))
            }
        })
        .boxed()
    }

    /// Every bucket of a kind as one stream of pages, one bucket after the other: one
    /// query at a time is all a sweep needs (a page holds `PAGE_SIZE` keys), and it never
    /// crowds the table, or the local emulator, with a query per bucket at once.
    fn bucket_streams<T: Send + 'static>(
        &self,
        kind: Sweep,
        upto: Option<String>,
        read: fn(ItemKey) -> Option<T>,
    ) -> BoxStream<'_, Result<Vec<T>>> {
        stream::iter(0..BUCKETS)
            .map(move |b| self.bucket_pages(kind.bucket(b), upto.clone(), read))
            .flatten()
            .boxed()
    }

    async fn bucket<T: Send + 'static>(
        &self,
        bucket: String,
        upto: Option<String>,
        read: fn(ItemKey) -> Option<T>,
    ) -> Result<Vec<T>> {
        let pages: Vec<Vec<T>> = self.bucket_pages(bucket, upto, read).try_collect().await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn buckets<T: Send + 'static>(
        &self,
        kind: Sweep,
        upto: Option<String>,
        read: fn(ItemKey) -> Option<T>,
    ) -> Result<Vec<T>> {
        let pages: Vec<Vec<T>> = self.bucket_streams(kind, upto, read).try_collect().await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// The items of `keys`, `PAGE_SIZE` to a request, one request at a time.
    async fn read_items(&self, keys: Vec<Attributes>) -> Result<Vec<Attributes>> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(PAGE_SIZE) {
            items.extend(self.batch_get(chunk.to_vec()).await?);
        }
        Ok(items)
    }

    /// The stock of each of `skus` that has its sku item, with that item: the sku items,
    /// then all their shard items, a few to a request.
    async fn stocks(&self, skus: &[Sku]) -> Result<BTreeMap<Sku, (SkuStock, Attributes)>> {
        let keys = skus.iter().map(|sku| {
            let (pk, sk) = schema::sku_key(sku);
            values([("pk", s(pk)), ("sk", s(sk))])
        });
        let mut metas: BTreeMap<Sku, Attributes> = BTreeMap::new();
        for item in self.read_items(keys.collect()).await? {
            let ItemKey::Sku(sku) = key_of(&item)? else {
                return Err(corrupt(&item, "it is not a sku item"));
            };
            metas.insert(sku, item);
        }
        let mut keys = Vec::new();
        for (sku, meta) in &metas {
            keys.extend(shard_keys(sku, meta)?);
        }
        let mut shards: BTreeMap<Sku, Vec<Attributes>> = BTreeMap::new();
        for item in self.read_items(keys).await? {
            let ItemKey::Stock(sku, _) = key_of(&item)? else {
                return Err(corrupt(&item, "it is not a stock shard"));
            };
            shards.entry(sku).or_default().push(item);
        }
        metas
            .into_iter()
            .map(|(sku, meta)| {
                let stock = stock_from(&sku, &meta, &shards.remove(&sku).unwrap_or_default())?;
                Ok((sku, (stock, meta)))
            })
            .collect()
    }

    /// The sku's books from its stock and its item, its holds not yet counted: the
    /// running total of adjustments is kept on the sku item, so the history is not read.
    async fn sku_books(&self, stock: SkuStock, meta: &Attributes) -> Result<SkuBooks> {
        let adjustments = match meta.get("adjusted") {
            Some(_) => get_n::<i64>(meta, "adjusted")?,
            None => self.start_running_total(&stock.sku, stock.on_hand).await?,
        };
        Ok(SkuBooks {
            levels: stock.levels(),
            recorded_on_hand: stock.on_hand,
            adjustments,
            held: 0,
            settled: true,
        })
    }

    /// A sku item written before the running total was kept: its history summed once,
    /// and the sum written as the total if nothing adjusted the sku since `on_hand` was
    /// read (else the adjustment has started the total itself).
    async fn start_running_total(&self, sku: &Sku, on_hand: u64) -> Result<i64> {
        let mut sum = 0i64;
        self.query_partition(schema::sku(sku), Some(schema::ADJUSTMENT_PREFIX), |item| {
            if !matches!(key_of(item)?, ItemKey::Adjustment(of, _) if of == *sku) {
                return Err(corrupt(item, "it is not an adjustment of its sku"));
            }
            sum += get_n::<i64>(item, "delta")?;
            Ok(())
        })
        .await?;
        let item = self.update(
            schema::sku_key(sku),
            "SET adjusted = :sum",
            "attribute_not_exists(adjusted) AND on_hand = :on_hand",
            values([(":sum", n(sum)), (":on_hand", n(on_hand))]),
        )?;
        self.transact(vec![item]).await?;
        Ok(sum)
    }
}

impl FindOverdueHolds for DynamoStore {
    fn overdue_holds(&self, now: Timestamp) -> BoxStream<'_, Result<Vec<ReservationId>>> {
        self.bucket_streams(Sweep::Hold, Some(now.to_string()), reservation_id)
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

/// The index's skus bucket sorts skus by id (`sweep_at` is the sku), so a page of skus is
/// one query from where the last one stopped, and their stock one batch read.
#[async_trait]
impl ListSkus for DynamoStore {
    async fn skus_after(&self, after: Option<&Sku>, limit: usize) -> Result<Vec<SkuStock>> {
        let mut skus: Vec<Sku> = Vec::with_capacity(limit);
        let mut start = None;
        while skus.len() < limit {
            let wanted = (limit - skus.len()).min(PAGE_SIZE);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(schema::SWEEP_INDEX)
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .expression_attribute_values(":b", s(schema::SKUS_BUCKET))
                .set_exclusive_start_key(start);
            query = match after {
                Some(after) => query
                    .key_condition_expression("sweep_bucket = :b AND sweep_at > :after")
                    .expression_attribute_values(":after", s(after.as_str())),
                None => query.key_condition_expression("sweep_bucket = :b"),
            };
            let out = query.send().await.map_err(|e| store_error("Query", e))?;
            for item in out.items() {
                match key_of(item)? {
                    ItemKey::Sku(sku) => skus.push(sku),
                    _ => return Err(corrupt(item, "it has no place in the skus bucket")),
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let mut stocks = self.stocks(&skus).await?;
        Ok(skus
            .iter()
            .filter_map(|sku| stocks.remove(sku).map(|(stock, _)| stock))
            .collect())
    }
}

#[async_trait]
impl ReadBooks for DynamoStore {
    /// Each sku's stock is read before the holds and, where the two disagree, again
    /// after: a sku whose stock moved in between is not `settled`.
    async fn books(&self) -> Result<Vec<SkuBooks>> {
        let skus: Vec<Sku> = self
            .bucket(schema::SKUS_BUCKET.into(), None, |key| match key {
                ItemKey::Sku(sku) => Some(sku),
                _ => None,
            })
            .await?;
        let mut stocks = self.stocks(&skus).await?;
        let mut books = Vec::with_capacity(skus.len());
        for sku in &skus {
            let (stock, meta) = stocks.remove(sku).ok_or_else(|| Error::Store {
                message: format!("sku {sku} has no sku item"),
                retryable: false,
            })?;
            books.push(self.sku_books(stock, &meta).await?);
        }
        let held = self.held_units().await?;
        for b in &mut books {
            b.held = held.get(&b.levels.sku).copied().unwrap_or(0);
        }
        let disagreeing: Vec<Sku> = books
            .iter()
            .filter(|b| b.held != b.levels.reserved)
            .map(|b| b.levels.sku.clone())
            .collect();
        let after = self.stocks(&disagreeing).await?;
        let moved: Vec<Sku> = books
            .iter()
            .filter(|b| b.held != b.levels.reserved)
            .filter(|b| {
                after
                    .get(&b.levels.sku)
                    .is_none_or(|(a, _)| a.levels() != b.levels)
            })
            .map(|b| b.levels.sku.clone())
            .collect();
        for b in &mut books {
            b.settled = !moved.contains(&b.levels.sku);
        }
        Ok(books)
    }
}

impl DynamoStore {
    /// The units HELD reservations hold, by sku.
    async fn held_units(&self) -> Result<BTreeMap<Sku, u64>> {
        let held_ids = self.buckets(Sweep::Hold, None, reservation_id).await?;
        let keys = held_ids.iter().map(|id| {
            let (pk, sk) = schema::reservation_key(id);
            values([("pk", s(pk)), ("sk", s(sk))])
        });
        let mut held: BTreeMap<Sku, u64> = BTreeMap::new();
        for item in &self.read_items(keys.collect()).await? {
            let reservation = reservation_from(item)?;
            if reservation.status == ReservationStatus::Held {
                for a in &reservation.allocations {
                    *held.entry(a.sku.clone()).or_default() += a.take.quantity;
                }
            }
        }
        Ok(held)
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
