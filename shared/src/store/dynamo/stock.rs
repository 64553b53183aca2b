//! Stock: a sku's item and its shard items, creating a sku, resharding it, adjustments.

use async_trait::async_trait;

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::campaigns::{terms_from, terms_values};
use super::codec::{corrupt, get_n, get_parsed, key_of, n, s, values, Attributes};
use super::holds::hold_item;
use super::orders::order_item;
use super::records::with_receipt;
use super::schema::{self, ItemKey};
use super::{DynamoStore, Transaction};
use crate::domain::{
    Adjustment, Allocation, ShardCount, ShardStock, Sku, SkuTerms, StockMove, Take, Timestamp,
};
use crate::error::Result;
use crate::idempotency::RecordedRequest;
use crate::store::{
    Attempt, ReadStock, RecordExists, ShardSeen, SkuStock, TakeRefused, TakeStock, Taker,
    TermsCheck, WriteStock,
};

fn stock_item(sku: &Sku, shard: u16, available: u64, terms: &SkuTerms, at: &str) -> Attributes {
    let (pk, sk) = schema::stock_key(sku, shard);
    let mut item = values([
        ("pk", s(pk)),
        ("sk", s(sk)),
        ("entity", s("stock")),
        ("available", n(available)),
        ("reserved", n(0)),
        ("sold", n(0)),
        ("updated_at", s(at)),
    ]);
    if terms.version > 0 {
        item.extend(terms_values(terms).map(|(k, v)| (k.to_owned(), v)));
    }
    item
}

/// A stock item's counters.
fn shard_stock(item: &Attributes, shard: u16) -> Result<ShardStock> {
    Ok(ShardStock {
        shard,
        available: get_n(item, "available")?,
        reserved: get_n(item, "reserved")?,
        sold: get_n(item, "sold")?,
    })
}

/// A stock item as a refused take found it.
fn shard_seen(item: &Attributes) -> Result<ShardSeen> {
    let ItemKey::Stock(sku, shard) = key_of(item)? else {
        return Err(corrupt(item, "it is not a stock shard"));
    };
    Ok(ShardSeen {
        stock: shard_stock(item, shard)?,
        terms: terms_from(item)?,
        sku,
    })
}

pub(super) fn adjustment_item(adjustment: &Adjustment) -> Attributes {
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

    async fn sku_terms(&self, sku: &Sku) -> Result<Option<SkuTerms>> {
        // Shard 0 exists for as long as the sku does, stamped with the others.
        match self.get(schema::stock_key(sku, 0)).await? {
            Some(item) => terms_from(&item).map(Some),
            None => Ok(None),
        }
    }
}

/// The condition that an item carries the terms version of `terms` (`:terms`).
fn terms_condition(terms: &SkuTerms) -> &'static str {
    match terms.version {
        0 => "attribute_not_exists(terms)",
        _ => "terms = :terms",
    }
}

/// The keys of the sku's shard items, as its item `meta` counts them.
pub(super) fn shard_keys(sku: &Sku, meta: &Attributes) -> Result<Vec<Attributes>> {
    let items: u16 = get_n(meta, "shard_items")?;
    Ok((0..items)
        .map(|shard| {
            let (pk, sk) = schema::stock_key(sku, shard);
            values([("pk", s(pk)), ("sk", s(sk))])
        })
        .collect())
}

/// The sku as its item `meta` and its shard items (read after it, in any order) say.
pub(super) fn stock_from(sku: &Sku, meta: &Attributes, items: &[Attributes]) -> Result<SkuStock> {
    let active = get_n(meta, "shards").and_then(|count: u64| {
        ShardCount::new(count).map_err(|_| corrupt(meta, "attribute shards is out of range"))
    })?;
    let counted: u16 = get_n(meta, "shard_items")?;
    let mut updated_at = get_parsed(meta, "updated_at", Timestamp::parse)?;
    let mut shards = Vec::with_capacity(usize::from(counted));
    for item in items {
        let shard = match key_of(item)? {
            ItemKey::Stock(of, shard) if of == *sku && shard < counted => shard,
            _ => return Err(corrupt(item, "it is not a stock shard of its sku")),
        };
        updated_at = updated_at.max(get_parsed(item, "updated_at", Timestamp::parse)?);
        shards.push(shard_stock(item, shard)?);
    }
    if shards.len() != usize::from(counted) {
        return Err(corrupt(
            meta,
            &format!(
                "it counts {counted} shard items, {} were found",
                shards.len()
            ),
        ));
    }
    shards.sort_by_key(|s| s.shard);
    Ok(SkuStock {
        sku: sku.clone(),
        on_hand: get_n(meta, "on_hand")?,
        active,
        shards,
        terms: terms_from(meta)?,
        updated_at,
    })
}

impl DynamoStore {
    /// The sku as its item `meta` (read before) and its shard items say.
    pub(super) async fn stock_of(&self, sku: &Sku, meta: &Attributes) -> Result<SkuStock> {
        let shards = self.batch_get(shard_keys(sku, meta)?).await?;
        stock_from(sku, meta, &shards)
    }

    /// One allocation's move, conditioned on its source counter and, for a take under
    /// terms, on the terms version its sku's stock items carry; refused, it shows the
    /// item.
    fn take_one(
        &self,
        a: &Allocation,
        movement: StockMove,
        terms: Option<&TermsCheck>,
        at: Timestamp,
    ) -> Result<TransactWriteItem> {
        let (from, to) = (movement.from.name(), movement.to.name());
        let mut condition = format!("{from} >= :q");
        let mut vals = values([(":q", n(a.take.quantity)), (":at", s(at.to_string()))]);
        let mut names = Vec::new();
        match terms {
            None => {}
            Some(TermsCheck::Version(0)) => condition.push_str(" AND attribute_not_exists(terms)"),
            Some(TermsCheck::Version(version)) => {
                condition.push_str(" AND terms = :terms");
                vals.insert(":terms".into(), n(*version));
            }
            // Timestamps are stored fixed-width, so their strings order as their times.
            Some(TermsCheck::OpenOffer { campaign, units }) => {
                condition.push_str(
                    " AND offers.#offer.starts_at <= :at AND offers.#offer.ends_at > :at \
                     AND offers.#offer.per_customer_limit >= :units",
                );
                vals.insert(":units".into(), n(*units));
                names.push(("#offer", campaign.as_str()));
            }
        }
        self.update_showing_old(
            schema::stock_key(&a.sku, a.take.shard),
            &format!("SET {from} = {from} - :q, {to} = {to} + :q, updated_at = :at"),
            &condition,
            vals,
            &names,
        )
    }
}

#[async_trait]
impl WriteStock for DynamoStore {
    async fn take(&self, take: TakeStock<'_>) -> Result<Attempt<TakeRefused>> {
        let mut items = Vec::with_capacity(take.allocations.len() + 2);
        for a in take.allocations {
            let terms = take
                .terms
                .map(|t| t.get(&a.sku).unwrap_or(&TermsCheck::Version(0)));
            items.push(self.take_one(a, take.movement, terms, take.at)?);
        }
        let counter_index = items.len();
        if let Some(guard) = take.campaign {
            items.push(self.campaign_counter(guard, take.at)?);
        }
        let record_index = items.len();
        items.push(self.put_new(taker_item(take.record, take.receipt)?)?);
        let outcome = self.transact(items).await?;
        if let Transaction::Committed = outcome {
            return Ok(Attempt::Committed);
        }
        if outcome.condition_failed(record_index) {
            return Ok(Attempt::Refused(TakeRefused::RecordExists));
        }
        if outcome.conflicted(record_index) {
            return Ok(Attempt::Refused(TakeRefused::RecordInFlight));
        }
        let moved = (0..take.allocations.len())
            .filter_map(|i| outcome.found(i))
            .map(shard_seen)
            .collect::<Result<Vec<_>>>()?;
        Ok(if !moved.is_empty() {
            Attempt::Refused(TakeRefused::Moved(moved))
        } else if take.campaign.is_some() && outcome.condition_failed(counter_index) {
            Attempt::Refused(TakeRefused::OverLimit)
        } else {
            Attempt::Stale
        })
    }

    async fn create_sku(
        &self,
        sku: &Sku,
        spread: &[u64],
        terms: &SkuTerms,
        opening: &Adjustment,
    ) -> Result<Attempt> {
        let at = opening.at.to_string();
        let (pk, sk) = schema::sku_key(sku);
        let mut meta = values([
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
        ]);
        if terms.version > 0 {
            meta.extend(terms_values(terms).map(|(k, v)| (k.to_owned(), v)));
        }
        let mut items = vec![self.put_new(meta)?];
        for (shard, available) in spread.iter().enumerate() {
            items.push(self.put_new(stock_item(sku, shard as u16, *available, terms, &at))?);
        }
        items.push(self.put_new(adjustment_item(opening))?);
        Ok(self.transact(items).await?.into())
    }

    async fn set_shards(
        &self,
        seen: &SkuStock,
        active: ShardCount,
        at: Timestamp,
    ) -> Result<Attempt> {
        let sku = &seen.sku;
        let at = at.to_string();
        let have = seen.shards.len() as u16;
        let items_after = have.max(active.get());
        let condition = format!(
            "shards = :active AND shard_items = :have AND {}",
            terms_condition(&seen.terms)
        );
        let mut vals = values([
            (":k", n(active.get())),
            (":items", n(items_after)),
            (":active", n(seen.active.get())),
            (":have", n(have)),
            (":at", s(&at)),
        ]);
        if seen.terms.version > 0 {
            vals.insert(":terms".into(), n(seen.terms.version));
        }
        let mut items = vec![self.update(
            schema::sku_key(sku),
            "SET shards = :k, shard_items = :items, updated_at = :at",
            &condition,
            vals,
        )?];
        for shard in have..items_after {
            items.push(self.put_new(stock_item(sku, shard, 0, &seen.terms, &at))?);
        }
        Ok(self.transact(items).await?.into())
    }

    async fn move_available(
        &self,
        sku: &Sku,
        from: u16,
        to: u16,
        quantity: u64,
        at: Timestamp,
    ) -> Result<Attempt> {
        let vals = || values([(":q", n(quantity)), (":at", s(at.to_string()))]);
        let items = vec![
            self.update(
                schema::stock_key(sku, from),
                "SET available = available - :q, updated_at = :at",
                "available >= :q",
                vals(),
            )?,
            self.update(
                schema::stock_key(sku, to),
                "SET available = available + :q, updated_at = :at",
                "attribute_exists(pk)",
                vals(),
            )?,
        ];
        Ok(self.transact(items).await?.into())
    }

    async fn stamp_terms(
        &self,
        seen: &SkuStock,
        terms: &SkuTerms,
        at: Timestamp,
    ) -> Result<Attempt> {
        let sku = &seen.sku;
        const STAMP: &str = "SET terms = :terms, offers = :offers, updated_at = :at";
        let stamp_values = || {
            let mut vals = values([(":at", s(at.to_string()))]);
            vals.extend(terms_values(terms).map(|(k, v)| (format!(":{k}"), v)));
            vals
        };
        let mut meta_values = stamp_values();
        meta_values.insert(":have".into(), n(seen.shards.len()));
        let seen_terms = match seen.terms.version {
            0 => "attribute_not_exists(terms)",
            version => {
                meta_values.insert(":seen".into(), n(version));
                "terms = :seen"
            }
        };
        let mut items = vec![self.update(
            schema::sku_key(sku),
            STAMP,
            &format!("shard_items = :have AND {seen_terms}"),
            meta_values,
        )?];
        for shard in &seen.shards {
            items.push(self.update(
                schema::stock_key(sku, shard.shard),
                STAMP,
                "attribute_exists(pk)",
                stamp_values(),
            )?);
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
