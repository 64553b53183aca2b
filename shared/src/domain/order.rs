//! Orders, refunds and the restock command a refund leaves behind.

use super::{
    Allocation, CommandId, CustomerId, Line, OrderId, Quantity, RefundId, ReservationId, Sku,
    Timestamp,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Confirmed,
    PartiallyRefunded,
    Refunded,
}

/// A line of an order and how much of it has been refunded so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: Quantity,
    pub refunded: u64,
}

impl OrderLine {
    /// A line as ordered: nothing refunded yet.
    pub fn new(line: &Line) -> Self {
        Self {
            sku: line.sku.clone(),
            quantity: line.quantity,
            refunded: 0,
        }
    }

    /// Units still refundable; a stored line that says more was refunded than ordered
    /// has none left rather than failing every read of its order.
    pub fn left(&self) -> u64 {
        u64::from(self.quantity.get()).saturating_sub(self.refunded)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub customer_id: Option<CustomerId>,
    pub reservation_id: Option<ReservationId>,
    pub created_at: Timestamp,
    pub refunds: Vec<Refund>,
    /// Which shards the units were sold from: where a restock puts them back.
    pub allocations: Vec<Allocation>,
    /// Bumped by every refund; refunds are conditioned on it.
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    pub status: RefundStatus,
    pub lines: Vec<Line>,
    pub restock: bool,
    pub reason: Option<String>,
    pub created_at: Timestamp,
}

/// Why a refund cannot be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRejected {
    /// More of `sku` than the order has left to refund (or a sku it does not hold).
    Exceeds { sku: Option<Sku> },
}

/// What a refund changes on its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPlan {
    pub lines: Vec<Line>,
    pub order_lines: Vec<OrderLine>,
    pub status: OrderStatus,
    /// Units that go back to stock, by shard (empty without restock).
    pub restock: Vec<Allocation>,
}

impl Order {
    /// Plans a refund of `requested` lines, or of everything left when `None`.
    pub fn plan_refund(
        &self,
        requested: Option<&[Line]>,
        restock: bool,
    ) -> Result<RefundPlan, RefundRejected> {
        let lines: Vec<Line> = match requested {
            Some(lines) => lines.to_vec(),
            None => self
                .lines
                .iter()
                // A line with nothing left has no quantity: it drops out here.
                .filter_map(|l| {
                    Quantity::new(l.left()).ok().map(|quantity| Line {
                        sku: l.sku.clone(),
                        quantity,
                    })
                })
                .collect(),
        };
        if lines.is_empty() {
            return Err(RefundRejected::Exceeds { sku: None });
        }
        let mut order_lines = self.lines.clone();
        let mut restocked = Vec::new();
        for line in &lines {
            let q = u64::from(line.quantity.get());
            let exceeds = || RefundRejected::Exceeds {
                sku: Some(line.sku.clone()),
            };
            let ordered = order_lines
                .iter_mut()
                .find(|l| l.sku == line.sku)
                .ok_or_else(exceeds)?;
            if q > ordered.left() {
                return Err(exceeds());
            }
            if restock {
                restocked.extend(self.restock_from(&line.sku, ordered.refunded, q));
            }
            ordered.refunded += q;
        }
        let status = if order_lines.iter().all(|l| l.left() == 0) {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        };
        Ok(RefundPlan {
            lines,
            order_lines,
            status,
            restock: restocked,
        })
    }

    /// The shards `quantity` units of `sku` go back to, after the first `already`
    /// refunded units: the order's own allocations, in order.
    fn restock_from(&self, sku: &Sku, already: u64, quantity: u64) -> Vec<Allocation> {
        let mut skip = already;
        let mut left = quantity;
        let mut takes = Vec::new();
        for a in self.allocations.iter().filter(|a| &a.sku == sku) {
            let usable = a.take.quantity.saturating_sub(skip);
            skip = skip.saturating_sub(a.take.quantity);
            let q = usable.min(left);
            if q > 0 {
                let mut back = a.clone();
                back.take.quantity = q;
                takes.push(back);
                left -= q;
            }
        }
        takes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStatus {
    Pending,
    Applied,
    Failed,
}

impl CommandStatus {
    /// The status of a refund while its restock command has this one.
    pub fn refund_status(self) -> RefundStatus {
        match self {
            CommandStatus::Pending => RefundStatus::Pending,
            CommandStatus::Applied => RefundStatus::Completed,
            CommandStatus::Failed => RefundStatus::Failed,
        }
    }
}

/// A compensation command: put units a refund took back into stock, then complete the
/// refund. Recorded in the refund's transaction, sent to the queue after it, applied
/// once by conditional writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub command_id: CommandId,
    pub order_id: OrderId,
    pub refund_id: RefundId,
    pub units: Vec<Allocation>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Take;

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn order() -> Order {
        let line = |s: &str, q: u64| OrderLine {
            sku: sku(s),
            quantity: Quantity::new(q).unwrap(),
            refunded: 0,
        };
        let alloc = |s: &str, shard: u16, q: u64| Allocation {
            sku: sku(s),
            take: Take { shard, quantity: q },
        };
        Order {
            order_id: OrderId::generate(),
            status: OrderStatus::Confirmed,
            lines: vec![line("tea", 5), line("cup", 2)],
            customer_id: None,
            reservation_id: None,
            created_at: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            refunds: vec![],
            allocations: vec![alloc("tea", 0, 3), alloc("tea", 2, 2), alloc("cup", 1, 2)],
            version: 0,
        }
    }

    fn lines(items: &[(&str, u64)]) -> Vec<Line> {
        items
            .iter()
            .map(|(s, q)| Line {
                sku: sku(s),
                quantity: Quantity::new(*q).unwrap(),
            })
            .collect()
    }

    #[test]
    fn no_lines_refunds_everything_left() {
        let mut o = order();
        o.lines[0].refunded = 4;
        let plan = o.plan_refund(None, true).unwrap();
        assert_eq!(plan.lines, lines(&[("tea", 1), ("cup", 2)]));
        assert_eq!(plan.status, OrderStatus::Refunded);
        // The fifth tea unit came from shard 2.
        assert_eq!(
            plan.restock[0].take,
            Take {
                shard: 2,
                quantity: 1
            }
        );
    }

    #[test]
    fn partial_refunds_restock_the_shards_the_units_came_from() {
        let o = order();
        let plan = o.plan_refund(Some(&lines(&[("tea", 4)])), true).unwrap();
        assert_eq!(plan.status, OrderStatus::PartiallyRefunded);
        let takes: Vec<_> = plan.restock.iter().map(|a| a.take).collect();
        assert_eq!(
            takes,
            vec![
                Take {
                    shard: 0,
                    quantity: 3
                },
                Take {
                    shard: 2,
                    quantity: 1
                }
            ]
        );
        assert!(o
            .plan_refund(Some(&lines(&[("tea", 4)])), false)
            .unwrap()
            .restock
            .is_empty());
    }

    #[test]
    fn a_refund_that_fits_one_shard_restocks_only_that_shard() {
        let plan = order()
            .plan_refund(Some(&lines(&[("tea", 3)])), true)
            .unwrap();
        let takes: Vec<_> = plan.restock.iter().map(|a| a.take).collect();
        assert_eq!(
            takes,
            vec![Take {
                shard: 0,
                quantity: 3
            }]
        );
    }

    proptest::proptest! {
        /// However an order's units were spread over shards and however it is refunded
        /// piece by piece, each refund restocks exactly its quantity, and no shard gets
        /// back more than it gave.
        #[test]
        fn refunds_restock_exactly_what_they_refund(
            takes in proptest::collection::vec(1u64..6, 1..5),
            pieces in proptest::collection::vec(1u64..6, 1..8),
        ) {
            let total: u64 = takes.iter().sum();
            let mut o = order();
            o.lines = vec![OrderLine {
                sku: sku("tea"),
                quantity: Quantity::new(total).unwrap(),
                refunded: 0,
            }];
            o.allocations = takes
                .iter()
                .enumerate()
                .map(|(shard, &quantity)| Allocation {
                    sku: sku("tea"),
                    take: Take { shard: shard as u16, quantity },
                })
                .collect();
            let mut back = vec![0u64; takes.len()];
            for piece in pieces {
                let Ok(plan) = o.plan_refund(Some(&lines(&[("tea", piece)])), true) else {
                    proptest::prop_assert!(piece > o.lines[0].left());
                    continue;
                };
                let restocked: u64 = plan.restock.iter().map(|a| a.take.quantity).sum();
                proptest::prop_assert_eq!(restocked, piece);
                for a in &plan.restock {
                    back[usize::from(a.take.shard)] += a.take.quantity;
                }
                o.lines = plan.order_lines;
            }
            for (given, taken) in back.iter().zip(&takes) {
                proptest::prop_assert!(given <= taken);
            }
            proptest::prop_assert_eq!(back.iter().sum::<u64>(), o.lines[0].refunded);
        }
    }

    #[test]
    fn never_more_than_ordered() {
        let mut o = order();
        assert!(o.plan_refund(Some(&lines(&[("tea", 6)])), true).is_err());
        assert!(o.plan_refund(Some(&lines(&[("lid", 1)])), true).is_err());
        o.lines
            .iter_mut()
            .for_each(|l| l.refunded = u64::from(l.quantity.get()));
        assert_eq!(
            o.plan_refund(None, true),
            Err(RefundRejected::Exceeds { sku: None })
        );
    }
}
