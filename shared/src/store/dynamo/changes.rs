//! One committed change of one item, as the table's stream shows it (the item before and
//! after), read back into the domain's `Committed`: what the event consumer decides on.
//! Items no event is about directly (stock shards, counters, commands, campaign marks)
//! read as nothing; their effects are told by the records that caused them.

use super::codec::{get_n, get_parsed, key_of, opt_s, Attributes};
use super::schema::ItemKey;
use super::{campaigns, holds, orders};
use crate::domain::events::{Cause, Change, Committed};
use crate::domain::{Adjustment, Reason, Timestamp};
use crate::error::Result;

/// The attributes a write sets to say what caused it: the request's idempotency key and
/// its trace id (or the sweep's).
pub const CAUSE_KEY: &str = "cause_key";
pub const CAUSE_TRACE: &str = "cause_trace";

/// What one change of an item committed, and its cause (read from the item after the
/// change, or before it for a removal); None for an item no event is about.
pub fn committed(
    old: Option<&Attributes>,
    new: Option<&Attributes>,
) -> Result<Option<(Committed, Cause)>> {
    let Some(latest) = new.or(old) else {
        return Ok(None);
    };
    let committed = match key_of(latest)? {
        ItemKey::Reservation(_) => {
            change(old, new, holds::reservation_from)?.map(Committed::Reservation)
        }
        ItemKey::Order(_) => change(old, new, orders::order_from)?.map(Committed::Order),
        ItemKey::Refund(..) => change(old, new, orders::refund_from)?.map(Committed::Refund),
        ItemKey::Adjustment(..) => change(old, new, adjustment_from)?.map(Committed::Adjustment),
        ItemKey::Campaign(_) => {
            change(old, new, campaigns::campaign_from)?.map(Committed::Campaign)
        }
        ItemKey::Sku(_)
        | ItemKey::Stock(..)
        | ItemKey::Command(_)
        | ItemKey::CustomerCounter(..)
        | ItemKey::SkuCampaign(..) => None,
    };
    let cause = Cause {
        idempotency_key: opt_s(latest, CAUSE_KEY)?.map(str::to_owned),
        trace_id: opt_s(latest, CAUSE_TRACE)?.map(str::to_owned),
    };
    Ok(committed.map(|committed| (committed, cause)))
}

fn change<T>(
    old: Option<&Attributes>,
    new: Option<&Attributes>,
    read: impl Fn(&Attributes) -> Result<T>,
) -> Result<Option<Change<T>>> {
    Ok(match (old, new) {
        (None, Some(new)) => Some(Change::Created(read(new)?)),
        (Some(old), Some(new)) => Some(Change::Changed {
            before: read(old)?,
            after: read(new)?,
        }),
        (Some(old), None) => Some(Change::Removed(read(old)?)),
        (None, None) => None,
    })
}

fn adjustment_from(item: &Attributes) -> Result<Adjustment> {
    let ItemKey::Adjustment(sku, id) = key_of(item)? else {
        return Err(super::codec::corrupt(
            item,
            "its key is not an adjustment's",
        ));
    };
    Ok(Adjustment {
        id,
        sku,
        delta: get_n(item, "delta")?,
        reason: get_parsed(item, "reason", |t| Reason::parse(t).ok())?,
        at: get_parsed(item, "created_at", Timestamp::parse)?,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::domain::events::{decide, EventName};
    use crate::domain::{
        AdjustmentId, CustomerId, Line, Quantity, Reservation, ReservationId, ReservationStatus,
        Sku,
    };
    use crate::idempotency::RecordedRequest;
    use crate::store::dynamo::codec::s;

    fn receipt() -> RecordedRequest {
        RecordedRequest {
            fingerprint: "f".into(),
            status: 201,
            body: "{}".into(),
        }
    }

    fn hold() -> Attributes {
        let reservation = Reservation {
            reservation_id: ReservationId::parse("res_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            status: ReservationStatus::Held,
            lines: vec![Line {
                sku: Sku::parse("tea").unwrap(),
                quantity: Quantity::new(2).unwrap(),
            }]
            .try_into()
            .unwrap(),
            customer_id: Some(CustomerId::parse("c-1").unwrap()),
            campaign_id: None,
            expires_at: Timestamp::parse("2026-11-11T00:15:00Z").unwrap(),
            created_at: Timestamp::parse("2026-11-11T00:00:00Z").unwrap(),
            order_id: None,
            allocations: vec![],
        };
        let mut item = holds::hold_item(&reservation, &receipt()).unwrap();
        item.insert(CAUSE_KEY.into(), s("key-1"));
        item.insert(CAUSE_TRACE.into(), s("Root=1-a"));
        item
    }

    fn names(old: Option<&Attributes>, new: Option<&Attributes>) -> Vec<EventName> {
        let (committed, _) = committed(old, new)
            .unwrap()
            .expect("an item events are about");
        decide(&committed).iter().map(|e| e.name).collect()
    }

    #[test]
    fn a_hold_written_then_released_reads_as_placed_then_released_with_each_cause() {
        let placed = hold();
        assert_eq!(names(None, Some(&placed)), [EventName::ReservationPlaced]);
        let (_, cause) = committed(None, Some(&placed)).unwrap().unwrap();
        assert_eq!(cause.idempotency_key.as_deref(), Some("key-1"));
        assert_eq!(cause.trace_id.as_deref(), Some("Root=1-a"));

        let mut released = placed.clone();
        released.insert("status".into(), s("RELEASED"));
        released.remove(CAUSE_KEY);
        released.insert(CAUSE_TRACE.into(), s("Root=1-b"));
        assert_eq!(
            names(Some(&placed), Some(&released)),
            [EventName::ReservationReleased]
        );
        let (_, cause) = committed(Some(&placed), Some(&released)).unwrap().unwrap();
        assert_eq!(
            cause.idempotency_key, None,
            "the release's cause, not the hold's"
        );
        assert_eq!(cause.trace_id.as_deref(), Some("Root=1-b"));
        assert!(
            names(Some(&released), None).is_empty(),
            "removed by TTL: no event"
        );
    }

    #[test]
    fn an_adjustment_reads_back_whole_and_a_stock_item_is_no_event_of_its_own() {
        let adjustment = Adjustment {
            id: AdjustmentId::parse("adj_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            sku: Sku::parse("tea").unwrap(),
            delta: -4,
            reason: Reason::parse("breakage").unwrap(),
            at: Timestamp::parse("2026-11-11T00:00:00Z").unwrap(),
        };
        let item = super::super::stock::adjustment_item(&adjustment);
        let (read, _) = committed(None, Some(&item)).unwrap().unwrap();
        assert_eq!(read, Committed::Adjustment(Change::Created(adjustment)));

        let stock: Attributes = [
            ("pk", s("SKU#tea#000")),
            ("sk", s("STOCK")),
            ("available", AttributeValue::N("3".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(committed(None, Some(&stock)).unwrap(), None);
        assert_eq!(committed(None, None).unwrap(), None);
    }

    #[test]
    fn an_item_that_does_not_read_is_an_error_not_a_silence() {
        let mut broken = hold();
        broken.insert("status".into(), s("MISPLACED"));
        assert!(committed(None, Some(&broken)).is_err());
        let mut keyless = hold();
        keyless.remove("pk");
        assert!(committed(None, Some(&keyless)).is_err());
    }
}
