//! The in-process cache (`cache.url = "memory"`): a bounded moka cache where
//! each entry expires after the TTL it was written with.
//!
//! It is the whole cache of a single instance; with Redis, the same kind of tier
//! sits in front of it (`ordermon-redis`). `invalidate` only has this process
//! to reach, so it is immediate and never fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use ordermon_domain::ports::{Cache, CacheError, CacheKey};

#[derive(Debug, Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, v: &Entry, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        v: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// The in-process cache.
#[derive(Clone)]
pub struct MemoryCache {
    entries: moka::future::Cache<String, Entry>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MemoryCache {
    /// A cache of at most `max_entries` entries.
    #[must_use]
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// Entries held (approximate: expired ones leave lazily).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new(100_000)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self
            .entries
            .get(&key.render())
            .await
            .map(|e| e.bytes.to_vec()))
    }

    async fn set(&self, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let entry = Entry {
            bytes: Arc::from(value),
            ttl,
        };
        self.entries.insert(key.render(), entry).await;
        Ok(())
    }

    async fn invalidate(&self, key: &CacheKey) -> Result<(), CacheError> {
        self.entries.invalidate(&key.render()).await;
        Ok(())
    }

    async fn health(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_after_their_own_ttl() {
        let cache = MemoryCache::new(100);
        let short = CacheKey::new("quote", "_", "A.SIM");
        let long = CacheKey::new("bar", "_", "A.SIM");
        cache
            .set(&short, b"q".to_vec(), Duration::from_millis(50))
            .await
            .unwrap();
        cache
            .set(&long, b"b".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(cache.get(&short).await.unwrap(), Some(b"q".to_vec()));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(cache.get(&short).await.unwrap(), None);
        assert_eq!(cache.get(&long).await.unwrap(), Some(b"b".to_vec()));
        cache.invalidate(&long).await.unwrap();
        assert_eq!(cache.get(&long).await.unwrap(), None);
    }
}
