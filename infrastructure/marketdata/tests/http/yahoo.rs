//! The Yahoo-chart-compatible provider against recorded payloads: Hong Kong
//! and US symbols, `null` entries, chart errors.

use chrono::{DateTime, Duration, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::BarInterval;
use ordermon_domain::ports::{MarketDataError, MarketDataProvider};
use ordermon_marketdata::{ProviderKind, build};
use rust_decimal_macros::dec;

use crate::support::{Reply, Server, config};

fn id(text: &str) -> InstrumentId {
    InstrumentId::new(text).unwrap()
}

/// 2024-06-17 09:30 HKT, the first bar of the fixture.
fn open_hkt() -> DateTime<Utc> {
    DateTime::from_timestamp(1_718_587_800, 0).unwrap()
}

#[tokio::test]
async fn hong_kong_bars_skip_nulls_and_keep_exact_prices() {
    let server = Server::start(|_, _| Reply::fixture("yahoo_chart_0700_hk_1m.json")).await;
    let p = build(&config(ProviderKind::Yahoo, &server.url), None).unwrap();
    let from = open_hkt();
    let bars = p
        .bars(
            &id("0700.HKEX"),
            BarInterval::M1,
            from,
            from + Duration::minutes(30),
            1000,
        )
        .await
        .unwrap();
    // 30 minutes, four of them null (no trades, and the forming minute).
    assert_eq!(bars.len(), 26);
    assert_eq!(bars[0].open_time, from);
    assert!(bars.iter().all(|b| b.instrument_id == id("0700.HKEX")));
    assert!(
        !bars
            .iter()
            .any(|b| b.open_time == from + Duration::minutes(7))
    );
    // 368.20001220703125 on the wire, 368.2 on the exchange (priceHint 3).
    assert_eq!(bars[0].open.get(), dec!(368.2));
    for b in &bars {
        for px in [b.open, b.high, b.low, b.close] {
            assert_eq!(px.get().scale(), px.get().normalize().scale());
            assert!(
                (px.get() * dec!(5)).fract().is_zero(),
                "{px} is on the 0.2 tick"
            );
        }
        assert!(b.low.get() <= b.open.get() && b.open.get() <= b.high.get());
    }
    let hit = &server.hits()[0];
    assert_eq!(hit.path, "/v8/finance/chart/0700.HK");
    assert_eq!(hit.query["interval"], "1m");
    assert_eq!(hit.query["period1"], from.timestamp().to_string());
    assert_eq!(
        hit.query["period2"],
        (from + Duration::minutes(30)).timestamp().to_string()
    );

    let limited = p
        .bars(
            &id("0700.HKEX"),
            BarInterval::M1,
            from + Duration::minutes(5),
            from + Duration::minutes(12),
            3,
        )
        .await
        .unwrap();
    let minutes: Vec<i64> = limited
        .iter()
        .map(|b| (b.open_time - from).num_minutes())
        .collect();
    assert_eq!(minutes, vec![5, 6, 9]);
}

#[tokio::test]
async fn quotes_come_from_the_chart_meta() {
    let server = Server::start(|hit, _| {
        if hit.path.ends_with("/AAPL") {
            Reply::fixture("yahoo_chart_aapl_1d.json")
        } else {
            Reply::fixture("yahoo_chart_0700_hk_1m.json")
        }
    })
    .await;
    let p = build(&config(ProviderKind::Yahoo, &server.url), None).unwrap();
    let tencent = p.quote(&id("0700.HKEX")).await.unwrap();
    assert_eq!(
        (tencent.bid.get(), tencent.ask.get()),
        (dec!(367.8), dec!(367.8))
    );
    assert_eq!(tencent.ts.timestamp(), 1_718_589_540);
    let apple = p.quote(&id("AAPL.XNAS")).await.unwrap();
    assert_eq!(apple.bid.get(), dec!(216.67));
    assert_eq!(p.name(), "yahoo");
    let paths: Vec<String> = server.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(
        paths,
        vec!["/v8/finance/chart/0700.HK", "/v8/finance/chart/AAPL"]
    );
    assert_eq!(server.hits()[0].query["range"], "1d");
    assert!(!p.lists_instruments());
    assert!(matches!(
        p.instruments().await,
        Err(MarketDataError::Refused(_))
    ));
}

#[tokio::test]
async fn chart_errors_are_typed() {
    let server = Server::start(|hit, _| {
        if hit.path.ends_with("/NOPE") {
            Reply::fixture("yahoo_error_not_found.json").status(404)
        } else if hit.path.ends_with("/MSFT") {
            // A 200 carrying the error object, as some gateways answer.
            Reply::fixture("yahoo_error_not_found.json")
        } else {
            Reply::fixture("yahoo_error_bad_interval.json").status(400)
        }
    })
    .await;
    let p = build(&config(ProviderKind::Yahoo, &server.url), None).unwrap();
    let nope = id("NOPE.XNAS");
    assert_eq!(
        p.quote(&nope).await,
        Err(MarketDataError::UnknownInstrument(nope))
    );
    let msft = id("MSFT.XNAS");
    assert_eq!(
        p.quote(&msft).await,
        Err(MarketDataError::UnknownInstrument(msft))
    );
    let e = p.quote(&id("0005.HKEX")).await.unwrap_err();
    assert!(
        matches!(e, MarketDataError::Refused(ref m) if m.contains("Bad Request")),
        "{e:?}"
    );
    assert_eq!(server.count(), 3, "no retries for 404 or 400");
    let unmapped = id("BTCUSDT.BINANCE");
    assert_eq!(
        p.quote(&unmapped).await,
        Err(MarketDataError::UnknownInstrument(unmapped))
    );
    assert_eq!(server.count(), 3);

    let server = Server::start(|_, _| Reply::json(r#"{"chart":{"result":[],"error":null}}"#)).await;
    let p = build(&config(ProviderKind::Yahoo, &server.url), None).unwrap();
    let e = p.quote(&id("0700.HKEX")).await;
    assert!(matches!(e, Err(MarketDataError::BadResponse(_))), "{e:?}");
}

#[tokio::test]
async fn long_minute_ranges_are_asked_in_week_chunks() {
    let server = Server::start(|_, _| Reply::fixture("yahoo_chart_0700_hk_1m.json")).await;
    let p = build(&config(ProviderKind::Yahoo, &server.url), None).unwrap();
    let from = open_hkt();
    let bars = p
        .bars(
            &id("0700.HKEX"),
            BarInterval::M1,
            from,
            from + Duration::days(10),
            10_000,
        )
        .await
        .unwrap();
    // Both chunks answer the same fixture; its bars are kept once.
    assert_eq!(bars.len(), 26);
    let periods: Vec<(String, String)> = server
        .hits()
        .iter()
        .map(|h| (h.query["period1"].clone(), h.query["period2"].clone()))
        .collect();
    let week = (from + Duration::days(7)).timestamp().to_string();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0], (from.timestamp().to_string(), week.clone()));
    assert_eq!(periods[1].0, week);
}
