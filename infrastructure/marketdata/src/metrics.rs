//! Metric names. Labels stay low-cardinality: `provider` (the configured
//! provider name), `endpoint` (`exchange_info`, `book_ticker`, `klines`,
//! `chart`; `quote`/`bars` for cache lookups), `outcome`, `reason`, `state` —
//! never an instrument.

/// Counter of HTTP requests sent, by `provider`, `endpoint` and `outcome`:
/// `ok`, `refused` (4xx), `rate_limited` (429), `banned` (418),
/// `server_error` (408, 5xx), `timeout`, `connect`, `transport`.
pub const REQUESTS: &str = "ordermon_marketdata_requests_total";
/// Histogram of request latency in seconds, by `provider` and `endpoint`.
pub const REQUEST_SECONDS: &str = "ordermon_marketdata_request_seconds";
/// Counter of retries, by `provider` and `endpoint`.
pub const RETRIES: &str = "ordermon_marketdata_retries_total";
/// Counter of calls failed fast by the open circuit, by `provider` and `endpoint`.
pub const SHORT_CIRCUITED: &str = "ordermon_marketdata_short_circuited_total";
/// Counter of answers that could not be understood, by `provider` and `endpoint`.
pub const BAD_RESPONSES: &str = "ordermon_marketdata_bad_responses_total";
/// Gauge of the circuit state by `provider`: 0 closed, 1 half-open, 2 open.
pub const BREAKER_STATE: &str = "ordermon_marketdata_breaker_state";
/// Counter of circuit state changes, by `provider` and the new `state`.
pub const BREAKER_TRANSITIONS: &str = "ordermon_marketdata_breaker_transitions_total";
/// Histogram of the time a request waited for the weight budget, by `provider`.
pub const RATE_LIMIT_WAIT: &str = "ordermon_marketdata_rate_limit_wait_seconds";
/// Counter of calls refused by the local budget before sending, by `provider`
/// and `reason` (`budget`, `gate`, `queue`).
pub const THROTTLED: &str = "ordermon_marketdata_throttled_total";
/// Gauge of the used weight the exchange last reported, by `provider`.
pub const USED_WEIGHT: &str = "ordermon_marketdata_used_weight";
/// Counter of cache lookups, by `provider`, `endpoint` (`quote`, `bars`) and
/// `outcome` (`hit`, `miss`, `error`).
pub const CACHE: &str = "ordermon_marketdata_cache_total";
