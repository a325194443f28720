//! What the venue answers at once: acks, taker fills, rejects, IOC/FOK, latency.

use std::collections::HashSet;
use std::time::Duration;

use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::order::{OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ExecutionReportKind, ExecutionVenue, VenueError};
use rust_decimal_macros::dec;

use super::{Harness, PaperConfig, es_id, fill, kinds, reason};

#[tokio::test(start_paused = true)]
async fn market_orders_fill_at_the_touch_plus_slippage() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let buy = h.order(Side::Buy, OrderType::Market, dec!(10)).build();
    let reports = h.submit(&buy).await;
    assert_eq!(kinds(&reports), ["accepted", "fill"]);
    assert_eq!(
        reports[0].kind,
        ExecutionReportKind::Accepted {
            venue_order_id: Some("P-1".to_owned())
        }
    );
    // 100.00 + 1 bp = 100.01, taker.
    assert_eq!(
        fill(&reports[1]),
        (dec!(10), dec!(100.01), LiquiditySide::Taker)
    );
    let ExecutionReportKind::Fill {
        commission,
        trade_id,
        ..
    } = &reports[1].kind
    else {
        unreachable!()
    };
    assert_eq!(commission.amount, dec!(1.0001)); // 10 × 100.01 × 0.001
    assert_eq!(commission.currency.as_str(), "USD");
    assert_eq!(trade_id.as_str(), "T-1");
    assert_eq!(reports[1].ts_event, super::t0());
    assert_eq!(reports[1].user_id, buy.user_id);

    // 99.99 − 1 bp = 99.980001, rounded down to 99.98 for a sell.
    let sell = h.order(Side::Sell, OrderType::Market, dec!(5)).build();
    let reports = h.submit(&sell).await;
    assert_eq!(
        fill(&reports[1]),
        (dec!(5), dec!(99.98), LiquiditySide::Taker)
    );
    assert_eq!(h.venue.working_orders(), 0);
    h.quiet().await; // the broadcast of the same quote fills nothing twice
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn market_order_without_a_quote_is_rejected() {
    let mut h = Harness::default();
    let order = h.order(Side::Buy, OrderType::Market, dec!(1)).build();
    let reports = h.submit(&order).await;
    assert_eq!(kinds(&reports), ["rejected"]);
    assert_eq!(reason(&reports[0]), "no market data");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unknown_instrument_off_tick_and_duplicates_are_refused() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let mut order = h
        .order(Side::Buy, OrderType::Limit, dec!(1))
        .price(dec!(90))
        .build();
    order.instrument_id = "OTHER.SIM".parse().unwrap();
    assert_eq!(reason(&h.submit(&order).await[0]), "unknown instrument");

    let off = h
        .order(Side::Buy, OrderType::Limit, dec!(1))
        .price(dec!(90.005))
        .build();
    assert_eq!(reason(&h.submit(&off).await[0]), "price not on tick");

    let resting = h
        .order(Side::Buy, OrderType::Limit, dec!(1))
        .price(dec!(90))
        .build();
    assert_eq!(kinds(&h.submit(&resting).await), ["accepted"]);
    assert!(matches!(
        h.venue.submit(&resting).await,
        Err(VenueError::Refused(_))
    ));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn crossing_limit_fills_at_the_better_quote_price() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let buy = h
        .order(Side::Buy, OrderType::Limit, dec!(3))
        .price(dec!(101.00))
        .build();
    let reports = h.submit(&buy).await;
    assert_eq!(kinds(&reports), ["accepted", "fill"]);
    assert_eq!(
        fill(&reports[1]),
        (dec!(3), dec!(100.00), LiquiditySide::Taker)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn ioc_fills_what_is_there_and_cancels_the_rest() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(400));
    let ioc = h
        .order(Side::Buy, OrderType::Market, dec!(1500))
        .tif(TimeInForce::Ioc)
        .build();
    let reports = h.submit(&ioc).await;
    assert_eq!(kinds(&reports), ["accepted", "fill", "canceled"]);
    assert_eq!(fill(&reports[1]).0, dec!(400));

    let away = h
        .order(Side::Sell, OrderType::Limit, dec!(10))
        .price(dec!(100.50))
        .tif(TimeInForce::Ioc)
        .build();
    assert_eq!(kinds(&h.submit(&away).await), ["accepted", "canceled"]);
    assert_eq!(h.venue.working_orders(), 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn fok_fills_all_or_nothing() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let too_big = h
        .order(Side::Buy, OrderType::Market, dec!(1500))
        .tif(TimeInForce::Fok)
        .build();
    assert_eq!(kinds(&h.submit(&too_big).await), ["accepted", "canceled"]);

    let fits = h
        .order(Side::Buy, OrderType::Limit, dec!(800))
        .price(dec!(100.00))
        .tif(TimeInForce::Fok)
        .build();
    let reports = h.submit(&fits).await;
    assert_eq!(kinds(&reports), ["accepted", "fill"]);
    assert_eq!(fill(&reports[1]).0, dec!(800));

    // Only 200 are left on this quote now.
    let rest = h
        .order(Side::Buy, OrderType::Market, dec!(300))
        .tif(TimeInForce::Fok)
        .build();
    assert_eq!(kinds(&h.submit(&rest).await), ["accepted", "canceled"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn post_only_that_would_cross_is_rejected() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let crossing = h
        .order(Side::Buy, OrderType::Limit, dec!(5))
        .price(dec!(100.00))
        .post_only()
        .build();
    let reports = h.submit(&crossing).await;
    assert_eq!(kinds(&reports), ["rejected"]);
    assert_eq!(reason(&reports[0]), "post_only would cross");

    let passive = h
        .order(Side::Buy, OrderType::Limit, dec!(5))
        .price(dec!(99.99))
        .post_only()
        .build();
    assert_eq!(kinds(&h.submit(&passive).await), ["accepted"]);
    assert!(h.venue.is_working(&passive.id));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn trade_ids_are_unique_and_commission_is_on_notional() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let mut ids = HashSet::new();
    for _ in 0..5 {
        let o = h
            .order(Side::Sell, OrderType::Limit, dec!(2))
            .price(dec!(99.00))
            .build();
        for r in h.submit(&o).await {
            if let ExecutionReportKind::Fill {
                trade_id,
                commission,
                ..
            } = r.kind
            {
                assert_eq!(commission.amount, dec!(0.19998)); // 2 × 99.99 × 0.001
                assert!(ids.insert(trade_id));
            }
        }
    }
    assert_eq!(ids.len(), 5);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_latency_reports_arrive_through_the_sink_in_order() {
    let mut h = Harness::new(PaperConfig {
        latency_ms: 50,
        ..PaperConfig::default()
    });
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let market = h.order(Side::Buy, OrderType::Market, dec!(10)).build();
    let resting = h
        .order(Side::Buy, OrderType::Limit, dec!(10))
        .price(dec!(90))
        .build();
    let started = tokio::time::Instant::now();
    assert!(h.venue.submit(&market).await.unwrap().is_empty());
    assert!(h.venue.submit(&resting).await.unwrap().is_empty());
    assert!(h.venue.cancel(&resting).await.unwrap().is_empty());
    assert!(h.rx.try_recv().is_err());

    let accepted = h.next().await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(accepted.order_id, market.id);
    let mut got = vec![accepted];
    for _ in 0..3 {
        got.push(h.next().await);
    }
    assert_eq!(kinds(&got), ["accepted", "fill", "accepted", "canceled"]);
    assert_eq!(got[3].order_id, resting.id);
    h.quiet().await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn commission_uses_the_multiplier_and_slippage_the_tick() {
    let mut h = Harness::default();
    h.quote_of(es_id(), dec!(5000.00), dec!(5000.25), dec!(10), dec!(10));
    let mut order = h.order(Side::Buy, OrderType::Market, dec!(2)).build();
    order.instrument_id = es_id();
    let reports = h.submit(&order).await;
    // 5000.25 + 1 bp = 5000.750025, up to the next quarter point: 5001.00.
    assert_eq!(
        fill(&reports[1]),
        (dec!(2), dec!(5001.00), LiquiditySide::Taker)
    );
    let ExecutionReportKind::Fill { commission, .. } = &reports[1].kind else {
        unreachable!()
    };
    assert_eq!(commission.amount, dec!(500.1)); // 2 × 5001.00 × 50 × 0.001
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stop_already_through_triggers_on_arrival() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let stop = h
        .order(Side::Sell, OrderType::StopLimit, dec!(10))
        .trigger(dec!(100.50))
        .price(dec!(99.90))
        .build();
    let reports = h.submit(&stop).await;
    assert_eq!(kinds(&reports), ["accepted", "triggered", "fill"]);
    // Triggered on arrival it trades as a taker at the bid, better than its limit.
    assert_eq!(
        fill(&reports[2]),
        (dec!(10), dec!(99.99), LiquiditySide::Taker)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_ioc_stop_waits_for_its_trigger_then_cancels_the_rest() {
    let mut h = Harness::default();
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let stop = h
        .order(Side::Buy, OrderType::StopMarket, dec!(50))
        .trigger(dec!(100.10))
        .tif(TimeInForce::Ioc)
        .build();
    assert_eq!(kinds(&h.submit(&stop).await), ["accepted"]);
    h.quote(dec!(100.09), dec!(100.10), dec!(1000), dec!(20));
    let got = [h.next().await, h.next().await, h.next().await];
    assert_eq!(kinds(&got), ["triggered", "fill", "canceled"]);
    assert_eq!(fill(&got[1]).0, dec!(20));
    assert_eq!(h.venue.working_orders(), 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stale_quotes_are_not_traded_on() {
    let mut h = Harness::new(PaperConfig {
        max_quote_age_ms: 5_000,
        ..PaperConfig::default()
    });
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    // A buy limit below the touch rests on the fresh quote.
    let limit = h
        .order(Side::Buy, OrderType::Limit, dec!(3))
        .price(dec!(100.00))
        .build();
    h.clock.advance(chrono::Duration::seconds(6));
    // Six seconds later the only quote is stale: a market order is refused
    // with its own reason, a crossing limit order rests instead of filling.
    let market = h.order(Side::Buy, OrderType::Market, dec!(1)).build();
    let reports = h.submit(&market).await;
    assert_eq!(kinds(&reports), ["rejected"]);
    assert_eq!(reason(&reports[0]), super::super::MARKET_DATA_STALE);
    let reports = h.submit(&limit).await;
    assert_eq!(kinds(&reports), ["accepted"]);
    assert_eq!(h.venue.working_orders(), 1);
    // A fresh quote fills it.
    h.quote(dec!(99.99), dec!(100.00), dec!(1000), dec!(1000));
    let report = h.next().await;
    assert_eq!(fill(&report), (dec!(3), dec!(100.00), LiquiditySide::Maker));
    h.stop().await;
}
