//! Unit tests of the read-through layer over the in-process cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ordermon_domain::ports::CacheKey;
use ordermon_memory::cache::MemoryCache;
use tokio::sync::Notify;

use super::*;

fn cache(settings: CacheSettings) -> Arc<ReadCache> {
    Arc::new(ReadCache::new(Arc::new(MemoryCache::new(10_000)), settings))
}

fn key(k: &str) -> CacheKey {
    CacheKey::new(keys::ORDER, "t", k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_misses_cause_one_load() {
    let c = cache(CacheSettings::default());
    let loads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (c, loads) = (c.clone(), loads.clone());
        tasks.push(tokio::spawn(async move {
            c.get_or_load(key("k"), || async {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(Some(42u64))
            })
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Some(42));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn not_found_is_cached_until_invalidated() {
    let c = cache(CacheSettings::default());
    let loads = AtomicUsize::new(0);
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok(None::<u64>)
    };
    assert_eq!(c.get_or_load(key("n"), load).await.unwrap(), None);
    assert_eq!(c.get_or_load(key("n"), load).await.unwrap(), None);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    c.invalidate(&[key("n")]).await;
    assert_eq!(c.get_or_load(key("n"), load).await.unwrap(), None);
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let c = cache(CacheSettings::default());
    let r = c
        .get_or_load(key("e"), || async {
            Err::<Option<u64>, _>(AppError::NotFound("x"))
        })
        .await;
    assert!(r.is_err());
    let r = c.get_or_load(key("e"), || async { Ok(Some(1u64)) }).await;
    assert_eq!(r.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_raced_an_invalidation_is_not_cached_nor_shared() {
    let c = cache(CacheSettings::default());
    let gate = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    // A reader loads the old value and is held before it can fill.
    let slow = {
        let (c, gate, started) = (c.clone(), gate.clone(), started.clone());
        tokio::spawn(async move {
            c.get_or_load(key("r"), || async move {
                started.notify_one();
                gate.notified().await;
                Ok(Some("old".to_owned()))
            })
            .await
        })
    };
    started.notified().await;
    // The write commits, then invalidates.
    c.invalidate(&[key("r")]).await;
    // A reader arriving now must not join the old load.
    let fresh = c
        .get_or_load(key("r"), || async { Ok(Some("new".to_owned())) })
        .await
        .unwrap();
    assert_eq!(fresh.as_deref(), Some("new"));
    gate.notify_one();
    assert_eq!(slow.await.unwrap().unwrap().as_deref(), Some("old"));
    // The old value never replaced the new one.
    let again = c
        .get_or_load(key("r"), || async { Ok(Some("reloaded".to_owned())) })
        .await
        .unwrap();
    assert_eq!(again.as_deref(), Some("new"));
}

#[tokio::test]
async fn each_namespace_expires_after_its_own_ttl() {
    let mut settings = CacheSettings::default();
    settings.quote.ttl = Duration::from_millis(100);
    settings.order.ttl = Duration::from_secs(60);
    let c = cache(settings);
    let loads = AtomicUsize::new(0);
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok(Some(7u32))
    };
    let quote = CacheKey::new(keys::QUOTE, "_", "A.SIM");
    c.get_or_load(quote.clone(), load).await.unwrap();
    c.get_or_load(key("o"), load).await.unwrap();
    c.get_or_load(quote.clone(), load).await.unwrap();
    c.get_or_load(key("o"), load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.get_or_load(quote, load).await.unwrap();
    c.get_or_load(key("o"), load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_slow_load_is_answered_but_not_cached() {
    let settings = CacheSettings {
        max_fill_age: Duration::from_millis(20),
        ..CacheSettings::default()
    };
    let c = cache(settings);
    let loads = AtomicUsize::new(0);
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        Ok(Some(1u8))
    };
    assert_eq!(c.get_or_load(key("s"), load).await.unwrap(), Some(1));
    assert_eq!(c.get_or_load(key("s"), load).await.unwrap(), Some(1));
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn off_always_loads() {
    let c = ReadCache::off();
    let loads = AtomicUsize::new(0);
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok(Some(1u8))
    };
    c.get_or_load(key("x"), load).await.unwrap();
    c.get_or_load(key("x"), load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    assert!(!c.is_on());
}

/// The in-process cache, counting the reads that reach its bytes.
#[derive(Debug, Default)]
struct CountedGets {
    inner: MemoryCache,
    gets: AtomicUsize,
}

#[async_trait::async_trait]
impl Cache for CountedGets {
    async fn get(
        &self,
        key: &CacheKey,
    ) -> Result<Option<Vec<u8>>, ordermon_domain::ports::CacheError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn set(
        &self,
        key: &CacheKey,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), ordermon_domain::ports::CacheError> {
        self.inner.set(key, value, ttl).await
    }
    async fn invalidate(&self, key: &CacheKey) -> Result<(), ordermon_domain::ports::CacheError> {
        self.inner.invalidate(key).await
    }
    async fn health(&self) -> Result<(), ordermon_domain::ports::CacheError> {
        self.inner.health().await
    }
}

#[tokio::test]
async fn a_loaded_value_is_served_without_decoding_the_backends_bytes() {
    let backend = Arc::new(CountedGets::default());
    let c = ReadCache::new(backend.clone(), CacheSettings::default());
    let loads = AtomicUsize::new(0);
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok(Some("v1".to_owned()))
    };
    assert_eq!(
        c.get_or_load(key("d"), load).await.unwrap().as_deref(),
        Some("v1")
    );
    let gets_after_load = backend.gets.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(
            c.get_or_load(key("d"), load).await.unwrap().as_deref(),
            Some("v1")
        );
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(
        backend.gets.load(Ordering::SeqCst),
        gets_after_load,
        "hits come from the decoded tier"
    );
    // Not found is kept decoded too.
    let none = || async { Ok(None::<String>) };
    assert_eq!(c.get_or_load(key("gone"), none).await.unwrap(), None);
    let gets = backend.gets.load(Ordering::SeqCst);
    assert_eq!(c.get_or_load(key("gone"), none).await.unwrap(), None);
    assert_eq!(backend.gets.load(Ordering::SeqCst), gets);
}

#[tokio::test]
async fn invalidation_and_remote_eviction_empty_the_decoded_tier() {
    let c = cache(CacheSettings::default());
    let value = |v: &'static str| move || async move { Ok(Some(v.to_owned())) };
    assert_eq!(
        c.get_or_load(key("i"), value("a"))
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    c.invalidate(&[key("i")]).await;
    assert_eq!(
        c.get_or_load(key("i"), value("b"))
            .await
            .unwrap()
            .as_deref(),
        Some("b")
    );
    c.evict_local(&[key("i")]).await;
    assert_eq!(
        c.get_or_load(key("i"), value("c"))
            .await
            .unwrap()
            .as_deref(),
        Some("c")
    );
    assert_eq!(
        c.get_or_load(key("i"), value("d"))
            .await
            .unwrap()
            .as_deref(),
        Some("c")
    );
}

#[tokio::test]
async fn a_shared_cache_keeps_nothing_decoded() {
    // Two instances over one shared backend: a shared cache keeps nothing
    // decoded, so one instance's invalidation of the shared backend reaches
    // the other at once, whatever either loaded or read before.
    let shared: Arc<dyn Cache> = Arc::new(MemoryCache::new(100));
    let one = ReadCache::shared(shared.clone(), CacheSettings::default());
    let other = ReadCache::shared(shared, CacheSettings::default());
    async fn read(c: &ReadCache, v: &'static str) -> Option<String> {
        c.get_or_load(key("s"), || async move { Ok(Some(v.to_owned())) })
            .await
            .unwrap()
    }
    assert_eq!(read(&one, "old").await.as_deref(), Some("old"));
    assert_eq!(read(&other, "unused").await.as_deref(), Some("old"));
    one.invalidate(&[key("s")]).await;
    assert_eq!(read(&other, "new").await.as_deref(), Some("new"));
    // What an instance loaded itself goes with the other's invalidation too.
    other.invalidate(&[key("s")]).await;
    assert_eq!(read(&one, "newer").await.as_deref(), Some("newer"));
    other.invalidate(&[key("s")]).await;
    assert_eq!(read(&one, "newest").await.as_deref(), Some("newest"));
}
