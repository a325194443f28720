//! The market-data provider port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::InstrumentId;
use crate::market::{Bar, BarInterval, Quote};

/// Why market data could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketDataError {
    /// The provider does not know the instrument.
    #[error("unknown instrument {0}")]
    UnknownInstrument(InstrumentId),
    /// Rate limited; retry after the given seconds.
    #[error("rate limited")]
    RateLimited {
        /// Seconds to wait, if the provider said.
        retry_after_secs: Option<u64>,
    },
    /// The provider is failing and the circuit is open.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider's answer could not be understood.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The provider refused the request for a reason that asking again will
    /// not change (bad parameters, missing or wrong credentials).
    #[error("request refused: {0}")]
    Refused(String),
}

/// A source of quotes and bars.
#[async_trait]
pub trait MarketDataProvider: Send + Sync + std::fmt::Debug {
    /// Provider name (`simulated`, `binance`, `yahoo`).
    fn name(&self) -> &str;
    /// The latest quote.
    ///
    /// # Errors
    /// See [`MarketDataError`].
    async fn quote(&self, instrument: &InstrumentId) -> Result<Quote, MarketDataError>;
    /// Bars in `[from, to)`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// See [`MarketDataError`].
    async fn bars(
        &self,
        instrument: &InstrumentId,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, MarketDataError>;
}
