//! ordermon's market-data providers over HTTP: the domain's
//! [`MarketDataProvider`] port for Binance-compatible REST (crypto: quotes,
//! klines, the instrument catalog) and Yahoo-chart-compatible REST
//! (equities: Hong Kong, US and more). The simulated feed of
//! `ordermon-application` stays the default; these are chosen by
//! configuration.
//!
//! Each provider is built from one [`ProviderConfig`] and owns, shared by
//! every clone and every caller (several instruments, the live feed and
//! backfills together):
//!
//! - a **weight budget** (governor): request weights per endpoint, a
//!   per-second and a per-minute budget that must both admit a request, and a
//!   gate that honours `Retry-After`, IP bans (418) and the exchange's
//!   used-weight header;
//! - **retries** with exponential backoff and jitter (backon) for 429, 408,
//!   5xx, timeouts and connection errors — never for other 4xx — bounded in
//!   attempts and in time (`call_timeout`);
//! - a **circuit breaker** (closed → open → half-open probe → closed) whose
//!   state is in [`MarketData::health`] for readiness and in metrics;
//! - **cached answers** through the domain's [`Cache`] port (namespaces
//!   `quote`, 10 s, and `bar`, 5 min), when given one; a failing cache falls
//!   through to the provider.
//!
//! Prices are exact `Decimal`s: Binance's strings are parsed exactly, Yahoo's
//! floats are read through their shortest text and rounded to the chart's
//! `priceHint`. Answers that cannot be
//! understood are `MarketDataError::BadResponse`, never a panic. The API key
//! is a `SecretString`: it is sent in a header marked sensitive, never put in
//! a URL, and never appears in an error, a log line or `Debug` output.
//!
//! # Wiring it (composition root)
//!
//! ```no_run
//! use std::sync::Arc;
//! use ordermon_domain::ports::{Cache, MarketDataProvider};
//! use ordermon_marketdata::{MarketData, ProviderConfig, build};
//!
//! # async fn wire(config: ProviderConfig, cache: Arc<dyn Cache>) -> Result<(), Box<dyn std::error::Error>> {
//! // `config` comes from the `[market_data]` section (TOML / env).
//! config.validate()?; // `monitor-server check` can call this alone
//! let market: Arc<MarketData> = build(&config, Some(cache))?;
//! // The port, for the engine, the quote poller and `backfill bars`:
//! let provider: Arc<dyn MarketDataProvider> = market.clone();
//! // Readiness (`/health/ready`): not ready while the circuit is open.
//! let ready = market.health().is_ready();
//! // Binance only: reference data for the instrument catalog.
//! if market.lists_instruments() {
//!     let instruments = market.instruments().await?;
//! }
//! # let _ = (provider, ready); Ok(()) }
//! ```
//!
//! Metric names are in [`metrics`]; `docs/market-data.md` describes
//! behaviour, configuration keys and defaults.

mod binance;
mod breaker;
mod cache;
mod config;
mod core;
mod decimal;
mod error;
mod limiter;
pub mod metrics;
mod redact;
mod symbols;
mod transport;
mod yahoo;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{Cache, Clock, MarketDataError, MarketDataProvider, SystemClock};

pub use binance::BinanceProvider;
pub use breaker::BreakerState;
pub use config::{
    BreakerConfig, CacheConfig, LimitsConfig, ProviderConfig, ProviderKind, RetryConfig,
};
pub use core::ProviderHealth;
pub use error::ConfigError;
pub use redact::REDACTED;
pub use symbols::YAHOO_VENUES;
pub use yahoo::YahooProvider;

/// A configured HTTP provider: the [`MarketDataProvider`] port plus what the
/// composition root needs beyond it (health, the instrument catalog).
/// Cloning shares the budget, breaker and client.
#[derive(Debug, Clone)]
pub enum MarketData {
    /// A Binance-compatible provider.
    Binance(BinanceProvider),
    /// A Yahoo-chart-compatible provider.
    Yahoo(YahooProvider),
}

impl MarketData {
    /// The provider's health: breaker state, pauses, last failure.
    #[must_use]
    pub fn health(&self) -> ProviderHealth {
        match self {
            Self::Binance(p) => p.health(),
            Self::Yahoo(p) => p.health(),
        }
    }

    /// The circuit breaker's state.
    #[must_use]
    pub fn breaker_state(&self) -> BreakerState {
        match self {
            Self::Binance(p) => p.breaker_state(),
            Self::Yahoo(p) => p.breaker_state(),
        }
    }

    /// True when [`MarketData::instruments`] can list instruments (Binance).
    #[must_use]
    pub fn lists_instruments(&self) -> bool {
        matches!(self, Self::Binance(_))
    }

    /// The provider's instrument catalog (Binance's `exchangeInfo`).
    ///
    /// # Errors
    /// See [`MarketDataError`]; a Yahoo provider has no catalog (its chart
    /// API carries no tick or lot sizes) and answers `Refused`.
    pub async fn instruments(&self) -> Result<Vec<Instrument>, MarketDataError> {
        match self {
            Self::Binance(p) => p.instruments().await,
            Self::Yahoo(_) => Err(MarketDataError::Refused(
                "the yahoo provider has no instrument catalog; define equities in the instrument reference data"
                    .to_owned(),
            )),
        }
    }
}

#[async_trait]
impl MarketDataProvider for MarketData {
    fn name(&self) -> &str {
        match self {
            Self::Binance(p) => p.name(),
            Self::Yahoo(p) => p.name(),
        }
    }

    async fn quote(&self, instrument: &InstrumentId) -> Result<Quote, MarketDataError> {
        match self {
            Self::Binance(p) => p.quote(instrument).await,
            Self::Yahoo(p) => p.quote(instrument).await,
        }
    }

    async fn bars(
        &self,
        instrument: &InstrumentId,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        match self {
            Self::Binance(p) => p.bars(instrument, interval, from, to, limit).await,
            Self::Yahoo(p) => p.bars(instrument, interval, from, to, limit).await,
        }
    }
}

/// Builds the provider `config` describes (validating it first), caching
/// through `cache` when given. `Arc<MarketData>` coerces to
/// `Arc<dyn MarketDataProvider>`.
///
/// # Errors
/// [`ConfigError`] naming the provider and the key.
pub fn build(
    config: &ProviderConfig,
    cache: Option<Arc<dyn Cache>>,
) -> Result<Arc<MarketData>, ConfigError> {
    build_with_clock(config, cache, Arc::new(SystemClock))
}

/// As [`build`], with the clock quotes are stamped with (Binance) and bar
/// ranges are judged closed by.
///
/// # Errors
/// [`ConfigError`] naming the provider and the key.
pub fn build_with_clock(
    config: &ProviderConfig,
    cache: Option<Arc<dyn Cache>>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<MarketData>, ConfigError> {
    Ok(Arc::new(match config.kind {
        ProviderKind::Binance => {
            MarketData::Binance(BinanceProvider::with_clock(config, cache, clock)?)
        }
        ProviderKind::Yahoo => MarketData::Yahoo(YahooProvider::with_clock(config, cache, clock)?),
    }))
}
