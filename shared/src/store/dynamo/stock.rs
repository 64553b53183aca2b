//! Stock: a sku's item and its shard items, creating a sku, resharding it, adjustments.

use async_trait::async_trait;

use super::codec::{corrupt, get_n, get_parsed, key_of, n, s, values, Attributes};
use super::holds::hold_item;
use super::orders::order_item;
use super::records::with_receipt;
use super::schema::{self, ItemKey};
use super::{DynamoStore, Transaction};
use crate::domain::{Adjustment, ShardCount, ShardStock, Sku, Take, Timestamp};
use crate::error::Result;
use crate::idempotency::RecordedRequest;
use crate::store::{
    Attempt, ReadStock, RecordExists, SkuStock, TakeRefused, TakeStock, Taker, WriteStock,
};

fn stock_item(sku: &Sku, shard: u16, available: u64, at: &str) -> Attributes {
    let (pk, sk) = schema::stock_key(sku, shard);
    values([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("entity", s("stock")),
        ("available", n(available)),
        ("reserved", n(0)),
        ("sold", n(0)),
        ("updated_at", s(at)),
    ])
}

fn adjustment_item(adjustment: &Adjustment) -> Attributes {
    let (pk, sk) = schema::adjustment_key(&adjustment.sku, &adjustment.id);
    values([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("entity", s("adjustment")),
        ("adjustment_id", s(adjustment.id.as_str())),
        ("delta", n(adjustment.delta)),
        ("reason", s(adjustment.reason.as_str())),
        ("created_at", s(adjustment.at.to_string())),
    ])
}

/// The record a take writes: the hold or the order, with the request's receipt.
fn taker_item(record: Taker<'_>, receipt: &RecordedRequest) -> Result<Attributes> {
    match record {
        Taker::Hold(reservation) => hold_item(reservation, receipt),
        Taker::Order(order) => order_item(order, receipt),
    }
}

#[async_trait]
impl ReadStock for DynamoStore {
    async fn sku_stock(&self, sku: &Sku) -> Result<Option<SkuStock>> {
        let Some(meta) = self.get(schema::sku_key(sku)).await? else {
            return Ok(None);
        };
        self.stock_of(sku, &meta).await.map(Some)
    }
}

impl DynamoStore {
    /// The sku as its item `meta` (read before) and its shard items say.
    pub(super) async fn stock_of(&self, sku: &Sku, meta: &Attributes) -> Result<SkuStock> {
        let active = get_n(meta, "shards").and_then(|count: u64| {
            ShardCount::new(count).map_err(|_| corrupt(meta, "attribute shards is out of range"))
        })?;
        let items: u16 = get_n(meta, "shard_items")?;
        let mut updated_at = get_parsed(meta, "updated_at", Timestamp::parse)?;
        let keys: Vec<Attributes> = (0..items)
            .map(|shard| {
                let (pk, sk) = schema::stock_key(sku, shard);
                values([("pk", s(pk)), ("sk", s(sk))])
            })
            .collect();
        let mut shards = Vec::with_capacity(usize::from(items));
        for item in &self.batch_get(keys).await? {
            let shard = match key_of(item)? {
                ItemKey::Stock(of, shard) if of == *sku && shard < items => shard,
                _ => return Err(corrupt(item, "it is not a stock shard of its sku")),
            };
            updated_at = updated_at.max(get_parsed(item, "updated_at", Timestamp::parse)?);
            shards.push(ShardStock {
                shard,
                available: get_n(item, "available")?,
                reserved: get_n(item, "reserved")?,
                sold: get_n(item, "sold")?,
            });
        }
        if shards.len() != usize::from(items) {
            return Err(corrupt(
                meta,
                &format!("it counts {items} shard items, {} were found", shards.len()),
            ));
        }
        shards.sort_by_key(|s| s.shard);
        Ok(SkuStock {
            sku: sku.clone(),
            on_hand: get_n(meta, "on_hand")?,
            active,
            shards,
            updated_at,
        })
    }
}

#[async_trait]
impl WriteStock for DynamoStore {
    async fn take(&self, take: TakeStock<'_>) -> Result<Attempt<TakeRefused>> {
        let mut items = Vec::with_capacity(take.allocations.len() + 3);
        for a in take.allocations {
            items.push(self.move_stock(a, take.movement, take.at)?);
        }
        let guards = match take.campaign {
            Some(guard) => self.campaign_guards(guard, take.at)?,
            None => Vec::new(),
        };
        let first_guard = items.len();
        items.extend(guards);
        let record_index = items.len();
        items.push(self.put_new(taker_item(take.record, take.receipt)?)?);
        let outcome = self.transact(items).await?;
        Ok(match outcome {
            Transaction::Committed => Attempt::Committed,
            _ if outcome.condition_failed(record_index) => {
                Attempt::Refused(TakeRefused::RecordExists)
            }
            _ if outcome.conflicted(record_index) => Attempt::Refused(TakeRefused::RecordInFlight),
            _ if outcome.condition_failed(first_guard) && take.campaign.is_some() => {
                Attempt::Refused(TakeRefused::CampaignClosed)
            }
            _ if outcome.condition_failed(first_guard + 1) && take.campaign.is_some() => {
                Attempt::Refused(TakeRefused::OverLimit)
            }
            _ => Attempt::Stale,
        })
    }

    async fn create_sku(&self, sku: &Sku, spread: &[u64], opening: &Adjustment) -> Result<Attempt> {
        let at = opening.at.to_string();
        let (pk, sk) = schema::sku_key(sku);
        let mut items = vec![self.put_new(values([
            ("pk", s(pk)),
            ("sk", s(sk)),
            ("entity", s("sku")),
            ("sku", s(sku.as_str())),
            ("on_hand", n(opening.delta)),
            ("adjusted", n(opening.delta)),
            ("shards", n(spread.len())),
            ("shard_items", n(spread.len())),
            ("sweep_bucket", s(schema::SKUS_BUCKET)),
            ("sweep_at", s(sku.as_str())),
            ("created_at", s(&at)),
            ("updated_at", s(&at)),
        ]))?];
        for (shard, available) in spread.iter().enumerate() {
            items.push(self.put_new(stock_item(sku, shard as u16, *available, &at))?);
        }
        items.push(self.put_new(adjustment_item(opening))?);
        Ok(self.transact(items).await?.into())
    }

    async fn reshard(
        &self,
        seen: &SkuStock,
        active: ShardCount,
        available: &[u64],
        at: Timestamp,
    ) -> Result<Attempt> {
        let sku = &seen.sku;
        let at = at.to_string();
        let mut items = vec![self.update(
            schema::sku_key(sku),
            "SET shards = :k, shard_items = :items, updated_at = :at",
            "shards = :active",
            values([
                (":k", n(active.get())),
                (":items", n(available.len())),
                (":active", n(seen.active.get())),
                (":at", s(&at)),
            ]),
        )?];
        for (shard, want) in available.iter().enumerate() {
            let shard = shard as u16;
            let change = |expression, condition, q: u64| {
                self.update(
                    schema::stock_key(sku, shard),
                    expression,
                    condition,
                    values([(":q", n(q)), (":at", s(&at))]),
                )
            };
            match seen.shards.iter().find(|s| s.shard == shard) {
                None => items.push(self.put_new(stock_item(sku, shard, *want, &at))?),
                Some(have) if have.available > *want => items.push(change(
                    "SET available = available - :q, updated_at = :at",
                    "available >= :q",
                    have.available - want,
                )?),
                Some(have) if have.available < *want => items.push(change(
                    "SET available = available + :q, updated_at = :at",
                    "attribute_exists(pk)",
                    want - have.available,
                )?),
                Some(_) => {}
            }
        }
        Ok(self.transact(items).await?.into())
    }

    async fn adjust(
        &self,
        seen: &SkuStock,
        adjustment: &Adjustment,
        takes: &[Take],
        receipt: Option<&RecordedRequest>,
    ) -> Result<Attempt<RecordExists>> {
        let sku = &adjustment.sku;
        let at = adjustment.at.to_string();
        let mut items = vec![self.update(
            schema::sku_key(sku),
            // `adjusted` is the running total the audit checks `on_hand` against. A sku
            // item written before it was kept starts it at the `on_hand` it was seen with.
            "SET on_hand = :next, adjusted = if_not_exists(adjusted, :seen) + :delta, \
             updated_at = :at",
            "on_hand = :seen",
            values([
                (":next", n(seen.on_hand as i64 + adjustment.delta)),
                (":seen", n(seen.on_hand)),
                (":delta", n(adjustment.delta)),
                (":at", s(&at)),
            ]),
        )?];
        let (expression, condition) = match adjustment.delta > 0 {
            true => (
                "SET available = available + :q, updated_at = :at",
                "attribute_exists(pk)",
            ),
            false => (
                "SET available = available - :q, updated_at = :at",
                "available >= :q",
            ),
        };
        for take in takes {
            items.push(self.update(
                schema::stock_key(sku, take.shard),
                expression,
                condition,
                values([(":q", n(take.quantity)), (":at", s(&at))]),
            )?);
        }
        let record = adjustment_item(adjustment);
        let record = match receipt {
            Some(receipt) => with_receipt(record, receipt),
            None => record,
        };
        let record_index = items.len();
        items.push(self.put_new(record)?);
        Ok(match self.transact(items).await? {
            Transaction::Committed => Attempt::Committed,
            outcome if outcome.condition_failed(record_index) => Attempt::Refused(RecordExists),
            _ => Attempt::Stale,
        })
    }
}
