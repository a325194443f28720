//! Settings of the Redis Streams bus.

use std::path::PathBuf;
use std::time::Duration;

use ordermon_domain::credential::redact_url;

/// Settings of the Redis Streams bus. `Debug` masks the URL's password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisBusConfig {
    /// `redis://host:port/db`, or `rediss://…` for TLS.
    pub url: String,
    /// The only CA a `rediss://` server's certificate may chain to (PEM); unset,
    /// the system's certificate store is trusted.
    pub tls_ca_file: Option<PathBuf>,
    /// The stream every event is appended to; dead-letter streams derive from it.
    pub stream: String,
    /// Approximate most entries kept (`XADD … MAXLEN ~`). Must cover the longest
    /// consumer outage: an entry trimmed before a group read it is lost to it.
    pub max_len: usize,
    /// Approximate most entries kept in each dead-letter stream.
    pub dead_max_len: usize,
    /// How long one blocking read waits for new entries.
    pub block: Duration,
    /// A delivery unacknowledged this long is taken over from its consumer,
    /// which is presumed dead (`XAUTOCLAIM`). Longer than every retry delay.
    pub claim_idle: Duration,
    /// Delay before the n-th redelivery (the last one repeats).
    pub retry_delays: Vec<Duration>,
    /// First reconnect delay (doubles, with jitter, up to `reconnect_max`).
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// How long one command may take before it counts as failed.
    pub response_timeout: Duration,
}

impl std::fmt::Debug for RedisBusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBusConfig")
            .field("url", &redact_url(&self.url))
            .field("tls_ca_file", &self.tls_ca_file)
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .field("dead_max_len", &self.dead_max_len)
            .field("block", &self.block)
            .field("claim_idle", &self.claim_idle)
            .field("retry_delays", &self.retry_delays)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

impl RedisBusConfig {
    /// Defaults for `url`: stream `ordermon:events`, about a million entries kept,
    /// retries after 1 s, 5 s, 30 s, stuck deliveries reclaimed after 60 s.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tls_ca_file: None,
            stream: "ordermon:events".to_owned(),
            max_len: 1_000_000,
            dead_max_len: 100_000,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(60),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// A group's dead-letter stream.
    #[must_use]
    pub fn dead_stream(&self, group: &str) -> String {
        format!("{}:dlq:{group}", self.stream)
    }

    /// The delay before redelivery after failed attempt number `attempt`.
    #[must_use]
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_delays
            .get(i)
            .or_else(|| self.retry_delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    /// The idle time after which deliveries are reclaimed: at least twice the
    /// longest retry delay, so a message waiting for its own retry is not taken
    /// over as stuck.
    #[must_use]
    pub fn effective_claim_idle(&self) -> Duration {
        let longest = self.retry_delays.iter().max().copied().unwrap_or_default();
        self.claim_idle.max(longest * 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_password() {
        let c = RedisBusConfig::new("redis://:hunter2@127.0.0.1:6379/0");
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("redis://:[REDACTED]@127.0.0.1:6379/0"),
            "{printed}"
        );
        let tls = RedisBusConfig::new("rediss://user:hunter2@cache:6390/0#insecure");
        let printed = format!("{tls:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("rediss://user:[REDACTED]@cache:6390/0#insecure"),
            "{printed}"
        );
    }
}
