//! The two-tier cache: an in-process moka tier in front of any shared [`Cache`].
//!
//! Reads try the in-process tier, then the shared tier (filling the in-process
//! tier on a hit); writes and invalidations go to both. Other instances' writes
//! arrive as invalidation messages ([`TieredCache::on_invalidation`], fed by the
//! Redis subscriber in [`super::feed`]).
//!
//! Correctness rules, in the order they matter:
//! - The in-process tier is only coherent while the invalidation feed is
//!   connected. When it is lost the tier is cleared and bypassed; when it comes
//!   back the tier is cleared again (messages were missed in between) before it
//!   is trusted.
//! - A fill that raced an eviction is never left behind (see [`ordermon_application::cache::stripes`]).
//!   An invalidation deletes in Redis first and evicts locally second, so a
//!   reader that fetched the old value from Redis cannot refill the local tier.
//! - Fences against other instances' commits: an instance whose loader read the
//!   store just before another instance committed could write the old value
//!   into the shared tier after that instance's delete. So a fill is refused for
//!   `fence_window` after an invalidation from elsewhere, and a fill made less
//!   than `fence_window` before such an invalidation is deleted again (and the
//!   delete published), whichever order the two arrive in.
//! - Redis unavailable: reads return a miss (the caller loads from the store),
//!   writes return `Ok` after applying locally, invalidations that could not
//!   reach Redis are kept and replayed on recovery, the health flag says
//!   degraded. A prober notices recovery, replays, clears the in-process tier
//!   and trusts Redis again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use moka::Expiry;
use ordermon_domain::ports::{Cache, CacheError, CacheKey};
use parking_lot::Mutex;

use super::config::TieredConfig;
use ordermon_application::cache::stripes::Stripes;

/// An in-process entry: the bytes and the TTL it was written with.
#[derive(Debug, Clone)]
struct LocalEntry {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

/// Expires each entry after its own TTL.
struct EntryExpiry;

impl Expiry<String, LocalEntry> for EntryExpiry {
    fn expire_after_create(&self, _: &String, v: &LocalEntry, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        v: &LocalEntry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// Whether the cache is whole, and if not why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// Both tiers work.
    Ok,
    /// Redis or the invalidation feed is unavailable: answers still come, from
    /// the store; slower, never wrong.
    Degraded {
        /// A short, non-secret reason.
        reason: String,
    },
}

/// A fill this instance made recently.
#[derive(Debug)]
struct FillRecord {
    at: Instant,
    key: CacheKey,
    /// The Redis write has not returned yet.
    in_flight: bool,
    /// An invalidation from elsewhere arrived while it was in flight: the
    /// writer deletes again once its write has landed.
    contested: bool,
}

#[derive(Debug, Default)]
struct Pending {
    keys: HashMap<String, CacheKey>,
    overflowed: bool,
}

struct Inner {
    local: moka::future::Cache<String, LocalEntry>,
    remote: Arc<dyn Cache>,
    config: TieredConfig,
    stripes: Stripes,
    remote_ok: AtomicBool,
    has_feed: AtomicBool,
    feed_ok: AtomicBool,
    /// Serializes health transitions so each is logged once.
    transitions: Mutex<Option<String>>,
    /// Redis is not read before this (after an overflow of `pending`).
    distrust_until: Mutex<Option<Instant>>,
    pending: Mutex<Pending>,
    /// Keys this instance filled recently, for the fence.
    recent_fills: DashMap<String, FillRecord>,
    /// Keys other instances invalidated recently, for the fence.
    recent_foreign: DashMap<String, Instant>,
    /// Invalidations this instance published and has not yet heard back.
    own: DashMap<String, (u32, Instant)>,
}

/// The two-tier cache. Cheap to clone.
#[derive(Clone)]
pub struct TieredCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TieredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("remote", &self.inner.remote)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl TieredCache {
    /// An in-process tier of `config.max_entries` in front of `remote`. Without
    /// an invalidation feed (see [`TieredCache::attach_feed`]) the in-process
    /// tier is trusted as is: right for a single instance only.
    #[must_use]
    pub fn new(remote: Arc<dyn Cache>, config: TieredConfig) -> Self {
        let local = moka::future::Cache::builder()
            .max_capacity(config.max_entries)
            .expire_after(EntryExpiry)
            .build();
        Self {
            inner: Arc::new(Inner {
                local,
                remote,
                config,
                stripes: Stripes::new(1024),
                remote_ok: AtomicBool::new(true),
                has_feed: AtomicBool::new(false),
                feed_ok: AtomicBool::new(false),
                transitions: Mutex::new(None),
                distrust_until: Mutex::new(None),
                pending: Mutex::new(Pending::default()),
                recent_fills: DashMap::new(),
                recent_foreign: DashMap::new(),
                own: DashMap::new(),
            }),
        }
    }

    /// Declares that an invalidation feed will report through
    /// [`TieredCache::feed_up`]/[`TieredCache::feed_down`]: until it is up, the
    /// in-process tier is bypassed.
    pub fn attach_feed(&self) {
        // Not a transition: the feed is simply not connected yet.
        self.inner.has_feed.store(true, Ordering::SeqCst);
    }

    /// Waits until the cache is whole (Redis and feed up), at most `timeout`;
    /// true when it is.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while self.degraded() {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// The shared tier.
    #[must_use]
    pub fn remote(&self) -> &Arc<dyn Cache> {
        &self.inner.remote
    }

    /// True when Redis or the invalidation feed is unavailable.
    #[must_use]
    pub fn degraded(&self) -> bool {
        !self.inner.remote_ok.load(Ordering::SeqCst) || !self.local_trusted()
    }

    /// Ok, or degraded with the reason (for `/health/ready`).
    #[must_use]
    pub fn status(&self) -> CacheStatus {
        if self.degraded() {
            let reason = self
                .inner
                .transitions
                .lock()
                .clone()
                .unwrap_or_else(|| "invalidation feed not connected yet".to_owned());
            CacheStatus::Degraded { reason }
        } else {
            CacheStatus::Ok
        }
    }

    /// Entries in the in-process tier (approximate).
    #[must_use]
    pub fn local_entries(&self) -> u64 {
        self.inner.local.entry_count()
    }

    fn local_trusted(&self) -> bool {
        !self.inner.has_feed.load(Ordering::SeqCst) || self.inner.feed_ok.load(Ordering::SeqCst)
    }

    fn remote_readable(&self) -> bool {
        if !self.inner.remote_ok.load(Ordering::SeqCst) {
            return false;
        }
        let mut until = self.inner.distrust_until.lock();
        match *until {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                *until = None;
                true
            }
            None => true,
        }
    }

    /// Applies a health change; logs and counts each entry into and exit from
    /// the degraded state once. (Starting up before the feed is connected is
    /// not an entry; the first failure seen then is.)
    fn transition(&self, change: impl FnOnce(), reason: &str) {
        let mut last = self.inner.transitions.lock();
        let before = self.degraded();
        change();
        let after = self.degraded();
        metrics::gauge!("ordermon_cache_degraded").set(if after { 1.0 } else { 0.0 });
        if after && !reason.is_empty() && last.is_none() {
            *last = Some(reason.to_owned());
            metrics::counter!("ordermon_cache_degradations_total").increment(1);
            tracing::warn!(
                reason,
                "cache degraded: reads fall through to the store until redis is back"
            );
        } else if before && !after {
            if last.take().is_some() {
                tracing::warn!("cache recovered: redis and the invalidation feed are back");
            } else {
                tracing::info!("cache connected");
            }
        }
    }

    fn remote_failed(&self, e: &CacheError) {
        metrics::counter!("ordermon_cache_remote_errors_total").increment(1);
        self.transition(
            || self.inner.remote_ok.store(false, Ordering::SeqCst),
            &e.to_string(),
        );
    }

    /// Removes `key` from the in-process tier, after any fill in flight.
    async fn evict_here(&self, key: &str) {
        self.inner.stripes.evict_barrier(key).await;
        self.inner.local.invalidate(key).await;
    }

    /// Empties the in-process tier, after every fill in flight.
    pub async fn clear_local(&self) {
        self.inner.stripes.clear_barrier().await;
        self.inner.local.invalidate_all();
    }

    /// The feed is subscribed: clear what may have missed messages, then trust
    /// the in-process tier again.
    pub async fn feed_up(&self) {
        self.inner.own.clear();
        self.clear_local().await;
        self.transition(|| self.inner.feed_ok.store(true, Ordering::SeqCst), "");
    }

    /// The feed is lost: stop trusting and clear the in-process tier.
    pub async fn feed_down(&self, reason: &str) {
        self.transition(
            || self.inner.feed_ok.store(false, Ordering::SeqCst),
            &format!("invalidation feed lost: {reason}"),
        );
        self.inner.own.clear();
        self.clear_local().await;
    }

    /// An invalidation message for the rendered `key`, from any instance.
    pub async fn on_invalidation(&self, key: &str) {
        let own = match self.inner.own.get_mut(key) {
            Some(mut e) if e.0 > 0 => {
                e.0 -= 1;
                true
            }
            _ => false,
        };
        self.inner.own.remove_if(key, |_, (n, _)| *n == 0);
        self.evict_here(key).await;
        if own {
            return;
        }
        let now = Instant::now();
        self.inner.recent_foreign.insert(key.to_owned(), now);
        let window = self.inner.config.fence_window;
        // Our fill may hold a value read before that instance's commit: delete
        // it again, now if its write has landed, else once it has.
        let correct = match self.inner.recent_fills.entry(key.to_owned()) {
            dashmap::Entry::Occupied(mut e) if now.duration_since(e.get().at) <= window => {
                if e.get().in_flight {
                    e.get_mut().contested = true;
                    None
                } else {
                    Some(e.remove().key)
                }
            }
            dashmap::Entry::Occupied(e) => {
                e.remove();
                None
            }
            dashmap::Entry::Vacant(_) => None,
        };
        if let Some(ck) = correct {
            metrics::counter!("ordermon_cache_fence_corrections_total").increment(1);
            self.remote_invalidate(&ck).await;
        }
    }

    /// One probe: notices failures and recovery, forgets old fence records.
    pub async fn probe(&self) {
        let ok = self.inner.remote.health().await;
        match (ok, self.inner.remote_ok.load(Ordering::SeqCst)) {
            (Ok(()), false) => self.recover().await,
            (Err(e), true) => self.remote_failed(&e),
            _ => {}
        }
        let window = self.inner.config.fence_window;
        let now = Instant::now();
        self.inner
            .recent_fills
            .retain(|_, f| f.in_flight || now.duration_since(f.at) <= window);
        self.inner
            .recent_foreign
            .retain(|_, at| now.duration_since(*at) <= window);
        self.inner
            .own
            .retain(|_, (_, at)| now.duration_since(*at) <= window);
    }

    async fn recover(&self) {
        let pending = std::mem::take(&mut *self.inner.pending.lock());
        let mut keys = pending.keys.into_values();
        while let Some(ck) = keys.next() {
            if let Err(e) = self.inner.remote.invalidate(&ck).await {
                // Still down: keep what is left for the next probe.
                let mut p = self.inner.pending.lock();
                p.keys.insert(ck.render(), ck);
                p.keys.extend(keys.map(|k| (k.render(), k)));
                p.overflowed |= pending.overflowed;
                tracing::debug!(error = %e, "cache replay interrupted");
                return;
            }
        }
        if pending.overflowed {
            *self.inner.distrust_until.lock() =
                Some(Instant::now() + self.inner.config.overflow_distrust);
        }
        // Invalidations may have been missed while disconnected.
        self.clear_local().await;
        self.transition(|| self.inner.remote_ok.store(true, Ordering::SeqCst), "");
    }

    fn remember_pending(&self, key: &CacheKey) {
        let mut p = self.inner.pending.lock();
        if p.keys.len() >= self.inner.config.max_pending {
            p.overflowed = true;
        } else {
            p.keys.insert(key.render(), key.clone());
        }
    }

    async fn remote_invalidate(&self, key: &CacheKey) {
        if !self.inner.remote_ok.load(Ordering::SeqCst) {
            self.remember_pending(key);
            return;
        }
        let rendered = key.render();
        if self.inner.has_feed.load(Ordering::SeqCst) {
            let mut e = self
                .inner
                .own
                .entry(rendered.clone())
                .or_insert((0, Instant::now()));
            e.0 += 1;
            e.1 = Instant::now();
        }
        if let Err(e) = self.inner.remote.invalidate(key).await {
            if let Some(mut o) = self.inner.own.get_mut(&rendered) {
                o.0 = o.0.saturating_sub(1);
            }
            self.remember_pending(key);
            self.remote_failed(&e);
        }
    }
}

#[async_trait]
impl Cache for TieredCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        let k = key.render();
        let trusted = self.local_trusted();
        if trusted && let Some(e) = self.inner.local.get(&k).await {
            metrics::counter!("ordermon_cache_local_hits_total", "namespace" => key.namespace)
                .increment(1);
            return Ok(Some(e.bytes.to_vec()));
        }
        if !self.remote_readable() {
            return Ok(None);
        }
        let token = self.inner.stripes.token(&k);
        match self.inner.remote.get(key).await {
            Ok(Some(v)) => {
                metrics::counter!("ordermon_cache_remote_hits_total", "namespace" => key.namespace)
                    .increment(1);
                if trusted
                    && self.local_trusted()
                    && let Some(_g) = self.inner.stripes.fill_guard(token).await
                {
                    let entry = LocalEntry {
                        bytes: Arc::from(v.as_slice()),
                        ttl: self.inner.config.local_ttl(key.namespace),
                    };
                    self.inner.local.insert(k, entry).await;
                }
                Ok(Some(v))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.remote_failed(&e);
                Ok(None)
            }
        }
    }

    async fn set(&self, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let k = key.render();
        let token = self.inner.stripes.token(&k);
        let shared = self.inner.remote_ok.load(Ordering::SeqCst);
        if shared {
            // Recorded before the fence is checked; `on_invalidation` records
            // before it looks here: one of the two always sees the other.
            self.inner.recent_fills.insert(
                k.clone(),
                FillRecord {
                    at: Instant::now(),
                    key: key.clone(),
                    in_flight: true,
                    contested: false,
                },
            );
        }
        let fenced = self
            .inner
            .recent_foreign
            .get(&k)
            .is_some_and(|at| at.elapsed() <= self.inner.config.fence_window);
        if fenced {
            self.inner.recent_fills.remove(&k);
            metrics::counter!("ordermon_cache_fenced_fills_total", "namespace" => key.namespace)
                .increment(1);
            return Ok(());
        }
        if self.local_trusted() {
            if let Some(_g) = self.inner.stripes.fill_guard(token).await {
                let entry = LocalEntry {
                    bytes: Arc::from(value.as_slice()),
                    ttl: ttl.min(self.inner.config.local_ttl(key.namespace)),
                };
                self.inner.local.insert(k.clone(), entry).await;
            } else {
                // Evicted since the caller read its value: the fill is stale.
                self.inner.recent_fills.remove(&k);
                return Ok(());
            }
        }
        if !shared {
            return Ok(());
        }
        if let Err(e) = self.inner.remote.set(key, value, ttl).await {
            self.inner.recent_fills.remove(&k);
            // A timed-out write may still land later: delete it on recovery.
            self.remember_pending(key);
            self.remote_failed(&e);
            return Ok(());
        }
        let contested = match self.inner.recent_fills.get_mut(&k) {
            Some(f) if f.contested => {
                drop(f);
                self.inner.recent_fills.remove(&k);
                true
            }
            Some(mut f) => {
                f.in_flight = false;
                false
            }
            None => false,
        };
        if contested {
            metrics::counter!("ordermon_cache_fence_corrections_total").increment(1);
            self.remote_invalidate(key).await;
        }
        Ok(())
    }

    async fn invalidate(&self, key: &CacheKey) -> Result<(), CacheError> {
        let k = key.render();
        self.inner.recent_fills.remove(&k);
        // Redis first: a reader that fetched the old value from Redis before
        // the delete either filled the in-process tier before the eviction below
        // (which removes it) or sees the bumped generation and does not fill.
        self.remote_invalidate(key).await;
        self.evict_here(&k).await;
        Ok(())
    }

    async fn evict_local(&self, key: &CacheKey) -> Result<(), CacheError> {
        // Redis was invalidated by the writer; only our own copy is left. The
        // fence records stay: the pub/sub message still arrives and may correct.
        self.evict_here(&key.render()).await;
        Ok(())
    }

    async fn health(&self) -> Result<(), CacheError> {
        self.inner.remote.health().await?;
        match self.status() {
            CacheStatus::Ok => Ok(()),
            CacheStatus::Degraded { reason } => Err(CacheError::Unavailable(reason)),
        }
    }
}
