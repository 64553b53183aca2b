//! Races run through the use cases, each with its invariants checked after, written once
//! for any store: the in-memory store's unit tests run them on a current-thread runtime
//! (one deterministic interleaving), the emulator suite `tests/suites/scenarios.rs` runs
//! the same bodies against the DynamoDB adapter, where requests really overlap.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::join_all;

use super::commands::{self, Applied};
use super::holds::{self, NewHold};
use super::orders::{self, NewOrder, RefundRequest, Source};
use super::{campaigns, stock, StockViews};
use crate::domain::{
    CampaignId, CampaignTerms, CustomerId, HoldDuration, Line, Lines, OrderId, OrderStatus,
    Quantity, RefundId, ReservationId, ReservationStatus, ShardCount, Sku, StockLevels, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::Recorded;
use crate::identity::Acting;
use crate::queue::{CommandMessage, CommandQueue};
use crate::store::Store;

/// A queue that keeps what was sent, for a scenario to apply.
#[derive(Debug, Default)]
pub struct SentCommands(Mutex<Vec<CommandMessage>>);

impl SentCommands {
    fn take(&self) -> Vec<CommandMessage> {
        self.0
            .lock()
            .map(|mut sent| sent.split_off(0))
            .unwrap_or_default()
    }
}

#[async_trait]
impl CommandQueue for SentCommands {
    async fn send(&self, message: &CommandMessage) -> Result<()> {
        if let Ok(mut sent) = self.0.lock() {
            sent.push(message.clone());
        }
        Ok(())
    }

    async fn delay(&self, _receipt_handle: &str, _seconds: u32) -> Result<()> {
        Ok(())
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("a timestamp")
}

fn sku(text: &str) -> Sku {
    Sku::parse(text).expect("a sku")
}

fn lines(of: &Sku, quantity: u64) -> Lines {
    let line = Line {
        sku: of.clone(),
        quantity: Quantity::new(quantity).expect("a quantity"),
    };
    Lines::try_from(vec![line]).expect("lines")
}

fn hold(of: &Sku, quantity: u64, at: Timestamp) -> NewHold {
    NewHold {
        acting: Acting::Staff,
        reservation_id: ReservationId::generate(),
        lines: lines(of, quantity),
        customer_id: None,
        campaign_id: None,
        hold: HoldDuration::default(),
        at,
        fingerprint: "scenario".into(),
    }
}

/// `on_hand = available + reserved + sold`, and the counters are what the scenario expects.
async fn assert_levels(store: &impl Store, of: &Sku, (available, reserved, sold): (u64, u64, u64)) {
    let levels: StockLevels = stock::levels(store, of).await.expect("levels");
    assert_eq!(
        (levels.available, levels.reserved, levels.sold),
        (available, reserved, sold),
        "{levels:?}"
    );
    assert_eq!(
        levels.on_hand,
        levels.available + levels.reserved + levels.sold
    );
}

/// 64 clients reserve one unit each of 50, spread over 4 shards: exactly 50 holds, the
/// other 14 refused as short, never a unit more; releasing every hold puts all 50 back.
pub async fn sixty_four_clients_on_fifty_units<S: Store + 'static>(store: Arc<S>) {
    let now = at("2026-11-22T06:00:00Z");
    let tea = sku("scenario-tea");
    stock::set_on_hand(store.as_ref(), &tea, 50, ShardCount::new(4).ok(), now)
        .await
        .expect("stock");
    let counts = Arc::new(StockViews::default());
    let clients = (0..64).map(|_| {
        let (store, counts, request) = (store.clone(), counts.clone(), hold(&tea, 1, now));
        tokio::spawn(async move { holds::reserve(store.as_ref(), &counts, request).await })
    });
    let mut held = Vec::new();
    let mut short = 0;
    for outcome in join_all(clients).await {
        match outcome.expect("a client") {
            Ok(Recorded::Created(_, reservation)) => held.push(reservation.reservation_id),
            Err(Error::InsufficientStock { sku }) if sku == tea => short += 1,
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((held.len(), short), (50, 14));
    assert_levels(store.as_ref(), &tea, (0, 50, 0)).await;

    let releases = held.into_iter().map(|id| {
        let store = store.clone();
        tokio::spawn(async move { holds::release(store.as_ref(), &Acting::Staff, &id, now).await })
    });
    for released in join_all(releases).await {
        let released = released.expect("a client").expect("released");
        assert_eq!(released.status, ReservationStatus::Released);
    }
    assert_levels(store.as_ref(), &tea, (50, 0, 0)).await;
}

/// 16 clients send the same request (one idempotency key, one body) at once: one hold,
/// every client gets its answer, and the units move once.
pub async fn one_request_sent_by_sixteen_clients<S: Store + 'static>(store: Arc<S>) {
    let now = at("2026-11-22T06:00:00Z");
    let cup = sku("scenario-cup");
    stock::set_on_hand(store.as_ref(), &cup, 10, None, now)
        .await
        .expect("stock");
    let counts = Arc::new(StockViews::default());
    let request = hold(&cup, 3, now);
    let clients = (0..16).map(|_| {
        let (store, counts, request) = (store.clone(), counts.clone(), request.clone());
        tokio::spawn(async move { holds::reserve(store.as_ref(), &counts, request).await })
    });
    let (mut created, mut replayed) = (0, 0);
    for outcome in join_all(clients).await {
        match outcome.expect("a client") {
            Ok(Recorded::Created(..)) => created += 1,
            Ok(Recorded::Replayed(first)) => {
                assert_eq!(first.status, 201);
                replayed += 1;
            }
            // The first is still being written; the client retries with the same key.
            Err(Error::RequestInProgress) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert!(replayed <= 15);
    assert_levels(store.as_ref(), &cup, (7, 3, 0)).await;
}

/// An order of 5 units and 8 refunds of one unit each, with restock, racing: exactly 5
/// are recorded and 3 refused; once the commands apply, the 5 units are on sale again and
/// the order is REFUNDED.
pub async fn refunds_race_for_the_last_units<S: Store + 'static>(store: Arc<S>) {
    let now = at("2026-11-22T06:00:00Z");
    let jam = sku("scenario-jam");
    stock::set_on_hand(store.as_ref(), &jam, 5, ShardCount::new(2).ok(), now)
        .await
        .expect("stock");
    let order = NewOrder {
        acting: Acting::Staff,
        order_id: OrderId::generate(),
        source: Source::Stock(lines(&jam, 5)),
        customer_id: None,
        at: now,
        fingerprint: "scenario".into(),
    };
    let order_id = order.order_id.clone();
    orders::place(store.as_ref(), &StockViews::default(), order)
        .await
        .expect("an order");
    assert_levels(store.as_ref(), &jam, (0, 0, 5)).await;

    let queue = Arc::new(SentCommands::default());
    let refunds = (0..8).map(|_| {
        let (store, queue) = (store.clone(), queue.clone());
        let request = RefundRequest {
            acting: Acting::Staff,
            refund_id: RefundId::generate(),
            order_id: order_id.clone(),
            lines: Some(lines(&jam, 1).into()),
            restock: true,
            reason: None,
            at: now,
            fingerprint: "scenario".into(),
        };
        tokio::spawn(async move { orders::refund(store.as_ref(), queue.as_ref(), &request).await })
    });
    let (mut recorded, mut refused) = (0, 0);
    for outcome in join_all(refunds).await {
        match outcome.expect("a client") {
            Ok(Recorded::Created(..)) => recorded += 1,
            Err(Error::RefundExceedsOrder { sku: Some(sku) }) if sku == jam => refused += 1,
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((recorded, refused), (5, 3));
    let sent = queue.take();
    assert_eq!(sent.len(), 5);
    for message in &sent {
        let applied = commands::apply_restock(store.as_ref(), &message.command_id, now).await;
        assert_eq!(applied.expect("applied"), Applied::Now);
    }
    // A message delivered twice applies once.
    let again = commands::apply_restock(store.as_ref(), &sent[0].command_id, now).await;
    assert_eq!(again.expect("applied"), Applied::Before);
    assert_levels(store.as_ref(), &jam, (5, 0, 0)).await;
    let order = orders::order(store.as_ref(), &Acting::Staff, &order_id)
        .await
        .expect("order");
    assert_eq!(order.status, OrderStatus::Refunded);
    assert_eq!(order.refunds.len(), 5);
}

/// One customer's 10 concurrent campaign reservations of one unit under a limit of 3:
/// exactly 3 holds; a release gives one unit of the allowance back.
pub async fn a_campaign_limit_holds_under_a_race<S: Store + 'static>(store: Arc<S>) {
    let now = at("2026-11-22T06:00:00Z");
    let tea = sku("scenario-limited");
    stock::set_on_hand(store.as_ref(), &tea, 100, ShardCount::new(4).ok(), now)
        .await
        .expect("stock");
    let campaign = CampaignId::parse("scenario-sale").expect("an id");
    let terms: CampaignTerms = serde_json::from_value(serde_json::json!({
        "skus": [tea.as_str()],
        "starts_at": "2026-11-22T05:00:00Z",
        "ends_at": "2026-11-22T07:00:00Z",
        "per_customer_limit": 3,
    }))
    .expect("terms");
    campaigns::put(store.as_ref(), &campaign, &terms, now)
        .await
        .expect("a campaign");
    let buyer = CustomerId::parse("scenario-buyer").expect("a customer");
    let counts = Arc::new(StockViews::default());
    let in_campaign = || NewHold {
        acting: Acting::Customer(buyer.clone()),
        customer_id: Some(buyer.clone()),
        campaign_id: Some(campaign.clone()),
        ..hold(&tea, 1, now)
    };
    let clients = (0..10).map(|_| {
        let (store, counts, request) = (store.clone(), counts.clone(), in_campaign());
        tokio::spawn(async move { holds::reserve(store.as_ref(), &counts, request).await })
    });
    let mut held = Vec::new();
    for outcome in join_all(clients).await {
        match outcome.expect("a client") {
            Ok(Recorded::Created(_, reservation)) => held.push(reservation.reservation_id),
            Err(Error::PurchaseLimitExceeded(id)) if id == campaign => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(held.len(), 3);
    assert_levels(store.as_ref(), &tea, (97, 3, 0)).await;

    holds::release(store.as_ref(), &Acting::Staff, &held[0], now)
        .await
        .expect("released");
    let after = holds::reserve(store.as_ref(), &counts, in_campaign()).await;
    assert!(matches!(after, Ok(Recorded::Created(..))), "{after:?}");
    let over = holds::reserve(store.as_ref(), &counts, in_campaign()).await;
    assert!(
        matches!(over, Err(Error::PurchaseLimitExceeded(_))),
        "{over:?}"
    );
    assert_levels(store.as_ref(), &tea, (97, 3, 0)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn sixty_four_clients_on_fifty_units_in_memory() {
        sixty_four_clients_on_fifty_units(Arc::new(MemoryStore::new())).await;
    }

    #[tokio::test(start_paused = true)]
    async fn one_request_sent_by_sixteen_clients_in_memory() {
        one_request_sent_by_sixteen_clients(Arc::new(MemoryStore::new())).await;
    }

    #[tokio::test(start_paused = true)]
    async fn refunds_race_for_the_last_units_in_memory() {
        refunds_race_for_the_last_units(Arc::new(MemoryStore::new())).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_campaign_limit_holds_under_a_race_in_memory() {
        a_campaign_limit_holds_under_a_race(Arc::new(MemoryStore::new())).await;
    }
}
