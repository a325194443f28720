//! The Binance-compatible provider against recorded payloads.

use chrono::{DateTime, TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::BarInterval;
use ordermon_domain::ports::{MarketDataError, MarketDataProvider};
use ordermon_marketdata::{MarketData, ProviderKind, build};
use rust_decimal_macros::dec;
use secrecy::SecretString;

use crate::support::{Hit, Reply, Server, config};

fn id(text: &str) -> InstrumentId {
    InstrumentId::new(text).unwrap()
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, h, m, 0).unwrap()
}

async fn provider(server: &Server) -> std::sync::Arc<MarketData> {
    build(&config(ProviderKind::Binance, &server.url), None).unwrap()
}

/// Klines generated for any request: one bar per minute from `startTime`,
/// up to `limit` and `endTime` (inclusive), as Binance pages them.
fn klines(hit: &Hit) -> Reply {
    let start: i64 = hit.query["startTime"].parse().unwrap();
    let end: i64 = hit.query["endTime"].parse().unwrap();
    let limit: i64 = hit.query["limit"].parse().unwrap();
    let rows: Vec<String> = (0..limit)
        .map(|i| start - start % 60_000 + i * 60_000)
        .filter(|t| *t >= start && *t <= end)
        .map(|t| {
            let px = 60_000 + (t / 60_000) % 500;
            format!(
                r#"[{t},"{px}.10000000","{px}.50000000","{px}.00000000","{px}.20000000","1.25000000",{},"75000.00000000",42,"0.60000000","36000.00000000","0"]"#,
                t + 59_999
            )
        })
        .collect();
    Reply::json(format!("[{}]", rows.join(",")))
}

#[tokio::test]
async fn quotes_come_from_the_book_ticker() {
    let server = Server::start(|_, _| Reply::fixture("binance_book_ticker_btcusdt.json")).await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.api_key = Some(SecretString::from("binance-api-key-0001"));
    let p = build(&c, None).unwrap();
    let q = p.quote(&id("BTCUSDT.BINANCE")).await.unwrap();
    assert_eq!(q.instrument_id, id("BTCUSDT.BINANCE"));
    assert_eq!((q.bid.get(), q.ask.get()), (dec!(67250.01), dec!(67250.02)));
    assert_eq!(
        (q.bid_size.get(), q.ask_size.get()),
        (dec!(1.52731), dec!(0.40196))
    );
    assert_eq!(p.name(), "binance");
    let hits = server.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, "/api/v3/ticker/bookTicker");
    assert_eq!(hits[0].query["symbol"], "BTCUSDT");
    assert_eq!(hits[0].headers["x-mbx-apikey"], "binance-api-key-0001");
    // `BTC/USDT.BINANCE` is the same symbol.
    let q = p.quote(&id("BTC/USDT.BINANCE")).await.unwrap();
    assert_eq!(q.instrument_id, id("BTC/USDT.BINANCE"));
    assert_eq!(server.hits()[1].query["symbol"], "BTCUSDT");
}

#[tokio::test]
async fn bars_come_from_a_klines_page() {
    let server = Server::start(|_, _| Reply::fixture("binance_klines_btcusdt_1m.json")).await;
    let p = provider(&server).await;
    let bars = p
        .bars(
            &id("BTCUSDT.BINANCE"),
            BarInterval::M1,
            at(12, 0),
            at(12, 10),
            100,
        )
        .await
        .unwrap();
    assert_eq!(bars.len(), 10);
    assert_eq!(bars[0].open_time, at(12, 0));
    assert_eq!(bars[9].open_time, at(12, 9));
    assert_eq!(bars[0].open.get(), dec!(67480));
    assert_eq!(bars[0].high.get(), dec!(67482.26));
    assert_eq!(bars[0].volume, dec!(8.984));
    assert!(bars.windows(2).all(|w| w[0].open_time < w[1].open_time));
    let hit = &server.hits()[0];
    assert_eq!(hit.path, "/api/v3/klines");
    assert_eq!(hit.query["symbol"], "BTCUSDT");
    assert_eq!(hit.query["interval"], "1m");
    assert_eq!(
        hit.query["startTime"],
        at(12, 0).timestamp_millis().to_string()
    );
    // Binance's endTime is inclusive: [from, to) asks up to to - 1 ms.
    assert_eq!(
        hit.query["endTime"],
        (at(12, 10).timestamp_millis() - 1).to_string()
    );
    assert_eq!(hit.query["limit"], "100");

    // The half-open range and the limit are the port's, whatever the page holds.
    let some = p
        .bars(
            &id("BTCUSDT.BINANCE"),
            BarInterval::M1,
            at(12, 2),
            at(12, 5),
            2,
        )
        .await
        .unwrap();
    let times: Vec<_> = some.iter().map(|b| b.open_time).collect();
    assert_eq!(times, vec![at(12, 2), at(12, 3)]);
}

#[tokio::test]
async fn more_than_a_page_of_bars_is_paged() {
    let server = Server::start(|hit, _| klines(hit)).await;
    let p = provider(&server).await;
    let from = at(0, 0);
    // 2500 of 3000 minutes: pages of 1000, 1000 and 500.
    let bars = p
        .bars(
            &id("BTCUSDT.BINANCE"),
            BarInterval::M1,
            from,
            from + chrono::Duration::minutes(3000),
            2500,
        )
        .await
        .unwrap();
    assert_eq!(bars.len(), 2500);
    assert!(
        bars.windows(2)
            .all(|w| w[1].open_time - w[0].open_time == chrono::Duration::minutes(1))
    );
    assert_eq!(bars[0].open_time, from);
    let limits: Vec<_> = server
        .hits()
        .iter()
        .map(|h| h.query["limit"].clone())
        .collect();
    assert_eq!(limits, vec!["1000", "1000", "500"]);
    let starts: Vec<i64> = server
        .hits()
        .iter()
        .map(|h| h.query["startTime"].parse().unwrap())
        .collect();
    assert_eq!(
        starts[1],
        (from + chrono::Duration::minutes(1000)).timestamp_millis()
    );

    // A range shorter than the limit ends with the short page.
    let before = server.count();
    let bars = p
        .bars(
            &id("BTCUSDT.BINANCE"),
            BarInterval::M1,
            from,
            from + chrono::Duration::minutes(1500),
            5000,
        )
        .await
        .unwrap();
    assert_eq!(bars.len(), 1500);
    assert_eq!(server.count() - before, 2);
    assert!(
        p.bars(&id("BTCUSDT.BINANCE"), BarInterval::M1, from, from, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        p.bars(&id("BTCUSDT.BINANCE"), BarInterval::M1, from, at(1, 0), 0)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_catalog_comes_from_exchange_info() {
    let server = Server::start(|_, _| Reply::fixture("binance_exchange_info.json")).await;
    let p = provider(&server).await;
    assert!(p.lists_instruments());
    let instruments = p.instruments().await.unwrap();
    let ids: Vec<&str> = instruments.iter().map(|i| i.id.as_str()).collect();
    // LUNAUSDT is not trading; OLDUSDT has a zero tick size.
    assert_eq!(
        ids,
        vec![
            "ETHBTC.BINANCE",
            "BTCUSDT.BINANCE",
            "BNBUSDT.BINANCE",
            "ETHUSDT.BINANCE"
        ]
    );
    let btc = &instruments[1];
    assert_eq!(btc.quote_currency.as_str(), "USDT");
    assert_eq!(btc.tick_size.get(), dec!(0.01));
    assert_eq!(btc.lot_size.get(), dec!(0.00001));
    assert_eq!(btc.min_quantity.get(), dec!(0.00001));
    assert_eq!(btc.max_quantity.map(|q| q.get()), Some(dec!(9000)));
    assert_eq!(btc.min_notional, Some(dec!(5)));
    assert_eq!(btc.multiplier, dec!(1));
    let eth_btc = &instruments[0];
    assert_eq!(
        (eth_btc.quote_currency.as_str(), eth_btc.tick_size.get()),
        ("BTC", dec!(0.00001))
    );
    // The older MIN_NOTIONAL filter.
    assert_eq!(instruments[2].min_notional, Some(dec!(10)));
    for i in &instruments {
        i.validate().unwrap();
    }
    assert_eq!(server.hits()[0].path, "/api/v3/exchangeInfo");
}

#[tokio::test]
async fn unknown_symbols_and_other_venues_are_unknown_instruments() {
    let server =
        Server::start(|_, _| Reply::fixture("binance_error_invalid_symbol.json").status(400)).await;
    let p = provider(&server).await;
    let nope = id("NOPEUSDT.BINANCE");
    assert_eq!(
        p.quote(&nope).await,
        Err(MarketDataError::UnknownInstrument(nope.clone()))
    );
    assert_eq!(server.count(), 1, "a 400 is not retried");
    let e = p.bars(&nope, BarInterval::M1, at(0, 0), at(1, 0), 10).await;
    assert_eq!(e, Err(MarketDataError::UnknownInstrument(nope)));
    let aapl = id("AAPL.XNAS");
    assert_eq!(
        p.quote(&aapl).await,
        Err(MarketDataError::UnknownInstrument(aapl))
    );
    assert_eq!(server.count(), 2, "another venue is not asked for");
}

#[tokio::test]
async fn bad_payloads_are_typed_errors() {
    let truncated = {
        let full = crate::support::fixture("binance_book_ticker_btcusdt.json");
        full[..full.len() / 2].to_vec()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", truncated),
        ("wrong shape", br#"{"price":"1"}"#.to_vec()),
        ("an array", b"[]".to_vec()),
        ("empty body", Vec::new()),
        ("numbers", br#"{"symbol":"BTCUSDT","bidPrice":67250.01,"bidQty":"1","askPrice":"67250.02","askQty":"1"}"#.to_vec()),
        ("not numeric", br#"{"symbol":"BTCUSDT","bidPrice":"n/a","bidQty":"1","askPrice":"67250.02","askQty":"1"}"#.to_vec()),
        ("html", b"<html><body>502 Bad Gateway</body></html>".to_vec()),
    ];
    for (what, body) in cases {
        let server = Server::start(move |_, _| Reply::json(body.clone())).await;
        let p = provider(&server).await;
        let e = p.quote(&id("BTCUSDT.BINANCE")).await.unwrap_err();
        assert!(
            matches!(e, MarketDataError::BadResponse(_)),
            "{what}: {e:?}"
        );
        assert_eq!(server.count(), 1, "{what}: a bad payload is not retried");
    }
    let server = Server::start(|_, _| Reply::json(r#"[[1717243200000,"1","2"]]"#)).await;
    let p = provider(&server).await;
    let e = p
        .bars(
            &id("BTCUSDT.BINANCE"),
            BarInterval::M1,
            at(12, 0),
            at(13, 0),
            10,
        )
        .await;
    assert!(
        matches!(e, Err(MarketDataError::BadResponse(ref m)) if m.contains("row 0")),
        "{e:?}"
    );
    let server = Server::start(|_, _| Reply::json(r#"{"symbols":"none"}"#)).await;
    let e = provider(&server).await.instruments().await;
    assert!(matches!(e, Err(MarketDataError::BadResponse(_))), "{e:?}");
}
