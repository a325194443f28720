//! What every HTTP provider has: its name, transport (budget, breaker,
//! retries), cache and clock, and the readiness view of them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ordermon_domain::market::{Bar, BarInterval};
use ordermon_domain::ports::{Cache, Clock, MarketDataError};
use serde::Serialize;

use crate::breaker::BreakerState;
use crate::cache::ResponseCache;
use crate::config::{ProviderConfig, ProviderKind, Settings};
use crate::error::ConfigError;
use crate::metrics as m;
use crate::transport::Transport;

/// A provider's health, for readiness checks and the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderHealth {
    /// The provider's name.
    pub provider: String,
    /// Its REST format.
    pub kind: ProviderKind,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
    /// Failed requests in a row.
    pub consecutive_failures: u32,
    /// While the circuit is open: milliseconds until a probe may go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_in_ms: Option<u64>,
    /// The last failure (scrubbed of secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Why requests are paused by the exchange (`retry_after`, `ban`,
    /// `used_weight`), while they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// Milliseconds until the pause ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_for_ms: Option<u64>,
    /// The weight the exchange last reported used this minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_weight: Option<u32>,
}

impl ProviderHealth {
    /// Ready unless the circuit is open (half-open is degraded but serving
    /// probes; a pause is temporary and answers `RateLimited`).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.breaker != BreakerState::Open
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The parts every HTTP provider shares.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) name: String,
    pub(crate) kind: ProviderKind,
    pub(crate) transport: Transport,
    pub(crate) cache: ResponseCache,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Core {
    pub(crate) fn new(
        config: &ProviderConfig,
        expected: ProviderKind,
        cache: Option<Arc<dyn Cache>>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Settings), ConfigError> {
        let settings = config.resolve()?;
        if settings.kind != expected {
            return Err(ConfigError::Invalid {
                provider: settings.name,
                field: "kind".to_owned(),
                reason: format!(
                    "is {}, but a {} provider was asked for",
                    config.kind.as_str(),
                    expected.as_str()
                ),
            });
        }
        let transport = Transport::new(config, &settings)?;
        let core = Self {
            name: settings.name.clone(),
            kind: settings.kind,
            transport,
            cache: ResponseCache::new(cache, &settings.name, &settings.cache),
            clock,
        };
        Ok((core, settings))
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn health(&self) -> ProviderHealth {
        let b = self.transport.breaker_snapshot();
        let paused = self.transport.limiter().gate_state();
        ProviderHealth {
            provider: self.name.clone(),
            kind: self.kind,
            breaker: b.state,
            consecutive_failures: b.consecutive_failures,
            probe_in_ms: b.probe_in.map(millis),
            last_failure: b.last_failure.map(|f| self.transport.scrub(&f)),
            paused: paused.map(|(why, _)| why.to_owned()),
            paused_for_ms: paused.map(|(_, wait)| millis(wait)),
            used_weight: self.transport.limiter().used_weight(),
        }
    }

    /// Counts and passes on an answer that could not be understood.
    pub(crate) fn bad(&self, endpoint: &'static str, e: MarketDataError) -> MarketDataError {
        if matches!(e, MarketDataError::BadResponse(_)) {
            metrics::counter!(m::BAD_RESPONSES, "provider" => self.name.clone(), "endpoint" => endpoint)
                .increment(1);
            tracing::warn!(provider = %self.name, endpoint, error = %e, "market data answer not understood");
        }
        e
    }

    /// How long bars of `[.., to)` may be cached: the bars TTL once every bar
    /// in the range has closed, the quote TTL while the last may still form.
    pub(crate) fn bars_ttl(&self, to: DateTime<Utc>, interval: BarInterval) -> Duration {
        let closed_at = to + chrono::Duration::seconds(interval.seconds());
        if self.now() >= closed_at {
            self.cache.bars_ttl()
        } else {
            self.cache.quote_ttl()
        }
    }
}

/// Bars `[from, to)` out of `page`, after `after` (exclusive), ascending and
/// without duplicates — whatever order and overlap the provider answered.
pub(crate) fn keep_range(
    page: Vec<Bar>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<DateTime<Utc>>,
) -> Vec<Bar> {
    let mut bars: Vec<Bar> = page
        .into_iter()
        .filter(|b| b.open_time >= from && b.open_time < to)
        .filter(|b| after.is_none_or(|a| b.open_time > a))
        .collect();
    bars.sort_by_key(|b| b.open_time);
    bars.dedup_by_key(|b| b.open_time);
    bars
}

/// The key of a bars request.
pub(crate) fn bars_key(
    id: &ordermon_domain::ids::InstrumentId,
    interval: BarInterval,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
) -> String {
    format!(
        "{id}:{}:{}:{}:{limit}",
        interval.as_str(),
        from.timestamp_millis(),
        to.timestamp_millis()
    )
}
