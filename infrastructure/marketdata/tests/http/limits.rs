//! The weight budget as the server sees it: one budget for every caller of a
//! provider, never more weight in any window than configured, and the
//! exchange's used-weight report pausing requests.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::BarInterval;
use ordermon_domain::ports::{MarketDataError, MarketDataProvider};
use ordermon_marketdata::{ProviderKind, build};

use crate::support::{Hit, Reply, Server, config};

fn weight(hit: &Hit) -> u32 {
    match hit.path.as_str() {
        "/api/v3/exchangeInfo" => 4,
        "/api/v3/klines" | "/api/v3/ticker/bookTicker" => 2,
        other => panic!("unexpected {other}"),
    }
}

fn answer(hit: &Hit) -> Reply {
    match hit.path.as_str() {
        "/api/v3/exchangeInfo" => Reply::fixture("binance_exchange_info.json"),
        "/api/v3/klines" => Reply::fixture("binance_klines_btcusdt_1m.json"),
        _ => Reply::json(format!(
            r#"{{"symbol":"{}","bidPrice":"1.00","bidQty":"1","askPrice":"1.01","askQty":"1"}}"#,
            hit.query["symbol"]
        )),
    }
}

/// The largest weight the server received in any window of `window`.
fn busiest(hits: &[Hit], window: Duration) -> u32 {
    let mut hits: Vec<&Hit> = hits.iter().collect();
    hits.sort_by_key(|h| h.at);
    (0..hits.len())
        .map(|i| {
            hits[i..]
                .iter()
                .take_while(|h| h.at - hits[i].at < window)
                .map(|h| weight(h))
                .sum()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn every_caller_shares_one_budget_that_no_second_exceeds() {
    let server = Server::start(|hit, _| answer(hit)).await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.limits.per_second = Some(10);
    c.limits.per_minute = Some(10_000);
    c.weights.insert("exchange_info".into(), 4);
    c.call_timeout = Duration::from_millis(2500);
    let p = build(&c, None).unwrap();

    // Quotes of three instruments, bars and the catalog, all at once, from
    // clones of one provider.
    let symbols = ["BTCUSDT.BINANCE", "ETHUSDT.BINANCE", "BNBUSDT.BINANCE"];
    let from = Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap();
    let mut calls = Vec::new();
    for i in 0..36 {
        let p = p.clone();
        let id = InstrumentId::new(symbols[i % 3]).unwrap();
        calls.push(tokio::spawn(async move {
            match i % 6 {
                0 => p
                    .bars(
                        &id,
                        BarInterval::M1,
                        from,
                        from + chrono::Duration::minutes(10),
                        10,
                    )
                    .await
                    .map(|_| ()),
                1 => p.instruments().await.map(|_| ()),
                _ => p.quote(&id).await.map(|_| ()),
            }
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => ok += 1,
            Err(MarketDataError::RateLimited {
                retry_after_secs: Some(_),
            }) => limited += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    let hits = server.hits();
    assert_eq!(ok, hits.len(), "every request admitted was answered");
    assert!(limited > 0, "36 calls do not fit 2.5 s of the budget");
    let total: u32 = hits.iter().map(weight).sum();
    assert!(
        total > 10,
        "the run spans several seconds of budget ({total})"
    );
    // Arrival times carry a little scheduling noise: look at windows a hair
    // shorter than a second.
    let worst = busiest(&hits, Duration::from_millis(970));
    assert!(worst <= 10, "{worst} weight within one second");
}

#[tokio::test]
async fn the_minute_budget_holds_with_a_generous_second_budget() {
    let server = Server::start(|hit, _| answer(hit)).await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.limits.per_second = Some(1000);
    c.limits.per_minute = Some(12);
    c.weights.insert("exchange_info".into(), 4);
    c.call_timeout = Duration::from_millis(800);
    let p = build(&c, None).unwrap();
    let btc = InstrumentId::new("BTCUSDT.BINANCE").unwrap();
    let mut results = Vec::new();
    for _ in 0..10 {
        results.push(p.quote(&btc).await);
    }
    let hits = server.hits();
    let total: u32 = hits.iter().map(weight).sum();
    assert!(total <= 12, "{total} weight within a minute");
    assert!(!hits.is_empty());
    // The refusals say how long to wait.
    assert!(results.iter().any(
        |r| matches!(r, Err(MarketDataError::RateLimited { retry_after_secs: Some(s) }) if *s >= 1)
    ));
}

#[tokio::test]
async fn a_used_weight_near_the_limit_pauses_until_the_minute_rolls() {
    let server = Server::start(|hit, n| {
        let used = if n == 0 { "1200" } else { "5950" };
        answer(hit).header("X-MBX-USED-WEIGHT-1M", used)
    })
    .await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.call_timeout = Duration::from_millis(400);
    let p = build(&c, None).unwrap();
    let btc = InstrumentId::new("BTCUSDT.BINANCE").unwrap();
    p.quote(&btc).await.unwrap();
    assert_eq!(p.health().used_weight, Some(1200));
    assert_eq!(p.health().paused, None, "1200 of 6000 is fine");
    p.quote(&btc).await.unwrap();
    let health = p.health();
    assert_eq!(health.used_weight, Some(5950));
    assert_eq!(health.paused.as_deref(), Some("used_weight"));
    let pause = health.paused_for_ms.unwrap();
    assert!(pause <= 60_250, "{pause}");
    if pause > 600 {
        // Unless the minute is about to roll, the next call is refused
        // without a request.
        let e = p.quote(&btc).await.unwrap_err();
        assert!(
            matches!(
                e,
                MarketDataError::RateLimited {
                    retry_after_secs: Some(_)
                }
            ),
            "{e:?}"
        );
        assert_eq!(server.count(), 2);
    }
}
