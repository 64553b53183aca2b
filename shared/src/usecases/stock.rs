//! Stock levels: reading them (one sku, or a page of skus), setting a sku's on_hand (and shard count), adjustments.

use super::campaigns;
use super::replay_or;
use super::taking::random_below;
use crate::domain::{
    plan_decrement, plan_moves, spread, Adjustment, AdjustmentId, PageLimit, Reason, ShardCount,
    Sku, SkuPage, SkuTerms, StockLevels, Take, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded, RecordedRequest};
use crate::retry::Backoff;
use crate::store::{
    Attempt, ListSkus, ReadCampaign, ReadRecord, ReadStock, RecordKey, SkuStock, WriteStock,
};

pub async fn levels(store: &impl ReadStock, sku: &Sku) -> Result<StockLevels> {
    match store.sku_stock(sku).await? {
        Some(stock) => Ok(stock.levels()),
        None => Err(Error::SkuNotFound(sku.clone())),
    }
}

/// A page of skus with their levels, from the first after `after`.
pub async fn list(store: &impl ListSkus, after: Option<&Sku>, limit: PageLimit) -> Result<SkuPage> {
    let limit = limit.get();
    // One more than the page shows says whether another page follows.
    let mut skus: Vec<StockLevels> = store
        .skus_after(after, limit + 1)
        .await?
        .iter()
        .map(SkuStock::levels)
        .collect();
    let next = if skus.len() > limit {
        skus.truncate(limit);
        skus.last().map(|levels| levels.sku.clone())
    } else {
        None
    };
    Ok(SkuPage { skus, next })
}

/// Makes `on_hand` the sku's total, creating the sku (over `shards` stock items, one
/// unless told) if it is new (`201`); the difference is recorded as an adjustment.
/// Refused with `InsufficientStock` when fewer units are available than a cut needs,
/// before anything changes. A shard count is applied after the total, in steps that
/// never take a unit off sale (see `reshard`).
pub async fn set_on_hand(
    store: &(impl ReadStock + WriteStock + ReadCampaign),
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
            let offers = store.offers_for(sku).await?;
            let terms = SkuTerms::default().next(offers, at).unwrap_or_default();
            if let Attempt::Committed = store
                .create_sku(sku, &spread(on_hand, shards), &terms, &opening)
                .await?
            {
                // A campaign written while this sku was created stamps it now.
                campaigns::stamp(store, sku, at).await?;
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
        let delta = on_hand as i64 - seen.on_hand as i64;
        let mut seen = seen;
        if delta != 0 {
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
            if let Attempt::Stale = store.adjust(&seen, &adjustment, &takes, None).await? {
                continue;
            }
            seen = adjusted(&seen, &takes, delta, at);
        }
        let answer = match shards {
            Some(shards) if shards != seen.active || !is_spread(&seen) => {
                reshard(store, sku, shards, at).await?
            }
            _ => seen,
        };
        return Ok((Answer::Ok, answer.levels()));
    }
    Err(Error::Contention)
}

/// Makes `active` the sku's shard count and spreads its available units evenly over
/// the active shards, in steps: first the count (and new, empty shard items), which
/// touches no stock item a take might be moving; then moves of available units between
/// two shards at a time, each one atomic, so no unit is ever off sale or counted twice.
/// Under load a move may find its source sold meanwhile: the sku is read again and the
/// moves planned again, within the back-off's budget; whatever is not moved by then
/// stays on sale where it is. Returns the sku as last read.
async fn reshard(
    store: &(impl ReadStock + WriteStock),
    sku: &Sku,
    active: ShardCount,
    at: Timestamp,
) -> Result<SkuStock> {
    let mut backoff = Backoff::default();
    let mut last = None;
    'reads: while backoff.next_attempt().await {
        let Some(seen) = store.sku_stock(sku).await? else {
            return Err(Error::SkuNotFound(sku.clone()));
        };
        if seen.active != active {
            store.set_shards(&seen, active, at).await?;
            continue;
        }
        let have: Vec<(u16, u64)> = seen.shards.iter().map(|s| (s.shard, s.available)).collect();
        let want: Vec<(u16, u64)> = respread(&seen, active)
            .into_iter()
            .enumerate()
            .map(|(shard, units)| (shard as u16, units))
            .collect();
        let moves = plan_moves(&have, &want);
        if moves.is_empty() {
            return Ok(seen);
        }
        last = Some(seen);
        for m in moves {
            if let Attempt::Stale = store
                .move_available(sku, m.from, m.to, m.quantity, at)
                .await?
            {
                continue 'reads;
            }
        }
    }
    match last {
        // The count is set; the spread is as far as the budget took it.
        Some(_) => store
            .sku_stock(sku)
            .await?
            .ok_or_else(|| Error::SkuNotFound(sku.clone())),
        None => Err(Error::Contention),
    }
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

/// Whether the available units are spread as `respread` would spread them.
fn is_spread(seen: &SkuStock) -> bool {
    let want = respread(seen, seen.active);
    seen.shards
        .iter()
        .all(|s| want.get(usize::from(s.shard)) == Some(&s.available))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Shown;
    use crate::identity::Acting;
    use crate::store::{MemoryStore, ReadBooks};
    use crate::usecases::holds;
    use crate::usecases::testing::*;

    #[tokio::test]
    async fn a_list_pages_through_every_sku_once_in_order() {
        let store = stocked(&[("tea", 3, 1), ("cup", 2, 2), ("pot", 1, 1)]).await;
        let two = PageLimit::try_from("2".to_owned()).unwrap();
        let first = list(&store, None, two).await.unwrap();
        let names = |page: &SkuPage| {
            page.skus
                .iter()
                .map(|l| l.sku.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&first), ["cup", "pot"]);
        assert_eq!(first.next, Some(sku("pot")));
        assert_eq!(first.skus[0], levels_of(&store, "cup").await);
        let last = list(&store, first.next.as_ref(), two).await.unwrap();
        assert_eq!(names(&last), ["tea"]);
        assert_eq!(last.next, None);
        // A page that ends exactly at the last sku says there is no next one.
        let three = PageLimit::try_from("3".to_owned()).unwrap();
        assert_eq!(list(&store, None, three).await.unwrap().next, None);
    }

    #[test]
    fn a_page_limit_is_1_to_100() {
        for bad in ["0", "101", "-1", "two", ""] {
            assert!(PageLimit::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        assert_eq!(PageLimit::try_from("1".to_owned()).unwrap().get(), 1);
        assert_eq!(PageLimit::try_from("100".to_owned()).unwrap().get(), 100);
        assert_eq!(PageLimit::default().get(), 50);
    }

    fn shards(n: u64) -> Option<ShardCount> {
        Some(ShardCount::new(n).unwrap())
    }

    async fn available_by_shard(store: &MemoryStore, of: &str) -> Vec<u64> {
        stored(store, of)
            .await
            .shards
            .iter()
            .map(|s| s.available)
            .collect()
    }

    /// What every adjustment of the sku adds up to: its on_hand, when the books agree.
    async fn adjusted_total(store: &MemoryStore, of: &str) -> i64 {
        let books = store.books().await.unwrap();
        books
            .iter()
            .find(|b| b.levels.sku == sku(of))
            .unwrap()
            .adjustments
    }

    #[tokio::test]
    async fn a_new_sku_is_created_with_its_units_spread_over_its_shards() {
        let store = MemoryStore::new();
        let (answer, created) = set_on_hand(&store, &sku("tea"), 10, shards(4), now())
            .await
            .unwrap();
        assert_eq!(answer, Answer::Created);
        assert_eq!(created, levels_of(&store, "tea").await);
        assert_eq!(
            (created.on_hand, created.available, created.shards),
            (10, 10, 4)
        );
        assert_eq!(created.updated_at, now());
        assert_eq!(available_by_shard(&store, "tea").await, vec![3, 3, 2, 2]);
        assert_eq!(adjusted_total(&store, "tea").await, 10);

        let (_, one) = set_on_hand(&store, &sku("cup"), 5, None, now())
            .await
            .unwrap();
        assert_eq!(one.shards, 1);
        let e = refused(super::levels(&store, &sku("lid")).await);
        assert!(matches!(e, Error::SkuNotFound(_)), "{e:?}");
    }

    #[tokio::test]
    async fn setting_the_same_on_hand_writes_nothing() {
        let store = stocked(&[("tea", 10, 2)]).await;
        let (answer, same) = set_on_hand(&store, &sku("tea"), 10, shards(2), later(60))
            .await
            .unwrap();
        assert_eq!(answer, Answer::Ok);
        assert_eq!(same.updated_at, now());
        assert_eq!(levels_of(&store, "tea").await, same);
        assert_eq!(adjusted_total(&store, "tea").await, 10);
    }

    #[tokio::test]
    async fn a_new_on_hand_is_recorded_as_the_difference() {
        let store = stocked(&[("tea", 10, 2)]).await;
        placed(&store, hold(&[("tea", 4)])).await;
        let (answer, raised) = set_on_hand(&store, &sku("tea"), 15, None, later(60))
            .await
            .unwrap();
        assert_eq!(answer, Answer::Ok);
        assert_eq!(
            (raised.on_hand, raised.available, raised.reserved),
            (15, 11, 4)
        );
        assert_eq!(raised.updated_at, later(60));
        assert_eq!(raised, levels_of(&store, "tea").await);

        let (_, cut) = set_on_hand(&store, &sku("tea"), 4, None, later(61))
            .await
            .unwrap();
        assert_eq!((cut.on_hand, cut.available, cut.reserved), (4, 0, 4));
        assert_eq!(cut, levels_of(&store, "tea").await);
        assert_eq!(adjusted_total(&store, "tea").await, 4);
        assert_eq!(stored(&store, "tea").await.on_hand, 4);

        // Held units are not on sale: they cannot be cut.
        let e = refused(set_on_hand(&store, &sku("tea"), 3, None, later(62)).await);
        assert!(
            matches!(&e, Error::InsufficientStock { sku: s } if *s == sku("tea")),
            "{e:?}"
        );
        assert_eq!(levels_of(&store, "tea").await, cut);
    }

    #[tokio::test]
    async fn a_reshard_moves_available_units_and_keeps_every_unit() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let held = placed(&store, hold(&[("tea", 3)])).await;
        let (answer, wider) = set_on_hand(&store, &sku("tea"), 10, shards(4), later(60))
            .await
            .unwrap();
        assert_eq!(answer, Answer::Ok);
        assert_eq!(
            (wider.shards, wider.on_hand, wider.available, wider.reserved),
            (4, 10, 7, 3)
        );
        assert_eq!(available_by_shard(&store, "tea").await, vec![2, 2, 2, 1]);
        assert_eq!(wider.updated_at, later(60));

        let (_, narrower) = set_on_hand(&store, &sku("tea"), 12, shards(2), later(61))
            .await
            .unwrap();
        assert_eq!(
            (narrower.shards, narrower.on_hand, narrower.available),
            (2, 12, 9,)
        );
        // Shards past the active ones keep nothing on sale; new units go to active ones.
        let by_shard = available_by_shard(&store, "tea").await;
        assert_eq!((by_shard.len(), by_shard[2], by_shard[3]), (4, 0, 0));
        assert_eq!(narrower, levels_of(&store, "tea").await);

        // The held units come back to the shard they were taken from.
        holds::release(&store, &Acting::Staff, &held.reservation_id, later(62))
            .await
            .unwrap();
        let released = levels_of(&store, "tea").await;
        assert_eq!(
            (released.on_hand, released.available, released.reserved),
            (12, 12, 0)
        );
        assert_eq!(adjusted_total(&store, "tea").await, 12);
    }

    #[tokio::test]
    async fn the_same_shard_count_respreads_an_uneven_sku_and_reads_nothing_more_when_even() {
        let store = stocked(&[("tea", 8, 2)]).await;
        placed(&store, hold(&[("tea", 4)])).await;
        let uneven = available_by_shard(&store, "tea").await;
        assert_eq!(uneven.iter().sum::<u64>(), 4);
        assert_ne!(uneven, vec![2, 2]);
        set_on_hand(&store, &sku("tea"), 8, shards(2), later(60))
            .await
            .unwrap();
        assert_eq!(available_by_shard(&store, "tea").await, vec![2, 2]);
        let reads = store.stock_reads();
        let (_, even) = set_on_hand(&store, &sku("tea"), 8, shards(2), later(61))
            .await
            .unwrap();
        assert_eq!(store.stock_reads(), reads + 1, "one read, no reshard");
        assert_eq!(even, levels_of(&store, "tea").await);
    }

    fn adjustment(of: &str, delta: i64) -> Adjustment {
        Adjustment {
            id: AdjustmentId::generate(),
            sku: sku(of),
            delta,
            reason: Reason::parse("cycle count").unwrap(),
            at: later(60),
        }
    }

    #[tokio::test]
    async fn an_adjustment_adds_or_takes_available_units_once() {
        let store = stocked(&[("tea", 10, 3)]).await;
        let delivery = adjustment("tea", 5);
        let (answer, more) = created(adjust(&store, &delivery, "first body").await);
        assert_eq!(answer, Answer::Ok);
        assert_eq!((more.on_hand, more.available), (15, 15));
        assert_eq!(more.updated_at, later(60));
        assert_eq!(more, levels_of(&store, "tea").await);

        let again = adjust(&store, &delivery, "first body").await;
        let Ok(Recorded::Replayed(first)) = again else {
            panic!("expected a replay, got {again:?}");
        };
        assert_eq!(
            (first.status, first.body),
            (200, serde_json::to_string(&more.shown()).unwrap())
        );
        let e = refused(adjust(&store, &delivery, "another body").await);
        assert!(matches!(e, Error::IdempotencyKeyReused), "{e:?}");

        let (_, fewer) = created(adjust(&store, &adjustment("tea", -14), "first body").await);
        assert_eq!((fewer.on_hand, fewer.available), (1, 1));
        assert_eq!(fewer, levels_of(&store, "tea").await);
        assert_eq!(adjusted_total(&store, "tea").await, 1);
    }

    /// Units added need no units on sale: they go to an active shard, whatever it holds.
    #[tokio::test]
    async fn a_delivery_lands_when_every_unit_is_held() {
        let store = stocked(&[("tea", 4, 1)]).await;
        placed(&store, hold(&[("tea", 4)])).await;
        let (_, delivered) = created(adjust(&store, &adjustment("tea", 5), "first body").await);
        assert_eq!((delivered.on_hand, delivered.available), (9, 5));
        let (_, raised) = set_on_hand(&store, &sku("tea"), 12, None, later(61))
            .await
            .unwrap();
        assert_eq!(
            (raised.on_hand, raised.available, raised.reserved),
            (12, 8, 4)
        );
    }

    #[tokio::test]
    async fn an_adjustment_that_cannot_be_had_changes_nothing() {
        let store = stocked(&[("tea", 10, 2)]).await;
        placed(&store, hold(&[("tea", 4)])).await;
        let before = levels_of(&store, "tea").await;
        let e = refused(adjust(&store, &adjustment("tea", -7), "first body").await);
        assert!(
            matches!(&e, Error::InsufficientStock { sku: s } if *s == sku("tea")),
            "{e:?}"
        );
        let e = refused(adjust(&store, &adjustment("lid", 1), "first body").await);
        assert!(
            matches!(&e, Error::SkuNotFound(s) if *s == sku("lid")),
            "{e:?}"
        );
        assert_eq!(levels_of(&store, "tea").await, before);
        assert_eq!(adjusted_total(&store, "tea").await, 10);
    }
}
