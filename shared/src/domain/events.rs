//! Domain events: what stockroom tells the systems around it. They are decided from what
//! the table committed, one item's change at a time (before and after), never from a
//! handler's step after its write, so a crash can neither lose nor invent one. Each
//! event's detail has a versioned JSON schema under `schemas/events/`.

use serde_json::{json, Value};

use super::{
    Adjustment, Campaign, Line, Order, Refund, RefundStatus, Reservation, ReservationStatus, Sku,
};

/// The version of every event's detail today; a change that is not additive is a new one.
pub const DETAIL_VERSION: u32 = 1;

/// One committed change of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    Created(T),
    Changed { before: T, after: T },
    Removed(T),
}

/// What the table committed, as the domain reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Committed {
    Reservation(Change<Reservation>),
    Order(Change<Order>),
    Refund(Change<Refund>),
    Adjustment(Change<Adjustment>),
    Campaign(Change<Campaign>),
    /// A sku's available units (over all its shards) before and after one change.
    Available {
        sku: Sku,
        before: u64,
        after: u64,
    },
}

/// The request (or sweep) that caused a change, as its item recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cause {
    /// None for what no request asked for (a hold the sweep expired).
    pub idempotency_key: Option<String>,
    pub trace_id: Option<String>,
}

/// The events stockroom publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventName {
    ReservationPlaced,
    ReservationReleased,
    ReservationExpired,
    OrderPlaced,
    RefundRequested,
    RefundCompleted,
    RefundFailed,
    StockAdjusted,
    SkuSoldOut,
    SkuBackInStock,
    CampaignChanged,
}

impl EventName {
    pub const ALL: [EventName; 11] = [
        EventName::ReservationPlaced,
        EventName::ReservationReleased,
        EventName::ReservationExpired,
        EventName::OrderPlaced,
        EventName::RefundRequested,
        EventName::RefundCompleted,
        EventName::RefundFailed,
        EventName::StockAdjusted,
        EventName::SkuSoldOut,
        EventName::SkuBackInStock,
        EventName::CampaignChanged,
    ];

    /// The name as published (EventBridge's `detail-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::ReservationPlaced => "ReservationPlaced",
            EventName::ReservationReleased => "ReservationReleased",
            EventName::ReservationExpired => "ReservationExpired",
            EventName::OrderPlaced => "OrderPlaced",
            EventName::RefundRequested => "RefundRequested",
            EventName::RefundCompleted => "RefundCompleted",
            EventName::RefundFailed => "RefundFailed",
            EventName::StockAdjusted => "StockAdjusted",
            EventName::SkuSoldOut => "SkuSoldOut",
            EventName::SkuBackInStock => "SkuBackInStock",
            EventName::CampaignChanged => "CampaignChanged",
        }
    }
}

/// One event: its name and its detail (without the envelope the publisher adds: event
/// id, version, cause).
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    pub name: EventName,
    pub detail: Value,
}

impl DomainEvent {
    fn new(name: EventName, detail: Value) -> Self {
        Self { name, detail }
    }

    /// The detail as published: `event_id` (the same on every delivery of this event, for
    /// consumers to de-duplicate on), the detail's version, the cause, then the facts.
    pub fn published(&self, event_id: &str, cause: &Cause) -> Value {
        let mut detail = json!({
            "event_id": event_id,
            "version": DETAIL_VERSION,
            "idempotency_key": cause.idempotency_key,
            "trace_id": cause.trace_id,
        });
        if let (Some(published), Some(facts)) = (detail.as_object_mut(), self.detail.as_object()) {
            published.extend(facts.clone());
        }
        detail
    }
}

fn lines(lines: impl IntoIterator<Item = Line>) -> Value {
    lines
        .into_iter()
        .map(|line| json!({"sku": line.sku.as_str(), "quantity": line.quantity.get()}))
        .collect()
}

fn reservation(name: EventName, r: &Reservation) -> DomainEvent {
    DomainEvent::new(
        name,
        json!({
            "reservation_id": r.reservation_id.to_string(),
            "customer_id": r.customer_id.as_ref().map(|c| c.as_str()),
            "campaign_id": r.campaign_id.as_ref().map(|c| c.as_str()),
            "lines": lines(r.lines.iter().cloned()),
            "expires_at": r.expires_at.to_string(),
        }),
    )
}

fn refund(name: EventName, r: &Refund) -> DomainEvent {
    DomainEvent::new(
        name,
        json!({
            "refund_id": r.refund_id.to_string(),
            "order_id": r.order_id.to_string(),
            "lines": lines(r.lines.iter().cloned()),
            "restock": r.restock,
        }),
    )
}

fn campaign_changed(c: &Campaign) -> DomainEvent {
    DomainEvent::new(
        EventName::CampaignChanged,
        json!({
            "campaign_id": c.campaign_id.as_str(),
            "skus": c.skus.iter().map(Sku::as_str).collect::<Vec<_>>(),
            "starts_at": c.starts_at.to_string(),
            "ends_at": c.ends_at.to_string(),
            "per_customer_limit": c.per_customer_limit,
        }),
    )
}

fn available(name: EventName, sku: &Sku, units: u64) -> DomainEvent {
    DomainEvent::new(name, json!({"sku": sku.as_str(), "available": units}))
}

/// The events one committed change makes: none for a change no system outside needs to
/// hear of (a hold committed: its order says so; an item removed by TTL).
pub fn decide(change: &Committed) -> Vec<DomainEvent> {
    use EventName::*;
    match change {
        Committed::Reservation(Change::Created(r)) if r.status == ReservationStatus::Held => {
            vec![reservation(ReservationPlaced, r)]
        }
        Committed::Reservation(Change::Changed { before, after })
            if before.status == ReservationStatus::Held =>
        {
            match after.status {
                ReservationStatus::Released => vec![reservation(ReservationReleased, after)],
                ReservationStatus::Expired => vec![reservation(ReservationExpired, after)],
                ReservationStatus::Held | ReservationStatus::Committed => vec![],
            }
        }
        Committed::Order(Change::Created(o)) => vec![DomainEvent::new(
            OrderPlaced,
            json!({
                "order_id": o.order_id.to_string(),
                "reservation_id": o.reservation_id.as_ref().map(ToString::to_string),
                "customer_id": o.customer_id.as_ref().map(|c| c.as_str()),
                "lines": o.lines.iter().map(|l| json!({"sku": l.sku.as_str(), "quantity": l.quantity.get()})).collect::<Vec<_>>(),
            }),
        )],
        Committed::Refund(Change::Created(r)) => {
            let mut events = vec![refund(RefundRequested, r)];
            match r.status {
                RefundStatus::Completed => events.push(refund(RefundCompleted, r)),
                RefundStatus::Failed => events.push(refund(RefundFailed, r)),
                RefundStatus::Pending => {}
            }
            events
        }
        Committed::Refund(Change::Changed { before, after }) if before.status != after.status => {
            match after.status {
                RefundStatus::Completed => vec![refund(RefundCompleted, after)],
                RefundStatus::Failed => vec![refund(RefundFailed, after)],
                RefundStatus::Pending => vec![],
            }
        }
        Committed::Adjustment(Change::Created(a)) => vec![DomainEvent::new(
            StockAdjusted,
            json!({
                "adjustment_id": a.id.to_string(),
                "sku": a.sku.as_str(),
                "delta": a.delta,
                "reason": a.reason.as_str(),
            }),
        )],
        Committed::Campaign(Change::Created(c)) => vec![campaign_changed(c)],
        Committed::Campaign(Change::Changed { before, after }) if same_terms(before, after) => {
            vec![]
        }
        Committed::Campaign(Change::Changed { after, .. }) => vec![campaign_changed(after)],
        Committed::Available { sku, before, after } => match (*before, *after) {
            (1.., 0) => vec![available(SkuSoldOut, sku, 0)],
            (0, 1..) => vec![available(SkuBackInStock, sku, *after)],
            _ => vec![],
        },
        _ => vec![],
    }
}

fn same_terms(a: &Campaign, b: &Campaign) -> bool {
    (&a.skus, a.starts_at, a.ends_at, a.per_customer_limit)
        == (&b.skus, b.starts_at, b.ends_at, b.per_customer_limit)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::domain::{
        AdjustmentId, CampaignId, CustomerId, OrderId, OrderLine, OrderStatus, Quantity, Reason,
        RefundId, ReservationId, Timestamp,
    };

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn tea(quantity: u64) -> Line {
        Line {
            sku: Sku::parse("tea").unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
        }
    }

    fn hold(status: ReservationStatus) -> Reservation {
        Reservation {
            reservation_id: ReservationId::parse("res_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            status,
            lines: vec![tea(2)].try_into().unwrap(),
            customer_id: Some(CustomerId::parse("c-1").unwrap()),
            campaign_id: None,
            expires_at: at("2026-11-11T00:15:00Z"),
            created_at: at("2026-11-11T00:00:00Z"),
            order_id: None,
            allocations: vec![],
        }
    }

    fn refund_in(status: RefundStatus) -> Refund {
        Refund {
            refund_id: RefundId::parse("rfd_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            order_id: OrderId::parse("ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            status,
            lines: vec![tea(1)],
            restock: true,
            reason: None,
            created_at: at("2026-11-11T01:00:00Z"),
        }
    }

    fn campaign(limit: u32, updated: &str) -> Campaign {
        Campaign {
            campaign_id: CampaignId::parse("drop").unwrap(),
            skus: BTreeSet::from([Sku::parse("tea").unwrap()]),
            starts_at: at("2026-11-11T00:00:00Z"),
            ends_at: at("2026-11-12T00:00:00Z"),
            per_customer_limit: limit,
            created_at: at("2026-11-01T00:00:00Z"),
            updated_at: at(updated),
        }
    }

    fn order() -> Order {
        Order {
            order_id: OrderId::parse("ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            status: OrderStatus::Confirmed,
            lines: vec![OrderLine {
                sku: Sku::parse("tea").unwrap(),
                quantity: Quantity::new(2).unwrap(),
                refunded: 0,
            }],
            customer_id: None,
            reservation_id: None,
            created_at: at("2026-11-11T00:00:00Z"),
            refunds: vec![],
            allocations: vec![],
            version: 0,
        }
    }

    fn adjustment() -> Adjustment {
        Adjustment {
            id: AdjustmentId::parse("adj_01J9Z3K8Q4W6N2V5T7R0XGHPBM").unwrap(),
            sku: Sku::parse("tea").unwrap(),
            delta: -3,
            reason: Reason::parse("breakage").unwrap(),
            at: at("2026-11-11T00:00:00Z"),
        }
    }

    fn names(change: Committed) -> Vec<&'static str> {
        decide(&change).iter().map(|e| e.name.as_str()).collect()
    }

    fn changed<T>(before: T, after: T) -> Change<T> {
        Change::Changed { before, after }
    }

    #[test]
    fn a_hold_is_placed_then_released_or_expired_and_a_commit_says_nothing() {
        use ReservationStatus::{Expired, Held, Released};
        let placed = decide(&Committed::Reservation(Change::Created(hold(Held))));
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].name, EventName::ReservationPlaced);
        assert_eq!(
            placed[0].detail,
            json!({
                "reservation_id": "res_01J9Z3K8Q4W6N2V5T7R0XGHPBM",
                "customer_id": "c-1",
                "campaign_id": null,
                "lines": [{"sku": "tea", "quantity": 2}],
                "expires_at": "2026-11-11T00:15:00.000Z",
            })
        );
        let ended = |to| names(Committed::Reservation(changed(hold(Held), hold(to))));
        assert_eq!(ended(Released), ["ReservationReleased"]);
        assert_eq!(ended(Expired), ["ReservationExpired"]);
        assert!(ended(ReservationStatus::Committed).is_empty());
        assert!(ended(Held).is_empty(), "an unchanged status is no event");
        // Releasing what was already released (a replayed DELETE) changes no status.
        assert!(names(Committed::Reservation(changed(
            hold(Released),
            hold(Released)
        )))
        .is_empty());
        assert!(names(Committed::Reservation(Change::Removed(hold(Expired)))).is_empty());
    }

    #[test]
    fn a_refund_is_requested_then_completes_or_fails_once() {
        use RefundStatus::*;
        let created = |status| names(Committed::Refund(Change::Created(refund_in(status))));
        assert_eq!(created(Pending), ["RefundRequested"]);
        assert_eq!(created(Completed), ["RefundRequested", "RefundCompleted"]);
        assert_eq!(created(Failed), ["RefundRequested", "RefundFailed"]);
        let moved = |from, to| names(Committed::Refund(changed(refund_in(from), refund_in(to))));
        assert_eq!(moved(Pending, Completed), ["RefundCompleted"]);
        assert_eq!(moved(Pending, Failed), ["RefundFailed"]);
        assert_eq!(
            moved(Failed, Completed),
            ["RefundCompleted"],
            "a redriven refund"
        );
        assert!(moved(Completed, Completed).is_empty());
        let detail = &decide(&Committed::Refund(Change::Created(refund_in(Pending))))[0].detail;
        assert_eq!(
            detail,
            &json!({
                "refund_id": "rfd_01J9Z3K8Q4W6N2V5T7R0XGHPBM",
                "order_id": "ord_01J9Z3K8Q4W6N2V5T7R0XGHPBM",
                "lines": [{"sku": "tea", "quantity": 1}],
                "restock": true,
            })
        );
    }

    #[test]
    fn an_order_an_adjustment_and_a_campaign_change_are_told_once() {
        let order = order();
        let placed = decide(&Committed::Order(Change::Created(order.clone())));
        assert_eq!(placed[0].name, EventName::OrderPlaced);
        assert_eq!(
            placed[0].detail["lines"],
            json!([{"sku": "tea", "quantity": 2}])
        );
        let refunded = Order {
            status: OrderStatus::PartiallyRefunded,
            version: 1,
            ..order.clone()
        };
        assert!(
            names(Committed::Order(changed(order, refunded))).is_empty(),
            "its refund tells"
        );

        let adjusted = decide(&Committed::Adjustment(Change::Created(adjustment())));
        assert_eq!(
            adjusted[0].detail,
            json!({"adjustment_id": "adj_01J9Z3K8Q4W6N2V5T7R0XGHPBM", "sku": "tea", "delta": -3, "reason": "breakage"})
        );

        let old = campaign(2, "2026-11-01T00:00:00Z");
        assert_eq!(
            names(Committed::Campaign(Change::Created(old.clone()))),
            ["CampaignChanged"]
        );
        let new_limit = campaign(3, "2026-11-02T00:00:00Z");
        assert_eq!(
            names(Committed::Campaign(changed(old.clone(), new_limit))),
            ["CampaignChanged"]
        );
        let same_terms_again = campaign(2, "2026-11-03T00:00:00Z");
        assert!(names(Committed::Campaign(changed(old, same_terms_again))).is_empty());
    }

    #[test]
    fn a_sku_is_sold_out_when_its_last_unit_goes_and_back_when_one_returns() {
        let sku = Sku::parse("tea").unwrap();
        let moved = |before, after| {
            names(Committed::Available {
                sku: sku.clone(),
                before,
                after,
            })
        };
        assert_eq!(moved(1, 0), ["SkuSoldOut"]);
        assert_eq!(moved(5, 0), ["SkuSoldOut"]);
        assert_eq!(moved(0, 3), ["SkuBackInStock"]);
        assert!(moved(0, 0).is_empty());
        assert!(moved(5, 4).is_empty());
        assert!(moved(4, 5).is_empty());
        let back = decide(&Committed::Available {
            sku,
            before: 0,
            after: 3,
        });
        assert_eq!(back[0].detail, json!({"sku": "tea", "available": 3}));
    }

    #[test]
    fn a_published_detail_carries_its_id_version_and_cause_around_the_facts() {
        let event = decide(&Committed::Reservation(Change::Created(hold(
            ReservationStatus::Held,
        ))))
        .remove(0);
        let cause = Cause {
            idempotency_key: Some("k-1".into()),
            trace_id: Some("Root=1-abc".into()),
        };
        let detail = event.published("49668-0", &cause);
        assert_eq!(detail["event_id"], "49668-0");
        assert_eq!(detail["version"], DETAIL_VERSION);
        assert_eq!(detail["idempotency_key"], "k-1");
        assert_eq!(detail["trace_id"], "Root=1-abc");
        assert_eq!(detail["reservation_id"], "res_01J9Z3K8Q4W6N2V5T7R0XGHPBM");
        let swept = event.published("49669-0", &Cause::default());
        assert_eq!(swept["idempotency_key"], Value::Null);
    }

    /// Every event's detail is valid against its committed schema, and every schema
    /// belongs to an event.
    #[test]
    fn every_event_has_a_schema_its_details_meet() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/events");
        let mut schemas = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).expect("schemas/events") {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            schemas.insert(name, schema);
        }
        let expected: BTreeSet<String> = EventName::ALL
            .iter()
            .map(|n| format!("{}.v{DETAIL_VERSION}.json", n.as_str()))
            .collect();
        assert_eq!(schemas.keys().cloned().collect::<BTreeSet<_>>(), expected);

        let sku = Sku::parse("tea").unwrap();
        let examples = [
            Committed::Reservation(Change::Created(hold(ReservationStatus::Held))),
            Committed::Reservation(changed(
                hold(ReservationStatus::Held),
                hold(ReservationStatus::Released),
            )),
            Committed::Reservation(changed(
                hold(ReservationStatus::Held),
                hold(ReservationStatus::Expired),
            )),
            Committed::Refund(Change::Created(refund_in(RefundStatus::Completed))),
            Committed::Refund(Change::Created(refund_in(RefundStatus::Failed))),
            Committed::Campaign(Change::Created(campaign(2, "2026-11-01T00:00:00Z"))),
            Committed::Available {
                sku: sku.clone(),
                before: 1,
                after: 0,
            },
            Committed::Available {
                sku,
                before: 0,
                after: 2,
            },
            Committed::Order(Change::Created(order())),
            Committed::Adjustment(Change::Created(adjustment())),
        ];
        let cause = Cause {
            idempotency_key: Some("k".into()),
            trace_id: None,
        };
        let mut seen = BTreeSet::new();
        for event in examples.iter().flat_map(decide) {
            let name = event.name.as_str();
            let schema = &schemas[&format!("{name}.v{DETAIL_VERSION}.json")];
            let validator =
                jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{name}: {e}"));
            let detail = event.published("1-0", &cause);
            let errors: Vec<String> = validator
                .iter_errors(&detail)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:?} in {detail}");
            // A detail without its facts is refused: the schema is no formality.
            let bare = DomainEvent::new(event.name, json!({})).published("1-0", &cause);
            assert!(
                !validator.is_valid(&bare),
                "{name} accepts a detail with no facts"
            );
            seen.insert(name);
        }
        assert_eq!(seen.len(), EventName::ALL.len(), "{seen:?}");
    }
}
