//! Taking available units for a request (a hold or a sale straight from stock): where
//! they come from, under which campaign terms, and what to do when others took them
//! first.
//!
//! A process keeps a view of each sku it sold: every stock item's available units and
//! the terms its items carry, as a read, a refused take (which shows the items it found)
//! or its own takes left them. A take is planned from the view and conditioned on what
//! it counted on, so a wrong view only costs a refused write, which corrects it. Nothing
//! every request shares is read per request: a sku is read whole only when the view
//! cannot plan and is older than `VIEW_MAX_AGE`, once per process at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::replay_or;
use crate::domain::{
    plan_decrement, Allocation, CampaignId, CustomerId, Lines, Order, Reservation, ShardStock, Sku,
    SkuTerms, StockMove, Take, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded, RecordedRequest};
use crate::retry::Backoff;
use crate::store::{
    Attempt, CampaignGuard, ReadRecord, ReadStock, RecordKey, ShardSeen, SkuStock, TakeRefused,
    TakeStock, Taker, TermsCheck, WriteStock,
};

/// How old a view may be for a refusal to rest on it: units put back (a release, an
/// expiry, a restock, a delivery) are sold by every process at most this long after.
pub const VIEW_MAX_AGE: Duration = Duration::from_secs(1);

/// The most stock items one hold or order may take from: DynamoDB takes 100 actions per
/// transaction, and the largest one a hold's takes go into again (its commit) adds three
/// (the hold, the order, the customer's campaign counter). A release, an expiry and a
/// refund's restock add fewer.
pub const MAX_TAKES: usize = 100 - 3;

/// What this process last saw of one sku.
#[derive(Debug, Clone, Default)]
struct SkuView {
    /// Each stock item's available units when last seen.
    available: BTreeMap<u16, u64>,
    /// The terms its stock items carry; unknown until one was seen.
    terms: Option<SkuTerms>,
    /// When the sku was last read whole: only then is every stock item in `available`.
    read_at: Option<Instant>,
    /// When stock items were last seen as the table has them (a read, a refusal).
    seen_at: Option<Instant>,
}

impl SkuView {
    fn from_read(stock: &SkuStock) -> Self {
        Self {
            available: stock
                .shards
                .iter()
                .map(|s| (s.shard, s.available))
                .collect(),
            terms: Some(stock.terms.clone()),
            read_at: Some(Instant::now()),
            seen_at: Some(Instant::now()),
        }
    }

    fn is_fresh(&self) -> bool {
        self.read_at.is_some_and(|at| at.elapsed() < VIEW_MAX_AGE)
    }

    fn shards(&self) -> Vec<ShardStock> {
        self.available
            .iter()
            .map(|(&shard, &available)| ShardStock {
                shard,
                available,
                ..ShardStock::default()
            })
            .collect()
    }
}

/// Every sku's view in this process, and one lock per sku so that one request at a time
/// reads it whole.
#[derive(Debug, Default)]
pub struct StockViews {
    views: Mutex<HashMap<Sku, SkuView>>,
    reads: Mutex<HashMap<Sku, Arc<tokio::sync::Mutex<()>>>>,
}

impl StockViews {
    fn view(&self, sku: &Sku) -> Option<SkuView> {
        self.views.lock().ok()?.get(sku).cloned()
    }

    fn update(&self, sku: &Sku, change: impl FnOnce(&mut SkuView)) {
        if let Ok(mut views) = self.views.lock() {
            change(views.entry(sku.clone()).or_default());
        }
    }

    /// What a refused take found.
    fn saw(&self, seen: &[ShardSeen]) {
        for item in seen {
            self.update(&item.sku, |view| {
                view.available
                    .insert(item.stock.shard, item.stock.available);
                view.terms = Some(item.terms.clone());
                view.seen_at = Some(Instant::now());
            });
        }
    }

    /// What this process's own take, planned at `planned_at`, left. A view that saw the
    /// table after the take was planned may already show it: it is left as it is, since
    /// counting a take twice would refuse units that are there, and counting too many
    /// only costs a refused write that shows the truth.
    fn took(&self, allocations: &[Allocation], planned_at: Instant) {
        for a in allocations {
            self.update(&a.sku, |view| {
                if view.seen_at.is_some_and(|seen| seen > planned_at) {
                    return;
                }
                if let Some(left) = view.available.get_mut(&a.take.shard) {
                    *left = left.saturating_sub(a.take.quantity);
                }
            });
        }
    }

    /// Whether any of the skus' items carry other terms than their views say (the views
    /// take the new ones).
    async fn terms_changed(&self, store: &impl ReadStock, skus: &[Sku]) -> Result<bool> {
        let mut changed = false;
        for sku in skus {
            let now = store.sku_terms(sku).await?;
            let seen = self.view(sku).and_then(|v| v.terms);
            if now != seen {
                changed = true;
                self.update(sku, |view| view.terms = now);
            }
        }
        Ok(changed)
    }

    /// Reads the sku whole unless another request of this process just did; `None` when
    /// it does not exist.
    async fn refresh(&self, store: &impl ReadStock, sku: &Sku) -> Result<Option<SkuView>> {
        let lock = match self.reads.lock() {
            Ok(mut reads) => reads.entry(sku.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let _reading = lock.lock().await;
        if let Some(view) = self.view(sku).filter(SkuView::is_fresh) {
            return Ok(Some(view));
        }
        let Some(stock) = store.sku_stock(sku).await? else {
            return Ok(None);
        };
        let view = SkuView::from_read(&stock);
        self.update(sku, |v| *v = view.clone());
        Ok(Some(view))
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

/// Whose rules a take follows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Terms<'a> {
    /// Staff sell whatever campaigns run.
    Any,
    /// A customer without a campaign: refused for a sku a campaign is selling now.
    NoCampaign,
    /// A customer in a campaign: every sku on offer in it, its window open, and room in
    /// the customer's allowance for `units`.
    Campaign {
        id: &'a CampaignId,
        customer: &'a CustomerId,
        units: u64,
    },
}

/// What a request can do with the views it has.
enum Plan {
    Take {
        allocations: Vec<Allocation>,
        /// What each sku's items must still carry of their terms (customers only).
        versions: Option<BTreeMap<Sku, TermsCheck>>,
        guard: Option<CampaignGuard>,
    },
    /// Refused, on views recent enough to refuse on.
    Refuse(Error),
    /// Refused by the terms these skus' views carry, if they still carry them.
    RefuseIfTerms(Vec<Sku>, Error),
    /// These skus must be read first.
    Read(Vec<Sku>),
}

/// Plans every line from the views (`None`: never seen by this process). A sku never
/// seen is guessed whole from its first shard, which every sku has, under no campaign
/// terms, or in a campaign under its open offer and as the customer's first units: a new
/// process sells a one-shard sku with one write, and a wrong guess is refused showing the
/// item (or the customer's counter). A refusal needs a fresh view; otherwise the sku is
/// read.
fn plan(
    lines: &Lines,
    views: &[Option<SkuView>],
    terms: Terms<'_>,
    now: Timestamp,
    guessing: bool,
) -> Plan {
    let mut allocations = Vec::new();
    let mut versions = BTreeMap::new();
    let mut limit = u32::MAX;
    let mut stale = Vec::new();
    let mut refusal = None;
    let mut by_terms: Option<(Vec<Sku>, Error)> = None;
    let mut guessed_offer = false;
    for (line, view) in lines.iter().zip(views) {
        let quantity = u64::from(line.quantity.get());
        let (view, sku_terms) = match view {
            Some(view @ SkuView { terms: Some(t), .. }) => (view, t),
            _ if guessing => {
                allocations.push(Allocation {
                    sku: line.sku.clone(),
                    take: Take { shard: 0, quantity },
                });
                let check = match terms {
                    Terms::Campaign { id, units, .. } => {
                        guessed_offer = true;
                        TermsCheck::OpenOffer {
                            campaign: id.clone(),
                            units,
                        }
                    }
                    Terms::Any | Terms::NoCampaign => TermsCheck::Version(0),
                };
                versions.insert(line.sku.clone(), check);
                continue;
            }
            _ => {
                stale.push(line.sku.clone());
                continue;
            }
        };
        versions.insert(line.sku.clone(), TermsCheck::Version(sku_terms.version));
        let refused = match terms {
            Terms::Any => None,
            Terms::NoCampaign => sku_terms
                .open_campaign(now)
                .map(|c| Error::CampaignRequired {
                    campaign: c.clone(),
                    sku: line.sku.clone(),
                }),
            Terms::Campaign { id, .. } => match sku_terms.offer(id) {
                Some(offer) if offer.is_open(now) => {
                    limit = limit.min(offer.per_customer_limit);
                    None
                }
                Some(_) => Some(Error::CampaignNotActive {
                    campaign: id.clone(),
                    sku: None,
                }),
                None => Some(Error::CampaignNotActive {
                    campaign: id.clone(),
                    sku: Some(line.sku.clone()),
                }),
            },
        };
        if let Some(e) = refused {
            let (skus, _) = by_terms.get_or_insert_with(|| (Vec::new(), e));
            skus.push(line.sku.clone());
            continue;
        }
        let shards = view.shards();
        let start = usize::from(random_below(shards.len() as u16));
        let takes = plan_decrement(&shards, quantity, start).ok_or(Error::InsufficientStock {
            sku: line.sku.clone(),
        });
        match takes {
            Ok(takes) => allocations.extend(takes.into_iter().map(|take| Allocation {
                sku: line.sku.clone(),
                take,
            })),
            Err(_) if !view.is_fresh() => stale.push(line.sku.clone()),
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    if let Some(e) = refusal {
        return Plan::Refuse(e);
    }
    if let Some((skus, e)) = by_terms {
        return Plan::RefuseIfTerms(skus, e);
    }
    if !stale.is_empty() {
        return Plan::Read(stale);
    }
    if allocations.len() > MAX_TAKES {
        return match views.iter().flatten().all(SkuView::is_fresh) {
            true => Plan::Refuse(Error::TooManyStockItems(MAX_TAKES)),
            false => Plan::Read(lines.iter().map(|l| l.sku.clone()).collect()),
        };
    }
    let guard = match terms {
        Terms::Campaign {
            id,
            customer,
            units,
        } => match u64::from(limit).checked_sub(units) {
            Some(room) => Some(CampaignGuard {
                campaign_id: id.clone(),
                customer_id: customer.clone(),
                // A guessed offer's limit is unknown: only a customer's first units fit.
                room: if guessed_offer { 0 } else { room },
                units,
            }),
            None => return Plan::Refuse(Error::PurchaseLimitExceeded(id.clone())),
        },
        _ => None,
    };
    Plan::Take {
        allocations,
        versions: (!matches!(terms, Terms::Any)).then_some(versions),
        guard,
    }
}

fn has_guessed_offer(checks: Option<&BTreeMap<Sku, TermsCheck>>) -> bool {
    checks
        .into_iter()
        .flatten()
        .any(|(_, check)| matches!(check, TermsCheck::OpenOffer { .. }))
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
    pub terms: Terms<'a>,
}

/// Moves every line's available units with `taking.movement` and writes the request's
/// record (`record` builds it from where the units came from, with its answer), all or
/// nothing; after a refusal, a request seen before gets its first answer.
pub(super) async fn take_lines<S, T: TakesStock>(
    store: &S,
    views: &StockViews,
    taking: Taking<'_>,
    mut record: impl FnMut(Vec<Allocation>) -> (T, Answer),
) -> Result<Recorded<T>>
where
    S: ReadStock + WriteStock + ReadRecord,
{
    let mut rejection = Error::Contention;
    let mut backoff = Backoff::default();
    'attempts: while backoff.next_attempt().await {
        let guessing = backoff.failures() == 0;
        let planned_at = Instant::now();
        let (allocations, versions, guard) = loop {
            let seen: Vec<_> = taking.lines.iter().map(|l| views.view(&l.sku)).collect();
            match plan(taking.lines, &seen, taking.terms, taking.at, guessing) {
                Plan::Take {
                    allocations,
                    versions,
                    guard,
                } => break (allocations, versions, guard),
                Plan::Refuse(e) => {
                    rejection = e;
                    break 'attempts;
                }
                // Terms change rarely but take effect at once: one item says if they did.
                Plan::RefuseIfTerms(skus, e) => {
                    if !views.terms_changed(store, &skus).await? {
                        rejection = e;
                        break 'attempts;
                    }
                }
                Plan::Read(skus) => {
                    for sku in skus {
                        if views.refresh(store, &sku).await?.is_none() {
                            rejection = Error::SkuNotFound(sku);
                            break 'attempts;
                        }
                    }
                }
            }
        };
        let (value, answer) = record(allocations.clone());
        let receipt = RecordedRequest::new(taking.fingerprint, answer, &value)?;
        let attempt = store
            .take(TakeStock {
                allocations: &allocations,
                movement: taking.movement,
                record: value.taker(),
                receipt: &receipt,
                campaign: guard.as_ref(),
                terms: versions.as_ref(),
                at: taking.at,
            })
            .await?;
        match attempt {
            Attempt::Committed => {
                views.took(&allocations, planned_at);
                return Ok(Recorded::Created(answer, value));
            }
            Attempt::Refused(TakeRefused::RecordExists) => break,
            // The same request, in flight elsewhere: if it never shows up, say so.
            Attempt::Refused(TakeRefused::RecordInFlight) => rejection = Error::RequestInProgress,
            // A guess counted on the customer's first units: read the terms and plan again.
            Attempt::Refused(TakeRefused::OverLimit) if has_guessed_offer(versions.as_ref()) => {
                for (sku, _) in versions.iter().flatten() {
                    if views.refresh(store, sku).await?.is_none() {
                        rejection = Error::SkuNotFound(sku.clone());
                        break 'attempts;
                    }
                }
            }
            Attempt::Refused(TakeRefused::OverLimit) => {
                rejection = match &guard {
                    Some(guard) => Error::PurchaseLimitExceeded(guard.campaign_id.clone()),
                    None => Error::Store {
                        message: "a take without a campaign was refused its limit".into(),
                        retryable: false,
                    },
                };
                break;
            }
            // Others took the units this plan counted on, or the terms changed: plan again
            // with what the refusal showed.
            Attempt::Refused(TakeRefused::Moved(seen)) => views.saw(&seen),
            // Collided with another write, or the store was busy: again after a pause.
            Attempt::Stale => {}
        }
    }
    replay_or(store, &taking.record, taking.fingerprint, rejection).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::{ReservationStatus, ShardCount};
    use crate::identity::Acting;
    use crate::store::MemoryStore;
    use crate::usecases::campaigns;
    use crate::usecases::holds::{reserve, NewHold};
    use crate::usecases::stock::set_on_hand;
    use crate::usecases::testing::*;

    #[test]
    fn a_random_shard_is_below_the_count_and_any_of_them_comes_up() {
        assert_eq!((random_below(0), random_below(1)), (0, 0));
        let drawn: BTreeSet<u16> = (0..400).map(|_| random_below(4)).collect();
        assert_eq!(drawn, BTreeSet::from([0, 1, 2, 3]));
    }

    async fn stocked_over(of: &str, on_hand: u64, shards: u64) -> MemoryStore {
        let store = MemoryStore::new();
        let count = ShardCount::new(shards).ok();
        set_on_hand(&store, &sku(of), on_hand, count, now())
            .await
            .unwrap();
        store
    }

    fn as_customer(items: &[(&str, u64)]) -> NewHold {
        NewHold {
            acting: Acting::Customer(customer("ann")),
            ..hold(items)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_process_sells_a_one_shard_sku_without_reading_it() {
        let store = stocked_over("tea", 10, 1).await;
        let reads = store.stock_reads();
        let views = StockViews::default();
        created(reserve(&store, &views, as_customer(&[("tea", 2)])).await);
        created(reserve(&store, &views, as_customer(&[("tea", 3)])).await);
        assert_eq!(store.stock_reads(), reads);
        assert_eq!(counters(&store, "tea").await, (5, 5, 0));
    }

    /// A hold of `who` in the campaign `flash`.
    fn in_flash(who: &str, items: &[(&str, u64)], at: Timestamp) -> NewHold {
        NewHold {
            acting: Acting::Customer(customer(who)),
            campaign_id: Some(campaign_id("flash")),
            at,
            ..hold(items)
        }
    }

    async fn flash_on(store: &MemoryStore, skus: &[&str], limit: u32) {
        campaigns::put(store, &campaign_id("flash"), &terms(skus, limit), now())
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_process_takes_a_customers_first_campaign_units_without_reading() {
        let store = stocked_over("tea", 10, 1).await;
        flash_on(&store, &["tea"], 3).await;
        let reads = store.stock_reads();
        for who in ["ann", "bob"] {
            let fresh = StockViews::default();
            created(reserve(&store, &fresh, in_flash(who, &[("tea", 3)], now())).await);
        }
        assert_eq!(store.stock_reads(), reads);
        assert_eq!(counters(&store, "tea").await, (4, 6, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_process_holds_a_customer_to_what_their_earlier_units_left() {
        let store = stocked_over("tea", 10, 1).await;
        flash_on(&store, &["tea"], 3).await;
        let ask = |units| {
            let request = in_flash("ann", &[("tea", units)], now());
            let store = &store;
            async move { reserve(store, &StockViews::default(), request).await }
        };
        created(ask(2).await);
        let e = refused(ask(2).await);
        assert!(matches!(e, Error::PurchaseLimitExceeded(_)), "{e:?}");
        created(ask(1).await);
        assert_eq!(counters(&store, "tea").await, (7, 3, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_processs_guess_is_refused_over_the_limit_off_the_offer_and_out_of_its_window() {
        let store = stocked(&[("tea", 10, 1), ("cup", 10, 1)]).await;
        flash_on(&store, &["tea"], 3).await;
        let ask = |who, items: &[(&str, u64)], at| {
            let store = &store;
            let request = in_flash(who, items, at);
            async move { refused(reserve(store, &StockViews::default(), request).await) }
        };
        let e = ask("ann", &[("tea", 4)], now()).await;
        assert!(matches!(e, Error::PurchaseLimitExceeded(_)), "{e:?}");
        let e = ask("ann", &[("cup", 1)], now()).await;
        assert!(
            matches!(&e, Error::CampaignNotActive { sku: Some(s), .. } if *s == sku("cup")),
            "{e:?}"
        );
        let e = ask("ann", &[("tea", 1)], later(3 * 3600)).await;
        assert!(
            matches!(e, Error::CampaignNotActive { sku: None, .. }),
            "{e:?}"
        );
        assert_eq!(counters(&store, "tea").await, (10, 0, 0));
        assert_eq!(counters(&store, "cup").await, (10, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_guess_is_corrected_by_what_its_refusal_shows_then_one_read_splits() {
        // 3 + 3 over two shards: a guess of 2 from shard 0 lands; 5 cannot come from one.
        let store = stocked_over("tea", 6, 2).await;
        let reads = store.stock_reads();
        let views = StockViews::default();
        created(reserve(&store, &views, hold(&[("tea", 2)])).await);
        assert_eq!(store.stock_reads(), reads);
        let split = created(reserve(&store, &views, hold(&[("tea", 4)])).await).1;
        assert_eq!(store.stock_reads(), reads + 1);
        assert_eq!(split.status, ReservationStatus::Held);
        let mut takes: Vec<_> = split
            .allocations
            .iter()
            .map(|a| (a.take.shard, a.take.quantity))
            .collect();
        takes.sort();
        assert_eq!(takes, vec![(0, 1), (1, 3)]);
        assert_eq!(counters(&store, "tea").await, (0, 6, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_rest_on_a_view_younger_than_its_age_then_read_again() {
        let store = stocked_over("tea", 4, 4).await;
        let views = StockViews::default();
        for _ in 0..4 {
            created(reserve(&store, &views, hold(&[("tea", 1)])).await);
        }
        let reads = store.stock_reads();
        for _ in 0..50 {
            let e = refused(reserve(&store, &views, hold(&[("tea", 1)])).await);
            assert!(matches!(e, Error::InsufficientStock { .. }), "{e:?}");
        }
        // One read made the view fresh; the other refusals read nothing.
        assert!(store.stock_reads() <= reads + 1, "{}", store.stock_reads());
        let reads = store.stock_reads();

        // A unit comes back: seen once the view is older than its age.
        set_on_hand(&store, &sku("tea"), 5, None, now())
            .await
            .unwrap();
        let e = refused(reserve(&store, &views, hold(&[("tea", 1)])).await);
        assert!(matches!(e, Error::InsufficientStock { .. }), "{e:?}");
        tokio::time::advance(VIEW_MAX_AGE).await;
        let reads_before = store.stock_reads();
        created(reserve(&store, &views, hold(&[("tea", 1)])).await);
        assert_eq!(store.stock_reads(), reads_before + 1);
        assert!(reads_before >= reads);
    }

    #[tokio::test(start_paused = true)]
    async fn a_campaign_written_after_a_view_was_taken_is_enforced_by_the_terms_version() {
        let store = stocked_over("tea", 10, 2).await;
        let views = StockViews::default();
        created(reserve(&store, &views, as_customer(&[("tea", 1)])).await);
        created(reserve(&store, &views, as_customer(&[("tea", 1)])).await);
        campaigns::put(&store, &campaign_id("flash"), &terms(&["tea"], 3), now())
            .await
            .unwrap();
        let e = refused(reserve(&store, &views, as_customer(&[("tea", 1)])).await);
        assert!(
            matches!(&e, Error::CampaignRequired { campaign, .. } if *campaign == campaign_id("flash")),
            "{e:?}"
        );
        // Staff still sell it, whatever the terms.
        created(reserve(&store, &views, hold(&[("tea", 1)])).await);
        assert_eq!(counters(&store, "tea").await, (7, 3, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_more_stock_items_than_one_write_takes_is_refused_whole() {
        let store = MemoryStore::new();
        let all = ShardCount::new(64).ok();
        for of in ["tea", "cup"] {
            set_on_hand(&store, &sku(of), 64, all, now()).await.unwrap();
        }
        let views = StockViews::default();
        // 64 shards of one unit each: 64 + 40 takes.
        let e = refused(reserve(&store, &views, hold(&[("tea", 64), ("cup", 40)])).await);
        assert!(matches!(e, Error::TooManyStockItems(MAX_TAKES)), "{e:?}");
        assert_eq!(counters(&store, "tea").await, (64, 0, 0));
        assert_eq!(counters(&store, "cup").await, (64, 0, 0));
        // 64 + 33 = 97 fits.
        let held = created(reserve(&store, &views, hold(&[("tea", 64), ("cup", 33)])).await).1;
        assert_eq!(held.allocations.len(), MAX_TAKES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sku_taken_out_of_a_campaign_sells_to_customers_at_once() {
        let store = stocked_over("tea", 10, 2).await;
        let views = StockViews::default();
        campaigns::put(&store, &campaign_id("flash"), &terms(&["tea"], 3), now())
            .await
            .unwrap();
        let e = refused(reserve(&store, &views, as_customer(&[("tea", 1)])).await);
        assert!(matches!(e, Error::CampaignRequired { .. }), "{e:?}");
        campaigns::put(&store, &campaign_id("flash"), &terms(&["cup"], 3), now())
            .await
            .unwrap();
        // The view is fresh, but a refusal by terms confirms them first.
        created(reserve(&store, &views, as_customer(&[("tea", 1)])).await);
        assert_eq!(counters(&store, "tea").await, (9, 1, 0));
    }

    #[test]
    fn a_view_takes_what_a_refusal_showed_and_what_its_own_takes_left() {
        let views = StockViews::default();
        let tea = sku("tea");
        let terms = SkuTerms {
            version: 2,
            offers: Vec::new(),
        };
        views.saw(&[ShardSeen {
            sku: tea.clone(),
            stock: ShardStock {
                shard: 3,
                available: 7,
                ..ShardStock::default()
            },
            terms: terms.clone(),
        }]);
        let view = views.view(&tea).unwrap();
        assert_eq!(view.available, BTreeMap::from([(3, 7)]));
        assert_eq!(view.terms, Some(terms));
        assert!(!view.is_fresh());
        let five = [Allocation {
            sku: tea.clone(),
            take: Take {
                shard: 3,
                quantity: 5,
            },
        }];
        // Planned after the refusal was seen: the view has not counted it yet.
        views.took(&five, Instant::now() + Duration::from_millis(1));
        assert_eq!(
            views.view(&tea).unwrap().available,
            BTreeMap::from([(3, 2)])
        );
        // Planned before the table was seen again: the view may count it already.
        let planned_before = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        views.saw(&[ShardSeen {
            sku: tea.clone(),
            stock: ShardStock {
                shard: 3,
                available: 2,
                ..ShardStock::default()
            },
            terms: SkuTerms::default(),
        }]);
        views.took(&five, planned_before);
        assert_eq!(
            views.view(&tea).unwrap().available,
            BTreeMap::from([(3, 2)])
        );
    }

    #[test]
    fn a_plan_with_no_view_guesses_the_first_shard_under_no_terms_or_the_campaigns_offer() {
        let one = lines(&[("tea", 2)]);
        let Plan::Take {
            allocations,
            versions,
            guard,
        } = plan(&one, &[None], Terms::NoCampaign, now(), true)
        else {
            panic!("expected a guess");
        };
        assert_eq!(
            allocations[0].take,
            Take {
                shard: 0,
                quantity: 2
            }
        );
        let no_terms = TermsCheck::Version(0);
        assert_eq!(versions, Some(BTreeMap::from([(sku("tea"), no_terms)])));
        assert_eq!(guard, None);
        let staff = plan(&one, &[None], Terms::Any, now(), true);
        assert!(matches!(staff, Plan::Take { versions: None, .. }));
        assert!(matches!(
            plan(&one, &[None], Terms::Any, now(), false),
            Plan::Read(_)
        ));
        let ann = customer("ann");
        let flash = campaign_id("flash");
        let in_campaign = Terms::Campaign {
            id: &flash,
            customer: &ann,
            units: 2,
        };
        let Plan::Take {
            versions, guard, ..
        } = plan(&one, &[None], in_campaign, now(), true)
        else {
            panic!("expected a guess");
        };
        let offer = TermsCheck::OpenOffer {
            campaign: flash.clone(),
            units: 2,
        };
        assert_eq!(versions, Some(BTreeMap::from([(sku("tea"), offer)])));
        // Only the customer's first units fit a guess.
        assert_eq!(guard.map(|g| (g.room, g.units)), Some((0, 2)));
        assert!(matches!(
            plan(&one, &[None], in_campaign, now(), false),
            Plan::Read(_)
        ));
    }
}
