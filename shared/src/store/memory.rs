//! The store's ports in memory, for fast tests of the use cases.
//!
//! Every write checks the same conditions as the DynamoDB adapter's transaction and
//! either applies whole or not at all, with the same refusals. Every call yields to the
//! scheduler first, so concurrent use cases on a current-thread runtime interleave
//! between their reads and their writes, the same way on every run. It is no proof of the
//! adapter: the emulator suites are.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::domain::{
    Adjustment, AdjustmentId, Campaign, CampaignId, CommandId, CommandStatus, Counter, CustomerId,
    Offer, Order, OrderId, Refund, RefundId, Reservation, ReservationId, ReservationStatus,
    Restock, ShardCount, ShardStock, Sku, SkuTerms, StockMove, Take, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::RecordedRequest;
use crate::store::{
    Attempt, EndHold, FindOverdueHolds, FindUnappliedCommands, ListSkus, NewRefund, ReadBooks,
    ReadCampaign, ReadCommand, ReadOrder, ReadRecord, ReadReservation, ReadStock, RecordExists,
    RecordKey, ShardSeen, SkuBooks, SkuStock, TakeRefused, TakeStock, Taker, TermsCheck,
    UnitsMissing, WriteCampaign, WriteCommand, WriteHold, WriteRefund, WriteStock,
};

#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// How many times a sku was read whole: what a test of the take path counts.
    stock_reads: AtomicUsize,
}

#[derive(Debug, Clone, Default)]
struct Tables {
    skus: BTreeMap<Sku, SkuStock>,
    /// Each sku's adjustments, with the receipt of the request that made one.
    adjustments: BTreeMap<(Sku, AdjustmentId), (i64, Option<RecordedRequest>)>,
    /// Each sku's running total of adjustments, kept as the table keeps it on the sku item.
    adjusted: BTreeMap<Sku, i64>,
    reservations: BTreeMap<ReservationId, (Reservation, RecordedRequest)>,
    orders: BTreeMap<OrderId, (Order, RecordedRequest)>,
    refunds: BTreeMap<(OrderId, RefundId), (Refund, RecordedRequest)>,
    campaigns: BTreeMap<CampaignId, Campaign>,
    counters: BTreeMap<(CampaignId, CustomerId), u64>,
    /// Each command with its status and when the sweep is next due to send it.
    commands: BTreeMap<CommandId, (CommandStatus, Restock, Timestamp)>,
}

/// A condition of a write failed: nothing of it is applied.
struct Failed;

impl Tables {
    fn shard(&mut self, sku: &Sku, shard: u16) -> Result<&mut ShardStock, Failed> {
        let stock = self.skus.get_mut(sku).ok_or(Failed)?;
        stock
            .shards
            .iter_mut()
            .find(|s| s.shard == shard)
            .ok_or(Failed)
    }

    /// Moves `q` units of one shard from one counter to another, if the source has them.
    fn move_units(
        &mut self,
        sku: &Sku,
        take: Take,
        movement: StockMove,
        at: Timestamp,
    ) -> Result<(), Failed> {
        let shard = self.shard(sku, take.shard)?;
        let from = counter(shard, movement.from);
        *from = from.checked_sub(take.quantity).ok_or(Failed)?;
        let to = counter(shard, movement.to);
        *to += take.quantity;
        self.touch(sku, at);
        Ok(())
    }

    /// Adds units to a shard's available (`delta` > 0) or takes them (if it has them).
    fn change_available(
        &mut self,
        sku: &Sku,
        shard: u16,
        delta: i64,
        at: Timestamp,
    ) -> Result<(), Failed> {
        let shard = self.shard(sku, shard)?;
        shard.available = shard.available.checked_add_signed(delta).ok_or(Failed)?;
        self.touch(sku, at);
        Ok(())
    }

    fn touch(&mut self, sku: &Sku, at: Timestamp) {
        if let Some(stock) = self.skus.get_mut(sku) {
            stock.updated_at = stock.updated_at.max(at);
        }
    }
}

fn counter(shard: &mut ShardStock, which: Counter) -> &mut u64 {
    match which {
        Counter::Available => &mut shard.available,
        Counter::Reserved => &mut shard.reserved,
        Counter::Sold => &mut shard.sold,
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times `sku_stock` was called.
    pub fn stock_reads(&self) -> usize {
        self.stock_reads.load(Ordering::SeqCst)
    }

    /// Reads the tables after letting other tasks run.
    async fn read<T>(&self, read: impl FnOnce(&Tables) -> T) -> Result<T> {
        tokio::task::yield_now().await;
        let tables = self.tables.lock().map_err(|_| poisoned())?;
        Ok(read(&tables))
    }

    /// Runs `write` on a copy of the tables, after letting other tasks run, and keeps the
    /// copy only when it comes to `Committed`: all or nothing, like a transaction.
    async fn write<R>(
        &self,
        write: impl FnOnce(&mut Tables) -> Result<Attempt<R>, Failed>,
    ) -> Result<Attempt<R>> {
        tokio::task::yield_now().await;
        let mut tables = self.tables.lock().map_err(|_| poisoned())?;
        let mut next = tables.clone();
        Ok(match write(&mut next) {
            Ok(Attempt::Committed) => {
                *tables = next;
                Attempt::Committed
            }
            Ok(refused) => refused,
            Err(Failed) => Attempt::Stale,
        })
    }
}

fn poisoned() -> Error {
    Error::Store {
        message: "the memory store's lock is poisoned".into(),
        retryable: false,
    }
}

#[async_trait]
impl ReadStock for MemoryStore {
    async fn sku_stock(&self, sku: &Sku) -> Result<Option<SkuStock>> {
        self.stock_reads.fetch_add(1, Ordering::SeqCst);
        self.read(|t| t.skus.get(sku).cloned()).await
    }

    async fn sku_terms(&self, sku: &Sku) -> Result<Option<SkuTerms>> {
        self.read(|t| t.skus.get(sku).map(|s| s.terms.clone()))
            .await
    }
}

#[async_trait]
impl ListSkus for MemoryStore {
    async fn skus_after(&self, after: Option<&Sku>, limit: usize) -> Result<Vec<SkuStock>> {
        self.read(|t| {
            t.skus
                .values()
                .filter(|stock| after.is_none_or(|after| stock.sku > *after))
                .take(limit)
                .cloned()
                .collect()
        })
        .await
    }
}

#[async_trait]
impl ReadRecord for MemoryStore {
    async fn recorded(&self, key: &RecordKey) -> Result<Option<RecordedRequest>> {
        self.read(|t| match key {
            RecordKey::Reservation(id) => t.reservations.get(id).map(|(_, r)| r.clone()),
            RecordKey::Order(id) => t.orders.get(id).map(|(_, r)| r.clone()),
            RecordKey::Refund(order, refund) => t
                .refunds
                .get(&(order.clone(), refund.clone()))
                .map(|(_, r)| r.clone()),
            RecordKey::Adjustment(sku, id) => t
                .adjustments
                .get(&(sku.clone(), id.clone()))
                .and_then(|(_, r)| r.clone()),
        })
        .await
    }
}

#[async_trait]
impl WriteStock for MemoryStore {
    async fn take(&self, take: TakeStock<'_>) -> Result<Attempt<TakeRefused>> {
        self.write(|t| {
            let exists = match take.record {
                Taker::Hold(r) => t.reservations.contains_key(&r.reservation_id),
                Taker::Order(o) => t.orders.contains_key(&o.order_id),
            };
            if exists {
                return Ok(Attempt::Refused(TakeRefused::RecordExists));
            }
            let mut moved = Vec::new();
            for a in take.allocations {
                let stock = t.skus.get_mut(&a.sku).ok_or(Failed)?;
                let terms = stock.terms.clone();
                let shard = stock
                    .shards
                    .iter_mut()
                    .find(|s| s.shard == a.take.shard)
                    .ok_or(Failed)?;
                let short = *counter(shard, take.movement.from) < a.take.quantity;
                let other_terms = take.terms.is_some_and(|t| {
                    !t.get(&a.sku)
                        .unwrap_or(&TermsCheck::Version(0))
                        .passes(&terms, take.at)
                });
                if short || other_terms {
                    moved.push(ShardSeen {
                        sku: a.sku.clone(),
                        stock: *shard,
                        terms,
                    });
                }
            }
            if !moved.is_empty() {
                return Ok(Attempt::Refused(TakeRefused::Moved(moved)));
            }
            if let Some(guard) = take.campaign {
                let key = (guard.campaign_id.clone(), guard.customer_id.clone());
                let units = t.counters.entry(key).or_default();
                if *units > guard.room {
                    return Ok(Attempt::Refused(TakeRefused::OverLimit));
                }
                *units += guard.units;
            }
            for a in take.allocations {
                t.move_units(&a.sku, a.take, take.movement, take.at)?;
            }
            match take.record {
                Taker::Hold(r) => {
                    t.reservations
                        .insert(r.reservation_id.clone(), (r.clone(), take.receipt.clone()));
                }
                Taker::Order(o) => {
                    t.orders
                        .insert(o.order_id.clone(), (o.clone(), take.receipt.clone()));
                }
            }
            Ok(Attempt::Committed)
        })
        .await
    }

    async fn create_sku(
        &self,
        sku: &Sku,
        spread: &[u64],
        terms: &SkuTerms,
        opening: &Adjustment,
    ) -> Result<Attempt> {
        self.write(|t| {
            if t.skus.contains_key(sku) {
                return Err(Failed);
            }
            let active = ShardCount::new(spread.len() as u64).map_err(|_| Failed)?;
            let shards = spread
                .iter()
                .enumerate()
                .map(|(shard, available)| ShardStock {
                    shard: shard as u16,
                    available: *available,
                    ..ShardStock::default()
                })
                .collect();
            let stock = SkuStock {
                sku: sku.clone(),
                on_hand: opening.delta.unsigned_abs(),
                active,
                shards,
                terms: terms.clone(),
                updated_at: opening.at,
            };
            t.skus.insert(sku.clone(), stock);
            t.adjustments
                .insert((sku.clone(), opening.id.clone()), (opening.delta, None));
            t.adjusted.insert(sku.clone(), opening.delta);
            Ok(Attempt::Committed)
        })
        .await
    }

    async fn set_shards(
        &self,
        seen: &SkuStock,
        active: ShardCount,
        at: Timestamp,
    ) -> Result<Attempt> {
        self.write(|t| {
            let stock = t.skus.get_mut(&seen.sku).ok_or(Failed)?;
            let same = stock.active == seen.active
                && stock.shards.len() == seen.shards.len()
                && stock.terms.version == seen.terms.version;
            if !same {
                return Err(Failed);
            }
            stock.active = active;
            for shard in stock.shards.len() as u16..active.get() {
                stock.shards.push(ShardStock {
                    shard,
                    ..ShardStock::default()
                });
            }
            t.touch(&seen.sku, at);
            Ok(Attempt::Committed)
        })
        .await
    }

    async fn move_available(
        &self,
        sku: &Sku,
        from: u16,
        to: u16,
        quantity: u64,
        at: Timestamp,
    ) -> Result<Attempt> {
        let q = quantity as i64;
        self.write(|t| {
            t.change_available(sku, from, -q, at)?;
            t.change_available(sku, to, q, at)?;
            Ok(Attempt::Committed)
        })
        .await
    }

    async fn stamp_terms(
        &self,
        seen: &SkuStock,
        terms: &SkuTerms,
        at: Timestamp,
    ) -> Result<Attempt> {
        self.write(|t| {
            let stock = t.skus.get_mut(&seen.sku).ok_or(Failed)?;
            if stock.terms.version != seen.terms.version || stock.shards.len() != seen.shards.len()
            {
                return Err(Failed);
            }
            stock.terms = terms.clone();
            t.touch(&seen.sku, at);
            Ok(Attempt::Committed)
        })
        .await
    }

    async fn adjust(
        &self,
        seen: &SkuStock,
        adjustment: &Adjustment,
        takes: &[Take],
        receipt: Option<&RecordedRequest>,
    ) -> Result<Attempt<RecordExists>> {
        self.write(|t| {
            let key = (adjustment.sku.clone(), adjustment.id.clone());
            if t.adjustments.contains_key(&key) {
                return Ok(Attempt::Refused(RecordExists));
            }
            let stock = t.skus.get_mut(&adjustment.sku).ok_or(Failed)?;
            if stock.on_hand != seen.on_hand {
                return Err(Failed);
            }
            stock.on_hand = stock
                .on_hand
                .checked_add_signed(adjustment.delta)
                .ok_or(Failed)?;
            let sign = adjustment.delta.signum();
            for take in takes {
                let delta = sign * take.quantity as i64;
                t.change_available(&adjustment.sku, take.shard, delta, adjustment.at)?;
            }
            t.adjustments
                .insert(key, (adjustment.delta, receipt.cloned()));
            *t.adjusted.entry(adjustment.sku.clone()).or_default() += adjustment.delta;
            Ok(Attempt::Committed)
        })
        .await
    }
}

#[async_trait]
impl ReadReservation for MemoryStore {
    async fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>> {
        self.read(|t| t.reservations.get(id).map(|(r, _)| r.clone()))
            .await
    }
}

#[async_trait]
impl WriteHold for MemoryStore {
    async fn end_hold(&self, end: EndHold<'_>) -> Result<Attempt<RecordExists>> {
        self.write(|t| {
            if let Some((order, _)) = end.order {
                if t.orders.contains_key(&order.order_id) {
                    return Ok(Attempt::Refused(RecordExists));
                }
            }
            let id = &end.reservation.reservation_id;
            let (stored, _) = t.reservations.get_mut(id).ok_or(Failed)?;
            let in_time = match end.to {
                ReservationStatus::Expired => stored.expires_at <= end.at,
                ReservationStatus::Committed => stored.expires_at > end.at,
                _ => true,
            };
            if stored.status != ReservationStatus::Held || !in_time {
                return Err(Failed);
            }
            stored.status = end.to;
            if let Some((order, receipt)) = end.order {
                stored.order_id = Some(order.order_id.clone());
                t.orders
                    .insert(order.order_id.clone(), (order.clone(), receipt.clone()));
            }
            let held = end.reservation;
            if let (Some(campaign), Some(customer), true) = (
                &held.campaign_id,
                &held.customer_id,
                end.to.returns_allowance(),
            ) {
                let units = t
                    .counters
                    .get_mut(&(campaign.clone(), customer.clone()))
                    .ok_or(Failed)?;
                *units = units.checked_sub(held.units()).ok_or(Failed)?;
            }
            for a in &held.allocations {
                t.move_units(&a.sku, a.take, end.to.ending_move(), end.at)?;
            }
            Ok(Attempt::Committed)
        })
        .await
    }
}

#[async_trait]
impl ReadOrder for MemoryStore {
    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        self.read(|t| {
            let (order, _) = t.orders.get(id)?;
            let mut order = order.clone();
            order.refunds = t
                .refunds
                .iter()
                .filter(|((of, _), _)| of == id)
                .map(|(_, (refund, _))| refund.clone())
                .collect();
            order
                .refunds
                .sort_by(|a, b| (a.created_at, &a.refund_id).cmp(&(b.created_at, &b.refund_id)));
            Some(order)
        })
        .await
    }
}

#[async_trait]
impl WriteRefund for MemoryStore {
    async fn record_refund(&self, new: NewRefund<'_>) -> Result<Attempt> {
        self.write(|t| {
            let (order, _) = t.orders.get_mut(&new.order.order_id).ok_or(Failed)?;
            if order.version != new.order.version {
                return Err(Failed);
            }
            order.status = new.refunded.status;
            order.lines = new.refunded.lines.clone();
            order.version = new.refunded.version;
            let key = (new.refund.order_id.clone(), new.refund.refund_id.clone());
            if t.refunds.contains_key(&key) {
                return Err(Failed);
            }
            t.refunds
                .insert(key, (new.refund.clone(), new.receipt.clone()));
            if let Some(restock) = new.restock {
                if t.commands.contains_key(&restock.command_id) {
                    return Err(Failed);
                }
                let due = (CommandStatus::Pending, restock.clone(), restock.created_at);
                t.commands.insert(restock.command_id.clone(), due);
            }
            Ok(Attempt::Committed)
        })
        .await
    }
}

#[async_trait]
impl ReadCampaign for MemoryStore {
    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        self.read(|t| t.campaigns.get(id).cloned()).await
    }

    async fn offers_for(&self, sku: &Sku) -> Result<Vec<Offer>> {
        self.read(|t| {
            t.campaigns
                .values()
                .filter(|c| c.skus.contains(sku))
                .map(Campaign::offer)
                .collect()
        })
        .await
    }
}

#[async_trait]
impl WriteCampaign for MemoryStore {
    async fn put_campaign(&self, campaign: &Campaign, seen: Option<&Campaign>) -> Result<Attempt> {
        self.write(|t| {
            let current = t.campaigns.get(&campaign.campaign_id).map(|c| c.updated_at);
            if current != seen.map(|c| c.updated_at) {
                return Err(Failed);
            }
            t.campaigns
                .insert(campaign.campaign_id.clone(), campaign.clone());
            Ok(Attempt::Committed)
        })
        .await
    }
}

#[async_trait]
impl ReadCommand for MemoryStore {
    async fn command(&self, id: &CommandId) -> Result<Option<(CommandStatus, Restock)>> {
        self.read(|t| {
            t.commands
                .get(id)
                .map(|(status, restock, _)| (*status, restock.clone()))
        })
        .await
    }
}

impl Tables {
    /// Moves a command from one of `from` to `to`, and its refund with it.
    fn settle(
        &mut self,
        restock: &Restock,
        from: &[CommandStatus],
        to: CommandStatus,
    ) -> Result<(), Failed> {
        let (status, _, _) = self.commands.get_mut(&restock.command_id).ok_or(Failed)?;
        if !from.contains(status) {
            return Err(Failed);
        }
        *status = to;
        let key = (restock.order_id.clone(), restock.refund_id.clone());
        let (refund, _) = self.refunds.get_mut(&key).ok_or(Failed)?;
        if !from.iter().any(|s| s.refund_status() == refund.status) {
            return Err(Failed);
        }
        refund.status = to.refund_status();
        Ok(())
    }
}

#[async_trait]
impl WriteCommand for MemoryStore {
    async fn apply_command(
        &self,
        restock: &Restock,
        from: &[CommandStatus],
        at: Timestamp,
    ) -> Result<Attempt<UnitsMissing>> {
        self.write(|t| {
            for unit in &restock.units {
                if t.move_units(&unit.sku, unit.take, StockMove::RESTOCK, at)
                    .is_err()
                {
                    return Ok(Attempt::Refused(UnitsMissing));
                }
            }
            t.settle(restock, from, CommandStatus::Applied)?;
            Ok(Attempt::Committed)
        })
        .await
    }

    async fn fail_command(&self, restock: &Restock, _at: Timestamp) -> Result<Attempt> {
        self.write(|t| {
            t.settle(restock, &[CommandStatus::Pending], CommandStatus::Failed)?;
            Ok(Attempt::Committed)
        })
        .await
    }
}

/// Pages of this many ids, so that callers meet pages as they do on the table.
const OVERDUE_PAGE: usize = 100;

impl FindOverdueHolds for MemoryStore {
    fn overdue_holds(&self, now: Timestamp) -> BoxStream<'_, Result<Vec<ReservationId>>> {
        let overdue = self.read(move |t| {
            let mut overdue: Vec<(Timestamp, ReservationId)> = t
                .reservations
                .values()
                .filter(|(r, _)| r.is_overdue(now))
                .map(|(r, _)| (r.expires_at, r.reservation_id.clone()))
                .collect();
            overdue.sort();
            let ids: Vec<ReservationId> = overdue.into_iter().map(|(_, id)| id).collect();
            ids.chunks(OVERDUE_PAGE)
                .map(<[_]>::to_vec)
                .collect::<Vec<_>>()
        });
        futures::stream::once(overdue)
            .map(|pages| match pages {
                Ok(pages) => stream::iter(pages.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::once(async { Err(e) }).right_stream(),
            })
            .flatten()
            .boxed()
    }
}

#[async_trait]
impl FindUnappliedCommands for MemoryStore {
    async fn unapplied_commands(&self, cutoff: Timestamp) -> Result<Vec<Restock>> {
        self.read(|t| {
            t.commands
                .values()
                .filter(|(status, _, due)| *status == CommandStatus::Pending && *due <= cutoff)
                .map(|(_, restock, _)| restock.clone())
                .collect()
        })
        .await
    }

    async fn mark_resent(&self, id: &CommandId, at: Timestamp) -> Result<()> {
        self.write(|t| {
            if let Some((CommandStatus::Pending, _, due)) = t.commands.get_mut(id) {
                *due = at;
            }
            Ok(Attempt::<()>::Committed)
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl ReadBooks for MemoryStore {
    async fn books(&self) -> Result<Vec<SkuBooks>> {
        self.read(|t| {
            t.skus
                .values()
                .map(|stock| SkuBooks {
                    levels: stock.levels(),
                    recorded_on_hand: stock.on_hand,
                    adjustments: t.adjusted.get(&stock.sku).copied().unwrap_or_default(),
                    held: t
                        .reservations
                        .values()
                        .filter(|(r, _)| r.status == ReservationStatus::Held)
                        .flat_map(|(r, _)| &r.allocations)
                        .filter(|a| a.sku == stock.sku)
                        .map(|a| a.take.quantity)
                        .sum(),
                    // One lock: every read is of the same moment.
                    settled: true,
                })
                .collect()
        })
        .await
    }
}
