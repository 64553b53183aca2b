//! Who may do what: a customer acts only for themselves and sees only what is theirs;
//! while a campaign runs, customers buy its skus only through it; staff do all of it.

use super::campaigns;
use super::holds::{self, NewHold};
use super::orders::{self, RefundRequest, Source};
use super::testing::*;
use super::StockViews;
use crate::domain::{RefundId, Timestamp};
use crate::error::Error;
use crate::identity::Acting;

fn as_customer(name: &str) -> Acting {
    Acting::Customer(customer(name))
}

fn hold_as(acting: Acting, items: &[(&str, u64)]) -> NewHold {
    NewHold {
        acting,
        ..hold(items)
    }
}

#[tokio::test]
async fn a_customer_holds_for_themselves_only() {
    let store = stocked(&[("tea", 10, 1)]).await;
    let mine = placed(&store, hold_as(as_customer("ann"), &[("tea", 1)])).await;
    assert_eq!(mine.customer_id, Some(customer("ann")));
    let named_self = NewHold {
        customer_id: Some(customer("ann")),
        ..hold_as(as_customer("ann"), &[("tea", 1)])
    };
    assert_eq!(
        placed(&store, named_self).await.customer_id,
        Some(customer("ann"))
    );
    let for_bob = NewHold {
        customer_id: Some(customer("bob")),
        ..hold_as(as_customer("ann"), &[("tea", 1)])
    };
    let e = refused(holds::reserve(&store, &StockViews::default(), for_bob).await);
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    assert_eq!(
        counters(&store, "tea").await,
        (8, 2, 0),
        "nothing moved for bob"
    );
    let staff_for_bob = NewHold {
        customer_id: Some(customer("bob")),
        ..hold(&[("tea", 1)])
    };
    assert_eq!(
        placed(&store, staff_for_bob).await.customer_id,
        Some(customer("bob"))
    );
}

#[tokio::test]
async fn someone_elses_hold_or_order_does_not_exist_for_a_customer() {
    let store = stocked(&[("tea", 10, 1)]).await;
    let anns = placed(&store, hold_as(as_customer("ann"), &[("tea", 2)])).await;
    let id = &anns.reservation_id;
    let bob = as_customer("bob");
    let e = refused(holds::reservation(&store, &bob, id).await);
    assert!(matches!(e, Error::ReservationNotFound(_)), "{e:?}");
    let e = refused(holds::release(&store, &bob, id, now()).await);
    assert!(matches!(e, Error::ReservationNotFound(_)), "{e:?}");
    let commit = super::orders::NewOrder {
        acting: bob.clone(),
        ..order_for(Source::Hold(id.clone()), now())
    };
    let e = refused(orders::place(&store, &StockViews::default(), commit).await);
    assert!(matches!(e, Error::ReservationNotFound(_)), "{e:?}");
    assert_eq!(
        counters(&store, "tea").await,
        (8, 2, 0),
        "bob changed nothing"
    );

    let commit = super::orders::NewOrder {
        acting: as_customer("ann"),
        ..order_for(Source::Hold(id.clone()), now())
    };
    let (_, order) = created(orders::place(&store, &StockViews::default(), commit).await);
    assert_eq!(order.customer_id, Some(customer("ann")));
    let e = refused(orders::order(&store, &bob, &order.order_id).await);
    assert!(matches!(e, Error::OrderNotFound(_)), "{e:?}");
    let refund = RefundRequest {
        acting: bob,
        refund_id: RefundId::generate(),
        order_id: order.order_id.clone(),
        lines: None,
        restock: false,
        reason: None,
        at: now(),
        fingerprint: "first body".into(),
    };
    let e = refused(orders::refund(&store, &RecordingQueue::default(), &refund).await);
    assert!(matches!(e, Error::OrderNotFound(_)), "{e:?}");
    let seen = orders::order(&store, &as_customer("ann"), &order.order_id).await;
    assert!(seen.unwrap().refunds.is_empty());
    let anyone = orders::order(&store, &Acting::Staff, &order.order_id).await;
    assert_eq!(anyone.unwrap().order_id, order.order_id);
    let refund = RefundRequest {
        acting: as_customer("ann"),
        ..refund
    };
    created(orders::refund(&store, &RecordingQueue::default(), &refund).await);
}

#[tokio::test]
async fn while_a_campaign_runs_customers_buy_its_skus_only_through_it() {
    let store = stocked(&[("tea", 10, 1), ("cup", 10, 1)]).await;
    let sale = campaign_id("sale");
    campaigns::put(&store, &sale, &terms(&["tea"], 3), now())
        .await
        .unwrap();
    let ann = as_customer("ann");
    let e = refused(
        holds::reserve(
            &store,
            &StockViews::default(),
            hold_as(ann.clone(), &[("cup", 1), ("tea", 1)]),
        )
        .await,
    );
    match e {
        Error::CampaignRequired { campaign, sku: of } => {
            assert_eq!((campaign, of), (sale.clone(), sku("tea")));
        }
        other => panic!("{other:?}"),
    }
    let one_shot = super::orders::NewOrder {
        acting: ann.clone(),
        ..order_for(Source::Stock(lines(&[("tea", 1)])), now())
    };
    let e = refused(orders::place(&store, &StockViews::default(), one_shot).await);
    assert!(matches!(e, Error::CampaignRequired { .. }), "{e:?}");
    assert_eq!(counters(&store, "tea").await, (10, 0, 0));

    // Through the campaign, or a sku it does not sell, or staff: fine.
    let through = NewHold {
        campaign_id: Some(sale.clone()),
        ..hold_as(ann.clone(), &[("tea", 1)])
    };
    placed(&store, through).await;
    placed(&store, hold_as(ann.clone(), &[("cup", 1)])).await;
    created(
        orders::place(
            &store,
            &StockViews::default(),
            order_for(Source::Stock(lines(&[("tea", 1)])), now()),
        )
        .await,
    );

    // Before it starts and once it ends, the sku sells as usual.
    for at in [
        now().plus(3600),
        Timestamp::parse("2026-11-22T08:59:59Z").unwrap(),
    ] {
        let request = NewHold {
            at,
            ..hold_as(ann.clone(), &[("tea", 1)])
        };
        placed(&store, request).await;
    }
}

#[tokio::test]
async fn a_sku_taken_out_of_a_campaign_sells_without_it_again() {
    let store = stocked(&[("tea", 10, 1), ("cup", 10, 1)]).await;
    let sale = campaign_id("sale");
    campaigns::put(&store, &sale, &terms(&["tea", "cup"], 3), now())
        .await
        .unwrap();
    campaigns::put(&store, &sale, &terms(&["cup"], 3), later(1))
        .await
        .unwrap();
    placed(&store, hold_as(as_customer("ann"), &[("tea", 1)])).await;
    let e = refused(
        holds::reserve(
            &store,
            &StockViews::default(),
            hold_as(as_customer("ann"), &[("cup", 1)]),
        )
        .await,
    );
    assert!(matches!(e, Error::CampaignRequired { .. }), "{e:?}");
}
