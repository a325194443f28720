//! Provider answers kept in the cache port, so several instances (or the feed
//! and a page of the dashboard) asking for the same quote within its TTL cost
//! one request.
//!
//! Keys live in the cache's own namespaces — `quote` (10 s) and `bar`
//! (5 min), the ones `ordermon-application`'s cache settings and the Redis
//! tier already know — under the shared tenant `_`, prefixed with the
//! provider's name so they never meet the application's own quote entries or
//! another provider's: `ordermon:quote:_:binance:BTCUSDT.BINANCE`,
//! `ordermon:bar:_:yahoo:0700.HKEX:1m:<from ms>:<to ms>:<limit>`.
//!
//! A value is JSON with its expiry inside, so a tier that cannot know an
//! entry's remaining TTL never serves it longer than we asked. The cache is
//! an optimisation only: a failing cache is logged and counted, and the call
//! goes to the provider.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ordermon_domain::ports::{Cache, CacheKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::CacheConfig;
use crate::metrics as m;

/// The cache namespace of latest quotes.
pub(crate) const QUOTE: &str = "quote";
/// The cache namespace of bars.
pub(crate) const BAR: &str = "bar";
/// The tenant of shared (not one user's) data.
const SHARED: &str = "_";

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    expires_at_ms: i64,
    value: T,
}

/// The cache as one provider uses it.
pub(crate) struct ResponseCache {
    cache: Option<Arc<dyn Cache>>,
    provider: String,
    config: CacheConfig,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("enabled", &self.cache.is_some())
            .field("config", &self.config)
            .finish()
    }
}

impl ResponseCache {
    pub(crate) fn new(cache: Option<Arc<dyn Cache>>, provider: &str, config: &CacheConfig) -> Self {
        Self {
            cache: cache.filter(|_| config.enabled),
            provider: provider.to_owned(),
            config: config.clone(),
        }
    }

    pub(crate) fn quote_ttl(&self) -> Duration {
        self.config.quote_ttl
    }

    pub(crate) fn bars_ttl(&self) -> Duration {
        self.config.bars_ttl
    }

    /// A key in `namespace` for this provider.
    pub(crate) fn key(&self, namespace: &'static str, rest: &str) -> CacheKey {
        CacheKey::new(namespace, SHARED, format!("{}:{rest}", self.provider))
    }

    /// The cached value, if there is a live one.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        key: &CacheKey,
        endpoint: &'static str,
        now: DateTime<Utc>,
    ) -> Option<T> {
        let cache = self.cache.as_ref()?;
        let outcome = match cache.get(key).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Envelope<T>>(&bytes) {
                Ok(e) if e.expires_at_ms > now.timestamp_millis() => {
                    self.count(endpoint, "hit");
                    return Some(e.value);
                }
                Ok(_) => "miss",
                Err(e) => {
                    tracing::debug!(provider = %self.provider, key = %key, error = %e, "unreadable cached market data");
                    "error"
                }
            },
            Ok(None) => "miss",
            Err(e) => {
                tracing::debug!(provider = %self.provider, key = %key, error = %e, "market data cache read failed");
                "error"
            }
        };
        self.count(endpoint, outcome);
        None
    }

    /// Stores `value` for `ttl` (failures are logged and forgotten).
    pub(crate) async fn put<T: Serialize>(
        &self,
        key: &CacheKey,
        value: &T,
        ttl: Duration,
        now: DateTime<Utc>,
    ) {
        let Some(cache) = &self.cache else {
            return;
        };
        let expires_at_ms = now
            .timestamp_millis()
            .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let bytes = match serde_json::to_vec(&Envelope {
            expires_at_ms,
            value,
        }) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(provider = %self.provider, error = %e, "cannot encode market data for the cache");
                return;
            }
        };
        if let Err(e) = cache.set(key, bytes, ttl).await {
            tracing::debug!(provider = %self.provider, key = %key, error = %e, "market data cache write failed");
        }
    }

    fn count(&self, endpoint: &'static str, outcome: &'static str) {
        metrics::counter!(m::CACHE, "provider" => self.provider.clone(), "endpoint" => endpoint, "outcome" => outcome)
            .increment(1);
    }
}
