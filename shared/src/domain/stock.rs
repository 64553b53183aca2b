//! Stock levels and the rule for taking units from a sku's shards.

use serde::Serialize;

use super::{Invalid, Sku, Timestamp};

/// How many stock items a sku's units are spread over (1..=64). One item takes roughly
/// 1000 writes per second on DynamoDB; shards multiply that ceiling for a hot sku.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(try_from = "serde_json::Number")]
pub struct ShardCount(u16);

impl ShardCount {
    pub const MAX: u16 = 64;
    pub const ONE: Self = Self(1);

    pub fn new(value: u64) -> Result<Self, Invalid> {
        if (1..=u64::from(Self::MAX)).contains(&value) {
            Ok(Self(value as u16))
        } else {
            Err(Invalid::new(format!(
                "shards must be a whole number from 1 to {}",
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<serde_json::Number> for ShardCount {
    type Error = Invalid;
    fn try_from(n: serde_json::Number) -> Result<Self, Invalid> {
        Self::new(n.as_u64().unwrap_or(0))
    }
}

/// How many skus one page of the list shows: 1 to 100, 50 unless asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct PageLimit(u8);

impl PageLimit {
    pub const MAX: u8 = 100;

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(50)
    }
}

impl TryFrom<String> for PageLimit {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        match text.parse::<u8>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(Invalid::new(format!(
                "limit must be a whole number from 1 to {}",
                Self::MAX
            ))),
        }
    }
}

/// One page of skus in the order of their ids; the next page starts after `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuPage {
    pub skus: Vec<StockLevels>,
    pub next: Option<Sku>,
}

/// The counters of one stock item of a sku.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardStock {
    pub shard: u16,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

/// Units to move on one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub shard: u16,
    pub quantity: u64,
}

/// Where to take `quantity` available units from: the first shard, going round from
/// `start`, that holds them all; failing that, a split over as few shards as the same
/// walk needs. `None` when the shards together hold too few.
pub fn plan_decrement(shards: &[ShardStock], quantity: u64, start: usize) -> Option<Vec<Take>> {
    let total: u64 = shards.iter().map(|s| s.available).sum();
    if quantity == 0 || total < quantity {
        return None;
    }
    let n = shards.len();
    let walk = || (0..n).map(|i| &shards[(start + i) % n]);
    if let Some(whole) = walk().find(|s| s.available >= quantity) {
        return Some(vec![Take {
            shard: whole.shard,
            quantity,
        }]);
    }
    let mut left = quantity;
    let mut takes = Vec::new();
    for s in walk().filter(|s| s.available > 0) {
        let q = left.min(s.available);
        takes.push(Take {
            shard: s.shard,
            quantity: q,
        });
        left -= q;
        if left == 0 {
            break;
        }
    }
    Some(takes)
}

/// `total` units spread evenly over `count` shards; the first shards take the remainder.
pub fn spread(total: u64, count: ShardCount) -> Vec<u64> {
    let n = u64::from(count.get());
    (0..n)
        .map(|shard| total / n + u64::from(shard < total % n))
        .collect()
}

/// Available units moved from one shard of a sku to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub from: u16,
    pub to: u16,
    pub quantity: u64,
}

/// The moves that bring each shard's available units from `have` to `want` (the same
/// shards, the same total), each from a shard with more than it should hold to one with
/// less: fewer moves than shards that gain or lose, none when they agree.
pub fn plan_moves(have: &[(u16, u64)], want: &[(u16, u64)]) -> Vec<Move> {
    let target = |shard: u16| {
        want.iter()
            .find(|(s, _)| *s == shard)
            .map_or(0, |(_, w)| *w)
    };
    let mut surplus: Vec<(u16, u64)> = have
        .iter()
        .filter(|(s, h)| *h > target(*s))
        .map(|(s, h)| (*s, h - target(*s)))
        .collect();
    let mut moves = Vec::new();
    for &(shard, wanted) in want {
        let held = have
            .iter()
            .find(|(s, _)| *s == shard)
            .map_or(0, |(_, h)| *h);
        let mut short = wanted.saturating_sub(held);
        for (from, extra) in surplus.iter_mut().filter(|(_, e)| *e > 0) {
            if short == 0 {
                break;
            }
            let quantity = short.min(*extra);
            moves.push(Move {
                from: *from,
                to: shard,
                quantity,
            });
            *extra -= quantity;
            short -= quantity;
        }
    }
    moves
}

/// A sku's counters: the sums over every shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevels {
    pub sku: Sku,
    pub on_hand: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    pub shards: u16,
    pub updated_at: Timestamp,
}

impl StockLevels {
    /// Sums every shard item; `active` is how many shards new stock goes to.
    pub fn sum(sku: Sku, shards: &[ShardStock], active: ShardCount, updated_at: Timestamp) -> Self {
        let (available, reserved, sold) = shards.iter().fold((0, 0, 0), |(a, r, s), x| {
            (a + x.available, r + x.reserved, s + x.sold)
        });
        Self {
            sku,
            on_hand: available + reserved + sold,
            available,
            reserved,
            sold,
            shards: active.get(),
            updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levels_sum_every_counter_of_every_shard() {
        let shards = [
            ShardStock {
                shard: 0,
                available: 1,
                reserved: 20,
                sold: 300,
            },
            ShardStock {
                shard: 1,
                available: 4000,
                reserved: 50_000,
                sold: 600_000,
            },
        ];
        let at = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let active = ShardCount::new(7).unwrap();
        let levels = StockLevels::sum(Sku::parse("tea").unwrap(), &shards, active, at);
        assert_eq!(
            (levels.available, levels.reserved, levels.sold),
            (4001, 50_020, 600_300)
        );
        assert_eq!(levels.on_hand, 654_321);
        assert_eq!((levels.shards, active.get()), (7, 7));
    }

    #[test]
    fn counters_are_named_as_stored() {
        let names = [Counter::Available, Counter::Reserved, Counter::Sold].map(Counter::name);
        assert_eq!(names, ["available", "reserved", "sold"]);
    }

    fn shards(available: &[u64]) -> Vec<ShardStock> {
        available
            .iter()
            .enumerate()
            .map(|(i, &a)| ShardStock {
                shard: i as u16,
                available: a,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn prefers_one_shard_that_holds_everything() {
        let plan = plan_decrement(&shards(&[1, 5, 9]), 4, 0).unwrap();
        assert_eq!(
            plan,
            vec![Take {
                shard: 1,
                quantity: 4
            }]
        );
    }

    #[test]
    fn splits_when_no_single_shard_is_enough() {
        let plan = plan_decrement(&shards(&[2, 0, 3]), 5, 1).unwrap();
        assert_eq!(
            plan,
            vec![
                Take {
                    shard: 2,
                    quantity: 3
                },
                Take {
                    shard: 0,
                    quantity: 2
                }
            ]
        );
    }

    #[test]
    fn refuses_more_than_the_sum() {
        assert_eq!(plan_decrement(&shards(&[2, 2]), 5, 0), None);
    }

    proptest! {
        #[test]
        fn a_plan_takes_exactly_the_quantity_and_never_more_than_a_shard_has(
            available in proptest::collection::vec(0u64..20, 1..16),
            quantity in 1u64..100,
            start in 0usize..16,
        ) {
            let stock = shards(&available);
            match plan_decrement(&stock, quantity, start) {
                None => prop_assert!(available.iter().sum::<u64>() < quantity),
                Some(plan) => {
                    prop_assert_eq!(plan.iter().map(|t| t.quantity).sum::<u64>(), quantity);
                    for t in &plan {
                        prop_assert!(t.quantity > 0);
                        prop_assert!(t.quantity <= available[t.shard as usize]);
                    }
                }
            }
        }

        #[test]
        fn moves_bring_every_shard_to_its_target_one_step_at_a_time(
            have in proptest::collection::vec(0u64..50, 1..16),
            count in 1u64..16,
        ) {
            let total = have.iter().sum();
            let mut want = spread(total, ShardCount::new(count).unwrap());
            want.resize(want.len().max(have.len()), 0);
            let mut now: Vec<u64> = have.clone();
            now.resize(want.len(), 0);
            let numbered = |v: &[u64]| -> Vec<(u16, u64)> {
                v.iter().enumerate().map(|(i, q)| (i as u16, *q)).collect()
            };
            let moves = plan_moves(&numbered(&now), &numbered(&want));
            let movers = now.iter().zip(&want).filter(|(h, w)| h != w).count();
            prop_assert!(moves.len() < movers.max(1));
            for m in &moves {
                prop_assert!(m.quantity > 0 && m.from != m.to);
                // Each step is possible when it is taken: the source holds the units.
                prop_assert!(now[usize::from(m.from)] >= m.quantity);
                now[usize::from(m.from)] -= m.quantity;
                now[usize::from(m.to)] += m.quantity;
            }
            prop_assert_eq!(now, want);
        }
    }

    #[test]
    fn no_moves_when_the_shards_hold_what_they_should() {
        let even = [(0, 3), (1, 3)];
        assert!(plan_moves(&even, &even).is_empty());
        assert_eq!(
            plan_moves(&[(0, 5), (1, 1), (2, 0)], &[(0, 2), (1, 2), (2, 2)]),
            vec![
                Move {
                    from: 0,
                    to: 1,
                    quantity: 1
                },
                Move {
                    from: 0,
                    to: 2,
                    quantity: 2
                },
            ]
        );
    }
}

/// One of a shard's three counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Available,
    Reserved,
    Sold,
}

impl Counter {
    pub fn name(self) -> &'static str {
        match self {
            Counter::Available => "available",
            Counter::Reserved => "reserved",
            Counter::Sold => "sold",
        }
    }
}

/// Units going from one counter to another on the same shard. Only the `from` counter
/// can run short, so it is the one the conditional write checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockMove {
    pub from: Counter,
    pub to: Counter,
}

impl StockMove {
    pub const RESERVE: Self = Self {
        from: Counter::Available,
        to: Counter::Reserved,
    };
    pub const RELEASE: Self = Self {
        from: Counter::Reserved,
        to: Counter::Available,
    };
    pub const COMMIT: Self = Self {
        from: Counter::Reserved,
        to: Counter::Sold,
    };
    pub const SELL: Self = Self {
        from: Counter::Available,
        to: Counter::Sold,
    };
    pub const RESTOCK: Self = Self {
        from: Counter::Sold,
        to: Counter::Available,
    };
}
