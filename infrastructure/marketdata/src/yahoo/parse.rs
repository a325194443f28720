//! Yahoo chart payloads (`/v8/finance/chart/{symbol}`) → domain values.
//!
//! The answer is `{"chart":{"result":[{meta, timestamp, indicators}],
//! "error":null}}`, or `{"chart":{"result":null,"error":{"code":"Not Found",
//! "description":"…"}}}`. Timestamps are seconds. The OHLCV arrays run
//! parallel to `timestamp` and hold `null` where nothing traded (and in a
//! still-forming minute): such entries are skipped. Prices are JSON floats,
//! read as described in [`crate::decimal`] and rounded to `meta.priceHint`
//! decimals (4 when absent).

use chrono::{DateTime, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::MarketDataError;
use ordermon_domain::values::Quantity;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Number;

use crate::decimal;
use crate::redact;

/// Decimals of a price when the chart has no `priceHint`.
const DEFAULT_DECIMALS: u32 = 4;
/// The most decimals a `priceHint` may ask for.
const MAX_DECIMALS: u32 = 10;

fn bad(what: impl std::fmt::Display) -> MarketDataError {
    MarketDataError::BadResponse(redact::bounded(&what.to_string(), 300))
}

#[derive(Deserialize)]
struct Envelope {
    chart: Chart,
}

#[derive(Deserialize)]
struct Chart {
    result: Option<Vec<ChartResult>>,
    error: Option<ChartError>,
}

/// Yahoo's error object: `{"code":"Not Found","description":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct ChartError {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) description: String,
}

impl ChartError {
    /// Yahoo's "no such symbol".
    pub(crate) fn is_not_found(&self) -> bool {
        self.code.eq_ignore_ascii_case("Not Found")
    }
}

/// One symbol's chart.
#[derive(Deserialize)]
pub(crate) struct ChartResult {
    meta: Meta,
    #[serde(default)]
    timestamp: Vec<i64>,
    #[serde(default)]
    indicators: Indicators,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    symbol: String,
    regular_market_price: Option<Number>,
    regular_market_time: Option<i64>,
    price_hint: Option<u32>,
    // Not in Yahoo's own chart meta; gateways that have a book may add them.
    bid: Option<Number>,
    ask: Option<Number>,
    bid_size: Option<Number>,
    ask_size: Option<Number>,
}

#[derive(Deserialize, Default)]
struct Indicators {
    #[serde(default)]
    quote: Vec<Series>,
}

#[derive(Deserialize, Default)]
struct Series {
    #[serde(default)]
    open: Vec<Option<Number>>,
    #[serde(default)]
    high: Vec<Option<Number>>,
    #[serde(default)]
    low: Vec<Option<Number>>,
    #[serde(default)]
    close: Vec<Option<Number>>,
    #[serde(default)]
    volume: Vec<Option<Number>>,
}

/// What a chart answer says.
pub(crate) enum Parsed {
    Chart(ChartResult),
    Error(ChartError),
}

/// The error object of a refused request's body, if it is a chart error.
pub(crate) fn chart_error(body: &str) -> Option<ChartError> {
    let e: Envelope = serde_json::from_str(body).ok()?;
    e.chart.error
}

/// Parses a chart answer for `symbol`.
pub(crate) fn chart(body: &[u8], symbol: &str) -> Result<Parsed, MarketDataError> {
    let e: Envelope = serde_json::from_slice(body).map_err(|e| bad(format!("chart: {e}")))?;
    if let Some(error) = e.chart.error {
        return Ok(Parsed::Error(error));
    }
    let result = e
        .chart
        .result
        .and_then(|r| r.into_iter().next())
        .ok_or_else(|| bad("chart: neither a result nor an error"))?;
    if !result.meta.symbol.eq_ignore_ascii_case(symbol) {
        return Err(bad(format!(
            "chart: asked for {symbol}, got {}",
            result.meta.symbol
        )));
    }
    Ok(Parsed::Chart(result))
}

impl ChartResult {
    fn decimals(&self) -> u32 {
        self.meta
            .price_hint
            .unwrap_or(DEFAULT_DECIMALS)
            .min(MAX_DECIMALS)
    }

    fn number(&self, n: &Number) -> Result<Decimal, MarketDataError> {
        decimal::from_number(n, self.decimals()).map_err(|e| bad(e.0))
    }

    /// The quote: `meta.bid`/`meta.ask` (and sizes) when present, otherwise
    /// `regularMarketPrice` on both sides with zero sizes, at
    /// `regularMarketTime` (or `now` when absent).
    pub(crate) fn quote(
        &self,
        id: &InstrumentId,
        now: DateTime<Utc>,
    ) -> Result<Quote, MarketDataError> {
        let m = &self.meta;
        let last = m
            .regular_market_price
            .as_ref()
            .ok_or_else(|| bad("chart: no regularMarketPrice"))?;
        let last = self.number(last)?;
        let side = |n: &Option<Number>| -> Result<Decimal, MarketDataError> {
            match n {
                Some(n) => {
                    let d = self.number(n)?;
                    Ok(if d > Decimal::ZERO { d } else { last })
                }
                None => Ok(last),
            }
        };
        let size = |n: &Option<Number>| -> Result<Quantity, MarketDataError> {
            let d = n.as_ref().map(|n| self.number(n)).transpose()?;
            decimal::quantity(d.unwrap_or(Decimal::ZERO), "size").map_err(|e| bad(e.0))
        };
        let ts = match m.regular_market_time {
            Some(secs) => DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| bad(format!("chart: regularMarketTime {secs}")))?,
            None => now,
        };
        Ok(Quote {
            instrument_id: id.clone(),
            bid: decimal::price(side(&m.bid)?, "bid").map_err(|e| bad(e.0))?,
            ask: decimal::price(side(&m.ask)?, "ask").map_err(|e| bad(e.0))?,
            bid_size: size(&m.bid_size)?,
            ask_size: size(&m.ask_size)?,
            ts,
        })
    }

    /// The bars, in the order given, skipping entries with a `null` (or
    /// non-positive) open, high, low or close; a `null` volume is 0.
    pub(crate) fn bars(
        &self,
        id: &InstrumentId,
        interval: BarInterval,
    ) -> Result<Vec<Bar>, MarketDataError> {
        let Some(series) = self.indicators.quote.first() else {
            return if self.timestamp.is_empty() {
                Ok(Vec::new())
            } else {
                Err(bad("chart: timestamps without indicators.quote"))
            };
        };
        let n = self.timestamp.len();
        for (name, column) in [
            ("open", &series.open),
            ("high", &series.high),
            ("low", &series.low),
            ("close", &series.close),
        ] {
            if column.len() != n {
                return Err(bad(format!(
                    "chart: {} {name} values for {n} timestamps",
                    column.len()
                )));
            }
        }
        let mut bars = Vec::with_capacity(n);
        for (i, secs) in self.timestamp.iter().enumerate() {
            let open_time = DateTime::from_timestamp(*secs, 0)
                .ok_or_else(|| bad(format!("chart: timestamp {secs}")))?;
            let price = |column: &[Option<Number>]| -> Result<Option<Decimal>, MarketDataError> {
                column
                    .get(i)
                    .and_then(Option::as_ref)
                    .map(|n| self.number(n))
                    .transpose()
            };
            let (Some(open), Some(high), Some(low), Some(close)) = (
                price(&series.open)?,
                price(&series.high)?,
                price(&series.low)?,
                price(&series.close)?,
            ) else {
                continue;
            };
            let Ok(prices) = [open, high, low, close]
                .into_iter()
                .map(|d| decimal::price(d, "price"))
                .collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            let volume = match series.volume.get(i).and_then(Option::as_ref) {
                Some(v) => decimal::from_number(v, 8).map_err(|e| bad(e.0))?,
                None => Decimal::ZERO,
            };
            let volume = decimal::quantity(volume, "volume").map_err(|e| bad(e.0))?;
            bars.push(Bar {
                instrument_id: id.clone(),
                interval,
                open_time,
                open: prices[0],
                high: prices[1],
                low: prices[2],
                close: prices[3],
                volume: volume.get(),
            });
        }
        Ok(bars)
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn id() -> InstrumentId {
        InstrumentId::new("0700.HKEX").unwrap()
    }

    fn parsed(body: &str) -> ChartResult {
        match chart(body.as_bytes(), "0700.HK").unwrap() {
            Parsed::Chart(c) => c,
            Parsed::Error(e) => panic!("chart error {e:?}"),
        }
    }

    const SMALL: &str = r#"{"chart":{"result":[{"meta":{"symbol":"0700.HK","currency":"HKD","regularMarketPrice":370.399993896484375,"regularMarketTime":1718607608,"priceHint":3},
        "timestamp":[1718587800,1718587860,1718587920],
        "indicators":{"quote":[{"open":[368.20001220703125,null,369.0],"high":[369.79998779296875,null,369.20001220703125],"low":[368.0,null,368.79998779296875],"close":[369.600006103515625,null,369.0],"volume":[1200300,null,null]}]}}],"error":null}}"#;

    #[test]
    fn bars_skip_nulls_and_round_to_the_price_hint() {
        let c = parsed(SMALL);
        let bars = c.bars(&id(), BarInterval::M1).unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].open.get(), dec!(368.2));
        assert_eq!(bars[0].high.get(), dec!(369.8));
        assert_eq!(bars[0].close.get(), dec!(369.6));
        assert_eq!(bars[0].volume, dec!(1200300));
        assert_eq!(bars[1].open_time.timestamp(), 1_718_587_920);
        assert_eq!(bars[1].volume, dec!(0));
    }

    #[test]
    fn the_quote_comes_from_the_meta() {
        let q = parsed(SMALL).quote(&id(), Utc::now()).unwrap();
        assert_eq!((q.bid.get(), q.ask.get()), (dec!(370.4), dec!(370.4)));
        assert_eq!(q.bid_size.get(), dec!(0));
        assert_eq!(q.ts.timestamp(), 1_718_607_608);
        let with_book = SMALL.replace(
            r#""priceHint":3"#,
            r#""priceHint":3,"bid":370.2,"ask":370.6,"bidSize":1500,"askSize":800"#,
        );
        let q = parsed(&with_book).quote(&id(), Utc::now()).unwrap();
        assert_eq!((q.bid.get(), q.ask.get()), (dec!(370.2), dec!(370.6)));
        assert_eq!(
            (q.bid_size.get(), q.ask_size.get()),
            (dec!(1500), dec!(800))
        );
    }

    #[test]
    fn errors_and_bad_shapes_are_typed() {
        let not_found = r#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#;
        match chart(not_found.as_bytes(), "0700.HK").unwrap() {
            Parsed::Error(e) => assert!(e.is_not_found()),
            Parsed::Chart(_) => panic!("not an error"),
        }
        assert!(chart_error(not_found).is_some_and(|e| e.is_not_found()));
        for garbage in [
            r#"{"chart":{"result":[{"meta":{"symbol":"0700.HK"}"#,
            r#"{"chart":{"result":[],"error":null}}"#,
            r#"{"chart":{"result":null,"error":null}}"#,
            r#"{"chart":{"result":[{"meta":{"symbol":"9988.HK"}}],"error":null}}"#,
            r#"{"chart":{"result":[{"meta":{"symbol":"0700.HK"},"timestamp":[1],"indicators":{"quote":[{"open":["1.0"],"high":[1],"low":[1],"close":[1]}]}}],"error":null}}"#,
            r#"[]"#,
        ] {
            let r = chart(garbage.as_bytes(), "0700.HK").and_then(|p| match p {
                Parsed::Chart(c) => c.bars(&id(), BarInterval::M1).map(|_| ()),
                Parsed::Error(e) => Err(MarketDataError::BadResponse(e.code)),
            });
            assert!(
                matches!(r, Err(MarketDataError::BadResponse(_))),
                "{garbage}"
            );
        }
        let ragged = SMALL.replace(
            r#""open":[368.20001220703125,null,369.0]"#,
            r#""open":[368.2]"#,
        );
        assert!(parsed(&ragged).bars(&id(), BarInterval::M1).is_err());
        let no_price = SMALL.replace(r#""regularMarketPrice":370.399993896484375,"#, "");
        assert!(parsed(&no_price).quote(&id(), Utc::now()).is_err());
    }
}
