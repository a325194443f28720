//! The Binance-compatible REST provider (spot API v3, or a gateway/mirror
//! speaking it):
//!
//! - `quote` → `GET /api/v3/ticker/bookTicker?symbol=BTCUSDT` (weight 2): best
//!   bid/ask and their sizes, stamped with our clock (the spot book ticker
//!   carries no time).
//! - `bars` → `GET /api/v3/klines?symbol=&interval=&startTime=&endTime=&limit=`
//!   (weight 2 a page), paging 1000 bars at a time until `limit` bars or the
//!   end of the range. Binance's `endTime` is inclusive, so `[from, to)` asks
//!   up to `to − 1 ms`.
//! - [`BinanceProvider::instruments`] → `GET /api/v3/exchangeInfo` (weight 20):
//!   every trading symbol as an [`Instrument`].
//!
//! An unknown symbol (HTTP 400, code `-1121`) is `UnknownInstrument`; so is an
//! id of another venue, without a request.

mod parse;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{Cache, Clock, MarketDataError, MarketDataProvider, SystemClock};

use crate::breaker::BreakerState;
use crate::cache::{BAR, QUOTE};
use crate::config::{ProviderConfig, ProviderKind};
use crate::core::{Core, ProviderHealth, bars_key, keep_range};
use crate::error::ConfigError;
use crate::symbols::BinanceSymbols;
use crate::transport::{Endpoint, Failure};

/// Binance's largest klines page.
const MAX_PAGE: u32 = 1000;

/// A Binance-compatible provider. Cloning is cheap and shares the weight
/// budget, the breaker and the client.
#[derive(Debug, Clone)]
pub struct BinanceProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    core: Core,
    symbols: BinanceSymbols,
    exchange_info: Endpoint,
    book_ticker: Endpoint,
    klines: Endpoint,
}

impl BinanceProvider {
    /// A provider from `config` (which must be of kind `binance`), caching
    /// through `cache` when given, stamping quotes with the system clock.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key when the configuration is invalid.
    pub fn new(
        config: &ProviderConfig,
        cache: Option<Arc<dyn Cache>>,
    ) -> Result<Self, ConfigError> {
        Self::with_clock(config, cache, Arc::new(SystemClock))
    }

    /// As [`BinanceProvider::new`], with the clock quotes are stamped with.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key when the configuration is invalid.
    pub fn with_clock(
        config: &ProviderConfig,
        cache: Option<Arc<dyn Cache>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let (core, s) = Core::new(config, ProviderKind::Binance, cache, clock)?;
        let endpoint = |name| Endpoint {
            name,
            weight: s.weight(name),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                symbols: BinanceSymbols::new(&s.venue),
                exchange_info: endpoint("exchange_info"),
                book_ticker: endpoint("book_ticker"),
                klines: endpoint("klines"),
                core,
            }),
        })
    }

    /// Every trading symbol as an instrument (ids `SYMBOL.BINANCE`), with
    /// tick size, lot size, min/max quantity and min notional from its
    /// filters. Symbols that are not trading, or whose filters do not make a
    /// valid instrument, are left out (and logged).
    ///
    /// # Errors
    /// See [`MarketDataError`]; an answer that is not an exchangeInfo is
    /// `BadResponse`.
    pub async fn instruments(&self) -> Result<Vec<Instrument>, MarketDataError> {
        let i = &self.inner;
        let body = i
            .core
            .transport
            .get(i.exchange_info, &["api", "v3", "exchangeInfo"], &[])
            .await
            .map_err(|f| i.error(f, None))?;
        let catalog =
            parse::exchange_info(&body, &i.symbols).map_err(|e| i.core.bad("exchange_info", e))?;
        for (symbol, why) in &catalog.skipped {
            tracing::debug!(provider = %i.core.name, symbol, why, "symbol left out of the catalog");
        }
        tracing::info!(
            provider = %i.core.name,
            instruments = catalog.instruments.len(),
            skipped = catalog.skipped.len(),
            "instrument catalog fetched"
        );
        Ok(catalog.instruments)
    }

    /// The provider's health (breaker, pauses, used weight).
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

    /// The port's error for a failed request.
    fn error(&self, failure: Failure, id: Option<&InstrumentId>) -> MarketDataError {
        match failure {
            Failure::Error(e) => e,
            Failure::Refused(r) => match (parse::api_error(&r.body), id) {
                (Some(api), Some(id)) if api.code == parse::INVALID_SYMBOL => {
                    MarketDataError::UnknownInstrument(id.clone())
                }
                (Some(api), _) => MarketDataError::Refused(format!(
                    "HTTP {} code {}: {}",
                    r.status.as_u16(),
                    api.code,
                    crate::redact::bounded(&api.msg, 200)
                )),
                (None, _) => r.into_error(),
            },
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
        let end_ms = to.timestamp_millis() - 1;
        let step_ms = interval.seconds() * 1000;
        let mut cursor = from.timestamp_millis();
        let mut bars: Vec<Bar> = Vec::new();
        while cursor <= end_ms {
            let wanted = limit.saturating_sub(u32::try_from(bars.len()).unwrap_or(u32::MAX));
            if wanted == 0 {
                break;
            }
            let page_limit = wanted.min(MAX_PAGE);
            let query = [
                ("symbol", symbol.to_owned()),
                ("interval", interval.as_str().to_owned()),
                ("startTime", cursor.to_string()),
                ("endTime", end_ms.to_string()),
                ("limit", page_limit.to_string()),
            ];
            let body = self
                .core
                .transport
                .get(self.klines, &["api", "v3", "klines"], &query)
                .await
                .map_err(|f| self.error(f, Some(id)))?;
            let page =
                parse::klines(&body, id, interval).map_err(|e| self.core.bad("klines", e))?;
            let got = page.len();
            let page = keep_range(page, from, to, bars.last().map(|b| b.open_time));
            let Some(last) = page.last().map(|b| b.open_time.timestamp_millis()) else {
                break;
            };
            bars.extend(page);
            if got < usize::try_from(page_limit).unwrap_or(usize::MAX) {
                break;
            }
            cursor = last + step_ms;
        }
        bars.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(bars)
    }
}

#[async_trait]
impl MarketDataProvider for BinanceProvider {
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
        let body = i
            .core
            .transport
            .get(
                i.book_ticker,
                &["api", "v3", "ticker", "bookTicker"],
                &[("symbol", symbol.clone())],
            )
            .await
            .map_err(|f| i.error(f, Some(instrument)))?;
        let now = i.core.now();
        let quote = parse::book_ticker(&body, instrument, &symbol, now)
            .map_err(|e| i.core.bad("book_ticker", e))?;
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
