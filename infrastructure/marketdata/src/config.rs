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
use ordermon_domain::ids::Venue;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
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

    /// Checks every key and fills in the kind's defaults.
    pub(crate) fn resolve(&self) -> Result<Settings, ConfigError> {
        let name = self.name().to_owned();
        let bad = |field: &str, reason: String| ConfigError::Invalid {
            provider: name.clone(),
            field: field.to_owned(),
            reason,
        };
        let kind = self.kind;
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "name",
                "must be 1-32 of a-z 0-9 - _ (it is a metric label)".into(),
            ));
        }
        let base_url = self.base_url(&bad)?;

        let api_key = match &self.api_key {
            None => None,
            Some(key) => {
                let header_text = self
                    .api_key_header
                    .as_deref()
                    .unwrap_or(kind.default_api_key_header());
                let header = HeaderName::from_bytes(header_text.as_bytes())
                    .map_err(|_| bad("api_key_header", "is not a valid header name".into()))?;
                let mut value = HeaderValue::from_str(key.expose_secret())
                    .map_err(|_| bad("api_key", "has characters a header cannot hold".into()))?;
                if key.expose_secret().trim().is_empty() {
                    return Err(bad("api_key", "is empty".into()));
                }
                // Keeps the value out of hyper's and reqwest's debug output.
                value.set_sensitive(true);
                Some((header, value))
            }
        };
        if self.api_key.is_none() && self.api_key_header.is_some() {
            return Err(bad("api_key_header", "is set without `api_key`".into()));
        }

        let venue = match (kind, &self.venue) {
            (ProviderKind::Binance, v) => {
                let v = v.as_deref().unwrap_or("BINANCE");
                Venue::new(v).map_err(|e| bad("venue", e.to_string()))?;
                v.to_owned()
            }
            (ProviderKind::Yahoo, Some(_)) => {
                return Err(bad(
                    "venue",
                    "is for binance; yahoo maps venues with `venues`".into(),
                ));
            }
            (ProviderKind::Yahoo, None) => String::new(),
        };
        if kind == ProviderKind::Binance && !self.venues.is_empty() {
            return Err(bad(
                "venues",
                "is for yahoo; binance has one `venue`".into(),
            ));
        }
        for (venue, suffix) in &self.venues {
            let field = format!("venues.{venue}");
            Venue::new(venue.as_str()).map_err(|e| bad(&field, e.to_string()))?;
            let ok = suffix.is_empty()
                || (suffix.starts_with('.')
                    && suffix.len() <= 8
                    && suffix[1..].bytes().all(|b| b.is_ascii_alphanumeric()));
            if !ok {
                return Err(bad(
                    &field,
                    "must be empty or a dot and up to 7 letters/digits (e.g. \".HK\")".into(),
                ));
            }
        }

        if self.timeout.is_zero() {
            return Err(bad("timeout", "must be more than zero".into()));
        }
        if self.call_timeout < self.timeout {
            return Err(bad(
                "call_timeout",
                format!(
                    "must be at least `timeout` ({})",
                    duration::format(self.timeout)
                ),
            ));
        }

        let mut weights: BTreeMap<&'static str, u32> =
            kind.default_weights().iter().copied().collect();
        for (endpoint, weight) in &self.weights {
            let field = format!("weights.{endpoint}");
            let Some(slot) = weights.get_mut(endpoint.as_str()) else {
                let known: Vec<&str> = kind.default_weights().iter().map(|(e, _)| *e).collect();
                return Err(bad(
                    &field,
                    format!(
                        "is not an endpoint of {} (known: {})",
                        kind.as_str(),
                        known.join(", ")
                    ),
                ));
            };
            if *weight == 0 {
                return Err(bad(&field, "must be at least 1".into()));
            }
            *slot = *weight;
        }
        let heaviest = weights.values().copied().max().unwrap_or(1);

        let per_second = self.limits.per_second.unwrap_or(kind.default_per_second());
        let per_minute = self.limits.per_minute.unwrap_or(kind.default_per_minute());
        for (field, budget) in [
            ("limits.per_second", per_second),
            ("limits.per_minute", per_minute),
        ] {
            if budget <= heaviest {
                return Err(bad(
                    field,
                    format!("must be above the heaviest endpoint weight ({heaviest})"),
                ));
            }
        }
        let server_per_minute = self
            .limits
            .server_per_minute
            .or(kind.default_server_per_minute())
            .filter(|n| *n > 0);
        let slow_down_at_percent = self.limits.slow_down_at_percent.unwrap_or(90);
        if !(1..=100).contains(&slow_down_at_percent) {
            return Err(bad("limits.slow_down_at_percent", "must be 1-100".into()));
        }
        let ban_back_off = self.limits.ban_back_off.unwrap_or(Duration::from_secs(120));
        if ban_back_off.is_zero() {
            return Err(bad("limits.ban_back_off", "must be more than zero".into()));
        }

        if !(1..=20).contains(&self.retry.max_attempts) {
            return Err(bad("retry.max_attempts", "must be 1-20".into()));
        }
        if self.retry.min_delay.is_zero() {
            return Err(bad("retry.min_delay", "must be more than zero".into()));
        }
        if self.retry.max_delay < self.retry.min_delay {
            return Err(bad(
                "retry.max_delay",
                "must be at least `retry.min_delay`".into(),
            ));
        }
        if self.breaker.failures == 0 {
            return Err(bad("breaker.failures", "must be at least 1".into()));
        }
        if self.breaker.cool_down.is_zero() {
            return Err(bad("breaker.cool_down", "must be more than zero".into()));
        }
        if self.cache.enabled {
            for (field, ttl) in [
                ("cache.quote_ttl", self.cache.quote_ttl),
                ("cache.bars_ttl", self.cache.bars_ttl),
            ] {
                if ttl.is_zero() {
                    return Err(bad(
                        field,
                        "must be more than zero (or set `cache.enabled = false`)".into(),
                    ));
                }
            }
        }

        Ok(Settings {
            kind,
            name,
            base_url,
            api_key,
            venue,
            venues: self.venues.clone(),
            timeout: self.timeout,
            call_timeout: self.call_timeout,
            weights,
            per_second,
            per_minute,
            server_per_minute,
            slow_down_at_percent,
            ban_back_off,
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            cache: self.cache.clone(),
        })
    }

    fn base_url(&self, bad: &impl Fn(&str, String) -> ConfigError) -> Result<Url, ConfigError> {
        let text = self
            .base_url
            .as_deref()
            .unwrap_or(self.kind.default_base_url())
            .trim();
        // The reason never quotes the URL: it may carry credentials.
        let mut url =
            Url::parse(text).map_err(|e| bad("base_url", format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(
                "base_url",
                format!("must be an http or https URL, not `{}`", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("base_url", "has no host".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("base_url", "must not have a query or fragment".into()));
        }
        // Paths are appended to the base: make sure it ends with `/`.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }
}

/// A validated configuration with the kind's defaults filled in.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) kind: ProviderKind,
    pub(crate) name: String,
    pub(crate) base_url: Url,
    /// The API key header, its value marked sensitive.
    pub(crate) api_key: Option<(HeaderName, HeaderValue)>,
    /// Binance's venue (empty for Yahoo).
    pub(crate) venue: String,
    pub(crate) venues: BTreeMap<String, String>,
    pub(crate) timeout: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) weights: BTreeMap<&'static str, u32>,
    pub(crate) per_second: u32,
    pub(crate) per_minute: u32,
    pub(crate) server_per_minute: Option<u32>,
    pub(crate) slow_down_at_percent: u8,
    pub(crate) ban_back_off: Duration,
    pub(crate) retry: RetryConfig,
    pub(crate) breaker: BreakerConfig,
    pub(crate) cache: CacheConfig,
}

impl Settings {
    /// The weight of `endpoint` (1 if it has none configured).
    pub(crate) fn weight(&self, endpoint: &str) -> u32 {
        self.weights.get(endpoint).copied().unwrap_or(1)
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("api_key", &self.api_key.as_ref().map(|_| redact::REDACTED))
            .field("per_second", &self.per_second)
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
