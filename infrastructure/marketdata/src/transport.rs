//! One provider's HTTP: the client, the weight budget, the circuit breaker and
//! retries, around a single `GET`.
//!
//! A call runs under the provider's `call_timeout`. Each attempt asks the
//! breaker (fail fast while open), then the budget (wait, or refuse when the
//! wait would pass the deadline), then sends. Answers are sorted:
//!
//! | answer | what happens |
//! |---|---|
//! | 2xx | the body (at most 64 MiB) is returned |
//! | 429 | the gate closes for `Retry-After` (or the backoff); retried |
//! | 418 | an IP ban: the gate closes for `Retry-After` (or `ban_back_off`); **not retried**, `RateLimited` |
//! | 408, 5xx | retried, after at least its `Retry-After` |
//! | other 4xx, 3xx | not retried; the provider reads the body (e.g. Binance `-1121` = unknown symbol) |
//! | timeout, connection error, body cut short | retried |
//!
//! Between attempts: exponential backoff with jitter (backon), from
//! `retry.min_delay` doubling to `retry.max_delay`, for at most
//! `retry.max_attempts` attempts and never past the deadline. Redirects are
//! not followed: a redirect would carry the API key header somewhere nobody
//! configured. Error texts never hold the URL (`reqwest::Error::without_url`)
//! and pass the scrubber, so neither the key nor credentials in `base_url`
//! can leak.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use ordermon_domain::ports::MarketDataError;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;

use crate::breaker::{Breaker, BreakerState, Snapshot};
use crate::config::{ProviderConfig, RetryConfig, Settings};
use crate::error::ConfigError;
use crate::limiter::{Closed, Limiter};
use crate::metrics as m;
use crate::redact::{self, Scrubber};

/// The most of an answer read.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The longest `Retry-After` honoured as such; a longer one is capped (the
/// gate still closes, calls fail fast with `RateLimited` meanwhile).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// Binance's report of the weight used in the current minute.
const USED_WEIGHT_HEADER: &str = "x-mbx-used-weight-1m";

/// One endpoint: its name (a metric label) and its request weight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint {
    pub(crate) name: &'static str,
    pub(crate) weight: u32,
}

/// A non-2xx answer that asking again will not change, for the provider to
/// read (the body is bounded and scrubbed).
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

impl Refusal {
    /// The generic error for it: `Refused("HTTP 401: …")`.
    pub(crate) fn into_error(self) -> MarketDataError {
        if self.body.is_empty() {
            MarketDataError::Refused(format!("HTTP {}", self.status.as_u16()))
        } else {
            MarketDataError::Refused(format!(
                "HTTP {}: {}",
                self.status.as_u16(),
                redact::bounded(&self.body, 200)
            ))
        }
    }
}

/// Why a `GET` gave no body.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A 4xx (or 3xx) the provider may interpret.
    Refused(Refusal),
    /// Anything else, already an error of the port.
    Error(MarketDataError),
}

/// What one attempt came to.
enum Attempt {
    Body(Vec<u8>),
    Stop(Failure),
    Retry {
        error: MarketDataError,
        retry_after: Option<Duration>,
        /// It counts against the breaker.
        failed: bool,
    },
}

/// One provider's HTTP client with its budget, breaker and retry policy.
pub(crate) struct Transport {
    provider: String,
    client: reqwest::Client,
    base: Url,
    headers: HeaderMap,
    limiter: Limiter,
    breaker: Breaker,
    retry: RetryConfig,
    call_timeout: Duration,
    ban_back_off: Duration,
    used_weight_header: Option<HeaderName>,
    scrubber: Scrubber,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL (it may carry credentials) and no headers (the key).
        f.debug_struct("Transport")
            .field("provider", &self.provider)
            .field("limiter", &self.limiter)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(config: &ProviderConfig, s: &Settings) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(s.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ordermon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Client {
                provider: s.name.clone(),
                reason: e.without_url().to_string(),
            })?;
        let mut scrubber = Scrubber::default();
        if let Some(key) = &config.api_key {
            scrubber.add(key.expose_secret());
        }
        if let Some(password) = s.base_url.password() {
            scrubber.add(password);
        }
        if !s.base_url.username().is_empty() {
            scrubber.add(s.base_url.username());
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some((name, value)) = &s.api_key {
            headers.insert(name.clone(), value.clone());
        }
        let heaviest = s.weights.values().copied().max().unwrap_or(1);
        Ok(Self {
            provider: s.name.clone(),
            client,
            base: s.base_url.clone(),
            headers,
            limiter: Limiter::new(
                &s.name,
                s.per_second,
                s.per_minute,
                heaviest,
                s.server_per_minute,
                s.slow_down_at_percent,
            ),
            breaker: Breaker::new(&s.name, s.breaker.failures, s.breaker.cool_down),
            retry: s.retry.clone(),
            call_timeout: s.call_timeout,
            ban_back_off: s.ban_back_off,
            used_weight_header: s
                .server_per_minute
                .map(|_| HeaderName::from_static(USED_WEIGHT_HEADER)),
            scrubber,
        })
    }

    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    pub(crate) fn breaker_snapshot(&self) -> Snapshot {
        self.breaker.snapshot()
    }

    pub(crate) fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// `text` with every known secret masked.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.scrubber.scrub(text)
    }

    /// `GET {base}/{segments…}?{query}` with the budget, breaker and retries.
    pub(crate) async fn get(
        &self,
        endpoint: Endpoint,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Vec<u8>, Failure> {
        let deadline = Instant::now() + self.call_timeout;
        let url = self.url(segments, query)?;
        let mut backoff = ExponentialBuilder::new()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(usize::try_from(self.retry.max_attempts.saturating_sub(1)).unwrap_or(0))
            .build();
        let labels = [
            ("provider", self.provider.clone()),
            ("endpoint", endpoint.name.to_owned()),
        ];
        let mut attempts = 0_u32;
        loop {
            attempts += 1;
            let permit = match self.breaker.try_acquire() {
                Ok(permit) => permit,
                Err(probe_in) => {
                    metrics::counter!(m::SHORT_CIRCUITED, &labels).increment(1);
                    return Err(Failure::Error(MarketDataError::Unavailable(format!(
                        "{}: circuit open, next probe in {} ms",
                        self.provider,
                        probe_in.as_millis()
                    ))));
                }
            };
            if let Err(refused) = self.limiter.acquire(endpoint.weight, deadline).await {
                drop(permit);
                return Err(Failure::Error(rate_limited(Some(refused.retry_after))));
            }
            let sent = Instant::now();
            let attempt = self.attempt(endpoint, &url).await;
            metrics::histogram!(m::REQUEST_SECONDS, &labels).record(sent.elapsed().as_secs_f64());
            let (error, retry_after) = match attempt {
                Attempt::Body(body) => {
                    permit.success();
                    return Ok(body);
                }
                Attempt::Stop(failure) => {
                    permit.success();
                    return Err(failure);
                }
                Attempt::Retry {
                    error,
                    retry_after,
                    failed,
                } => {
                    if failed {
                        permit.failure(&error.to_string());
                    } else {
                        permit.success();
                    }
                    (error, retry_after)
                }
            };
            let Some(backoff) = backoff.next() else {
                return Err(Failure::Error(exhausted(error, attempts)));
            };
            let delay = retry_after.map_or(backoff, |ra| ra.max(backoff));
            if Instant::now() + delay > deadline {
                return Err(Failure::Error(exhausted(error, attempts)));
            }
            tracing::debug!(
                provider = %self.provider,
                endpoint = endpoint.name,
                attempt = attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "market data request failed; retrying"
            );
            metrics::counter!(m::RETRIES, &labels).increment(1);
            tokio::time::sleep(delay).await;
        }
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, Failure> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                Failure::Error(MarketDataError::Unavailable(format!(
                    "{}: base_url cannot take a path",
                    self.provider
                )))
            })?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn attempt(&self, endpoint: Endpoint, url: &Url) -> Attempt {
        let outcome = |o: &'static str| {
            metrics::counter!(m::REQUESTS, "provider" => self.provider.clone(), "endpoint" => endpoint.name, "outcome" => o)
                .increment(1);
        };
        let response = match self
            .client
            .get(url.clone())
            .headers(self.headers.clone())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let (label, error) = self.transport_error(e);
                outcome(label);
                return Attempt::Retry {
                    error,
                    retry_after: None,
                    failed: true,
                };
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), Utc::now());
        if let Some(used) = self.used_weight(response.headers()) {
            self.limiter.observe_used_weight(used);
        }
        let body = match read_body(response).await {
            Ok(body) => body,
            Err(e) => {
                outcome("transport");
                return Attempt::Retry {
                    error: MarketDataError::Unavailable(format!(
                        "{}: answer cut short: {}",
                        self.provider,
                        self.scrub(&error_chain(&e.without_url()))
                    )),
                    retry_after: None,
                    failed: true,
                };
            }
        };
        let text = || self.scrub(String::from_utf8_lossy(&body).trim());
        if status.is_success() {
            outcome("ok");
            return Attempt::Body(body);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            outcome("rate_limited");
            let wait = retry_after.unwrap_or(self.retry.min_delay);
            self.limiter.close_for(wait, Closed::RetryAfter);
            return Attempt::Retry {
                error: rate_limited(Some(wait)),
                retry_after: Some(wait),
                failed: false,
            };
        }
        if status == StatusCode::IM_A_TEAPOT {
            outcome("banned");
            let wait = retry_after.unwrap_or(self.ban_back_off);
            self.limiter.close_for(wait, Closed::Ban);
            return Attempt::Stop(Failure::Error(rate_limited(Some(wait))));
        }
        if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
            outcome("server_error");
            if let Some(wait) = retry_after {
                self.limiter.close_for(wait, Closed::RetryAfter);
            }
            let body = text();
            let detail = if body.is_empty() {
                String::new()
            } else {
                format!(": {}", redact::bounded(&body, 200))
            };
            return Attempt::Retry {
                error: MarketDataError::Unavailable(format!(
                    "{}: HTTP {}{detail}",
                    self.provider,
                    status.as_u16()
                )),
                retry_after,
                failed: true,
            };
        }
        outcome("refused");
        Attempt::Stop(Failure::Refused(Refusal {
            status,
            body: redact::bounded(&text(), 4096),
        }))
    }

    fn used_weight(&self, headers: &HeaderMap) -> Option<u32> {
        let name = self.used_weight_header.as_ref()?;
        headers.get(name)?.to_str().ok()?.trim().parse().ok()
    }

    /// The metric outcome and the error of a request that got no answer.
    fn transport_error(&self, e: reqwest::Error) -> (&'static str, MarketDataError) {
        let (label, what) = if e.is_timeout() {
            ("timeout", "timed out")
        } else if e.is_connect() {
            ("connect", "cannot connect")
        } else {
            ("transport", "request failed")
        };
        // `without_url` drops the URL reqwest keeps in its errors; the
        // scrubber catches a secret a lower layer might still have quoted.
        let chain = self.scrub(&error_chain(&e.without_url()));
        (
            label,
            MarketDataError::Unavailable(format!("{}: {what}: {chain}", self.provider)),
        )
    }
}

/// An error and its causes, `a: b: c`, skipping causes already quoted by
/// their parent.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Reads at most [`MAX_BODY`] bytes.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok(body)
}

fn rate_limited(wait: Option<Duration>) -> MarketDataError {
    MarketDataError::RateLimited {
        retry_after_secs: wait.map(|w| w.as_secs() + u64::from(w.subsec_nanos() > 0)),
    }
}

fn exhausted(error: MarketDataError, attempts: u32) -> MarketDataError {
    match error {
        MarketDataError::Unavailable(text) if attempts > 1 => {
            MarketDataError::Unavailable(format!("{text} (after {attempts} attempts)"))
        }
        other => other,
    }
}

/// The `Retry-After` header: delay-seconds or an HTTP date, capped.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = text.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = Utc::now();
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = (now + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&h, now).unwrap();
        assert!(
            (Duration::from_secs(29)..=Duration::from_secs(30)).contains(&wait),
            "{wait:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn rate_limited_rounds_the_wait_up() {
        assert_eq!(
            rate_limited(Some(Duration::from_millis(1500))),
            MarketDataError::RateLimited {
                retry_after_secs: Some(2)
            }
        );
        assert_eq!(
            rate_limited(Some(Duration::from_secs(3))),
            MarketDataError::RateLimited {
                retry_after_secs: Some(3)
            }
        );
    }
}
