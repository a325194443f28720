//! Settings of the Redis cache and of the in-process tier in front of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How the cache talks to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisCacheConfig {
    /// Most pooled connections.
    pub pool_size: usize,
    /// Longest wait for a pooled connection (and to open a new one).
    pub connect_timeout: Duration,
    /// Longest a single command may take before it counts as a failure.
    pub command_timeout: Duration,
    /// The pub/sub channel invalidations are published on.
    pub channel: String,
    /// The only CA a `rediss://` server's certificate may chain to (PEM); unset,
    /// the system's certificate store is trusted.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        Self {
            pool_size: 64,
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(250),
            channel: "ordermon:invalidate".to_owned(),
            tls_ca_file: None,
        }
    }
}

/// The in-process tier and the health machinery around the shared tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieredConfig {
    /// Most entries the in-process tier holds (LRU-like eviction beyond).
    pub max_entries: u64,
    /// In-process TTL per namespace; an entry never outlives the TTL it was
    /// written with, nor this.
    pub namespace_ttl: BTreeMap<String, Duration>,
    /// In-process TTL of namespaces not listed.
    pub default_ttl: Duration,
    /// After an invalidation from another instance, fills of that key are
    /// refused for this long (they may come from a load that started before the
    /// other instance's commit), and a fill made this long before such an
    /// invalidation is deleted again. Must be at least the application's
    /// longest accepted load time plus the shared tier's command timeout.
    pub fence_window: Duration,
    /// How often the shared tier is probed (and the heartbeat published).
    pub probe_interval: Duration,
    /// The invalidation feed counts as lost after this long without any
    /// message (heartbeats arrive every `probe_interval`).
    pub feed_timeout: Duration,
    /// Longest wait between two reconnection attempts of the feed.
    pub max_backoff: Duration,
    /// Invalidations remembered while the shared tier is down, replayed on
    /// recovery. Beyond this the shared tier is not read for `overflow_distrust`
    /// after recovery (its entries may be stale and cannot all be named).
    pub max_pending: usize,
    /// See `max_pending`; at least the longest namespace TTL.
    pub overflow_distrust: Duration,
}

impl Default for TieredConfig {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            namespace_ttl: BTreeMap::new(),
            default_ttl: Duration::from_secs(60),
            fence_window: Duration::from_secs(2),
            probe_interval: Duration::from_millis(500),
            feed_timeout: Duration::from_secs(2),
            max_backoff: Duration::from_secs(5),
            max_pending: 100_000,
            overflow_distrust: Duration::from_secs(300),
        }
    }
}

impl TieredConfig {
    /// The in-process TTL of a namespace.
    #[must_use]
    pub fn local_ttl(&self, namespace: &str) -> Duration {
        self.namespace_ttl
            .get(namespace)
            .copied()
            .unwrap_or(self.default_ttl)
    }
}

/// Everything [`super::connect`] needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheConfig {
    /// Redis.
    pub redis: RedisCacheConfig,
    /// The in-process tier.
    pub tiered: TieredConfig,
}
