//! Reservations: placing a hold, reading it, and ending it (release or expiry).

use super::taking::{take_lines, Taking, Terms};
use super::StockViews;
use crate::domain::{
    CampaignId, CustomerId, HoldDuration, Lines, Reservation, ReservationId, ReservationStatus,
    StockMove, Timestamp,
};
use crate::error::{Error, Result};
use crate::idempotency::{Answer, Recorded};
use crate::identity::Acting;
use crate::retry::Backoff;
use crate::store::{
    Attempt, EndHold, ReadCampaign, ReadRecord, ReadReservation, ReadStock, RecordKey, WriteHold,
    WriteStock,
};

/// A reservation as the client asked for it, with the id its idempotency key gives.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub acting: Acting,
    pub reservation_id: ReservationId,
    pub lines: Lines,
    pub customer_id: Option<CustomerId>,
    pub campaign_id: Option<CampaignId>,
    pub hold: HoldDuration,
    pub at: Timestamp,
    pub fingerprint: String,
}

/// Holds every line's units for a while, all or nothing. A campaign reservation also
/// needs the campaign open for its skus and room in the customer's allowance, checked
/// in the same transaction (through the terms the campaign stamped on its skus' stock
/// items, never through the campaign's own item).
pub async fn reserve<S>(
    store: &S,
    views: &StockViews,
    request: NewHold,
) -> Result<Recorded<Reservation>>
where
    S: ReadCampaign + ReadStock + WriteStock + ReadRecord,
{
    let customer_id = request.acting.customer(request.customer_id.clone())?;
    let mut reservation = Reservation {
        reservation_id: request.reservation_id.clone(),
        status: ReservationStatus::Held,
        lines: request.lines.clone(),
        customer_id: customer_id.clone(),
        campaign_id: request.campaign_id.clone(),
        expires_at: request.at.plus(request.hold.seconds()),
        created_at: request.at,
        order_id: None,
        allocations: Vec::new(),
    };
    let terms = match (&request.campaign_id, &customer_id) {
        (Some(id), Some(customer)) => Terms::Campaign {
            id,
            customer,
            units: reservation.units(),
        },
        (Some(_), None) => {
            return Err(Error::InvalidRequest(
                "a reservation in a campaign needs a customer_id".into(),
            ))
        }
        (None, _) => customers_terms(&request.acting),
    };
    let taking = Taking {
        lines: &request.lines,
        movement: StockMove::RESERVE,
        at: request.at,
        record: RecordKey::Reservation(request.reservation_id.clone()),
        fingerprint: &request.fingerprint,
        terms,
    };
    let placed = take_lines(store, views, taking, |allocations| {
        reservation.allocations = allocations;
        (reservation.clone(), Answer::Created)
    })
    .await;
    match placed {
        // No sku carries the campaign's offer: it may not exist at all.
        Err(Error::CampaignNotActive {
            campaign,
            sku: Some(_),
        }) if store.campaign(&campaign).await?.is_none() => Err(Error::CampaignNotFound(campaign)),
        placed => placed,
    }
}

/// While a campaign runs, customers buy its skus only through it; staff still sell
/// them.
pub(super) fn customers_terms(acting: &Acting) -> Terms<'static> {
    match acting {
        Acting::Staff => Terms::Any,
        Acting::Customer(_) => Terms::NoCampaign,
    }
}

/// The reservation, if the caller may see it: a customer sees only their own.
pub async fn reservation(
    store: &impl ReadReservation,
    acting: &Acting,
    id: &ReservationId,
) -> Result<Reservation> {
    match store.reservation(id).await? {
        Some(reservation) if acting.may_see(reservation.customer_id.as_ref()) => Ok(reservation),
        _ => Err(Error::ReservationNotFound(id.to_string())),
    }
}

/// Gives a HELD reservation's units back (RELEASED), once however often it is asked;
/// a committed one cannot be released, and one already ended stays as it is.
pub async fn release(
    store: &(impl ReadReservation + WriteHold),
    acting: &Acting,
    id: &ReservationId,
    at: Timestamp,
) -> Result<Reservation> {
    end(store, acting, id, ReservationStatus::Released, at).await
}

/// Expires a HELD reservation past its `expires_at`; any other is left as it is.
pub async fn expire(
    store: &(impl ReadReservation + WriteHold),
    id: &ReservationId,
    at: Timestamp,
) -> Result<Reservation> {
    end(store, &Acting::Staff, id, ReservationStatus::Expired, at).await
}

async fn end(
    store: &(impl ReadReservation + WriteHold),
    acting: &Acting,
    id: &ReservationId,
    to: ReservationStatus,
    at: Timestamp,
) -> Result<Reservation> {
    let mut backoff = Backoff::default();
    while backoff.next_attempt().await {
        let mut reservation = reservation(store, acting, id).await?;
        match reservation.status {
            ReservationStatus::Held => {}
            ReservationStatus::Committed if to == ReservationStatus::Released => {
                return Err(Error::ReservationCommitted(id.clone()))
            }
            _ => return Ok(reservation),
        }
        if to == ReservationStatus::Expired && !reservation.is_overdue(at) {
            return Ok(reservation);
        }
        let ending = EndHold {
            reservation: &reservation,
            to,
            order: None,
            at,
        };
        if let Attempt::Committed = store.end_hold(ending).await? {
            reservation.status = to;
            return Ok(reservation);
        }
        // It changed meanwhile (committed, released, expired): read it again.
    }
    Err(Error::Contention)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Shown;
    use crate::identity::Acting;
    use crate::store::{MemoryStore, ReadRecord};
    use crate::usecases::campaigns;
    use crate::usecases::orders::{self, Source};
    use crate::usecases::testing::*;

    fn units_of(reservation: &Reservation, of: &str) -> u64 {
        let of = sku(of);
        let taken = reservation.allocations.iter().filter(|a| a.sku == of);
        taken.map(|a| a.take.quantity).sum()
    }

    #[tokio::test]
    async fn a_hold_takes_every_line_from_the_shards_its_allocations_name() {
        let store = stocked(&[("tea", 10, 4), ("cup", 3, 1)]).await;
        let request = hold(&[("tea", 7), ("cup", 3)]);
        let held = placed(&store, request.clone()).await;
        assert_eq!(held.status, ReservationStatus::Held);
        assert_eq!(held.expires_at, later(900));
        assert_eq!((units_of(&held, "tea"), units_of(&held, "cup")), (7, 3));
        // Seven units split over shards that hold 3, 3, 2 and 2.
        assert!(held.allocations.len() > 2);
        assert_eq!(counters(&store, "tea").await, (3, 7, 0));
        assert_eq!(counters(&store, "cup").await, (0, 3, 0));
        for a in &held.allocations {
            let shard = stored(&store, a.sku.as_str()).await.shards[usize::from(a.take.shard)];
            assert_eq!(shard.reserved, a.take.quantity, "{a:?}");
        }
        assert_eq!(
            reservation(&store, &Acting::Staff, &request.reservation_id)
                .await
                .unwrap(),
            held
        );
    }

    #[tokio::test]
    async fn the_same_request_again_gets_its_first_answer_and_takes_nothing() {
        let store = stocked(&[("tea", 10, 2)]).await;
        let request = hold(&[("tea", 4)]);
        let held = placed(&store, request.clone()).await;
        let again = reserve_outcome(&store, request.clone()).await;
        let Ok(Recorded::Replayed(first)) = again else {
            panic!("expected a replay, got {again:?}");
        };
        assert_eq!(first.status, 201);
        assert_eq!(first.body, serde_json::to_string(&held.shown()).unwrap());
        assert_eq!(counters(&store, "tea").await, (6, 4, 0));

        let other_body = NewHold {
            fingerprint: "another body".into(),
            ..request
        };
        let reused = refused(reserve_outcome(&store, other_body).await);
        assert!(matches!(reused, Error::IdempotencyKeyReused), "{reused:?}");
        assert_eq!(counters(&store, "tea").await, (6, 4, 0));
    }

    async fn reserve_outcome(
        store: &MemoryStore,
        request: NewHold,
    ) -> Result<Recorded<Reservation>> {
        reserve(store, &StockViews::default(), request).await
    }

    #[tokio::test]
    async fn a_hold_of_an_unknown_or_short_sku_is_refused_and_changes_nothing() {
        let store = stocked(&[("tea", 10, 2), ("cup", 2, 1)]).await;
        let unknown = hold(&[("tea", 1), ("lid", 1)]);
        let e = refused(reserve_outcome(&store, unknown.clone()).await);
        assert!(
            matches!(&e, Error::SkuNotFound(s) if *s == sku("lid")),
            "{e:?}"
        );

        let short = hold(&[("tea", 10), ("cup", 3)]);
        let e = refused(reserve_outcome(&store, short.clone()).await);
        assert!(
            matches!(&e, Error::InsufficientStock { sku: s } if *s == sku("cup")),
            "{e:?}"
        );

        assert_eq!(counters(&store, "tea").await, (10, 0, 0));
        assert_eq!(counters(&store, "cup").await, (2, 0, 0));
        for id in [unknown.reservation_id, short.reservation_id] {
            let e = refused(reservation(&store, &Acting::Staff, &id).await);
            assert!(matches!(e, Error::ReservationNotFound(_)), "{e:?}");
            let record = store.recorded(&RecordKey::Reservation(id)).await.unwrap();
            assert_eq!(record, None);
        }
    }

    #[tokio::test]
    async fn known_views_send_a_hold_straight_to_a_shard() {
        let store = stocked(&[("tea", 8, 4)]).await;
        let views = StockViews::default();
        for _ in 0..4 {
            let placed = reserve(&store, &views, hold(&[("tea", 2)])).await;
            assert_eq!(created(placed).1.allocations.len(), 1);
        }
        assert_eq!(counters(&store, "tea").await, (0, 8, 0));
        let e = refused(reserve(&store, &views, hold(&[("tea", 1)])).await);
        assert!(matches!(e, Error::InsufficientStock { .. }), "{e:?}");
    }

    fn in_campaign(items: &[(&str, u64)], who: Option<&str>) -> NewHold {
        NewHold {
            customer_id: who.map(customer),
            campaign_id: Some(campaign_id("flash")),
            ..hold(items)
        }
    }

    async fn with_campaign(skus: &[&str], limit: u32) -> MemoryStore {
        let store = stocked(&[("tea", 20, 2), ("cup", 20, 1)]).await;
        campaigns::put(&store, &campaign_id("flash"), &terms(skus, limit), now())
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn a_campaign_hold_needs_the_campaign_and_a_customer() {
        let store = stocked(&[("tea", 20, 2)]).await;
        let e = refused(reserve_outcome(&store, in_campaign(&[("tea", 1)], Some("ann"))).await);
        assert!(
            matches!(&e, Error::CampaignNotFound(id) if *id == campaign_id("flash")),
            "{e:?}"
        );
        let store = with_campaign(&["tea"], 3).await;
        let e = refused(reserve_outcome(&store, in_campaign(&[("tea", 1)], None)).await);
        assert!(matches!(e, Error::InvalidRequest(_)), "{e:?}");
        assert_eq!(counters(&store, "tea").await, (20, 0, 0));
    }

    #[tokio::test]
    async fn a_campaign_hold_is_refused_outside_its_window_skus_and_limit() {
        let store = with_campaign(&["tea"], 3).await;
        let over = refused(reserve_outcome(&store, in_campaign(&[("tea", 4)], Some("ann"))).await);
        assert!(matches!(&over, Error::PurchaseLimitExceeded(id) if *id == campaign_id("flash")));

        let closed = NewHold {
            at: later(3600),
            ..in_campaign(&[("tea", 1)], Some("ann"))
        };
        let e = refused(reserve_outcome(&store, closed).await);
        assert!(
            matches!(e, Error::CampaignNotActive { sku: None, .. }),
            "{e:?}"
        );

        let off_sale = in_campaign(&[("tea", 1), ("cup", 1)], Some("ann"));
        let e = refused(reserve_outcome(&store, off_sale).await);
        let cup = Some(sku("cup"));
        assert!(
            matches!(&e, Error::CampaignNotActive { sku, .. } if *sku == cup),
            "{e:?}"
        );

        assert_eq!(counters(&store, "tea").await, (20, 0, 0));
        // None of these used any of the allowance.
        placed(&store, in_campaign(&[("tea", 3)], Some("ann"))).await;
    }

    /// Ann may hold or buy 3 units: each hold counts, a released or expired one gives its
    /// units back, an order keeps them.
    #[tokio::test]
    async fn the_allowance_is_given_back_by_a_release_or_expiry_and_kept_by_an_order() {
        let store = with_campaign(&["tea"], 3).await;
        let ann = |q| in_campaign(&[("tea", q)], Some("ann"));
        let over_limit = |e: &Error| matches!(e, Error::PurchaseLimitExceeded(_));

        let first = placed(&store, ann(2)).await;
        assert!(over_limit(&refused(reserve_outcome(&store, ann(2)).await)));
        // Another customer has an allowance of their own.
        placed(&store, in_campaign(&[("tea", 3)], Some("bob"))).await;

        release(&store, &Acting::Staff, &first.reservation_id, now())
            .await
            .unwrap();
        let second = placed(&store, ann(2)).await;
        assert!(over_limit(&refused(reserve_outcome(&store, ann(2)).await)));

        expire(&store, &second.reservation_id, later(900))
            .await
            .unwrap();
        let third = placed(&store, ann(3)).await;

        let order = order_for(Source::Hold(third.reservation_id.clone()), now());
        created(orders::place(&store, &StockViews::default(), order).await);
        assert!(over_limit(&refused(reserve_outcome(&store, ann(1)).await)));
        assert_eq!(counters(&store, "tea").await, (14, 3, 3));
    }

    #[tokio::test]
    async fn a_release_gives_the_units_back_once() {
        let store = stocked(&[("tea", 5, 2)]).await;
        let held = placed(&store, hold(&[("tea", 4)])).await;
        let id = &held.reservation_id;
        for _ in 0..2 {
            let released = release(&store, &Acting::Staff, id, later(10))
                .await
                .unwrap();
            assert_eq!(released.status, ReservationStatus::Released);
            assert_eq!(counters(&store, "tea").await, (5, 0, 0));
        }
        assert_eq!(
            reservation(&store, &Acting::Staff, id)
                .await
                .unwrap()
                .status,
            ReservationStatus::Released
        );
        // An ended hold stays as it is: expiring it changes nothing.
        let ended = expire(&store, id, later(900)).await.unwrap();
        assert_eq!(ended.status, ReservationStatus::Released);
        let e = refused(release(&store, &Acting::Staff, &ReservationId::generate(), now()).await);
        assert!(matches!(e, Error::ReservationNotFound(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_committed_hold_cannot_be_released_or_expired() {
        let store = stocked(&[("tea", 5, 1)]).await;
        let held = placed(&store, hold(&[("tea", 2)])).await;
        let order = order_for(Source::Hold(held.reservation_id.clone()), now());
        created(orders::place(&store, &StockViews::default(), order).await);
        let id = &held.reservation_id;
        let e = refused(release(&store, &Acting::Staff, id, now()).await);
        assert!(
            matches!(&e, Error::ReservationCommitted(r) if r == id),
            "{e:?}"
        );
        let kept = expire(&store, id, later(900)).await.unwrap();
        assert_eq!(kept.status, ReservationStatus::Committed);
        assert_eq!(counters(&store, "tea").await, (3, 0, 2));
    }

    #[tokio::test]
    async fn a_hold_expires_from_its_expiry_on_and_not_before() {
        let store = stocked(&[("tea", 5, 1)]).await;
        let held = placed(&store, hold(&[("tea", 2)])).await;
        let id = &held.reservation_id;
        let early = expire(&store, id, later(899)).await.unwrap();
        assert_eq!(early.status, ReservationStatus::Held);
        assert_eq!(
            reservation(&store, &Acting::Staff, id)
                .await
                .unwrap()
                .status,
            ReservationStatus::Held
        );
        assert_eq!(counters(&store, "tea").await, (3, 2, 0));

        let expired = expire(&store, id, later(900)).await.unwrap();
        assert_eq!(expired.status, ReservationStatus::Expired);
        assert_eq!(counters(&store, "tea").await, (5, 0, 0));
        // Expired is not released: a release leaves it as it is.
        let after = release(&store, &Acting::Staff, id, later(901))
            .await
            .unwrap();
        assert_eq!(after.status, ReservationStatus::Expired);
        assert_eq!(counters(&store, "tea").await, (5, 0, 0));
    }
}
