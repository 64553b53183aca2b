//! What the use cases' unit tests share: a clock, parsed values, a stocked memory store,
//! requests with fresh ids, and a queue that keeps what it was sent.

use std::sync::Mutex;

use async_trait::async_trait;

use super::holds::{self, NewHold};
use super::orders::{self, NewOrder, Source};
use super::{stock, StockViews};
use crate::domain::{
    CampaignId, CampaignTerms, CustomerId, HoldDuration, Line, Lines, Order, OrderId, Quantity,
    Reservation, ReservationId, ShardCount, Sku, StockLevels, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded};
use crate::identity::Acting;
use crate::queue::{CommandMessage, CommandQueue};
use crate::store::{MemoryStore, ReadStock, SkuStock};

/// When every test's requests arrive, unless a test moves on from it.
pub fn now() -> Timestamp {
    Timestamp::parse("2026-11-22T10:00:00Z").expect("a timestamp")
}

/// `seconds` after `now()`.
pub fn later(seconds: u32) -> Timestamp {
    now().plus(seconds)
}

pub fn sku(text: &str) -> Sku {
    Sku::parse(text).expect("a sku")
}

pub fn line(of: &str, quantity: u64) -> Line {
    Line {
        sku: sku(of),
        quantity: Quantity::new(quantity).expect("a quantity"),
    }
}

pub fn lines(items: &[(&str, u64)]) -> Lines {
    let lines: Vec<Line> = items.iter().map(|(of, q)| line(of, *q)).collect();
    Lines::try_from(lines).expect("lines")
}

pub fn customer(text: &str) -> CustomerId {
    CustomerId::parse(text).expect("a customer id")
}

pub fn campaign_id(text: &str) -> CampaignId {
    CampaignId::parse(text).expect("a campaign id")
}

/// Campaign terms: `skus` on sale from an hour before `now()` to an hour after.
pub fn terms(skus: &[&str], per_customer_limit: u32) -> CampaignTerms {
    serde_json::from_value(serde_json::json!({
        "skus": skus,
        "starts_at": "2026-11-22T09:00:00Z",
        "ends_at": "2026-11-22T11:00:00Z",
        "per_customer_limit": per_customer_limit,
    }))
    .expect("campaign terms")
}

/// A store holding each `(sku, on_hand, shards)`.
pub async fn stocked(skus: &[(&str, u64, u64)]) -> MemoryStore {
    let store = MemoryStore::new();
    for (of, on_hand, shards) in skus {
        let shards = ShardCount::new(*shards).expect("a shard count");
        stock::set_on_hand(&store, &sku(of), *on_hand, Some(shards), now())
            .await
            .expect("a new sku");
    }
    store
}

pub async fn levels_of(store: &MemoryStore, of: &str) -> StockLevels {
    stock::levels(store, &sku(of)).await.expect("levels")
}

/// The sku's (available, reserved, sold).
pub async fn counters(store: &MemoryStore, of: &str) -> (u64, u64, u64) {
    let levels = levels_of(store, of).await;
    (levels.available, levels.reserved, levels.sold)
}

/// The sku as stored, shard by shard.
pub async fn stored(store: &MemoryStore, of: &str) -> SkuStock {
    store
        .sku_stock(&sku(of))
        .await
        .expect("a read")
        .expect("the sku")
}

/// A hold of `items` for 900 s from `now()`, with a fresh id.
pub fn hold(items: &[(&str, u64)]) -> NewHold {
    NewHold {
        acting: Acting::Staff,
        reservation_id: ReservationId::generate(),
        lines: lines(items),
        customer_id: None,
        campaign_id: None,
        hold: HoldDuration::default(),
        at: now(),
        fingerprint: "first body".into(),
    }
}

/// The value of a request that took effect now, with its answer.
pub fn created<T: std::fmt::Debug>(outcome: Result<Recorded<T>>) -> (Answer, T) {
    match outcome {
        Ok(Recorded::Created(answer, value)) => (answer, value),
        other => panic!("expected a created record, got {other:?}"),
    }
}

/// The error a request was refused with.
pub fn refused<T: std::fmt::Debug>(outcome: Result<T>) -> Error {
    match outcome {
        Err(e) => e,
        Ok(value) => panic!("expected a refusal, got {value:?}"),
    }
}

/// A hold that was placed now.
pub async fn placed(store: &MemoryStore, request: NewHold) -> Reservation {
    let (answer, reservation) =
        created(holds::reserve(store, &StockViews::default(), request).await);
    assert_eq!(answer, Answer::Created);
    reservation
}

/// An order with a fresh id for `source`, placed at `at`.
pub fn order_for(source: Source, at: Timestamp) -> NewOrder {
    NewOrder {
        acting: Acting::Staff,
        order_id: OrderId::generate(),
        source,
        customer_id: None,
        at,
        fingerprint: "first body".into(),
    }
}

/// An order sold straight from stock.
pub async fn sold(store: &MemoryStore, items: &[(&str, u64)]) -> Order {
    let request = order_for(Source::Stock(lines(items)), now());
    created(orders::place(store, &StockViews::default(), request).await).1
}

/// A queue that keeps every message it was sent, or refuses them all.
#[derive(Debug, Default)]
pub struct RecordingQueue {
    pub sent: Mutex<Vec<CommandMessage>>,
    pub refuse: bool,
}

impl RecordingQueue {
    pub fn sent(&self) -> Vec<CommandMessage> {
        self.sent.lock().expect("the queue's lock").clone()
    }
}

#[async_trait]
impl CommandQueue for RecordingQueue {
    async fn send(&self, message: &CommandMessage) -> Result<()> {
        if self.refuse {
            return Err(Error::Store {
                message: "the queue is down".into(),
                retryable: true,
            });
        }
        self.sent
            .lock()
            .expect("the queue's lock")
            .push(message.clone());
        Ok(())
    }

    async fn delay(&self, _receipt_handle: &str, _seconds: u32) -> Result<()> {
        Ok(())
    }
}
