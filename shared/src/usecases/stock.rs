//! Stock levels: reading them, setting a sku's on_hand (and shard count), adjustments.

use super::replay_or;
use super::taking::random_below;
use crate::domain::{
    plan_decrement, spread, Adjustment, AdjustmentId, Reason, ShardCount, Sku, StockLevels, Take,
    Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded, RecordedRequest};
use crate::retry::Backoff;
use crate::store::{Attempt, ReadRecord, ReadStock, RecordKey, SkuStock, WriteStock};

pub async fn levels(store: &impl ReadStock, sku: &Sku) -> Result<StockLevels> {
    match store.sku_stock(sku).await? {
        Some(stock) => Ok(stock.levels()),
        None => Err(Error::SkuNotFound(sku.clone())),
    }
}

/// Makes `on_hand` the sku's total, creating the sku (over `shards` stock items, one
/// unless told) if it is new (`201`); the difference is recorded as an adjustment. A new
/// shard count for an existing sku respreads its available units first. Refused with
/// `InsufficientStock` when fewer units are available than a cut needs.
pub async fn set_on_hand(
    store: &(impl ReadStock + WriteStock),
    sku: &Sku,
    on_hand: u64,
    shards: Option<ShardCount>,
    at: Timestamp,
) -> Result<(Answer, StockLevels)> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let Some(seen) = store.sku_stock(sku).await? else {
            let shards = shards.unwrap_or(ShardCount::ONE);
            let opening = Adjustment {
                id: AdjustmentId::generate(),
                sku: sku.clone(),
                delta: on_hand as i64,
                reason: Reason::system("opening stock"),
                at,
            };
            if let Attempt::Committed = store
                .create_sku(sku, &spread(on_hand, shards), &opening)
                .await?
            {
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
                return Ok((Answer::Created, levels));
            }
            continue; // Created by a concurrent request: now it is an update.
        };
        if let Some(shards) = shards.filter(|k| *k != seen.active) {
            // Spread first, then set on_hand on the next look.
            let available = respread(&seen, shards);
            if let Attempt::Stale = store.reshard(&seen, shards, &available, at).await? {
                tracing::debug!(%sku, "reshard lost a race; reading the sku again");
            }
            continue;
        }
        let delta = on_hand as i64 - seen.on_hand as i64;
        if delta == 0 {
            return Ok((Answer::Ok, seen.levels()));
        }
        let adjustment = Adjustment {
            id: AdjustmentId::generate(),
            sku: sku.clone(),
            delta,
            reason: Reason::system("on_hand set"),
            at,
        };
        let Some(takes) = plan_adjustment(&seen, delta) else {
            return Err(Error::InsufficientStock { sku: sku.clone() });
        };
        if let Attempt::Committed = store.adjust(&seen, &adjustment, &takes, None).await? {
            return Ok((Answer::Ok, adjusted(&seen, &takes, delta, at).levels()));
        }
    }
    Err(Error::Contention)
}

/// Applies an adjustment (a delivery, a count, a write-off) once; a replay of one that
/// took effect gets its first answer.
pub async fn adjust(
    store: &(impl ReadStock + WriteStock + ReadRecord),
    adjustment: &Adjustment,
    fingerprint: &str,
) -> Result<Recorded<StockLevels>> {
    let sku = &adjustment.sku;
    let mut rejection = Error::Contention;
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let Some(seen) = store.sku_stock(sku).await? else {
            rejection = Error::SkuNotFound(sku.clone());
            break;
        };
        let Some(takes) = plan_adjustment(&seen, adjustment.delta) else {
            rejection = Error::InsufficientStock { sku: sku.clone() };
            break;
        };
        let levels = adjusted(&seen, &takes, adjustment.delta, adjustment.at).levels();
        let receipt = RecordedRequest::new(fingerprint, Answer::Ok, &levels)?;
        match store
            .adjust(&seen, adjustment, &takes, Some(&receipt))
            .await?
        {
            Attempt::Committed => return Ok(Recorded::Created(Answer::Ok, levels)),
            Attempt::Refused(_) => break,
            Attempt::Stale => {}
        }
    }
    // A business rejection is not recorded, but a replay of a request that already took
    // effect must still get its first answer.
    let key = RecordKey::Adjustment(sku.clone(), adjustment.id.clone());
    replay_or(store, &key, fingerprint, rejection).await
}

/// Where a delta goes: units added all go to one random active shard; units removed come
/// from as few shards as hold them (`None` when all of them together hold too few).
fn plan_adjustment(seen: &SkuStock, delta: i64) -> Option<Vec<Take>> {
    if delta > 0 {
        return Some(vec![Take {
            shard: random_below(seen.active.get()),
            quantity: delta.unsigned_abs(),
        }]);
    }
    let start = usize::from(random_below(seen.shards.len() as u16));
    plan_decrement(&seen.shards, delta.unsigned_abs(), start)
}

/// The sku after `delta` was spread over `takes`.
fn adjusted(seen: &SkuStock, takes: &[Take], delta: i64, at: Timestamp) -> SkuStock {
    let mut next = seen.clone();
    for take in takes {
        if let Some(shard) = next.shards.iter_mut().find(|s| s.shard == take.shard) {
            shard.available = match delta > 0 {
                true => shard.available.saturating_add(take.quantity),
                false => shard.available.saturating_sub(take.quantity),
            };
        }
    }
    next.on_hand = next.on_hand.saturating_add_signed(delta);
    next.updated_at = at;
    next
}

/// Each shard item's available units once the sku's available units are spread evenly
/// over shards `0..active`: shards past it keep none on sale. Reserved and sold units
/// stay where they are (holds and orders know their shards), so every unit is kept.
fn respread(seen: &SkuStock, active: ShardCount) -> Vec<u64> {
    let total = seen.shards.iter().map(|s| s.available).sum();
    let mut available = spread(total, active);
    available.resize(available.len().max(seen.shards.len()), 0);
    available
}
