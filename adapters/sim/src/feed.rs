//! The simulated quote feed: a random walk per instrument, published to the quote book.
//!
//! Randomness is drawn as `f64` (the walk's normal increments), but every price
//! that leaves this module is an exact `Decimal` on the instrument's tick: the walk
//! moves its mid by whole ticks, carrying the fractional remainder to the next step
//! so that slow instruments still move.

#[cfg(test)]
mod tests;
mod walk;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_application::live_feed::{LiveFeedConfig, LiveFeedError};
use ordermon_application::market::QuoteBook;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{Clock, MarketDataError, MarketDataProvider};
use ordermon_domain::values::{Price, Quantity};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use walk::QuoteGenerator;

/// Why a feed configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// A setting is out of range.
    #[error("invalid feed setting: {0}")]
    InvalidConfig(&'static str),
    /// An instrument's starting price is not a multiple of its tick size.
    #[error("start price {price} of {instrument} is not a multiple of tick size {tick}")]
    OffTick {
        /// The instrument.
        instrument: InstrumentId,
        /// Its starting price.
        price: Decimal,
        /// Its tick size.
        tick: Decimal,
    },
}

/// One simulated instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedInstrument {
    /// The instrument quoted.
    pub instrument_id: InstrumentId,
    /// The first mid price (on tick).
    pub start_price: Price,
    /// The price increment every quote is rounded to.
    pub tick_size: Price,
    /// Bid and ask size; the feed's default `size` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
}

impl FeedInstrument {
    /// An instrument simulated from `start_price` with the catalog's tick size.
    #[must_use]
    pub fn from_instrument(instrument: &Instrument, start_price: Price) -> Self {
        Self {
            instrument_id: instrument.id.clone(),
            start_price,
            tick_size: instrument.tick_size,
            size: None,
        }
    }
}

/// Settings of the quote feed (`[feed]`): which provider drives the quote
/// book, the live feed's polling (`[feed.poll]`) and the simulated walk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Which provider drives the quote book: `simulated` (default), or the
    /// name of a `[market_data.NAME]` provider (`binance` and `yahoo` work
    /// without a section, on the public endpoints).
    pub provider: String,
    /// Polling of a real provider (used when `provider` is not `simulated`).
    pub poll: LiveFeedConfig,
    /// Simulated feed: milliseconds between two quotes of each instrument (default 250).
    pub interval_ms: u64,
    /// Standard deviation of the mid's relative change per step (default 0.0005).
    pub volatility: f64,
    /// Spread between bid and ask, in ticks (default 1, at least 1).
    pub spread_ticks: u32,
    /// Default bid and ask size (default 1000).
    pub size: Quantity,
    /// Seed for a reproducible walk; a random seed when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The instruments to quote (default none; more can be added at run time).
    pub instruments: Vec<FeedInstrument>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            provider: SIMULATED.to_owned(),
            poll: LiveFeedConfig::default(),
            interval_ms: 250,
            volatility: 0.0005,
            spread_ticks: 1,
            size: Quantity::new(Decimal::ONE_THOUSAND).unwrap_or(Quantity::ZERO),
            seed: None,
            instruments: Vec::new(),
        }
    }
}

/// The provider name of the simulated feed.
pub const SIMULATED: &str = "simulated";

impl FeedConfig {
    /// True when the simulated walk drives the quote book.
    #[must_use]
    pub fn is_simulated(&self) -> bool {
        self.provider == SIMULATED
    }

    /// Checks the ranges of the settings and of every instrument.
    ///
    /// # Errors
    /// Returns the first [`FeedError`] that applies.
    pub fn validate(&self) -> Result<(), FeedError> {
        if let Err(LiveFeedError::InvalidConfig(m)) = self.poll.validate() {
            return Err(FeedError::InvalidConfig(m));
        }
        if self.provider.trim().is_empty() {
            return Err(FeedError::InvalidConfig(
                "provider must be `simulated` or the name of a market data provider",
            ));
        }
        if !self.is_simulated() && self.poll.instruments.is_empty() {
            return Err(FeedError::InvalidConfig(
                "poll.instruments must name the instruments to poll from a real provider",
            ));
        }
        if self.interval_ms == 0 {
            return Err(FeedError::InvalidConfig("interval_ms must be positive"));
        }
        if !self.volatility.is_finite() || self.volatility < 0.0 {
            return Err(FeedError::InvalidConfig(
                "volatility must be a finite number >= 0",
            ));
        }
        if self.spread_ticks == 0 {
            return Err(FeedError::InvalidConfig("spread_ticks must be at least 1"));
        }
        if self.size.is_zero() {
            return Err(FeedError::InvalidConfig("size must be positive"));
        }
        self.instruments.iter().try_for_each(check_instrument)
    }
}

fn check_instrument(i: &FeedInstrument) -> Result<(), FeedError> {
    let tick = i.tick_size.get();
    if !(i.start_price.get() % tick).is_zero() {
        return Err(FeedError::OffTick {
            instrument: i.instrument_id.clone(),
            price: i.start_price.get(),
            tick,
        });
    }
    if i.size.is_some_and(Quantity::is_zero) {
        return Err(FeedError::InvalidConfig("instrument size must be positive"));
    }
    Ok(())
}

/// The simulated market-data provider: publishes a random walk of quotes to the
/// quote book and answers quote requests from it.
#[derive(Debug)]
pub struct SimulatedFeed {
    generator: Mutex<QuoteGenerator>,
    interval: Duration,
    book: Arc<QuoteBook>,
    clock: Arc<dyn Clock>,
}

impl SimulatedFeed {
    /// A feed for `config`, publishing to `book`, stamping quotes with `clock`.
    ///
    /// # Errors
    /// Returns a [`FeedError`] when the configuration is invalid.
    pub fn new(
        config: &FeedConfig,
        book: Arc<QuoteBook>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, FeedError> {
        Ok(Self {
            generator: Mutex::new(QuoteGenerator::new(config)?),
            interval: Duration::from_millis(config.interval_ms),
            book,
            clock,
        })
    }

    /// Starts quoting another instrument (e.g. one just added to the catalog);
    /// returns `false` when it is already quoted.
    ///
    /// # Errors
    /// Returns a [`FeedError`] when its start price is off tick.
    pub fn add_instrument(&self, instrument: FeedInstrument) -> Result<bool, FeedError> {
        self.generator.lock().add(instrument)
    }

    /// The simulated instruments.
    #[must_use]
    pub fn instruments(&self) -> Vec<InstrumentId> {
        self.generator.lock().instruments()
    }

    /// Moves every walk one step, publishes the quotes to the book and returns them.
    pub fn step(&self) -> Vec<Quote> {
        let now = self.clock.now();
        // Generate under the lock, publish after releasing it.
        let quotes = self.generator.lock().next_quotes(now);
        for quote in &quotes {
            self.book.publish(quote.clone());
        }
        quotes
    }

    /// Publishes a step at once, then one every interval until `cancel` fires.
    #[must_use = "the task stops only when cancelled; keep or track its handle"]
    pub fn spawn(self: &Arc<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        let feed = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(feed.interval);
            // A late step is skipped, not bunched: only the latest quote matters.
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = ticker.tick() => {
                        feed.step();
                    }
                }
            }
            tracing::debug!("simulated feed stopped");
        })
    }
}

#[async_trait]
impl MarketDataProvider for SimulatedFeed {
    fn name(&self) -> &str {
        "simulated"
    }

    async fn quote(&self, instrument: &InstrumentId) -> Result<Quote, MarketDataError> {
        self.book
            .latest(instrument)
            .ok_or_else(|| MarketDataError::UnknownInstrument(instrument.clone()))
    }

    async fn bars(
        &self,
        _instrument: &InstrumentId,
        _interval: BarInterval,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
        _limit: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        Err(MarketDataError::Unavailable(
            "simulated feed keeps no history".to_owned(),
        ))
    }
}
