//! Unit tests of the tiered cache over a fake shared tier that can be taken down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ordermon_domain::ports::{Cache, CacheError, CacheKey};
use parking_lot::Mutex;

use super::{CacheStatus, TieredCache, TieredConfig};

#[derive(Debug, Default)]
struct Fake {
    map: Mutex<HashMap<String, Vec<u8>>>,
    down: AtomicBool,
    gets: AtomicUsize,
    deletes: Mutex<Vec<String>>,
}

impl Fake {
    fn check(&self) -> Result<(), CacheError> {
        if self.down.load(Ordering::SeqCst) {
            Err(CacheError::Unavailable("down".to_owned()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Cache for Fake {
    async fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        self.check()?;
        self.gets.fetch_add(1, Ordering::SeqCst);
        Ok(self.map.lock().get(&key.render()).cloned())
    }
    async fn set(&self, key: &CacheKey, value: Vec<u8>, _: Duration) -> Result<(), CacheError> {
        self.check()?;
        self.map.lock().insert(key.render(), value);
        Ok(())
    }
    async fn invalidate(&self, key: &CacheKey) -> Result<(), CacheError> {
        self.check()?;
        self.map.lock().remove(&key.render());
        self.deletes.lock().push(key.render());
        Ok(())
    }
    async fn health(&self) -> Result<(), CacheError> {
        self.check()
    }
}

fn setup() -> (Arc<Fake>, TieredCache) {
    let fake = Arc::new(Fake::default());
    let tiered = TieredCache::new(fake.clone(), TieredConfig::default());
    (fake, tiered)
}

fn key(k: &str) -> CacheKey {
    CacheKey::new("order", "t", k)
}

#[tokio::test]
async fn reads_hit_the_local_tier_first_and_writes_reach_both() {
    let (fake, t) = setup();
    t.set(&key("a"), b"1".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(t.get(&key("a")).await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(fake.gets.load(Ordering::SeqCst), 0, "served locally");
    assert!(fake.map.lock().contains_key("ordermon:order:t:a"));
    t.invalidate(&key("a")).await.unwrap();
    assert_eq!(t.get(&key("a")).await.unwrap(), None);
    assert!(fake.map.lock().is_empty());
}

#[tokio::test]
async fn a_remote_hit_fills_the_local_tier() {
    let (fake, t) = setup();
    fake.map
        .lock()
        .insert("ordermon:order:t:b".to_owned(), b"2".to_vec());
    assert_eq!(t.get(&key("b")).await.unwrap(), Some(b"2".to_vec()));
    assert_eq!(t.get(&key("b")).await.unwrap(), Some(b"2".to_vec()));
    assert_eq!(fake.gets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redis_down_reads_miss_writes_succeed_and_recovery_replays_and_clears() {
    let (fake, t) = setup();
    t.set(&key("c"), b"old".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    fake.down.store(true, Ordering::SeqCst);
    t.probe().await;
    assert!(t.degraded());
    assert!(matches!(t.status(), CacheStatus::Degraded { .. }));
    // Writes still succeed; the invalidation is kept for Redis.
    t.invalidate(&key("c")).await.unwrap();
    assert_eq!(
        t.get(&key("c")).await.unwrap(),
        None,
        "a miss, not an error"
    );
    assert!(t.health().await.is_err());
    // Back: the pending delete reaches Redis, the local tier starts empty.
    fake.down.store(false, Ordering::SeqCst);
    t.probe().await;
    assert!(!t.degraded());
    assert!(
        fake.deletes
            .lock()
            .contains(&"ordermon:order:t:c".to_owned())
    );
    assert_eq!(t.get(&key("c")).await.unwrap(), None);
    assert_eq!(t.local_entries(), 0);
}

#[tokio::test]
async fn without_its_feed_the_local_tier_is_bypassed() {
    let (fake, t) = setup();
    t.attach_feed();
    t.feed_up().await;
    t.set(&key("d"), b"1".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    t.feed_down("test").await;
    assert!(t.degraded());
    fake.map.lock().clear();
    assert_eq!(t.get(&key("d")).await.unwrap(), None, "not served locally");
    t.feed_up().await;
    assert!(!t.degraded());
}

#[tokio::test]
async fn fills_are_fenced_after_another_instances_invalidation() {
    let (fake, t) = setup();
    t.attach_feed();
    t.feed_up().await;
    // Another instance committed and invalidated.
    t.on_invalidation("ordermon:order:t:e").await;
    // A fill of a value loaded before that commit is refused.
    t.set(&key("e"), b"old".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(fake.map.lock().is_empty());
    assert_eq!(t.get(&key("e")).await.unwrap(), None);
}

#[tokio::test]
async fn a_fill_just_before_another_instances_invalidation_is_deleted_again() {
    let (fake, t) = setup();
    t.attach_feed();
    t.feed_up().await;
    t.set(&key("f"), b"maybe-old".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!fake.map.lock().is_empty());
    t.on_invalidation("ordermon:order:t:f").await;
    assert!(fake.map.lock().is_empty(), "our fill was deleted again");
    assert_eq!(t.get(&key("f")).await.unwrap(), None);
}
