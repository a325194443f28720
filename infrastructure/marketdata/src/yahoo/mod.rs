//! The Yahoo-chart-compatible equities provider (Yahoo Finance's chart API,
//! or a gateway speaking it), covering Hong Kong (`0700.HKEX` → `0700.HK`),
//! US (`AAPL.XNAS` → `AAPL`) and the other venues of
//! [`crate::YAHOO_VENUES`]:
//!
//! - `quote` → `GET /v8/finance/chart/{symbol}?interval=1d&range=1d` (weight
//!   1): the chart's `meta` — `bid`/`ask` when present, otherwise
//!   `regularMarketPrice` on both sides with zero sizes (a last price, not a
//!   book), at `regularMarketTime`.
//! - `bars` → `GET /v8/finance/chart/{symbol}?interval=&period1=&period2=`
//!   (seconds), in chunks Yahoo serves (7 days of 1m bars, 59 days of 5m/15m,
//!   729 days of 1h, any span of 1d), until `limit` bars. Intervals map
//!   `1m 5m 15m 1h 1d` → `1m 5m 15m 60m 1d`.
//!
//! Yahoo answers an unknown symbol with HTTP 404 and `chart.error.code =
//! "Not Found"`: that is `UnknownInstrument`, as is a venue missing from the
//! table. Other chart errors (a bad interval, 400) are `Refused`.

mod parse;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{Cache, Clock, MarketDataError, MarketDataProvider, SystemClock};

use crate::breaker::BreakerState;
use crate::cache::{BAR, QUOTE};
use crate::config::{ProviderConfig, ProviderKind};
use crate::core::{Core, ProviderHealth, bars_key, keep_range};
use crate::error::ConfigError;
use crate::symbols::YahooSymbols;
use crate::transport::{Endpoint, Failure};

use self::parse::{ChartResult, Parsed};

/// A Yahoo-chart-compatible provider. Cloning is cheap and shares the weight
/// budget, the breaker and the client.
#[derive(Debug, Clone)]
pub struct YahooProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    core: Core,
    symbols: YahooSymbols,
    chart: Endpoint,
}

/// Yahoo's name of a bar interval.
fn yahoo_interval(interval: BarInterval) -> &'static str {
    match interval {
        BarInterval::M1 => "1m",
        BarInterval::M5 => "5m",
        BarInterval::M15 => "15m",
        BarInterval::H1 => "60m",
        BarInterval::D1 => "1d",
    }
}

/// The longest span Yahoo serves in one request at `interval`.
fn max_span(interval: BarInterval) -> Option<Span> {
    match interval {
        BarInterval::M1 => Some(Span::days(7)),
        BarInterval::M5 | BarInterval::M15 => Some(Span::days(59)),
        BarInterval::H1 => Some(Span::days(729)),
        BarInterval::D1 => None,
    }
}

impl YahooProvider {
    /// A provider from `config` (which must be of kind `yahoo`), caching
    /// through `cache` when given.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key when the configuration is invalid.
    pub fn new(
        config: &ProviderConfig,
        cache: Option<Arc<dyn Cache>>,
    ) -> Result<Self, ConfigError> {
        Self::with_clock(config, cache, Arc::new(SystemClock))
    }

    /// As [`YahooProvider::new`], with the clock used when a chart has no
    /// market time and to judge whether a bar range has closed.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key when the configuration is invalid.
    pub fn with_clock(
        config: &ProviderConfig,
        cache: Option<Arc<dyn Cache>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let (core, s) = Core::new(config, ProviderKind::Yahoo, cache, clock)?;
        Ok(Self {
            inner: Arc::new(Inner {
                symbols: YahooSymbols::new(&s.venues),
                chart: Endpoint {
                    name: "chart",
                    weight: s.weight("chart"),
                },
                core,
            }),
        })
    }

    /// The provider's health (breaker, pauses).
    #[must_use]
    pub fn health(&self) -> ProviderHealth {
        self.inner.core.health()
    }

    /// The circuit breaker's state.
    #[must_use]
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.core.transport.breaker_state()
    }
}

impl Inner {
    fn symbol(&self, id: &InstrumentId) -> Result<String, MarketDataError> {
        self.symbols
            .to_provider(id)
            .ok_or_else(|| MarketDataError::UnknownInstrument(id.clone()))
    }

    fn chart_error(id: &InstrumentId, e: &parse::ChartError) -> MarketDataError {
        if e.is_not_found() {
            MarketDataError::UnknownInstrument(id.clone())
        } else {
            MarketDataError::Refused(crate::redact::bounded(
                &format!("{}: {}", e.code, e.description),
                200,
            ))
        }
    }

    /// One chart request.
    async fn chart(
        &self,
        id: &InstrumentId,
        symbol: &str,
        query: &[(&str, String)],
    ) -> Result<ChartResult, MarketDataError> {
        let body = self
            .core
            .transport
            .get(self.chart, &["v8", "finance", "chart", symbol], query)
            .await
            .map_err(|f| match f {
                Failure::Error(e) => e,
                Failure::Refused(r) => match parse::chart_error(&r.body) {
                    Some(e) => Self::chart_error(id, &e),
                    None if r.status == reqwest::StatusCode::NOT_FOUND => {
                        MarketDataError::UnknownInstrument(id.clone())
                    }
                    None => r.into_error(),
                },
            })?;
        match parse::chart(&body, symbol).map_err(|e| self.core.bad("chart", e))? {
            Parsed::Chart(c) => Ok(c),
            Parsed::Error(e) => Err(Self::chart_error(id, &e)),
        }
    }

    async fn fetch_bars(
        &self,
        id: &InstrumentId,
        symbol: &str,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut bars: Vec<Bar> = Vec::new();
        let mut start = from;
        while start < to && bars.len() < limit {
            let end = max_span(interval)
                .and_then(|span| start.checked_add_signed(span))
                .map_or(to, |e| e.min(to));
            // period2 is exclusive on Yahoo's side too; round it up to a
            // whole second so a sub-second `to` still covers its bar.
            let period2 = end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0);
            let query = [
                ("interval", yahoo_interval(interval).to_owned()),
                ("period1", start.timestamp().to_string()),
                ("period2", period2.to_string()),
            ];
            let chart = self.chart(id, symbol, &query).await?;
            let page = chart
                .bars(id, interval)
                .map_err(|e| self.core.bad("chart", e))?;
            bars.extend(keep_range(
                page,
                from,
                end,
                bars.last().map(|b| b.open_time),
            ));
            start = end;
        }
        bars.truncate(limit);
        Ok(bars)
    }
}

#[async_trait]
impl MarketDataProvider for YahooProvider {
    fn name(&self) -> &str {
        &self.inner.core.name
    }

    async fn quote(&self, instrument: &InstrumentId) -> Result<Quote, MarketDataError> {
        let i = &self.inner;
        let symbol = i.symbol(instrument)?;
        let key = i.core.cache.key(QUOTE, instrument.as_str());
        if let Some(q) = i.core.cache.get(&key, "quote", i.core.now()).await {
            return Ok(q);
        }
        let query = [("interval", "1d".to_owned()), ("range", "1d".to_owned())];
        let chart = i.chart(instrument, &symbol, &query).await?;
        let now = i.core.now();
        let quote = chart
            .quote(instrument, now)
            .map_err(|e| i.core.bad("chart", e))?;
        i.core
            .cache
            .put(&key, &quote, i.core.cache.quote_ttl(), now)
            .await;
        Ok(quote)
    }

    async fn bars(
        &self,
        instrument: &InstrumentId,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        let i = &self.inner;
        let symbol = i.symbol(instrument)?;
        if limit == 0 || from >= to {
            return Ok(Vec::new());
        }
        let key = i
            .core
            .cache
            .key(BAR, &bars_key(instrument, interval, from, to, limit));
        if let Some(bars) = i.core.cache.get(&key, "bars", i.core.now()).await {
            return Ok(bars);
        }
        let bars = i
            .fetch_bars(instrument, &symbol, interval, from, to, limit)
            .await?;
        let ttl = i.core.bars_ttl(to, interval);
        i.core.cache.put(&key, &bars, ttl, i.core.now()).await;
        Ok(bars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_spans_follow_yahoo() {
        assert_eq!(yahoo_interval(BarInterval::H1), "60m");
        assert_eq!(yahoo_interval(BarInterval::M1), "1m");
        assert_eq!(max_span(BarInterval::M1), Some(Span::days(7)));
        assert_eq!(max_span(BarInterval::D1), None);
    }
}
