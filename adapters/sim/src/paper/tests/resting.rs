//! What happens to working orders as quotes and time move: resting fills, stops,
//! expiries, cancels and modifications.

use std::time::Duration;

use chrono::TimeDelta;
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::order::{OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ExecutionReportKind, ExecutionVenue, OrderChange};
use ordermon_domain::values::Quantity;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::{Harness, fill, kind, kinds, price, reason};

#[tokio::test(start_paused = true)]
async fn limit_buy_rests_then_fills_at_its_limit_when_the_ask_reaches_it() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let buy = h
        .order(Side::Buy, OrderType::Limit, dec!(10))
        .price(dec!(99.50))
        .build();
    assert_eq!(kinds(&h.submit(&buy).await), ["accepted"]);

    h.quote(dec!(99.59), dec!(99.60), dec!(1000), dec!(1000));
    h.quiet().await;
    // The ask gaps through the limit: the resting order trades at its limit, as maker.
    h.quote(dec!(99.40), dec!(99.45), dec!(1000), dec!(1000));
    let r = h.next().await;
    assert_eq!(r.order_id, buy.id);
    assert_eq!(fill(&r), (dec!(10), dec!(99.50), LiquiditySide::Maker));
    assert!(!h.venue.is_working(&buy.id));
    h.quiet().await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn large_orders_fill_across_quotes_bounded_by_size() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(600), dec!(1000));
    let market = h.order(Side::Buy, OrderType::Market, dec!(2500)).build();
    let reports = h.submit(&market).await;
    assert_eq!(kinds(&reports), ["accepted", "fill"]);
    assert_eq!(fill(&reports[1]).0, dec!(1000));
    // The quote's ask size is used up: a second buyer on it gets nothing yet.
    let late = h.order(Side::Buy, OrderType::Market, dec!(5)).build();
    assert_eq!(kinds(&h.submit(&late).await), ["accepted"]);
    h.quiet().await;

    // The earlier order has time priority on the next quote.
    h.clock.advance(TimeDelta::seconds(1));
    h.quote(dec!(100.00), dec!(100.01), dec!(600), dec!(1000));
    let a = h.next().await;
    assert_eq!((a.order_id, fill(&a).0), (market.id, dec!(1000)));
    h.quiet().await;
    h.clock.advance(TimeDelta::seconds(1));
    h.quote(dec!(100.00), dec!(100.01), dec!(600), dec!(1000));
    let (a, b) = (h.next().await, h.next().await);
    assert_eq!((a.order_id, fill(&a).0), (market.id, dec!(500)));
    assert_eq!((b.order_id, fill(&b).0), (late.id, dec!(5)));
    assert_eq!(h.venue.working_orders(), 0);

    // A resting sell limit is filled by the bid size, quote after quote.
    let sell = h
        .order(Side::Sell, OrderType::Limit, dec!(1500))
        .price(dec!(100.50))
        .build();
    assert_eq!(kinds(&h.submit(&sell).await), ["accepted"]);
    for (k, expected) in [dec!(600), dec!(600), dec!(300)].into_iter().enumerate() {
        h.clock.advance(TimeDelta::seconds(1));
        let bid = dec!(100.50) + dec!(0.01) * rust_decimal::Decimal::from(k);
        h.quote(bid, dec!(100.60), dec!(600), dec!(600));
        let r = h.next().await;
        assert_eq!(fill(&r), (expected, dec!(100.50), LiquiditySide::Maker));
    }
    h.quiet().await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_market_triggers_and_fills_like_a_market_order() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let stop = h
        .order(Side::Buy, OrderType::StopMarket, dec!(10))
        .trigger(dec!(101.00))
        .build();
    assert_eq!(kinds(&h.submit(&stop).await), ["accepted"]);
    h.quote(dec!(100.49), dec!(100.50), dec!(1000), dec!(1000));
    h.quiet().await;
    h.quote(dec!(100.99), dec!(101.00), dec!(1000), dec!(1000));
    let (t, f) = (h.next().await, h.next().await);
    assert_eq!(t.kind, ExecutionReportKind::Triggered);
    // 101.00 + 1 bp = 101.0101, rounded up to the tick.
    assert_eq!(fill(&f), (dec!(10), dec!(101.02), LiquiditySide::Taker));

    let sell_stop = h
        .order(Side::Sell, OrderType::StopMarket, dec!(4))
        .trigger(dec!(99.00))
        .build();
    assert_eq!(kinds(&h.submit(&sell_stop).await), ["accepted"]);
    h.quote(dec!(98.90), dec!(98.91), dec!(1000), dec!(1000));
    assert_eq!(kind(&h.next().await), "triggered");
    assert_eq!(fill(&h.next().await).1, dec!(98.89)); // 98.90 − 1 bp, down to tick
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_limit_triggers_then_rests_as_a_limit() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let stop = h
        .order(Side::Buy, OrderType::StopLimit, dec!(10))
        .trigger(dec!(101.00))
        .price(dec!(100.50))
        .build();
    assert_eq!(kinds(&h.submit(&stop).await), ["accepted"]);
    h.quote(dec!(101.00), dec!(101.05), dec!(1000), dec!(1000));
    assert_eq!(kind(&h.next().await), "triggered");
    h.quiet().await;
    assert!(h.venue.is_working(&stop.id));
    // Once triggered, its trigger can no longer change.
    let change = OrderChange {
        trigger_price: Some(price(dec!(102))),
        ..OrderChange::default()
    };
    let refused = h.venue.modify(&stop, &change).await.unwrap();
    assert_eq!(reason(&refused[0]), "the stop has already triggered");

    h.quote(dec!(100.45), dec!(100.50), dec!(1000), dec!(1000));
    assert_eq!(
        fill(&h.next().await),
        (dec!(10), dec!(100.50), LiquiditySide::Maker)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn day_orders_expire_at_utc_midnight_and_gtd_at_expire_at() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let day = h
        .order(Side::Buy, OrderType::Limit, dec!(1))
        .price(dec!(90))
        .tif(TimeInForce::Day)
        .build();
    let gtd_at = super::t0() + TimeDelta::minutes(30);
    let gtd = h
        .order(Side::Sell, OrderType::Limit, dec!(1))
        .price(dec!(110))
        .expire_at(gtd_at)
        .build();
    let gtc = h
        .order(Side::Sell, OrderType::Limit, dec!(1))
        .price(dec!(120))
        .build();
    for o in [&day, &gtd, &gtc] {
        assert_eq!(kinds(&h.submit(o).await), ["accepted"]);
    }

    // GTD: caught by the periodic check, with no quote arriving.
    h.clock.set(gtd_at);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = h.next().await;
    assert_eq!((r.order_id, kind(&r)), (gtd.id, "expired"));
    assert_eq!(r.ts_event, gtd_at);

    // DAY: still working one second before midnight, expired by the next quote after.
    h.clock
        .set(super::t0() + TimeDelta::hours(14) - TimeDelta::seconds(1));
    h.quote(dec!(99.98), dec!(99.99), dec!(1000), dec!(1000));
    h.quiet().await;
    h.clock.advance(TimeDelta::seconds(1));
    h.quote(dec!(99.97), dec!(99.98), dec!(1000), dec!(1000));
    let r = h.next().await;
    assert_eq!((r.order_id, kind(&r)), (day.id, "expired"));
    h.quiet().await;
    assert!(h.venue.is_working(&gtc.id));
    assert_eq!(h.venue.working_orders(), 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn cancel_of_working_and_of_unknown_orders() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let resting = h
        .order(Side::Buy, OrderType::Limit, dec!(10))
        .price(dec!(95))
        .build();
    h.submit(&resting).await;
    let reports = h.venue.cancel(&resting).await.unwrap();
    assert_eq!(kinds(&reports), ["canceled"]);
    assert_eq!(reports[0].order_id, resting.id);

    let again = h.venue.cancel(&resting).await.unwrap();
    assert_eq!(kinds(&again), ["cancel_rejected"]);
    assert_eq!(reason(&again[0]), "order not working");

    let filled = h.order(Side::Buy, OrderType::Market, dec!(1)).build();
    h.submit(&filled).await;
    assert_eq!(
        reason(&h.venue.cancel(&filled).await.unwrap()[0]),
        "order not working"
    );

    // A canceled order no longer fills.
    h.quote(dec!(94.99), dec!(95.00), dec!(1000), dec!(1000));
    h.quiet().await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn modify_then_fill_at_the_new_price() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let buy = h
        .order(Side::Buy, OrderType::Limit, dec!(10))
        .price(dec!(99.00))
        .build();
    h.submit(&buy).await;

    let change = OrderChange {
        price: Some(price(dec!(99.50))),
        quantity: Some(Quantity::new(dec!(20)).unwrap()),
        ..OrderChange::default()
    };
    let reports = h.venue.modify(&buy, &change).await.unwrap();
    assert_eq!(reports[0].kind, ExecutionReportKind::Updated { change });
    assert_eq!(reports.len(), 1);

    h.quote(dec!(99.49), dec!(99.50), dec!(1000), dec!(5));
    assert_eq!(
        fill(&h.next().await),
        (dec!(5), dec!(99.50), LiquiditySide::Maker)
    );

    // Quantity must stay above what already filled; stops-only fields are refused.
    let shrink = OrderChange {
        quantity: Some(Quantity::new(dec!(5)).unwrap()),
        ..OrderChange::default()
    };
    let r = h.venue.modify(&buy, &shrink).await.unwrap();
    assert!(
        reason(&r[0]).starts_with("quantity must stay above"),
        "{r:?}"
    );
    let trigger = OrderChange {
        trigger_price: Some(price(dec!(1))),
        ..OrderChange::default()
    };
    let r = h.venue.modify(&buy, &trigger).await.unwrap();
    assert_eq!(reason(&r[0]), "this order type has no trigger_price");
    let nothing = h.venue.modify(&buy, &OrderChange::default()).await.unwrap();
    assert_eq!(reason(&nothing[0]), "nothing to change");

    // Raising the limit through the ask trades at once, as taker at the quote.
    let through = OrderChange {
        price: Some(price(dec!(100.00))),
        ..OrderChange::default()
    };
    h.clock.advance(TimeDelta::seconds(1));
    h.quote(dec!(99.60), dec!(99.70), dec!(1000), dec!(1000));
    h.quiet().await;
    let reports = h.venue.modify(&buy, &through).await.unwrap();
    assert_eq!(kinds(&reports), ["updated", "fill"]);
    assert_eq!(
        fill(&reports[1]),
        (dec!(15), dec!(99.70), LiquiditySide::Taker)
    );

    let gone = h.venue.modify(&buy, &through).await.unwrap();
    assert_eq!(reason(&gone[0]), "order not working");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn post_only_modify_that_would_cross_is_refused() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let maker = h
        .order(Side::Sell, OrderType::Limit, dec!(1))
        .price(dec!(100.10))
        .post_only()
        .build();
    h.submit(&maker).await;
    let change = OrderChange {
        price: Some(price(dec!(99.99))),
        ..OrderChange::default()
    };
    let r = h.venue.modify(&maker, &change).await.unwrap();
    assert_eq!(reason(&r[0]), "post_only would cross");
    assert!(h.venue.is_working(&maker.id));
    h.stop().await;
}

/// Reduce-only is honoured when the order fills, not only when it is sent:
/// a resting reduce-only sell fills no further than the long position left
/// by then, and is canceled once there is nothing to reduce.
#[tokio::test(start_paused = true)]
async fn reduce_only_fills_no_further_than_flat() {
    let mut h = Harness::default();
    let alice = ordermon_domain::ids::UserId::new("alice").unwrap();
    let acme = super::acme_id();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    // Long 10 when the take-profit is sent.
    h.venue.position_changed(&alice, &acme, dec!(10), None);
    let take_profit = h
        .order(Side::Sell, OrderType::Limit, dec!(10))
        .price(dec!(101.00))
        .reduce_only()
        .build();
    assert_eq!(kinds(&h.submit(&take_profit).await), ["accepted"]);
    // Meanwhile a market sell of 6 (not reduce-only) fills at the venue; the
    // owner has not applied it yet.
    let sell = h.order(Side::Sell, OrderType::Market, dec!(6)).build();
    let reports = h.submit(&sell).await;
    assert_eq!(kinds(&reports), ["accepted", "fill"]);
    // The bid reaches the take-profit: only the 4 still long fill, the rest is
    // canceled instead of opening a short.
    h.clock.advance(TimeDelta::seconds(1));
    h.quote(dec!(101.00), dec!(101.01), dec!(1000), dec!(1000));
    let (a, b) = (h.next().await, h.next().await);
    assert_eq!((a.order_id, fill(&a).0), (take_profit.id, dec!(4)));
    assert_eq!((b.order_id, kind(&b)), (take_profit.id, "canceled"));
    assert!(!h.venue.is_working(&take_profit.id));
    h.quiet().await;

    // Flat (the owner applied everything): a reduce-only order that meets the
    // market fills nothing and is canceled.
    let trade = |r: &ordermon_domain::ports::ExecutionReport| match &r.kind {
        ExecutionReportKind::Fill { trade_id, .. } => trade_id.clone(),
        other => panic!("expected a fill, got {other:?}"),
    };
    h.venue
        .position_changed(&alice, &acme, dec!(4), Some(&trade(&reports[1])));
    h.venue
        .position_changed(&alice, &acme, Decimal::ZERO, Some(&trade(&a)));
    let stray = h
        .order(Side::Sell, OrderType::Market, dec!(5))
        .reduce_only()
        .build();
    assert_eq!(kinds(&h.submit(&stray).await), ["accepted", "canceled"]);
    // Short 3: a reduce-only buy of 5 fills 3.
    h.venue.position_changed(&alice, &acme, dec!(-3), None);
    let cover = h
        .order(Side::Buy, OrderType::Market, dec!(5))
        .reduce_only()
        .build();
    let reports = h.submit(&cover).await;
    assert_eq!(kinds(&reports), ["accepted", "fill", "canceled"]);
    assert_eq!(fill(&reports[1]).0, dec!(3));
    h.stop().await;
}

/// After a restart the venue's book is empty: `adopt` takes back what the
/// store holds open. An acknowledged order rests again (and fills as makers
/// do), a pending cancel is carried out, a pending modify is refused, an order
/// never acknowledged is handled as new, and an order already working is left
/// alone.
#[tokio::test(start_paused = true)]
async fn adopt_takes_back_what_a_restart_forgot() {
    use ordermon_domain::order::OrderStatus;
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let mut resting = h
        .order(Side::Buy, OrderType::Limit, dec!(10))
        .price(dec!(99.50))
        .build();
    resting.status = OrderStatus::PartiallyFilled;
    resting.filled_qty = Quantity::new(dec!(4)).unwrap();
    let mut cancelling = h
        .order(Side::Buy, OrderType::Limit, dec!(5))
        .price(dec!(98.00))
        .build();
    cancelling.status = OrderStatus::PendingCancel;
    let mut modifying = h
        .order(Side::Buy, OrderType::Limit, dec!(5))
        .price(dec!(97.00))
        .build();
    modifying.status = OrderStatus::PendingUpdate;
    let mut unacked = h
        .order(Side::Buy, OrderType::Limit, dec!(3))
        .price(dec!(96.00))
        .build();
    unacked.status = OrderStatus::Submitted;
    let mut done = h
        .order(Side::Buy, OrderType::Limit, dec!(3))
        .price(dec!(95.00))
        .build();
    done.status = OrderStatus::Filled;
    // Accepted in an instrument the venue no longer trades: it cannot rest.
    let mut gone = h
        .order(Side::Buy, OrderType::Limit, dec!(2))
        .price(dec!(94.00))
        .build();
    gone.status = OrderStatus::Accepted;
    gone.instrument_id = ordermon_domain::ids::InstrumentId::new("GONE.SIM").unwrap();
    let orders = [
        resting.clone(),
        cancelling.clone(),
        modifying.clone(),
        unacked.clone(),
        done.clone(),
        gone.clone(),
    ];

    let adoption = h.venue.adopt(&orders).await.unwrap();
    assert_eq!(adoption.taken, 4);
    assert_eq!(adoption.unknown.len(), 1, "{adoption:?}");
    assert_eq!(adoption.unknown[0].0, gone.id);
    assert!(adoption.unknown[0].1.contains("GONE.SIM"), "{adoption:?}");
    let mut got: Vec<(ordermon_domain::ids::OrderId, &str)> = Vec::new();
    for _ in 0..4 {
        let r = h.next().await;
        got.push((r.order_id, kind(&r)));
    }
    got.sort();
    let mut want = vec![
        (cancelling.id, "canceled"),
        (modifying.id, "modify_rejected"),
        (unacked.id, "accepted"),
        (gone.id, "expired"),
    ];
    want.sort();
    assert_eq!(got, want);
    h.quiet().await;
    assert!(h.venue.is_working(&resting.id) && h.venue.is_working(&modifying.id));
    assert!(!h.venue.is_working(&cancelling.id) && !h.venue.is_working(&done.id));
    // Adopting what is working again changes nothing.
    assert_eq!(
        h.venue
            .adopt(&[resting.clone(), modifying.clone()])
            .await
            .unwrap(),
        ordermon_domain::ports::Adoption::default()
    );
    h.quiet().await;
    // The taken-back order fills what it had left, at its limit.
    h.quote(dec!(99.40), dec!(99.45), dec!(1000), dec!(1000));
    let mut fills = Vec::new();
    for _ in 0..4 {
        let r = h.next().await;
        if r.order_id == resting.id {
            fills.push(fill(&r));
        }
        if !fills.is_empty() {
            break;
        }
    }
    assert_eq!(fills, [(dec!(6), dec!(99.50), LiquiditySide::Maker)]);
    h.stop().await;
}
