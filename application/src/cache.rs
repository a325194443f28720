//! The read-through cache: typed, namespaced reads over the [`Cache`] port, with
//! single-flight loads, negative caching, and invalidation on every write.
//!
//! # Never stale
//! The group committer sees every committed change set. After a batch commits
//! and *before* its callers are answered, it invalidates every key the batch
//! made stale ([`keys::stale_after`]: orders by id and client id, the user's
//! account/portfolio state, the user, strategies, instruments). So once a write
//! is acknowledged, no cached read returns the state before it.
//!
//! The classic race remains: a reader loads the old row *before* the commit and
//! writes it into the cache *after* the invalidation. It is closed with striped
//! generation counters and a barrier ([`stripes`]), chosen over versioned
//! entries because not every cached value has one version (the portfolio state
//! joins account, positions and orders; "not found" has none) and because a
//! version check would need a read-modify-write the cache port does not have:
//! - a load takes its key's generation *before* it reads the store;
//! - an invalidation bumps the generation under the stripe's write lock, then
//!   deletes the entry;
//! - a fill writes under the stripe's read lock, and only if the generation is
//!   unchanged.
//!
//! Either the fill lands first and the invalidation's delete removes it, or the
//! fill sees the bump and gives up. Single-flight respects the same rule: a
//! reader arriving after an invalidation never joins a load that started before
//! it. A load slower than `max_fill_age` is answered but not cached. Across
//! instances the Redis tier adds fences for the same race (see `ordermon-redis`).
//!
//! What no write path sees — `UPDATE users SET status=…` in plain SQL — is
//! bounded by the namespace TTL: users and strategies default to 2 s, well
//! below the 10 s monitor scan interval. The monitor scan itself is not cached:
//! it is one query per interval, and caching it could only delay a plain-SQL
//! change past the interval.
//!
//! # The decoded tier
//! When the cache is this instance's own (`cache.url = "memory"`), what this
//! process loaded is also kept decoded ([`decoded`]), in front of the
//! backend's bytes: a hit is then a look-up and a clone, not a decode. It is
//! filled only by [`ReadCache::get_or_load`]'s own fills (same guard, same
//! generation check) and emptied by every invalidation and eviction after the
//! generation bump, so it is never staler than the backend. A shared cache
//! has none: its in-process tier follows the Redis invalidation feed and
//! fences of other instances' writes, which this layer does not see.
//!
//! # Failures
//! A cache that fails or is unreachable is a miss: the value is loaded from the
//! store or the owner and the request answered. Cache errors are never returned.

mod codec;
mod decoded;
pub mod keys;
mod mirror;
mod settings;
pub mod stripes;
mod typed;

pub use codec::{CodecError, Entry, decode, decode_value, encode, encode_value};
pub use settings::{CacheSettings, Codec, NamespaceSettings};
pub use typed::CachedSnapshot;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use ordermon_domain::ports::{Cache, CacheKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::error::AppError;
use decoded::Decoded;
use stripes::{Stripes, Token};

type Loaded = Result<Option<Arc<dyn Any + Send + Sync>>, AppError>;

/// One load in flight, joined by every reader of the same key that may use it.
struct Flight {
    token: Token,
    cell: Arc<OnceCell<Loaded>>,
}

/// The read-through cache the engine reads through.
pub struct ReadCache {
    backend: Option<Arc<dyn Cache>>,
    settings: CacheSettings,
    shared: bool,
    stripes: Stripes,
    flights: DashMap<String, Flight>,
    /// Only when the cache is this instance's own (see the module docs).
    decoded: Option<Decoded>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("backend", &self.backend)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl ReadCache {
    /// No cache: every read loads.
    #[must_use]
    pub fn off() -> Self {
        Self::build(None, CacheSettings::default(), false)
    }

    /// A cache used by this instance only (`cache.url = "memory"`).
    #[must_use]
    pub fn new(backend: Arc<dyn Cache>, settings: CacheSettings) -> Self {
        let backend = settings.enabled.then_some(backend);
        Self::build(backend, settings, false)
    }

    /// A cache shared by several instances (Redis): latest quotes are also
    /// copied into it, so instances without the feed can serve them.
    #[must_use]
    pub fn shared(backend: Arc<dyn Cache>, settings: CacheSettings) -> Self {
        let backend = settings.enabled.then_some(backend);
        Self::build(backend, settings, true)
    }

    fn build(backend: Option<Arc<dyn Cache>>, settings: CacheSettings, shared: bool) -> Self {
        Self {
            // A shared cache's in-process tier follows the Redis invalidation
            // feed and fences (`ordermon-redis`), which this tier cannot see.
            decoded: (!shared).then(|| Decoded::new(settings.decoded_entries)),
            backend,
            settings,
            shared,
            stripes: Stripes::new(4096),
            flights: DashMap::new(),
        }
    }

    /// True when reads go through a cache.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.backend.is_some()
    }

    /// True when the cache is shared between instances.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.shared && self.backend.is_some()
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// Reads `key`, or loads it once however many readers miss together, and
    /// caches the result (`None` = "not found", cached for `negative_ttl`).
    ///
    /// # Errors
    /// Only the loader's errors (not cached; every waiting reader gets them).
    pub async fn get_or_load<T, F, Fut>(
        &self,
        key: CacheKey,
        load: F,
    ) -> Result<Option<T>, AppError>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, AppError>>,
    {
        let Some(backend) = &self.backend else {
            return load().await;
        };
        let ns = key.namespace;
        if let Some(hit) = self.read::<T>(backend, &key).await {
            return Ok(hit);
        }
        metrics::counter!("ordermon_cache_misses_total", "namespace" => ns).increment(1);
        let rendered = key.render();
        let token = self.stripes.token(&rendered);
        let cell = {
            let mut flight = self
                .flights
                .entry(rendered.clone())
                .or_insert_with(|| Flight {
                    token,
                    cell: Arc::new(OnceCell::new()),
                });
            if !flight.token.covers(token) {
                // That load started before an invalidation this reader saw.
                *flight = Flight {
                    token,
                    cell: Arc::new(OnceCell::new()),
                };
            }
            flight.cell.clone()
        };
        let result = cell
            .get_or_init(|| async {
                // A reader that missed just before another flight filled the
                // entry (and left) finds it now instead of loading again.
                if let Some(hit) = self.read::<T>(backend, &key).await {
                    return Ok(hit.map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>));
                }
                let started = Instant::now();
                let loaded = load().await;
                let took = started.elapsed();
                metrics::counter!("ordermon_cache_loads_total", "namespace" => ns).increment(1);
                metrics::histogram!("ordermon_cache_load_seconds", "namespace" => ns)
                    .record(took.as_secs_f64());
                if let Ok(value) = &loaded
                    && took <= self.settings.max_fill_age
                {
                    self.fill(backend, &key, token, value.as_ref()).await;
                }
                loaded.map(|v| v.map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>))
            })
            .await
            .clone();
        self.flights
            .remove_if(&rendered, |_, f| Arc::ptr_eq(&f.cell, &cell));
        match result? {
            None => Ok(None),
            Some(any) => {
                any.downcast_ref::<T>().cloned().map(Some).ok_or_else(|| {
                    AppError::Unexpected(format!("cache type mismatch on {rendered}"))
                })
            }
        }
    }

    /// Reads a cached entry: `Some(value or None)` on a hit, `None` on a miss.
    /// The decoded tier first, then the backend's bytes.
    async fn read<T: DeserializeOwned + Clone + 'static>(
        &self,
        backend: &Arc<dyn Cache>,
        key: &CacheKey,
    ) -> Option<Option<T>> {
        let decoded = match &self.decoded {
            Some(decoded) => decoded.get::<T>(&key.render()).await,
            None => None,
        };
        let hit = match decoded {
            Some(hit) => hit,
            None => self.read_bytes::<T>(backend, key).await?,
        };
        let ns = key.namespace;
        metrics::counter!("ordermon_cache_hits_total", "namespace" => ns).increment(1);
        if hit.is_none() {
            metrics::counter!("ordermon_cache_negative_hits_total", "namespace" => ns).increment(1);
        }
        Some(hit)
    }

    /// Reads and decodes the backend's entry: `Some(value or None)` on a hit,
    /// `None` on a miss (absent, expired, undecodable or unreachable).
    async fn read_bytes<T: DeserializeOwned>(
        &self,
        backend: &Arc<dyn Cache>,
        key: &CacheKey,
    ) -> Option<Option<T>> {
        let ns = key.namespace;
        let codec = self.settings.namespace(ns).codec;
        match backend.get(key).await {
            Ok(Some(bytes)) => match codec::decode::<T>(codec, &bytes) {
                Ok(Entry::Value(v)) => Some(Some(v)),
                Ok(Entry::Absent) => Some(None),
                Ok(Entry::Expired) => None,
                Err(e) => {
                    metrics::counter!("ordermon_cache_errors_total", "namespace" => ns)
                        .increment(1);
                    tracing::debug!(key = %key, error = %e, "undecodable cache entry ignored");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                metrics::counter!("ordermon_cache_errors_total", "namespace" => ns).increment(1);
                tracing::debug!(key = %key, error = %e, "cache read failed; loading");
                None
            }
        }
    }

    /// Writes a loaded value unless its key was invalidated since `token`.
    async fn fill<T: Serialize + Clone + Send + Sync + 'static>(
        &self,
        backend: &Arc<dyn Cache>,
        key: &CacheKey,
        token: Token,
        value: Option<&T>,
    ) {
        let ns = self.settings.namespace(key.namespace);
        let ttl = if value.is_some() {
            ns.ttl
        } else {
            self.settings.negative_ttl.min(ns.ttl)
        };
        let bytes = match codec::encode(ns.codec, value, ttl) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "value not cached: cannot encode");
                return;
            }
        };
        let Some(_guard) = self.stripes.fill_guard(token).await else {
            metrics::counter!("ordermon_cache_skipped_fills_total", "namespace" => key.namespace)
                .increment(1);
            return;
        };
        if let Some(decoded) = &self.decoded {
            decoded.insert(key.render(), value, ttl).await;
        }
        if let Err(e) = backend.set(key, bytes, ttl).await {
            tracing::debug!(key = %key, error = %e, "cache fill failed");
        }
    }

    /// Writes a value directly (write-through of data that has no loader, such
    /// as quotes), with the namespace's TTL.
    pub async fn put<T: Serialize + Clone + Send + Sync + 'static>(
        &self,
        key: &CacheKey,
        value: &T,
    ) {
        let Some(backend) = &self.backend else {
            return;
        };
        let token = self.stripes.token(&key.render());
        self.fill(backend, key, token, Some(value)).await;
    }

    /// Reads a value written by [`ReadCache::put`]; `None` when absent.
    pub async fn peek<T: DeserializeOwned + Clone + 'static>(&self, key: &CacheKey) -> Option<T> {
        let backend = self.backend.as_ref()?;
        self.read::<T>(backend, key).await.flatten()
    }

    /// Drops this instance's copies of keys another instance changed (its
    /// events arrive over the bus): bumps each key's generation, so a fill in
    /// flight is discarded, then evicts the in-process tier only — the writer
    /// already invalidated the shared one.
    pub async fn evict_local(&self, keys: &[CacheKey]) {
        let Some(backend) = &self.backend else {
            return;
        };
        for key in keys {
            let rendered = key.render();
            self.stripes.evict_barrier(&rendered).await;
            if let Some(decoded) = &self.decoded {
                decoded.remove(&rendered).await;
            }
        }
        for key in keys {
            metrics::counter!("ordermon_cache_remote_evictions_total", "namespace" => key.namespace)
                .increment(1);
            if let Err(e) = backend.evict_local(key).await {
                tracing::debug!(key = %key, error = %e, "cache eviction failed");
            }
        }
    }

    /// Invalidates keys here and, through the backend, everywhere: bumps each
    /// key's generation (waiting for fills in flight), then deletes. Failures
    /// are logged, never returned: the Redis tier keeps them for replay.
    pub async fn invalidate(&self, keys: &[CacheKey]) {
        let Some(backend) = &self.backend else {
            return;
        };
        for key in keys {
            let rendered = key.render();
            self.stripes.evict_barrier(&rendered).await;
            if let Some(decoded) = &self.decoded {
                decoded.remove(&rendered).await;
            }
        }
        futures::future::join_all(keys.iter().map(|key| async move {
            metrics::counter!("ordermon_cache_invalidations_total", "namespace" => key.namespace)
                .increment(1);
            if let Err(e) = backend.invalidate(key).await {
                tracing::warn!(key = %key, error = %e, "cache invalidation failed");
            }
        }))
        .await;
    }
}

#[cfg(test)]
mod tests;
