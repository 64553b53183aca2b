//! Stock levels, setting on_hand and adjustments.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem, Update};

use super::codec::{corrupt, get_n, get_parsed, get_s, key_of, n, s, to_json, values, Attributes};
use super::schema::ItemKey;
use super::{schema, store_error, DynamoStore, Transaction};
use crate::domain::{
    plan_decrement, Adjustment, AdjustmentId, Allocation, Lines, Reason, ShardCount, ShardStock,
    Sku, StockLevels, StockMove, Take, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Recorded, RecordedRequest};
use crate::retry::Backoff;
use crate::store::{AdjustStock, ReadStock, SetStock, StockSet};

/// A sku as one consistent read saw it.
#[derive(Debug, Clone)]
pub(super) struct SkuSnapshot {
    pub on_hand: u64,
    /// Shards `0..active` take new stock; items past it (left by a shrink) keep what
    /// is reserved or sold there, and any units that come back to them stay on sale.
    pub active: ShardCount,
    pub shards: Vec<ShardStock>,
    pub updated_at: Timestamp,
}

impl SkuSnapshot {
    pub fn levels(&self, sku: &Sku) -> StockLevels {
        StockLevels::sum(sku.clone(), &self.shards, self.active, self.updated_at)
    }

    fn after(&self, takes: &[Take], sign: i64, at: Timestamp) -> Self {
        let mut next = self.clone();
        for t in takes {
            if let Some(shard) = next.shards.iter_mut().find(|s| s.shard == t.shard) {
                shard.available = shard
                    .available
                    .saturating_add_signed(sign * t.quantity as i64);
            }
        }
        next.on_hand = next
            .on_hand
            .saturating_add_signed(sign * takes.iter().map(|t| t.quantity as i64).sum::<i64>());
        next.updated_at = at;
        next
    }
}

pub(super) fn random_start(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        rand::random_range(0..n)
    }
}

/// `#name` in an expression always stands for the attribute `name` (for reserved words
/// such as `status` and `ttl`).
fn placeholder_names(expressions: &[&str]) -> Option<std::collections::HashMap<String, String>> {
    let names: std::collections::HashMap<String, String> = expressions
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#')))
        .filter_map(|token| {
            token
                .strip_prefix('#')
                .map(|name| (token.to_owned(), name.to_owned()))
        })
        .collect();
    (!names.is_empty()).then_some(names)
}

pub(super) fn build<T, E: std::fmt::Display>(what: &str, built: Result<T, E>) -> Result<T> {
    built.map_err(|e| Error::Store {
        message: format!("building {what}: {e}"),
        retryable: false,
    })
}

/// The idempotency members every request-created record carries.
pub(super) fn recorded_attributes(
    item: &mut Attributes,
    fingerprint: &str,
    status: u16,
    body: String,
) {
    item.insert("request_hash".into(), s(fingerprint));
    item.insert("response_status".into(), n(status));
    item.insert("response_body".into(), s(body));
}

pub(super) fn recorded_request(item: &Attributes) -> Result<RecordedRequest> {
    Ok(RecordedRequest {
        fingerprint: get_s(item, "request_hash")?.to_owned(),
        status: get_n(item, "response_status")?,
        body: get_s(item, "response_body")?.to_owned(),
    })
}

/// What taking stock for a request came to.
pub(super) enum Taken {
    /// The units moved and the record was written: where they came from.
    Done(Vec<Allocation>),
    /// The request's record already exists: it was seen before.
    Existing(RecordedRequest),
}

impl DynamoStore {
    /// One shard's units moved from one counter to another, conditioned on the source.
    pub(super) fn move_stock(
        &self,
        a: &Allocation,
        mv: StockMove,
        at: Timestamp,
    ) -> Result<TransactWriteItem> {
        let (from, to) = (mv.from.name(), mv.to.name());
        self.update(
            schema::stock(&a.sku, a.take.shard),
            schema::STOCK.into(),
            &format!("SET {from} = {from} - :q, {to} = {to} + :q, updated_at = :at"),
            &format!("{from} >= :q"),
            values([(":q", n(a.take.quantity)), (":at", s(at.to_string()))]),
        )
    }

    /// Each line whole from a random shard, when every sku's shard count is known.
    fn guess(&self, lines: &Lines) -> Option<Vec<Allocation>> {
        lines
            .iter()
            .map(|line| {
                let shards = self.known_shards(&line.sku)?;
                let take = Take {
                    shard: random_start(usize::from(shards)) as u16,
                    quantity: u64::from(line.quantity.get()),
                };
                Some(Allocation {
                    sku: line.sku.clone(),
                    take,
                })
            })
            .collect()
    }

    /// Where each line's units come from, or why they cannot be had.
    async fn allocate(&self, lines: &Lines) -> Result<Result<Vec<Allocation>, Error>> {
        let snapshots =
            futures::future::try_join_all(lines.iter().map(|l| self.snapshot(&l.sku))).await?;
        let mut allocations = Vec::new();
        for (line, snapshot) in lines.iter().zip(snapshots) {
            let Some(snapshot) = snapshot else {
                return Ok(Err(Error::SkuNotFound(line.sku.clone())));
            };
            let start = random_start(snapshot.shards.len());
            let quantity = u64::from(line.quantity.get());
            let Some(takes) = plan_decrement(&snapshot.shards, quantity, start) else {
                return Ok(Err(Error::InsufficientStock {
                    sku: line.sku.clone(),
                }));
            };
            allocations.extend(takes.into_iter().map(|take| Allocation {
                sku: line.sku.clone(),
                take,
            }));
        }
        Ok(Ok(allocations))
    }

    /// Moves every line's available units with `mv` (to reserved or sold) and puts the
    /// request's record (`record` builds it from the allocations) in one transaction,
    /// together with `guards`: further conditional writes, each with the refusal its
    /// failing condition means. A refusal is returned only after checking the record
    /// does not already exist.
    pub(super) async fn take_lines(
        &self,
        lines: &Lines,
        mv: StockMove,
        at: Timestamp,
        (pk, sk): (String, String),
        guards: Vec<(TransactWriteItem, Error)>,
        mut record: impl FnMut(&[Allocation]) -> Result<Attributes>,
    ) -> Result<Taken> {
        let (guard_items, guard_refusals): (Vec<_>, Vec<_>) = guards.into_iter().unzip();
        let mut guard_refusals: Vec<Option<Error>> = guard_refusals.into_iter().map(Some).collect();
        let mut rejection = Error::Contention;
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            // First a guess from known shard counts (no read); after a miss, read and plan.
            let guess = if backoff.failures() == 0 {
                self.guess(lines)
            } else {
                None
            };
            let allocations = match guess {
                Some(allocations) => allocations,
                None => match self.allocate(lines).await? {
                    Ok(allocations) => allocations,
                    Err(refused) => {
                        rejection = refused;
                        break;
                    }
                },
            };
            let mut items = Vec::with_capacity(allocations.len() + 1);
            for a in &allocations {
                items.push(self.move_stock(a, mv, at)?);
            }
            let first_guard = items.len();
            items.extend(guard_items.iter().cloned());
            let record_index = items.len();
            items.push(self.put_new(record(&allocations)?)?);
            let outcome = self.transact(items).await?;
            if let Transaction::Committed = outcome {
                return Ok(Taken::Done(allocations));
            }
            if outcome.condition_failed(record_index) {
                break;
            }
            if outcome.conflicted(record_index) {
                // The same request, in flight elsewhere: if it never shows up, say so.
                rejection = Error::RequestInProgress;
            }
            let failed_guard =
                (0..guard_items.len()).find(|&g| outcome.condition_failed(first_guard + g));
            if let Some(refused) = failed_guard.and_then(|g| guard_refusals[g].take()) {
                rejection = refused;
                break;
            }
            // Another request took the units this plan counted on: look again.
        }
        match self.recorded_at(pk, sk).await? {
            Some(recorded) => Ok(Taken::Existing(recorded)),
            None => Err(rejection),
        }
    }

    /// The sku item and every stock shard item, read consistently.
    pub(super) async fn snapshot(&self, sku: &Sku) -> Result<Option<SkuSnapshot>> {
        let Some(meta) = self.get(schema::sku(sku), schema::META.into()).await? else {
            return Ok(None);
        };
        let active = get_n(&meta, "shards").and_then(|count: u64| {
            ShardCount::new(count).map_err(|_| corrupt(&meta, "attribute shards is out of range"))
        })?;
        let items: u16 = get_n(&meta, "shard_items")?;
        let mut updated_at = get_parsed(&meta, "updated_at", Timestamp::parse)?;
        let mut pending: Vec<Attributes> = (0..items)
            .map(|shard| {
                values([
                    ("pk", s(schema::stock(sku, shard))),
                    ("sk", s(schema::STOCK)),
                ])
            })
            .collect();
        let mut shards = Vec::with_capacity(usize::from(items));
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            if pending.is_empty() {
                break;
            }
            let request = build(
                "keys",
                KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build(),
            )?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| store_error("BatchGetItem", e))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
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
            // Throttled keys come back unprocessed: ask again for those.
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(Error::Contention);
        }
        if shards.len() != usize::from(items) {
            return Err(corrupt(
                &meta,
                &format!("it counts {items} shard items, {} were found", shards.len()),
            ));
        }
        shards.sort_by_key(|s| s.shard);
        self.remember_shards(sku, active.get());
        Ok(Some(SkuSnapshot {
            on_hand: get_n(&meta, "on_hand")?,
            active,
            shards,
            updated_at,
        }))
    }

    pub(super) fn update(
        &self,
        pk: String,
        sk: String,
        expression: &str,
        condition: &str,
        values: Attributes,
    ) -> Result<TransactWriteItem> {
        let update = build(
            "update",
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names(placeholder_names(&[expression, condition]))
                .set_expression_attribute_values(Some(values))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(super) fn put_new(&self, item: Attributes) -> Result<TransactWriteItem> {
        let put = build(
            "put",
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Adds the delta to the sku's available and on_hand, conditioned on the snapshot's
    /// on_hand, together with the adjustment record (which remembers the request and its
    /// answer when it has a `fingerprint`). `Ok(None)` means a race was lost.
    async fn apply_adjustment(
        &self,
        snapshot: &SkuSnapshot,
        adjustment: &Adjustment,
        fingerprint: Option<&str>,
    ) -> Result<Option<Result<SkuSnapshot, AdjustmentFailure>>> {
        let sku = &adjustment.sku;
        let count = snapshot.shards.len();
        let (takes, sign) = if adjustment.delta > 0 {
            let shard = random_start(usize::from(snapshot.active.get())) as u16;
            (
                vec![Take {
                    shard,
                    quantity: adjustment.delta as u64,
                }],
                1,
            )
        } else {
            match plan_decrement(
                &snapshot.shards,
                adjustment.delta.unsigned_abs(),
                random_start(count),
            ) {
                Some(takes) => (takes, -1),
                None => return Ok(Some(Err(AdjustmentFailure::Insufficient))),
            }
        };
        let at = adjustment.at.to_string();
        let mut items = vec![self.update(
            schema::sku(sku),
            schema::META.into(),
            "SET on_hand = :next, updated_at = :at",
            "on_hand = :seen",
            values([
                (":next", n(snapshot.on_hand as i64 + adjustment.delta)),
                (":seen", n(snapshot.on_hand)),
                (":at", s(&at)),
            ]),
        )?];
        for take in &takes {
            let (expression, condition) = if sign > 0 {
                (
                    "SET available = available + :q, updated_at = :at",
                    "attribute_exists(pk)",
                )
            } else {
                (
                    "SET available = available - :q, updated_at = :at",
                    "available >= :q",
                )
            };
            items.push(self.update(
                schema::stock(sku, take.shard),
                schema::STOCK.into(),
                expression,
                condition,
                values([(":q", n(take.quantity)), (":at", s(&at))]),
            )?);
        }
        let next = snapshot.after(&takes, sign, adjustment.at);
        let mut record = self.adjustment_item(adjustment);
        if let Some(fingerprint) = fingerprint {
            recorded_attributes(&mut record, fingerprint, 200, to_json(&next.levels(sku))?);
        }
        let record_index = items.len();
        items.push(self.put_new(record)?);
        Ok(match self.transact(items).await? {
            Transaction::Committed => Some(Ok(next)),
            outcome if outcome.condition_failed(record_index) => {
                Some(Err(AdjustmentFailure::RecordExists))
            }
            _ => None,
        })
    }

    fn adjustment_item(&self, adjustment: &Adjustment) -> Attributes {
        values([
            ("pk", s(schema::sku(&adjustment.sku))),
            ("sk", s(schema::adjustment(&adjustment.id))),
            ("entity", s("adjustment")),
            ("adjustment_id", s(adjustment.id.as_str())),
            ("delta", n(adjustment.delta)),
            ("reason", s(adjustment.reason.as_str())),
            ("created_at", s(adjustment.at.to_string())),
        ])
    }

    async fn recorded_adjustment(
        &self,
        adjustment: &Adjustment,
    ) -> Result<Option<RecordedRequest>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(schema::sku(&adjustment.sku)))
            .key("sk", s(schema::adjustment(&adjustment.id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        out.item().map(recorded_request).transpose()
    }

    async fn create_sku(
        &self,
        sku: &Sku,
        on_hand: u64,
        shards: ShardCount,
        at: Timestamp,
    ) -> Result<bool> {
        let at_text = at.to_string();
        let count = u64::from(shards.get());
        let mut items = vec![self.put_new(values([
            ("pk", s(schema::sku(sku))),
            ("sk", s(schema::META)),
            ("entity", s("sku")),
            ("sku", s(sku.as_str())),
            ("on_hand", n(on_hand)),
            ("shards", n(count)),
            ("shard_items", n(count)),
            ("sweep_bucket", s(schema::SKUS_BUCKET)),
            ("sweep_at", s(sku.as_str())),
            ("created_at", s(&at_text)),
            ("updated_at", s(&at_text)),
        ]))?];
        for shard in 0..shards.get() {
            // Spread evenly; the first shards take the remainder.
            let share = on_hand / count + u64::from(u64::from(shard) < on_hand % count);
            items.push(self.put_new(values([
                ("pk", s(schema::stock(sku, shard))),
                ("sk", s(schema::STOCK)),
                ("entity", s("stock")),
                ("available", n(share)),
                ("reserved", n(0)),
                ("sold", n(0)),
                ("updated_at", s(&at_text)),
            ]))?);
        }
        let opening = Adjustment {
            id: AdjustmentId::generate(),
            sku: sku.clone(),
            delta: on_hand as i64,
            reason: Reason::system("opening stock"),
            at,
        };
        items.push(self.put_new(self.adjustment_item(&opening))?);
        Ok(matches!(
            self.transact(items).await?,
            Transaction::Committed
        ))
    }
}

impl DynamoStore {
    /// Spreads the sku's available units evenly over shards `0..k`, creating shard items
    /// that do not exist yet and emptying the available units of shards past `k`, in one
    /// transaction conditioned on what it moves. Reserved and sold units stay where
    /// they are (holds and orders know their shards), so every unit is kept. Cancelled
    /// when the sku changed since `snapshot` was read.
    async fn reshard(
        &self,
        sku: &Sku,
        snapshot: &SkuSnapshot,
        k: ShardCount,
        at: Timestamp,
    ) -> Result<Transaction> {
        let total: u64 = snapshot.shards.iter().map(|s| s.available).sum();
        let count = u64::from(k.get());
        let target = |shard: u16| {
            if shard >= k.get() {
                0
            } else {
                total / count + u64::from(u64::from(shard) < total % count)
            }
        };
        let at_text = s(at.to_string());
        let shard_items = snapshot.shards.len().max(usize::from(k.get()));
        let mut items = vec![self.update(
            schema::sku(sku),
            schema::META.into(),
            "SET shards = :k, shard_items = :items, updated_at = :at",
            "shards = :active",
            values([
                (":k", n(k.get())),
                (":items", n(shard_items)),
                (":active", n(snapshot.active.get())),
                (":at", at_text.clone()),
            ]),
        )?];
        for shard in 0..k.get().max(
            snapshot
                .shards
                .iter()
                .map(|s| s.shard + 1)
                .max()
                .unwrap_or(0),
        ) {
            let want = target(shard);
            match snapshot.shards.iter().find(|s| s.shard == shard) {
                None => items.push(self.put_new(values([
                    ("pk", s(schema::stock(sku, shard))),
                    ("sk", s(schema::STOCK)),
                    ("entity", s("stock")),
                    ("available", n(want)),
                    ("reserved", n(0)),
                    ("sold", n(0)),
                    ("updated_at", at_text.clone()),
                ]))?),
                Some(have) if have.available > want => items.push(self.update(
                    schema::stock(sku, shard),
                    schema::STOCK.into(),
                    "SET available = available - :q, updated_at = :at",
                    "available >= :q",
                    values([(":q", n(have.available - want)), (":at", at_text.clone())]),
                )?),
                Some(have) if have.available < want => items.push(self.update(
                    schema::stock(sku, shard),
                    schema::STOCK.into(),
                    "SET available = available + :q, updated_at = :at",
                    "attribute_exists(pk)",
                    values([(":q", n(want - have.available)), (":at", at_text.clone())]),
                )?),
                Some(_) => {}
            }
        }
        self.transact(items).await
    }
}

enum AdjustmentFailure {
    Insufficient,
    RecordExists,
}

#[async_trait]
impl ReadStock for DynamoStore {
    async fn stock(&self, sku: &Sku) -> Result<Option<StockLevels>> {
        Ok(self.snapshot(sku).await?.map(|snap| snap.levels(sku)))
    }
}

#[async_trait]
impl SetStock for DynamoStore {
    async fn set_on_hand(
        &self,
        sku: &Sku,
        on_hand: u64,
        shards: Option<ShardCount>,
        at: Timestamp,
    ) -> Result<StockSet> {
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let Some(snapshot) = self.snapshot(sku).await? else {
                let shards = shards.unwrap_or(ShardCount::ONE);
                if self.create_sku(sku, on_hand, shards, at).await? {
                    // A new sku holds exactly what was written: nothing to read back.
                    let levels = StockLevels {
                        sku: sku.clone(),
                        on_hand,
                        available: on_hand,
                        reserved: 0,
                        sold: 0,
                        shards: shards.get(),
                        updated_at: at,
                    };
                    return Ok(StockSet {
                        levels,
                        created: true,
                    });
                }
                continue;
            };
            if let Some(shards) = shards.filter(|k| *k != snapshot.active) {
                // Spread first, then set on_hand on the next look.
                if let Transaction::Cancelled(_) = self.reshard(sku, &snapshot, shards, at).await? {
                    tracing::debug!(%sku, "reshard lost a race; reading the sku again");
                }
                continue;
            }
            let delta = on_hand as i64 - snapshot.on_hand as i64;
            if delta == 0 {
                return Ok(StockSet {
                    levels: snapshot.levels(sku),
                    created: false,
                });
            }
            let adjustment = Adjustment {
                id: AdjustmentId::generate(),
                sku: sku.clone(),
                delta,
                reason: Reason::system("on_hand set"),
                at,
            };
            match self.apply_adjustment(&snapshot, &adjustment, None).await? {
                Some(Ok(next)) => {
                    return Ok(StockSet {
                        levels: next.levels(sku),
                        created: false,
                    })
                }
                Some(Err(AdjustmentFailure::Insufficient)) => {
                    return Err(Error::InsufficientStock { sku: sku.clone() })
                }
                Some(Err(AdjustmentFailure::RecordExists)) | None => continue,
            }
        }
        Err(Error::Contention)
    }
}

#[async_trait]
impl AdjustStock for DynamoStore {
    async fn adjust(
        &self,
        adjustment: &Adjustment,
        fingerprint: &str,
    ) -> Result<Recorded<StockLevels>> {
        let sku = &adjustment.sku;
        let mut rejection = Error::Contention;
        let mut backoff = Backoff::default();
        while backoff.next_attempt().await {
            let Some(snapshot) = self.snapshot(sku).await? else {
                rejection = Error::SkuNotFound(sku.clone());
                break;
            };
            match self
                .apply_adjustment(&snapshot, adjustment, Some(fingerprint))
                .await?
            {
                Some(Ok(next)) => return Ok(Recorded::Created(next.levels(sku))),
                Some(Err(AdjustmentFailure::Insufficient)) => {
                    rejection = Error::InsufficientStock { sku: sku.clone() };
                    break;
                }
                Some(Err(AdjustmentFailure::RecordExists)) => break,
                None => continue,
            }
        }
        // A business rejection is not recorded, but a replay of a request that already
        // took effect must still get its first answer.
        match self.recorded_adjustment(adjustment).await? {
            Some(recorded) => Ok(Recorded::Existing(recorded)),
            None => Err(rejection),
        }
    }
}
