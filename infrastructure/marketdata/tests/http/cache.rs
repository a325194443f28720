//! Answers kept in the cache port: a second call within the TTL sends
//! nothing; a failing cache falls through to the provider.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::BarInterval;
use ordermon_domain::ports::{Cache, CacheError, CacheKey, MarketDataProvider};
use ordermon_marketdata::{ProviderKind, build};
use ordermon_memory::cache::MemoryCache;

use crate::support::{Reply, Server, config};

fn btc() -> InstrumentId {
    InstrumentId::new("BTCUSDT.BINANCE").unwrap()
}

async fn server() -> Server {
    Server::start(|hit, _| {
        if hit.path.ends_with("/klines") {
            Reply::fixture("binance_klines_btcusdt_1m.json")
        } else {
            Reply::fixture("binance_book_ticker_btcusdt.json")
        }
    })
    .await
}

#[tokio::test]
async fn a_second_call_within_the_ttl_is_served_from_the_cache() {
    let server = server().await;
    let memory = Arc::new(MemoryCache::default());
    let mut c = config(ProviderKind::Binance, &server.url);
    c.cache.quote_ttl = Duration::from_millis(300);
    let p = build(&c, Some(memory.clone())).unwrap();
    let first = p.quote(&btc()).await.unwrap();
    let second = p.quote(&btc()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(server.count(), 1);
    // Under the cache's `quote` namespace, prefixed with the provider.
    let key = CacheKey::new("quote", "_", "binance:BTCUSDT.BINANCE");
    assert!(memory.get(&key).await.unwrap().is_some());

    // Another provider value sharing the cache (another instance) hits too.
    let other = build(&c, Some(memory.clone())).unwrap();
    other.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 1);

    tokio::time::sleep(Duration::from_millis(350)).await;
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 2, "expired after its TTL");

    // Finished bar ranges are kept too.
    let from = Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap();
    let to = from + chrono::Duration::minutes(10);
    let a = p
        .bars(&btc(), BarInterval::M1, from, to, 100)
        .await
        .unwrap();
    let b = p
        .bars(&btc(), BarInterval::M1, from, to, 100)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(server.count(), 3);
    // A different request is a different key.
    p.bars(&btc(), BarInterval::M1, from, to, 5).await.unwrap();
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn a_disabled_cache_is_not_used() {
    let server = server().await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.cache.enabled = false;
    let p = build(&c, Some(Arc::new(MemoryCache::default()))).unwrap();
    p.quote(&btc()).await.unwrap();
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 2);
}

/// A cache whose backend is down.
#[derive(Debug)]
struct Down;

#[async_trait]
impl Cache for Down {
    async fn get(&self, _: &CacheKey) -> Result<Option<Vec<u8>>, CacheError> {
        Err(CacheError::Unavailable("redis down".into()))
    }
    async fn set(&self, _: &CacheKey, _: Vec<u8>, _: Duration) -> Result<(), CacheError> {
        Err(CacheError::Unavailable("redis down".into()))
    }
    async fn invalidate(&self, _: &CacheKey) -> Result<(), CacheError> {
        Err(CacheError::Unavailable("redis down".into()))
    }
    async fn health(&self) -> Result<(), CacheError> {
        Err(CacheError::Unavailable("redis down".into()))
    }
}

#[tokio::test]
async fn a_failing_cache_falls_through_to_the_provider() {
    let server = server().await;
    let p = build(
        &config(ProviderKind::Binance, &server.url),
        Some(Arc::new(Down)),
    )
    .unwrap();
    p.quote(&btc()).await.unwrap();
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 2);

    // A corrupt entry is a miss, not an error.
    let memory = Arc::new(MemoryCache::default());
    let key = CacheKey::new("quote", "_", "binance:BTCUSDT.BINANCE");
    memory
        .set(&key, b"garbage".to_vec(), Duration::from_secs(10))
        .await
        .unwrap();
    let p = build(&config(ProviderKind::Binance, &server.url), Some(memory)).unwrap();
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 3);
}
