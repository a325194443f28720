//! Provider configuration: one [`ProviderConfig`] per provider, with defaults
//! that depend on its `kind` (left unset, `base_url`, the limits and the
//! weights take the kind's documented values). Unknown fields are refused (a
//! typo must not silently drop a setting); durations are text (`"10s"`); the
//! API key is a [`SecretString`] that serializes and prints as `[REDACTED]`.
//!
//! ```toml
//! [market_data.providers.binance]
//! kind = "binance"
//! base_url = "https://api.binance.com"   # or a gateway / mirror
//! limits = { per_second = 200, per_minute = 6000 }
//! ```
//!
//! [`ProviderConfig::validate`] checks every key and resolves the defaults
//! into the [`Settings`] the provider runs on.

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::duration;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::redact;

/// Which REST format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Binance spot REST (`/api/v3/exchangeInfo`, `/ticker/bookTicker`,
    /// `/klines`), or anything that speaks it.
    Binance,
    /// Yahoo Finance's chart API (`/v8/finance/chart/{symbol}`), or a
    /// gateway that speaks it: equities, Hong Kong and US among them.
    Yahoo,
}

impl ProviderKind {
    /// The kind's name (`binance`, `yahoo`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Binance => "binance",
            Self::Yahoo => "yahoo",
        }
    }

    /// The public endpoint used when `base_url` is not set.
    #[must_use]
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Binance => "https://api.binance.com",
            Self::Yahoo => "https://query1.finance.yahoo.com",
        }
    }

    /// The endpoints and their default request weights. Binance's are its
    /// documented weights (`exchangeInfo` 20, `klines` 2, `bookTicker` 2 for
    /// one symbol); Yahoo documents none, so each request weighs 1.
    #[must_use]
    pub fn default_weights(self) -> &'static [(&'static str, u32)] {
        match self {
            Self::Binance => &[("exchange_info", 20), ("book_ticker", 2), ("klines", 2)],
            Self::Yahoo => &[("chart", 1)],
        }
    }

    /// Default weight budget per second: a smoothing budget of our own
    /// (Binance limits weight per minute only); for Binance it sustains 100 a
    /// second, so the per-minute budget is what binds.
    #[must_use]
    pub fn default_per_second(self) -> u32 {
        match self {
            Self::Binance => 200,
            Self::Yahoo => 2,
        }
    }

    /// Default weight budget per minute: Binance's `REQUEST_WEIGHT` limit
    /// (6000 a minute per IP); for Yahoo, which publishes none, a polite 60.
    #[must_use]
    pub fn default_per_minute(self) -> u32 {
        match self {
            Self::Binance => 6000,
            Self::Yahoo => 60,
        }
    }

    /// The exchange's own per-minute weight limit, against which the
    /// used-weight header it reports is compared (`None`: it reports none).
    #[must_use]
    pub fn default_server_per_minute(self) -> Option<u32> {
        match self {
            Self::Binance => Some(6000),
            Self::Yahoo => None,
        }
    }

    /// The header the API key travels in.
    #[must_use]
    pub fn default_api_key_header(self) -> &'static str {
        match self {
            Self::Binance => "X-MBX-APIKEY",
            Self::Yahoo => "X-API-KEY",
        }
    }
}

/// One market-data provider.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The REST format.
    pub kind: ProviderKind,
    /// The provider's name in metrics, logs and cache keys, and what
    /// `MarketDataProvider::name` returns (default: the kind). Lower-case
    /// letters, digits, `-` and `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the API lives (`http`/`https`, may carry a path prefix for a
    /// gateway). Default: the kind's public endpoint. User info in it (a
    /// gateway's credentials) is masked when printed or serialized.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact::optional_url"
    )]
    pub base_url: Option<String>,
    /// An API key sent with every request (public market data needs none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact::optional_secret"
    )]
    pub api_key: Option<SecretString>,
    /// The header carrying `api_key` (Binance `X-MBX-APIKEY`, Yahoo gateways
    /// `X-API-KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    /// Binance: the venue of its instrument ids (`BINANCE`: `BTCUSDT.BINANCE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Yahoo: venue → symbol suffix entries added to (or replacing) the
    /// built-in table, e.g. `{ XSTO = ".ST" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub venues: BTreeMap<String, String>,
    /// Bound on one HTTP request (connect, send, whole answer).
    #[serde(default = "default_timeout", with = "duration::serde")]
    pub timeout: Duration,
    /// Bound on one call of the port: rate-limit waits, every attempt and the
    /// backoff between them. A call that cannot finish in time fails with the
    /// last error (or `RateLimited` when the budget is what it waits for).
    #[serde(default = "default_call_timeout", with = "duration::serde")]
    pub call_timeout: Duration,
    /// Weight budgets.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Request weight per endpoint, overriding the kind's defaults
    /// (`exchange_info`, `book_ticker`, `klines` for Binance; `chart` for
    /// Yahoo).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// Retries.
    #[serde(default)]
    pub retry: RetryConfig,
    /// The circuit breaker.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// Responses kept in the cache port.
    #[serde(default)]
    pub cache: CacheConfig,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("base_url", &self.base_url.as_deref().map(redact::url))
            .field("api_key", &self.api_key)
            .field("api_key_header", &self.api_key_header)
            .field("venue", &self.venue)
            .field("venues", &self.venues)
            .field("timeout", &self.timeout)
            .field("call_timeout", &self.call_timeout)
            .field("limits", &self.limits)
            .field("weights", &self.weights)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Weight budgets: a request is sent only when both the per-second and the
/// per-minute budget admit its weight.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Weight admitted in any 1 s window (Binance 200, Yahoo 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    /// Weight admitted in any 60 s window (Binance 6000, Yahoo 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    /// The exchange's own per-minute limit that its used-weight header
    /// (`X-MBX-USED-WEIGHT-1M`) counts against (Binance 6000; `0` ignores the
    /// header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_per_minute: Option<u32>,
    /// When the exchange reports this percentage of `server_per_minute` used
    /// (other clients on the same IP count too), requests wait for the next
    /// minute (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_down_at_percent: Option<u8>,
    /// How long to stay away after an IP ban (HTTP 418) that came without a
    /// `Retry-After` (default 2m, Binance's shortest ban).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration::serde_opt"
    )]
    pub ban_back_off: Option<Duration>,
}

/// Retries of one call: exponential backoff with jitter between attempts,
/// never shorter than the server's `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per call, the first included (1 = no retry; default 4).
    pub max_attempts: u32,
    /// First backoff (default 250ms); doubles per attempt, with jitter.
    #[serde(with = "duration::serde")]
    pub min_delay: Duration,
    /// Longest backoff (default 5s).
    #[serde(with = "duration::serde")]
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// The circuit breaker: open after `failures` failed requests in a row, one
/// probe after `cool_down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failed requests that open the circuit (default 5).
    pub failures: u32,
    /// How long the circuit stays open before a probe (default 30s).
    #[serde(with = "duration::serde")]
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// Responses kept in the cache port (when the provider is given one). The
/// defaults are the cache's own TTLs for the `quote` and `bar` namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Off: every call goes to the provider.
    pub enabled: bool,
    /// How long a quote is served from the cache (default 10s).
    #[serde(with = "duration::serde")]
    pub quote_ttl: Duration,
    /// How long bars of a finished range are served from the cache (default
    /// 5m). A range still open (its end is not a full bar in the past) is
    /// kept only `quote_ttl`, as its last bar is still forming.
    #[serde(with = "duration::serde")]
    pub bars_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            quote_ttl: Duration::from_secs(10),
            bars_ttl: Duration::from_secs(300),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_call_timeout() -> Duration {
    Duration::from_secs(30)
}

impl ProviderConfig {
    /// A provider of `kind` with every default.
    #[must_use]
    pub fn new(kind: ProviderKind) -> Self {
        Self {
            kind,
            name: None,
            base_url: None,
            api_key: None,
            api_key_header: None,
            venue: None,
            venues: BTreeMap::new(),
            timeout: default_timeout(),
            call_timeout: default_call_timeout(),
            limits: LimitsConfig::default(),
            weights: BTreeMap::new(),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            cache: CacheConfig::default(),
        }
    }

    /// The provider's name: `name`, or the kind.
    #[must_use]
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }

    /// Checks every key.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the provider and the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(|_| ())
    }
}

mod resolve;

pub(crate) use resolve::Settings;

#[cfg(test)]
mod tests;
