//! The live feed: polls a real market-data provider for the latest quote of
//! each configured instrument and publishes fresh quotes to the quote book, so
//! that monitors, strategies, pre-trade risk and the paper venue run on real
//! prices.
//!
//! Staleness guard: a quote older than `max_quote_age` when it arrives is not
//! published (nothing trades on it); the book keeps the last fresh quote, whose
//! age then grows until the stale-market-data alert fires. The paper venue
//! applies the same limit to the book's quotes it executes against.
//!
//! The provider owns rate limits, retries, the circuit breaker and caching: one
//! budget is shared by every caller of a provider, so polling many instruments
//! never exceeds it. The feed only decides what to ask and what to publish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::Quote;
use ordermon_domain::ports::{Clock, MarketDataError, MarketDataProvider};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::market::QuoteBook;

/// Why a live feed configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveFeedError {
    /// A setting is out of range.
    #[error("invalid live feed setting: {0}")]
    InvalidConfig(&'static str),
}

/// Settings of the live feed (`[feed.poll]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveFeedConfig {
    /// Milliseconds between two polls of every instrument (default 1000).
    pub interval_ms: u64,
    /// A quote older than this many milliseconds is stale: not published, not
    /// traded on (default 30000).
    pub max_quote_age_ms: u64,
    /// How many quote requests may be in flight at once (default 4); the
    /// provider's rate limiter still bounds the request rate.
    pub concurrency: usize,
    /// The instruments to poll (`SYMBOL.VENUE`, e.g. `BTCUSDT.BINANCE`, `0700.HKEX`).
    pub instruments: Vec<InstrumentId>,
}

impl Default for LiveFeedConfig {
    fn default() -> Self {
        Self {
            interval_ms: 1000,
            max_quote_age_ms: 30_000,
            concurrency: 4,
            instruments: Vec::new(),
        }
    }
}

impl LiveFeedConfig {
    /// Checks the ranges of the settings.
    ///
    /// # Errors
    /// The first out-of-range setting.
    pub fn validate(&self) -> Result<(), LiveFeedError> {
        if self.interval_ms == 0 {
            return Err(LiveFeedError::InvalidConfig("interval_ms must be positive"));
        }
        if self.max_quote_age_ms == 0 {
            return Err(LiveFeedError::InvalidConfig(
                "max_quote_age_ms must be positive",
            ));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(LiveFeedError::InvalidConfig(
                "concurrency must be between 1 and 64",
            ));
        }
        if self.instruments.len() > 10_000 {
            return Err(LiveFeedError::InvalidConfig(
                "at most 10000 instruments can be polled",
            ));
        }
        Ok(())
    }

    /// The staleness limit.
    #[must_use]
    pub fn max_quote_age(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(i64::try_from(self.max_quote_age_ms).unwrap_or(i64::MAX))
    }
}

/// What the feed knows of one instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstrumentFeedStatus {
    /// Time of the last quote published.
    pub last_quote_at: Option<DateTime<Utc>>,
    /// When the last poll answered.
    pub last_polled_at: Option<DateTime<Utc>>,
    /// Quotes published.
    pub published: u64,
    /// Answers not published because they were older than the limit.
    pub stale: u64,
    /// Polls that failed.
    pub failures: u64,
    /// Failures in a row (0 after a success).
    pub consecutive_failures: u32,
    /// The last failure, when the last poll failed.
    pub last_error: Option<String>,
}

/// The live feed's figures for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveFeedStatus {
    /// The provider's name.
    pub provider: String,
    /// Poll rounds completed.
    pub rounds: u64,
    /// Instruments whose last quote is older than the limit (or that have none).
    pub stale_instruments: Vec<InstrumentId>,
    /// Per instrument.
    pub instruments: BTreeMap<InstrumentId, InstrumentFeedStatus>,
}

#[derive(Debug, Default)]
struct State {
    rounds: u64,
    per: BTreeMap<InstrumentId, InstrumentFeedStatus>,
}

/// Polls a provider and publishes fresh quotes to the book.
#[derive(Debug)]
pub struct LiveFeed {
    provider: Arc<dyn MarketDataProvider>,
    book: Arc<QuoteBook>,
    clock: Arc<dyn Clock>,
    config: LiveFeedConfig,
    state: Mutex<State>,
}

/// What one poll of one instrument gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// A newer quote was published.
    Published,
    /// The answer was the quote already published.
    Unchanged,
    /// The answer was older than the staleness limit; not published.
    Stale,
    /// The provider failed.
    Failed(MarketDataError),
}

impl LiveFeed {
    /// A feed polling `provider` for `config.instruments`.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn new(
        provider: Arc<dyn MarketDataProvider>,
        book: Arc<QuoteBook>,
        clock: Arc<dyn Clock>,
        config: LiveFeedConfig,
    ) -> Result<Self, LiveFeedError> {
        config.validate()?;
        let per = config
            .instruments
            .iter()
            .map(|i| (i.clone(), InstrumentFeedStatus::default()))
            .collect();
        Ok(Self {
            provider,
            book,
            clock,
            config,
            state: Mutex::new(State { rounds: 0, per }),
        })
    }

    /// The provider polled.
    #[must_use]
    pub fn provider(&self) -> &Arc<dyn MarketDataProvider> {
        &self.provider
    }

    /// The instruments polled.
    #[must_use]
    pub fn instruments(&self) -> &[InstrumentId] {
        &self.config.instruments
    }

    /// Polls one instrument once and publishes the quote when it is newer than
    /// the book's and fresh.
    pub async fn poll(&self, instrument: &InstrumentId) -> PollOutcome {
        let answer = self.provider.quote(instrument).await;
        let now = self.clock.now();
        let outcome = match answer {
            Err(e) => PollOutcome::Failed(e),
            Ok(quote) if &quote.instrument_id != instrument => {
                PollOutcome::Failed(MarketDataError::BadResponse(format!(
                    "asked for {instrument}, got a quote of {}",
                    quote.instrument_id
                )))
            }
            Ok(quote) => self.offer(quote, now),
        };
        self.record(instrument, &outcome, now);
        outcome
    }

    fn offer(&self, quote: Quote, now: DateTime<Utc>) -> PollOutcome {
        if now - quote.ts > self.config.max_quote_age() {
            return PollOutcome::Stale;
        }
        if self
            .book
            .latest(&quote.instrument_id)
            .is_some_and(|q| q.ts >= quote.ts)
        {
            return PollOutcome::Unchanged;
        }
        self.book.publish(quote);
        PollOutcome::Published
    }

    fn record(&self, instrument: &InstrumentId, outcome: &PollOutcome, now: DateTime<Utc>) {
        let mut state = self.state.lock();
        let s = state.per.entry(instrument.clone()).or_default();
        s.last_polled_at = Some(now);
        match outcome {
            PollOutcome::Published => {
                s.published += 1;
                s.last_quote_at = self.book.latest(instrument).map(|q| q.ts);
                s.consecutive_failures = 0;
                s.last_error = None;
            }
            PollOutcome::Unchanged => {
                s.consecutive_failures = 0;
                s.last_error = None;
            }
            PollOutcome::Stale => {
                s.stale += 1;
                s.consecutive_failures = 0;
                s.last_error = None;
            }
            PollOutcome::Failed(e) => {
                s.failures += 1;
                s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                s.last_error = Some(e.to_string());
            }
        }
        let label = match outcome {
            PollOutcome::Published => "published",
            PollOutcome::Unchanged => "unchanged",
            PollOutcome::Stale => "stale",
            PollOutcome::Failed(_) => "failed",
        };
        metrics::counter!(
            "ordermon_feed_polls_total",
            "provider" => self.provider.name().to_owned(),
            "outcome" => label
        )
        .increment(1);
    }

    /// Polls every instrument once, `concurrency` at a time.
    pub async fn round(&self) {
        let concurrency = self.config.concurrency;
        futures::stream::iter(self.config.instruments.iter())
            .for_each_concurrent(concurrency, |i| async move {
                if let PollOutcome::Failed(e) = self.poll(i).await {
                    // One line per failure and instrument would flood the log
                    // while a provider is down: log the first of a run only.
                    let first = self
                        .state
                        .lock()
                        .per
                        .get(i)
                        .is_some_and(|s| s.consecutive_failures == 1);
                    if first {
                        tracing::warn!(provider = self.provider.name(), instrument = %i, error = %e, "quote poll failed");
                    }
                }
            })
            .await;
        self.state.lock().rounds += 1;
        let stale = self.stale_instruments().len();
        metrics::gauge!(
            "ordermon_feed_stale_instruments",
            "provider" => self.provider.name().to_owned()
        )
        .set(stale as f64);
    }

    /// Instruments whose book quote is older than the limit, or missing.
    #[must_use]
    pub fn stale_instruments(&self) -> Vec<InstrumentId> {
        let now = self.clock.now();
        let limit = self.config.max_quote_age();
        self.config
            .instruments
            .iter()
            .filter(|i| self.book.latest(i).is_none_or(|q| now - q.ts > limit))
            .cloned()
            .collect()
    }

    /// The feed's figures.
    #[must_use]
    pub fn status(&self) -> LiveFeedStatus {
        let stale_instruments = self.stale_instruments();
        let state = self.state.lock();
        LiveFeedStatus {
            provider: self.provider.name().to_owned(),
            rounds: state.rounds,
            stale_instruments,
            instruments: state.per.clone(),
        }
    }

    /// Polls at once, then every interval, until `cancel` fires. A slow round
    /// delays the next one rather than piling rounds up.
    #[must_use = "the task stops only when cancelled; keep or track its handle"]
    pub fn spawn(self: &Arc<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        let feed = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(feed.config.interval_ms));
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = ticker.tick() => {
                        tokio::select! {
                            () = cancel.cancelled() => break,
                            () = feed.round() => {}
                        }
                    }
                }
            }
            tracing::debug!(provider = feed.provider.name(), "live feed stopped");
        })
    }
}

#[cfg(test)]
mod tests;
