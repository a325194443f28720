//! Historical bars for the API: from the store when it holds bars for the
//! window (loaded by `backfill bars`), else from the configured market-data
//! provider, whose answers are cached (bars 5 min) and rate limited by the
//! provider itself.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval};
use ordermon_domain::ports::{BarRepository, Clock, MarketDataError, MarketDataProvider};
use serde::Serialize;

use crate::catalog::InstrumentCatalog;
use crate::error::{AppError, FieldError};

/// The most bars one request may ask for.
pub const MAX_BARS: u32 = 1000;
/// Bars returned when the request names no limit.
pub const DEFAULT_BARS: u32 = 500;

/// A request for bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarQuery {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Bar width.
    pub interval: BarInterval,
    /// Start of the window (inclusive); `limit` bars before `to` when absent.
    pub from: Option<DateTime<Utc>>,
    /// End of the window (exclusive); now when absent.
    pub to: Option<DateTime<Utc>>,
    /// At most this many bars (1 to [`MAX_BARS`], default [`DEFAULT_BARS`]).
    pub limit: Option<u32>,
}

/// Where the bars came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BarsAnswer {
    /// `store`, or the provider's name.
    pub source: String,
    /// The window actually asked for.
    pub from: DateTime<Utc>,
    /// End of the window (exclusive).
    pub to: DateTime<Utc>,
    /// Oldest first.
    pub bars: Vec<Bar>,
}

/// Reads bars from the store, else from the provider.
pub struct BarHistory {
    store: Arc<dyn BarRepository>,
    provider: Option<Arc<dyn MarketDataProvider>>,
    catalog: Arc<InstrumentCatalog>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for BarHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarHistory")
            .field(
                "provider",
                &self.provider.as_ref().map(|p| p.name().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> AppError {
    AppError::Validation(vec![FieldError::new(field, message)])
}

impl BarHistory {
    /// A reader over `store`, falling back to `provider` when there is one.
    #[must_use]
    pub fn new(
        store: Arc<dyn BarRepository>,
        provider: Option<Arc<dyn MarketDataProvider>>,
        catalog: Arc<InstrumentCatalog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            provider,
            catalog,
            clock,
        }
    }

    /// The window a query asks for, checked.
    ///
    /// # Errors
    /// Validation when the limit is out of range or the window is empty.
    pub fn window(
        query: &BarQuery,
        now: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>, u32), AppError> {
        let limit = query.limit.unwrap_or(DEFAULT_BARS);
        if limit == 0 || limit > MAX_BARS {
            return Err(invalid(
                "limit",
                format!("must be between 1 and {MAX_BARS}"),
            ));
        }
        let to = query.to.unwrap_or(now);
        let from = match query.from {
            Some(from) => from,
            None => to - chrono::Duration::seconds(query.interval.seconds() * i64::from(limit)),
        };
        if from >= to {
            return Err(invalid("from", "must be before to"));
        }
        Ok((from, to, limit))
    }

    /// Bars of an instrument in a window (ending now unless the query says).
    ///
    /// # Errors
    /// Validation (422), NotFound for an unknown instrument, Unavailable when
    /// the store has none and the provider fails or there is none.
    pub async fn bars(&self, query: &BarQuery) -> Result<BarsAnswer, AppError> {
        let (from, to, limit) = Self::window(query, self.clock.now())?;
        if self.catalog.get(&query.instrument).is_none() {
            return Err(AppError::NotFound("instrument"));
        }
        let stored = self
            .store
            .bars(&query.instrument, query.interval, from, to, limit)
            .await?;
        if !stored.is_empty() {
            return Ok(BarsAnswer {
                source: "store".to_owned(),
                from,
                to,
                bars: stored,
            });
        }
        let Some(provider) = &self.provider else {
            return Ok(BarsAnswer {
                source: "store".to_owned(),
                from,
                to,
                bars: Vec::new(),
            });
        };
        let bars = provider
            .bars(&query.instrument, query.interval, from, to, limit)
            .await
            .map_err(|e| match e {
                MarketDataError::UnknownInstrument(_) => AppError::NotFound("instrument"),
                other => AppError::Unavailable(format!("market data: {other}")),
            })?;
        let mut bars: Vec<Bar> = bars
            .into_iter()
            .filter(|b| {
                b.instrument_id == query.instrument
                    && b.interval == query.interval
                    && b.open_time >= from
                    && b.open_time < to
            })
            .collect();
        bars.sort_by_key(|b| b.open_time);
        bars.dedup_by_key(|b| b.open_time);
        bars.truncate(limit as usize);
        Ok(BarsAnswer {
            source: provider.name().to_owned(),
            from,
            to,
            bars,
        })
    }
}

#[cfg(test)]
mod tests;
