//! The cache: Redis as the shared tier, an in-process moka tier in front.
//!
//! - [`RedisCache`]: the [`Cache`] port on a deadpool-redis pool, every command
//!   under a timeout; `invalidate` is `DEL` plus `PUBLISH ordermon:invalidate <key>`.
//! - [`TieredCache`]: moka in front of any `Arc<dyn Cache>`, with cross-instance
//!   invalidation, fences against fills racing other instances' commits, and
//!   the degraded mode (Redis down = slower, never wrong or down).
//! - [`connect`]: what the binary calls for a `redis://…` (or TLS `rediss://…`)
//!   cache URL; it starts
//!   the invalidation subscriber and the prober as tracked tasks.
//!
//! Metrics (label `namespace` only): `ordermon_cache_local_hits_total`,
//! `ordermon_cache_remote_hits_total`, `ordermon_cache_fenced_fills_total`;
//! without labels: `ordermon_cache_fence_corrections_total`,
//! `ordermon_cache_remote_errors_total`, `ordermon_cache_degraded` (gauge, 1 when
//! degraded) and `ordermon_cache_degradations_total` (entries into degraded mode).
//! The application's read-through layer records hits, misses, loads, load time
//! and invalidations per namespace.

mod config;
mod feed;
mod remote;
mod tiered;

use std::sync::Arc;

use ordermon_domain::ports::{Cache, CacheError};
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{CacheConfig, RedisCacheConfig, TieredConfig};
pub use remote::RedisCache;
pub use tiered::{CacheStatus, TieredCache};

/// A tiered cache over the Redis at `url`, with its invalidation subscriber and
/// prober running in `tracker` until `cancel`. Waits up to the connect timeout
/// for Redis; an unreachable Redis is not an error (the cache starts degraded
/// and recovers on its own), only an unusable URL is.
///
/// # Errors
/// [`CacheError::Unavailable`] when `url` cannot be used.
pub async fn connect(
    url: &str,
    config: &CacheConfig,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<TieredCache, CacheError> {
    let redis = RedisCache::new(url, &config.redis)?;
    let client = crate::tls::client(url, config.redis.tls_ca_file.as_deref())
        .map_err(|e| CacheError::Unavailable(e.to_string()))?;
    let remote: Arc<dyn Cache> = Arc::new(redis.clone());
    let tiered = TieredCache::new(remote, config.tiered.clone());
    tiered.attach_feed();
    let heartbeat = format!(
        "{}:heartbeat:{:016x}",
        config.redis.channel,
        rand::rng().random::<u64>()
    );
    let spec = feed::FeedSpec {
        client,
        channel: config.redis.channel.clone(),
        heartbeat: heartbeat.clone(),
        connect_timeout: config.redis.connect_timeout,
        feed_timeout: config.tiered.feed_timeout,
        max_backoff: config.tiered.max_backoff,
    };
    tracker.spawn(feed::subscriber(spec, tiered.clone(), cancel.clone()));
    tracker.spawn(feed::prober(
        redis,
        heartbeat,
        tiered.clone(),
        config.tiered.probe_interval,
        cancel.clone(),
    ));
    if !tiered.wait_connected(config.redis.connect_timeout).await {
        tracing::warn!("cache starts degraded: redis not reachable yet");
    }
    Ok(tiered)
}

#[cfg(test)]
mod tests;
