//! Checking a [`ProviderConfig`] and filling in its kind's defaults: the
//! [`Settings`] a provider runs on. Every refusal names the key.

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::duration;
use ordermon_domain::ids::Venue;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::ExposeSecret;

use super::{BreakerConfig, CacheConfig, ProviderConfig, ProviderKind, RetryConfig};
use crate::error::ConfigError;
use crate::redact;

impl ProviderConfig {
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
