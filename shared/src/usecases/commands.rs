//! Compensation commands: applying a refund's restock once, or giving up on it.

use std::time::Duration;

use crate::domain::{CommandId, CommandStatus, Restock, Timestamp};
use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::store::{Attempt, ReadCommand, WriteCommand};

/// What applying a compensation command came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now,
    Before,
}

/// How long applying a command goes on retrying a lost race or a busy table. A command
/// that is not applied goes back to its queue, which tries it again after its own
/// back-off; holding on longer only keeps the rest of the batch waiting.
const APPLY_BUDGET: Duration = Duration::from_secs(2);

/// Puts the command's units back and completes its refund, once. A FAILED command
/// applies too: that is what a redrive from the dead-letter queue is for, once the cause
/// is fixed.
pub async fn apply_restock(
    store: &(impl ReadCommand + WriteCommand),
    id: &CommandId,
    at: Timestamp,
) -> Result<Applied> {
    let mut backoff = Backoff::with_budget(APPLY_BUDGET);
    while backoff.next_attempt().await {
        let (status, restock) = recorded(store, id).await?;
        if status == CommandStatus::Applied {
            return Ok(Applied::Before);
        }
        let from = [CommandStatus::Pending, CommandStatus::Failed];
        match store.apply_command(&restock, &from, at).await? {
            Attempt::Committed => return Ok(Applied::Now),
            Attempt::Refused(_) => {
                // Nothing sells units back: this stays so until a person fixes the books.
                return Err(Error::Store {
                    message: format!("command {id}: fewer units sold than it puts back"),
                    retryable: false,
                });
            }
            Attempt::Stale => {}
        }
    }
    Err(Error::Contention)
}

/// Gives up on a command whose retries ran out: a PENDING one and its refund become
/// FAILED; an applied or failed one stays as it is.
pub async fn fail_restock(
    store: &(impl ReadCommand + WriteCommand),
    id: &CommandId,
    at: Timestamp,
) -> Result<()> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let Some((CommandStatus::Pending, restock)) = store.command(id).await? else {
            return Ok(()); // Applied, failed already, or never recorded: nothing to mark.
        };
        // Stale: the command left PENDING meanwhile; read it again.
        if let Attempt::Committed = store.fail_command(&restock, at).await? {
            return Ok(());
        }
    }
    Err(Error::Contention)
}

async fn recorded(store: &impl ReadCommand, id: &CommandId) -> Result<(CommandStatus, Restock)> {
    store.command(id).await?.ok_or_else(|| Error::Store {
        message: format!("no command {id} is recorded"),
        retryable: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Allocation, Order, RefundStatus, Take};
    use crate::idempotency::{Answer, RecordedRequest};
    use crate::identity::Acting;
    use crate::store::{MemoryStore, NewRefund, WriteRefund};
    use crate::usecases::orders::{self, RefundRequest};
    use crate::usecases::testing::*;

    /// A store where 3 tea were sold and 2 refunded with restock: the command is PENDING.
    async fn refunded() -> (MemoryStore, Order, CommandId) {
        let store = stocked(&[("tea", 10, 2)]).await;
        let order = sold(&store, &[("tea", 3)]).await;
        let request = RefundRequest {
            acting: Acting::Staff,
            refund_id: crate::domain::RefundId::generate(),
            order_id: order.order_id.clone(),
            lines: Some(vec![line("tea", 2)]),
            restock: true,
            reason: None,
            at: later(60),
            fingerprint: "first body".into(),
        };
        created(orders::refund(&store, &RecordingQueue::default(), &request).await);
        let id = CommandId::from_ulid(request.refund_id.ulid());
        (store, order, id)
    }

    async fn status_of(
        store: &MemoryStore,
        order: &Order,
        id: &CommandId,
    ) -> (CommandStatus, RefundStatus) {
        let (command, _) = store.command(id).await.unwrap().unwrap();
        let order = orders::order(store, &Acting::Staff, &order.order_id)
            .await
            .unwrap();
        (command, order.refunds[0].status)
    }

    #[tokio::test]
    async fn a_restock_puts_the_units_back_where_they_were_sold_once() {
        let (store, order, id) = refunded().await;
        let sold_by_shard = |stock: &crate::store::SkuStock| {
            stock.shards.iter().map(|s| s.sold).collect::<Vec<_>>()
        };
        let before = sold_by_shard(&stored(&store, "tea").await);
        assert_eq!(
            apply_restock(&store, &id, later(61)).await.unwrap(),
            Applied::Now
        );
        assert_eq!(counters(&store, "tea").await, (9, 0, 1));
        let (_, restock) = store.command(&id).await.unwrap().unwrap();
        let after = sold_by_shard(&stored(&store, "tea").await);
        for unit in &restock.units {
            let shard = usize::from(unit.take.shard);
            assert_eq!(before[shard] - after[shard], unit.take.quantity);
        }
        let applied = (CommandStatus::Applied, RefundStatus::Completed);
        assert_eq!(status_of(&store, &order, &id).await, applied);

        assert_eq!(
            apply_restock(&store, &id, later(62)).await.unwrap(),
            Applied::Before
        );
        assert_eq!(counters(&store, "tea").await, (9, 0, 1));
        // Giving up on an applied command leaves it applied.
        fail_restock(&store, &id, later(63)).await.unwrap();
        assert_eq!(status_of(&store, &order, &id).await, applied);
    }

    #[tokio::test]
    async fn only_a_pending_command_fails_and_a_failed_one_applies_on_redrive() {
        let (store, order, id) = refunded().await;
        fail_restock(&store, &id, later(61)).await.unwrap();
        let failed = (CommandStatus::Failed, RefundStatus::Failed);
        assert_eq!(status_of(&store, &order, &id).await, failed);
        fail_restock(&store, &id, later(62)).await.unwrap();
        assert_eq!(status_of(&store, &order, &id).await, failed);
        assert_eq!(counters(&store, "tea").await, (7, 0, 3));

        assert_eq!(
            apply_restock(&store, &id, later(63)).await.unwrap(),
            Applied::Now
        );
        let applied = (CommandStatus::Applied, RefundStatus::Completed);
        assert_eq!(status_of(&store, &order, &id).await, applied);
        assert_eq!(counters(&store, "tea").await, (9, 0, 1));
    }

    #[tokio::test]
    async fn an_unknown_command_cannot_be_applied_and_need_not_be_failed() {
        let store = MemoryStore::new();
        let id = CommandId::generate();
        let e = refused(apply_restock(&store, &id, now()).await);
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
        fail_restock(&store, &id, now()).await.unwrap();
    }

    /// A command that puts back more than was sold (the books are wrong) is refused for
    /// good, and changes nothing.
    #[tokio::test]
    async fn a_restock_of_units_not_sold_is_refused_and_changes_nothing() {
        let store = stocked(&[("tea", 10, 1)]).await;
        let order = sold(&store, &[("tea", 3)]).await;
        let refund = crate::domain::Refund {
            refund_id: crate::domain::RefundId::generate(),
            order_id: order.order_id.clone(),
            status: RefundStatus::Pending,
            lines: vec![line("tea", 3)],
            restock: true,
            reason: None,
            created_at: later(60),
        };
        let restock = Restock {
            command_id: CommandId::from_ulid(refund.refund_id.ulid()),
            order_id: order.order_id.clone(),
            refund_id: refund.refund_id.clone(),
            units: vec![Allocation {
                sku: sku("tea"),
                take: Take {
                    shard: 0,
                    quantity: 4,
                },
            }],
            created_at: later(60),
        };
        let refunded = Order {
            version: order.version + 1,
            ..order.clone()
        };
        let receipt = RecordedRequest::new("first body", Answer::Accepted, &refund).unwrap();
        let write = NewRefund {
            order: &order,
            refunded: &refunded,
            refund: &refund,
            restock: Some(&restock),
            receipt: &receipt,
        };
        assert_eq!(
            store.record_refund(write).await.unwrap(),
            Attempt::Committed
        );

        let e = refused(apply_restock(&store, &restock.command_id, later(61)).await);
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
        let pending = (CommandStatus::Pending, RefundStatus::Pending);
        assert_eq!(
            status_of(&store, &order, &restock.command_id).await,
            pending
        );
        assert_eq!(counters(&store, "tea").await, (7, 0, 3));
    }
}
