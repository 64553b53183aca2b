//! Taking available units for a request (a hold or a sale straight from stock): where
//! they come from, and what to do when others took them first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::replay_or;
use crate::domain::{
    plan_decrement, Allocation, Lines, Order, Reservation, Sku, StockMove, Take, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded, RecordedRequest};
use crate::retry::Backoff;
use crate::store::{
    Attempt, CampaignGuard, ReadRecord, ReadStock, RecordKey, TakeRefused, TakeStock, Taker,
    WriteStock,
};

/// How long a remembered shard count is trusted.
const SHARD_COUNT_MAX_AGE: Duration = Duration::from_secs(10);

/// How many shards each sku had when last read, and when: lets a request go straight to
/// a shard without reading first. A wrong guess only fails its condition and the next
/// attempt reads; the age limit makes a process notice a reshard (else it would keep
/// guessing among the old shards while they still have stock).
#[derive(Debug, Default)]
pub struct ShardCounts(Mutex<HashMap<Sku, (u16, Instant)>>);

impl ShardCounts {
    fn known(&self, sku: &Sku) -> Option<u16> {
        let counts = self.0.lock().ok()?;
        let (count, seen) = counts.get(sku)?;
        (seen.elapsed() < SHARD_COUNT_MAX_AGE).then_some(*count)
    }

    fn remember(&self, sku: &Sku, active: u16) {
        if let Ok(mut counts) = self.0.lock() {
            counts.insert(sku.clone(), (active, Instant::now()));
        }
    }

    /// Each line whole from a random shard, when every sku's shard count is known.
    fn guess(&self, lines: &Lines) -> Option<Vec<Allocation>> {
        lines
            .iter()
            .map(|line| {
                let take = Take {
                    shard: random_below(self.known(&line.sku)?),
                    quantity: u64::from(line.quantity.get()),
                };
                Some(Allocation {
                    sku: line.sku.clone(),
                    take,
                })
            })
            .collect()
    }
}

/// A uniformly random number in `0..n` (0 when `n` is 0 or 1): where a walk over shards
/// starts, so that concurrent requests spread over them.
pub(super) fn random_below(n: u16) -> u16 {
    if n <= 1 {
        0
    } else {
        rand::random_range(0..n)
    }
}

/// Where each line's units come from, or why they cannot be had.
async fn allocate(
    store: &impl ReadStock,
    shard_counts: &ShardCounts,
    lines: &Lines,
) -> Result<Result<Vec<Allocation>, Error>> {
    let seen = futures::future::try_join_all(lines.iter().map(|l| store.sku_stock(&l.sku))).await?;
    let mut allocations = Vec::new();
    for (line, stock) in lines.iter().zip(seen) {
        let Some(stock) = stock else {
            return Ok(Err(Error::SkuNotFound(line.sku.clone())));
        };
        shard_counts.remember(&line.sku, stock.active.get());
        let start = usize::from(random_below(stock.shards.len() as u16));
        let quantity = u64::from(line.quantity.get());
        let Some(takes) = plan_decrement(&stock.shards, quantity, start) else {
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

/// What a take of stock writes as its record.
pub(super) trait TakesStock: crate::api::Shown {
    fn taker(&self) -> Taker<'_>;
}

impl TakesStock for Reservation {
    fn taker(&self) -> Taker<'_> {
        Taker::Hold(self)
    }
}

impl TakesStock for Order {
    fn taker(&self) -> Taker<'_> {
        Taker::Order(self)
    }
}

/// One request's take of stock.
pub(super) struct Taking<'a> {
    pub lines: &'a Lines,
    pub movement: StockMove,
    pub at: Timestamp,
    pub record: RecordKey,
    pub fingerprint: &'a str,
    pub campaign: Option<&'a CampaignGuard>,
}

/// Moves every line's available units with `taking.movement` and writes the request's
/// record (`record` builds it from where the units came from, with its answer), all or
/// nothing; after a refusal, a request seen before gets its first answer.
pub(super) async fn take_lines<S, T: TakesStock>(
    store: &S,
    shard_counts: &ShardCounts,
    taking: Taking<'_>,
    mut record: impl FnMut(Vec<Allocation>) -> (T, Answer),
) -> Result<Recorded<T>>
where
    S: ReadStock + WriteStock + ReadRecord,
{
    let mut rejection = Error::Contention;
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        // First a guess from known shard counts (no read); after a miss, read and plan.
        let guess = match backoff.failures() {
            0 => shard_counts.guess(taking.lines),
            _ => None,
        };
        let allocations = match guess {
            Some(allocations) => allocations,
            None => match allocate(store, shard_counts, taking.lines).await? {
                Ok(allocations) => allocations,
                Err(refused) => {
                    rejection = refused;
                    break;
                }
            },
        };
        let (value, answer) = record(allocations.clone());
        let receipt = RecordedRequest::new(taking.fingerprint, answer, &value)?;
        let attempt = store
            .take(TakeStock {
                allocations: &allocations,
                movement: taking.movement,
                record: value.taker(),
                receipt: &receipt,
                campaign: taking.campaign,
                at: taking.at,
            })
            .await?;
        match attempt {
            Attempt::Committed => return Ok(Recorded::Created(answer, value)),
            Attempt::Refused(TakeRefused::RecordExists) => break,
            // The same request, in flight elsewhere: if it never shows up, say so.
            Attempt::Refused(TakeRefused::RecordInFlight) => rejection = Error::RequestInProgress,
            Attempt::Refused(refusal) => {
                rejection = campaign_refusal(taking.campaign, refusal);
                break;
            }
            // Another request took the units this plan counted on: look again.
            Attempt::Stale => {}
        }
    }
    replay_or(store, &taking.record, taking.fingerprint, rejection).await
}

/// The error a campaign's refusal means; the store refuses so only for a take that
/// carried a campaign guard.
fn campaign_refusal(guard: Option<&CampaignGuard>, refusal: TakeRefused) -> Error {
    match (guard, refusal) {
        (Some(guard), TakeRefused::CampaignClosed) => Error::CampaignNotActive {
            campaign: guard.campaign_id.clone(),
            sku: None,
        },
        (Some(guard), TakeRefused::OverLimit) => {
            Error::PurchaseLimitExceeded(guard.campaign_id.clone())
        }
        _ => Error::Store {
            message: format!("a take without a campaign was refused: {refusal:?}"),
            retryable: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::domain::{Adjustment, ReservationStatus, ShardCount};
    use crate::store::{MemoryStore, RecordExists, SkuStock};
    use crate::usecases::holds::reserve;
    use crate::usecases::stock::set_on_hand;
    use crate::usecases::testing::*;

    #[test]
    fn a_random_shard_is_below_the_count_and_any_of_them_comes_up() {
        assert_eq!((random_below(0), random_below(1)), (0, 0));
        let drawn: BTreeSet<u16> = (0..400).map(|_| random_below(4)).collect();
        assert_eq!(drawn, BTreeSet::from([0, 1, 2, 3]));
    }

    #[test]
    fn a_guess_needs_a_recent_shard_count_for_every_sku() {
        let counts = ShardCounts::default();
        let both = lines(&[("tea", 3), ("cup", 2)]);
        assert_eq!(counts.guess(&both), None);
        counts.remember(&sku("tea"), 4);
        assert_eq!(counts.known(&sku("tea")), Some(4));
        assert_eq!(counts.guess(&both), None);
        counts.remember(&sku("cup"), 1);
        let guess = counts.guess(&both).unwrap();
        let whole: Vec<_> = guess
            .iter()
            .map(|a| (a.sku.as_str(), a.take.quantity))
            .collect();
        assert_eq!(whole, vec![("tea", 3), ("cup", 2)]);
        assert!(guess[0].take.shard < 4);
        assert_eq!(guess[1].take.shard, 0);

        let stale = Instant::now().checked_sub(SHARD_COUNT_MAX_AGE).unwrap();
        counts.0.lock().unwrap().insert(sku("cup"), (1, stale));
        assert_eq!(counts.known(&sku("cup")), None);
        assert_eq!(counts.guess(&both), None);
    }

    #[test]
    fn only_a_take_with_a_campaign_guard_is_refused_for_the_campaign() {
        for refusal in [TakeRefused::CampaignClosed, TakeRefused::OverLimit] {
            let e = campaign_refusal(None, refusal);
            assert!(
                matches!(
                    e,
                    Error::Store {
                        retryable: false,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
    }

    /// The memory store, counting the reads of stock.
    #[derive(Default)]
    struct CountingReads {
        store: MemoryStore,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl ReadStock for CountingReads {
        async fn sku_stock(&self, sku: &Sku) -> Result<Option<SkuStock>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.store.sku_stock(sku).await
        }
    }

    #[async_trait]
    impl ReadRecord for CountingReads {
        async fn recorded(&self, key: &RecordKey) -> Result<Option<RecordedRequest>> {
            self.store.recorded(key).await
        }
    }

    #[async_trait]
    impl crate::store::ReadCampaign for CountingReads {
        async fn campaign(
            &self,
            id: &crate::domain::CampaignId,
        ) -> Result<Option<crate::domain::Campaign>> {
            self.store.campaign(id).await
        }

        async fn campaigns_selling(&self, sku: &Sku) -> Result<Vec<crate::domain::CampaignWindow>> {
            self.store.campaigns_selling(sku).await
        }
    }

    #[async_trait]
    impl WriteStock for CountingReads {
        async fn take(&self, take: TakeStock<'_>) -> Result<Attempt<TakeRefused>> {
            self.store.take(take).await
        }

        async fn create_sku(
            &self,
            sku: &Sku,
            spread: &[u64],
            opening: &Adjustment,
        ) -> Result<Attempt> {
            self.store.create_sku(sku, spread, opening).await
        }

        async fn reshard(
            &self,
            seen: &SkuStock,
            active: ShardCount,
            available: &[u64],
            at: Timestamp,
        ) -> Result<Attempt> {
            self.store.reshard(seen, active, available, at).await
        }

        async fn adjust(
            &self,
            seen: &SkuStock,
            adjustment: &Adjustment,
            takes: &[Take],
            receipt: Option<&RecordedRequest>,
        ) -> Result<Attempt<RecordExists>> {
            self.store.adjust(seen, adjustment, takes, receipt).await
        }
    }

    fn reads(store: &CountingReads) -> usize {
        store.reads.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_known_shard_count_saves_the_read_and_a_wrong_guess_costs_one() {
        let store = CountingReads::default();
        set_on_hand(&store.store, &sku("tea"), 10, None, now())
            .await
            .unwrap();
        let counts = ShardCounts::default();
        let first = created(reserve(&store, &counts, hold(&[("tea", 2)])).await).1;
        assert_eq!(reads(&store), 1);
        let second = created(reserve(&store, &counts, hold(&[("tea", 2)])).await).1;
        assert_eq!(reads(&store), 1);
        assert_eq!(second.allocations, first.allocations);

        // Two shards of 3 now: the guess (shard 0, whole) fails, a read splits the line.
        let two = ShardCount::new(2).ok();
        set_on_hand(&store.store, &sku("tea"), 10, two, now())
            .await
            .unwrap();
        let split = created(reserve(&store, &counts, hold(&[("tea", 5)])).await).1;
        assert_eq!(reads(&store), 2);
        assert_eq!(split.status, ReservationStatus::Held);
        assert_eq!(split.allocations.len(), 2);
        assert_eq!(counters(&store.store, "tea").await, (1, 9, 0));
    }
}
