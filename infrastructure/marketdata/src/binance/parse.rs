//! Binance spot REST payloads → domain values. Every price and quantity is a
//! JSON string parsed exactly; a number where a string belongs, a missing
//! field or a wrong shape is a `BadResponse`, never a panic.

use chrono::{DateTime, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::MarketDataError;
use ordermon_domain::values::{Currency, Price, Quantity};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::decimal;
use crate::redact;
use crate::symbols::BinanceSymbols;

fn bad(what: impl std::fmt::Display) -> MarketDataError {
    MarketDataError::BadResponse(redact::bounded(&what.to_string(), 300))
}

/// A Binance error body: `{"code":-1121,"msg":"Invalid symbol."}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct ApiError {
    pub(crate) code: i64,
    pub(crate) msg: String,
}

/// Binance's code for an unknown symbol.
pub(crate) const INVALID_SYMBOL: i64 = -1121;

/// The error body of a refused request, if it has Binance's shape.
pub(crate) fn api_error(body: &str) -> Option<ApiError> {
    serde_json::from_str(body).ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookTicker {
    symbol: String,
    bid_price: String,
    bid_qty: String,
    ask_price: String,
    ask_qty: String,
}

/// `/api/v3/ticker/bookTicker?symbol=…` → the quote of `id` at `now` (the
/// spot book ticker carries no time of its own).
pub(crate) fn book_ticker(
    body: &[u8],
    id: &InstrumentId,
    symbol: &str,
    now: DateTime<Utc>,
) -> Result<Quote, MarketDataError> {
    let t: BookTicker =
        serde_json::from_slice(body).map_err(|e| bad(format!("bookTicker: {e}")))?;
    if t.symbol != symbol {
        return Err(bad(format!(
            "bookTicker: asked for {symbol}, got {}",
            t.symbol
        )));
    }
    Ok(Quote {
        instrument_id: id.clone(),
        bid: decimal::price(decimal::from_text(&t.bid_price)?, "bid")?,
        ask: decimal::price(decimal::from_text(&t.ask_price)?, "ask")?,
        bid_size: decimal::quantity(decimal::from_text(&t.bid_qty)?, "bid size")?,
        ask_size: decimal::quantity(decimal::from_text(&t.ask_qty)?, "ask size")?,
        ts: now,
    })
}

/// `/api/v3/klines` → bars, in the order given. A row is
/// `[openTime, "open", "high", "low", "close", "volume", closeTime, …]`.
pub(crate) fn klines(
    body: &[u8],
    id: &InstrumentId,
    interval: BarInterval,
) -> Result<Vec<Bar>, MarketDataError> {
    let rows: Vec<Vec<Value>> =
        serde_json::from_slice(body).map_err(|e| bad(format!("klines: {e}")))?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| kline(row, id, interval).map_err(|e| bad(format!("klines row {i}: {e}"))))
        .collect()
}

fn kline(row: &[Value], id: &InstrumentId, interval: BarInterval) -> Result<Bar, String> {
    if row.len() < 6 {
        return Err(format!("{} fields, expected at least 6", row.len()));
    }
    let open_ms = row[0]
        .as_i64()
        .ok_or_else(|| format!("open time {} is not an integer", row[0]))?;
    let open_time =
        DateTime::from_timestamp_millis(open_ms).ok_or_else(|| format!("open time {open_ms}"))?;
    let text = |i: usize, what: &str| -> Result<Decimal, String> {
        let s = row[i]
            .as_str()
            .ok_or_else(|| format!("{what} {} is not a decimal string", row[i]))?;
        decimal::from_text(s).map_err(|e| e.0)
    };
    let price = |i: usize, what: &str| -> Result<Price, String> {
        decimal::price(text(i, what)?, what).map_err(|e| e.0)
    };
    let volume: Quantity = decimal::quantity(text(5, "volume")?, "volume").map_err(|e| e.0)?;
    Ok(Bar {
        instrument_id: id.clone(),
        interval,
        open_time,
        open: price(1, "open")?,
        high: price(2, "high")?,
        low: price(3, "low")?,
        close: price(4, "close")?,
        volume: volume.get(),
    })
}

#[derive(Deserialize)]
struct ExchangeInfo {
    symbols: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SymbolInfo {
    symbol: String,
    status: String,
    quote_asset: String,
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(tag = "filterType")]
enum Filter {
    #[serde(rename = "PRICE_FILTER", rename_all = "camelCase")]
    Price { tick_size: String },
    #[serde(rename = "LOT_SIZE", rename_all = "camelCase")]
    LotSize {
        step_size: String,
        min_qty: String,
        max_qty: String,
    },
    #[serde(rename = "NOTIONAL", rename_all = "camelCase")]
    Notional { min_notional: String },
    #[serde(rename = "MIN_NOTIONAL", rename_all = "camelCase")]
    MinNotional { min_notional: String },
    #[serde(other)]
    Other,
}

/// What `exchangeInfo` listed.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// Instruments of the symbols that are trading.
    pub(crate) instruments: Vec<Instrument>,
    /// Symbols left out, with why (not trading, or a filter that does not
    /// make a valid instrument).
    pub(crate) skipped: Vec<(String, String)>,
}

/// `/api/v3/exchangeInfo` → the instruments of every trading symbol: tick
/// size from `PRICE_FILTER`, lot size and min/max quantity from `LOT_SIZE`,
/// min notional from `NOTIONAL` (or the older `MIN_NOTIONAL`).
pub(crate) fn exchange_info(
    body: &[u8],
    symbols: &BinanceSymbols,
) -> Result<Catalog, MarketDataError> {
    let info: ExchangeInfo =
        serde_json::from_slice(body).map_err(|e| bad(format!("exchangeInfo: {e}")))?;
    let mut catalog = Catalog::default();
    for raw in info.symbols {
        let name = raw
            .get("symbol")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        match serde_json::from_value::<SymbolInfo>(raw)
            .map_err(|e| e.to_string())
            .and_then(|s| instrument(&s, symbols))
        {
            Ok(Some(i)) => catalog.instruments.push(i),
            Ok(None) => catalog.skipped.push((name, "not trading".to_owned())),
            Err(why) => catalog.skipped.push((name, why)),
        }
    }
    if catalog.instruments.is_empty() && !catalog.skipped.is_empty() {
        let (symbol, why) = &catalog.skipped[0];
        if why != "not trading" {
            return Err(bad(format!(
                "exchangeInfo: no usable symbol (first: {symbol}: {why})"
            )));
        }
    }
    Ok(catalog)
}

fn instrument(s: &SymbolInfo, symbols: &BinanceSymbols) -> Result<Option<Instrument>, String> {
    if s.status != "TRADING" {
        return Ok(None);
    }
    let id = symbols
        .to_id(&s.symbol)
        .ok_or_else(|| "not a valid instrument id".to_owned())?;
    let quote_currency = Currency::new(s.quote_asset.as_str()).map_err(|e| e.to_string())?;
    let (mut tick, mut lot, mut notional) = (None, None, None);
    for f in &s.filters {
        match f {
            Filter::Price { tick_size } => tick = Some(tick_size),
            Filter::LotSize {
                step_size,
                min_qty,
                max_qty,
            } => lot = Some((step_size, min_qty, max_qty)),
            // NOTIONAL replaced MIN_NOTIONAL; prefer it when both are there.
            Filter::Notional { min_notional } => notional = Some(min_notional),
            Filter::MinNotional { min_notional } => {
                notional = notional.or(Some(min_notional));
            }
            Filter::Other => {}
        }
    }
    let dec = |t: &str| decimal::from_text(t).map_err(|e| e.0);
    let tick = tick.ok_or("no PRICE_FILTER")?;
    let (step, min_qty, max_qty) = lot.ok_or("no LOT_SIZE")?;
    let tick_size = decimal::price(dec(tick)?, "tickSize").map_err(|e| e.0)?;
    let lot_size = decimal::price(dec(step)?, "stepSize").map_err(|e| e.0)?;
    let min_quantity = decimal::quantity(dec(min_qty)?, "minQty").map_err(|e| e.0)?;
    let max_quantity = dec(max_qty)?;
    let min_notional = notional.map(|n| dec(n)).transpose()?;
    let instrument = Instrument {
        id,
        quote_currency,
        tick_size,
        lot_size: Quantity::new(lot_size.get()).map_err(|e| e.to_string())?,
        min_quantity,
        // Binance writes 0 for "no maximum".
        max_quantity: if max_quantity > Decimal::ZERO {
            Some(decimal::quantity(max_quantity, "maxQty").map_err(|e| e.0)?)
        } else {
            None
        },
        min_notional: min_notional.filter(|n| *n > Decimal::ZERO),
        multiplier: Decimal::ONE,
        version: 0,
    };
    instrument.validate().map_err(|e| e.to_string())?;
    Ok(Some(instrument))
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn id(text: &str) -> InstrumentId {
        InstrumentId::new(text).unwrap()
    }

    #[test]
    fn book_ticker_parses_strings_exactly() {
        let body = br#"{"symbol":"BTCUSDT","bidPrice":"67250.01000000","bidQty":"1.23400000","askPrice":"67250.02000000","askQty":"0.00500000"}"#;
        let q = book_ticker(body, &id("BTCUSDT.BINANCE"), "BTCUSDT", Utc::now()).unwrap();
        assert_eq!(q.bid.get(), dec!(67250.01));
        assert_eq!(q.ask.get(), dec!(67250.02));
        assert_eq!(q.bid_size.get(), dec!(1.234));
        assert_eq!(q.ask_size.get(), dec!(0.005));
    }

    #[test]
    fn book_ticker_refuses_numbers_and_wrong_symbols() {
        let now = Utc::now();
        let numeric = br#"{"symbol":"BTCUSDT","bidPrice":67250.01,"bidQty":"1","askPrice":"67250.02","askQty":"1"}"#;
        let e = book_ticker(numeric, &id("BTCUSDT.BINANCE"), "BTCUSDT", now).unwrap_err();
        assert!(
            matches!(e, MarketDataError::BadResponse(ref m) if m.contains("bookTicker")),
            "{e}"
        );
        let other =
            br#"{"symbol":"ETHUSDT","bidPrice":"1","bidQty":"1","askPrice":"2","askQty":"1"}"#;
        assert!(book_ticker(other, &id("BTCUSDT.BINANCE"), "BTCUSDT", now).is_err());
        let empty_book = br#"{"symbol":"BTCUSDT","bidPrice":"0.00000000","bidQty":"0","askPrice":"2","askQty":"1"}"#;
        let e = book_ticker(empty_book, &id("BTCUSDT.BINANCE"), "BTCUSDT", now).unwrap_err();
        assert!(e.to_string().contains("bid"), "{e}");
        for garbage in [
            &b"{"[..],
            b"[]",
            b"",
            b"null",
            br#"{"symbol":"BTCUSDT","bidPrice":"abc","bidQty":"1","askPrice":"2","askQty":"1"}"#,
        ] {
            assert!(matches!(
                book_ticker(garbage, &id("BTCUSDT.BINANCE"), "BTCUSDT", now),
                Err(MarketDataError::BadResponse(_))
            ));
        }
    }

    #[test]
    fn klines_parse_rows_and_refuse_bad_ones() {
        let body = br#"[[1717200000000,"67500.00","67550.10","67480.00","67520.55","12.345",1717200059999,"833000.1",1200,"6.1","411000.2","0"]]"#;
        let bars = klines(body, &id("BTCUSDT.BINANCE"), BarInterval::M1).unwrap();
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].open_time.timestamp_millis(), 1_717_200_000_000);
        assert_eq!(bars[0].close.get(), dec!(67520.55));
        assert_eq!(bars[0].volume, dec!(12.345));
        assert_eq!(
            klines(b"[]", &id("BTCUSDT.BINANCE"), BarInterval::M1).unwrap(),
            vec![]
        );
        for garbage in [
            &br#"[[1717200000000,"1","2","0.5"]]"#[..],
            br#"[["x","1","2","0.5","1","1"]]"#,
            br#"[[1717200000000,1.5,"2","0.5","1","1"]]"#,
            br#"{"code":-1121}"#,
            br#"[[1717200000000,"1","2""#,
        ] {
            assert!(matches!(
                klines(garbage, &id("BTCUSDT.BINANCE"), BarInterval::M1),
                Err(MarketDataError::BadResponse(_))
            ));
        }
    }

    #[test]
    fn api_errors_are_read() {
        assert_eq!(
            api_error(r#"{"code":-1121,"msg":"Invalid symbol."}"#),
            Some(ApiError {
                code: INVALID_SYMBOL,
                msg: "Invalid symbol.".to_owned()
            })
        );
        assert_eq!(api_error("<html>"), None);
    }
}
