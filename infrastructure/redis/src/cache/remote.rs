//! The shared tier: the [`Cache`] port on a deadpool-redis connection pool.
//!
//! Every command runs under a timeout, so a Redis that hangs costs a caller at
//! most `command_timeout` before it falls through to the store. `invalidate`
//! deletes the key and publishes it on the invalidation channel in one atomic
//! `MULTI`, so no instance can see the delete without the message following.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Manager, Pool, PoolConfig, Runtime, Timeouts};
use ordermon_domain::ports::{Cache, CacheError, CacheKey};

use super::config::RedisCacheConfig;

/// The Redis cache.
#[derive(Clone)]
pub struct RedisCache {
    pool: Pool,
    channel: String,
    command_timeout: Duration,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("channel", &self.channel)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A pool for `url` (`redis://[:password@]host:port[/db]`, or `rediss://…`
    /// for TLS, verified against `config.tls_ca_file` when set). Nothing is
    /// connected yet: an unreachable Redis shows on first use, not here.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when the URL or the CA file cannot be used.
    pub fn new(url: &str, config: &RedisCacheConfig) -> Result<Self, CacheError> {
        let client = crate::tls::client(url, config.tls_ca_file.as_deref())
            .map_err(|e| CacheError::Unavailable(e.to_string()))?;
        // The manager gets the client's parsed connection info, which carries
        // the trusted CA; a URL alone could not.
        let manager = Manager::new(client.get_connection_info().clone())
            .map_err(|e| CacheError::Unavailable(format!("bad redis url: {e}")))?;
        let pool = Pool::builder(manager)
            .config(PoolConfig {
                max_size: config.pool_size.max(1),
                timeouts: Timeouts {
                    wait: Some(config.connect_timeout),
                    create: Some(config.connect_timeout),
                    recycle: Some(config.connect_timeout),
                },
                ..PoolConfig::default()
            })
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| CacheError::Unavailable(format!("cannot build the redis pool: {e}")))?;
        Ok(Self {
            pool,
            channel: config.channel.clone(),
            command_timeout: config.command_timeout,
        })
    }

    /// The invalidation channel.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Runs one command (or pipeline) on a pooled connection under the timeout.
    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        cmd: impl FnOnce() -> redis::Pipeline,
    ) -> Result<T, CacheError> {
        let pipe = cmd();
        let work = async {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| CacheError::Unavailable(format!("redis {what}: {e}")))?;
            pipe.query_async::<T>(&mut conn)
                .await
                .map_err(|e| CacheError::Unavailable(format!("redis {what}: {e}")))
        };
        match tokio::time::timeout(self.command_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(CacheError::Unavailable(format!("redis {what}: timed out"))),
        }
    }

    /// Publishes `payload` on `channel` (heartbeats of the invalidation feed).
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when Redis cannot be reached.
    pub async fn publish(&self, channel: &str, payload: &str) -> Result<(), CacheError> {
        self.run::<(i64,)>("publish", || {
            let mut p = redis::pipe();
            p.cmd("PUBLISH").arg(channel).arg(payload);
            p
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        let k = key.render();
        self.run::<(Option<Vec<u8>>,)>("get", || {
            let mut p = redis::pipe();
            p.cmd("GET").arg(&k);
            p
        })
        .await
        .map(|(v,)| v)
    }

    async fn set(&self, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let k = key.render();
        // PX takes whole milliseconds and refuses 0.
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.run::<()>("set", || {
            let mut p = redis::pipe();
            p.cmd("SET").arg(&k).arg(value).arg("PX").arg(ms).ignore();
            p
        })
        .await
    }

    async fn invalidate(&self, key: &CacheKey) -> Result<(), CacheError> {
        let k = key.render();
        let channel = self.channel.clone();
        self.run::<()>("invalidate", || {
            let mut p = redis::pipe();
            p.atomic()
                .cmd("DEL")
                .arg(&k)
                .ignore()
                .cmd("PUBLISH")
                .arg(&channel)
                .arg(&k)
                .ignore();
            p
        })
        .await
    }

    async fn evict_local(&self, _key: &CacheKey) -> Result<(), CacheError> {
        // Nothing of its own: the writer already deleted the shared entry.
        Ok(())
    }

    async fn health(&self) -> Result<(), CacheError> {
        let (pong,): (String,) = self
            .run("ping", || {
                let mut p = redis::pipe();
                p.cmd("PING");
                p
            })
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(CacheError::Unavailable(format!(
                "redis ping answered {pong:?}"
            )))
        }
    }
}
