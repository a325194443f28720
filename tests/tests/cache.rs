//! The cache suite: TTL per namespace, single-flight, cross-instance
//! invalidation, fences, "never stale" under concurrent writes (in-process and
//! Redis), and exact round trips of every cached type through both serializers.
//! Tests that need Redis fail naming it when `ORDERMON_REQUIRE_SERVICES=1` and
//! it is unreachable, and say they skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache_support::*;
use chrono::Utc;
use ordermon_application::cache::{
    CacheSettings, CachedSnapshot, Codec, ReadCache, decode_value, encode_value, keys,
};
use ordermon_application::{Engine, Scope};
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{StrategyId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::order::Side;
use ordermon_domain::ports::{Cache, CacheKey, ExecutionReport, ExecutionReportKind};
use ordermon_domain::strategy::{Strategy, StrategyStats, StrategyStatus};
use ordermon_domain::values::{Money, Price, Quantity};
use ordermon_memory::cache::MemoryCache;
use ordermon_redis::cache::{RedisCache, RedisCacheConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttl_expires_per_namespace_in_both_tiers() {
    let _lock = RedisLock::shared();
    if redis_or_skip().await.is_none() {
        return;
    }
    let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
    let tiered = tiered(&tracker, &cancel).await;
    let mut settings = CacheSettings::default();
    settings.quote.ttl = Duration::from_millis(300);
    settings.order.ttl = Duration::from_secs(60);
    let cache = ReadCache::shared(Arc::new(tiered.clone()), settings);
    let tenant = unique("ttl");
    let quote = CacheKey::new(keys::QUOTE, tenant.clone(), "A.SIM");
    let order = CacheKey::new(keys::ORDER, tenant.clone(), "o1");
    let loads = counter();
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok(Some(7u32))
    };
    for _ in 0..2 {
        cache.get_or_load(quote.clone(), load).await.unwrap();
        cache.get_or_load(order.clone(), load).await.unwrap();
    }
    assert_eq!(loads.load(Ordering::SeqCst), 2, "second reads are hits");
    let raw = RedisCache::new(&redis_url(), &RedisCacheConfig::default()).unwrap();
    assert!(raw.get(&quote).await.unwrap().is_some(), "written to redis");
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(
        raw.get(&quote).await.unwrap().is_none(),
        "redis ttl applied"
    );
    assert!(raw.get(&order).await.unwrap().is_some());
    cache.get_or_load(quote, load).await.unwrap();
    cache.get_or_load(order, load).await.unwrap();
    assert_eq!(
        loads.load(Ordering::SeqCst),
        3,
        "only the quote expired (in-process tier included)"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_misses_cause_one_load_over_redis() {
    let _lock = RedisLock::shared();
    if redis_or_skip().await.is_none() {
        return;
    }
    let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
    let tier = tiered(&tracker, &cancel).await;
    let cache = read_cache(Arc::new(tier.clone()), true);
    let key = CacheKey::new(keys::ORDER, unique("sf"), "hot");
    let loads = counter();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (cache, loads, key) = (cache.clone(), loads.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load(key, || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(Some("value".to_owned()))
                })
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_deref(), Some("value"));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "{:?}", tier.status());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_on_one_instance_invalidates_the_other_within_100ms() {
    let _lock = RedisLock::shared();
    if redis_or_skip().await.is_none() {
        return;
    }
    let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
    let a = read_cache(Arc::new(tiered(&tracker, &cancel).await), true);
    let b_tier = tiered(&tracker, &cancel).await;
    let b = read_cache(Arc::new(b_tier.clone()), true);
    let tenant = unique("xi");
    let mut worst = Duration::ZERO;
    for round in 0..20 {
        let key = CacheKey::new(keys::ORDER, tenant.clone(), format!("k{round}"));
        let old = || async { Ok(Some("old".to_owned())) };
        assert_eq!(
            a.get_or_load(key.clone(), old).await.unwrap().unwrap(),
            "old"
        );
        assert_eq!(
            b.get_or_load(key.clone(), old).await.unwrap().unwrap(),
            "old"
        );
        // B now serves from its in-process tier.
        let local = b_tier.local_entries();
        let again = b
            .get_or_load(key.clone(), || async {
                Ok(Some("unexpected load".to_owned()))
            })
            .await
            .unwrap();
        assert_eq!(again.as_deref(), Some("old"), "entries so far: {local}");
        // A's committer invalidates after a write.
        a.invalidate(std::slice::from_ref(&key)).await;
        let started = Instant::now();
        loop {
            let seen = b
                .get_or_load(key.clone(), || async { Ok(Some("new".to_owned())) })
                .await
                .unwrap();
            if seen.as_deref() == Some("new") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(100),
                "instance B still served the old value after 100 ms"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        worst = worst.max(started.elapsed());
    }
    eprintln!("slowest cross-instance invalidation: {worst:?}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fill_racing_another_instances_write_does_not_survive() {
    let _lock = RedisLock::shared();
    if redis_or_skip().await.is_none() {
        return;
    }
    let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
    let a = read_cache(Arc::new(tiered(&tracker, &cancel).await), true);
    let b = read_cache(Arc::new(tiered(&tracker, &cancel).await), true);
    let key = CacheKey::new(keys::ORDER, unique("fence"), "k");
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    // B reads the old row, and is held before filling.
    let slow = {
        let (b, key, gate, started) = (b.clone(), key.clone(), gate.clone(), started.clone());
        tokio::spawn(async move {
            b.get_or_load(key, || async move {
                started.notify_one();
                gate.notified().await;
                Ok(Some("old".to_owned()))
            })
            .await
        })
    };
    started.notified().await;
    // A commits and invalidates; B hears of it, then fills.
    a.invalidate(std::slice::from_ref(&key)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.notify_one();
    assert_eq!(slow.await.unwrap().unwrap().as_deref(), Some("old"));
    // Nobody is served the old value afterwards: not A, not a fresh instance.
    let c = read_cache(Arc::new(tiered(&tracker, &cancel).await), true);
    for reader in [&a, &b, &c] {
        let seen = reader
            .get_or_load(key.clone(), || async { Ok(Some("new".to_owned())) })
            .await
            .unwrap();
        assert_eq!(seen.as_deref(), Some("new"));
    }
    cancel.cancel();
}

/// Readers hammer one order (by id and client id) and the portfolio while a
/// writer fills the order one lot at a time: a read that starts after a write
/// was acknowledged never shows the state before it.
async fn never_stale(engine: Arc<Engine>, fills: u64, readers: usize) -> u64 {
    let user = funded_user(&engine, &unique("u"), "1000000").await;
    let order = engine
        .orders
        .submit(limit(&user, "c-1", Side::Buy, "100000", "1.00"))
        .await
        .unwrap()
        .order;
    let report = |kind| ExecutionReport {
        order_id: order.id,
        user_id: user.clone(),
        kind,
        ts_event: Utc::now(),
    };
    let accepted = engine
        .orders
        .execution_report(report(ExecutionReportKind::Accepted {
            venue_order_id: None,
        }))
        .await
        .unwrap();
    let acked_version = Arc::new(AtomicU64::new(accepted.version));
    let acked_fills = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..readers {
        let (engine, user) = (engine.clone(), user.clone());
        let (acked_version, acked_fills, stop, reads) = (
            acked_version.clone(),
            acked_fills.clone(),
            stop.clone(),
            reads.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let v = acked_version.load(Ordering::SeqCst);
                let f = acked_fills.load(Ordering::SeqCst);
                let o = engine
                    .orders
                    .get(&Scope::User(user.clone()), order.id)
                    .await
                    .unwrap();
                assert!(o.version >= v, "by id: version {} < acked {v}", o.version);
                let o = engine.orders.get_by_client_id(&user, "c-1").await.unwrap();
                assert!(o.version >= v, "by client id: {} < acked {v}", o.version);
                let p = engine.accounts.portfolio(&user).await.unwrap();
                let held = p
                    .positions
                    .iter()
                    .find(|p| p.instrument_id == acme())
                    .map_or(ordermon_domain::Decimal::ZERO, |p| p.quantity);
                assert!(
                    held >= ordermon_domain::Decimal::from(f),
                    "portfolio: {held} < acked fills {f}"
                );
                reads.fetch_add(3, Ordering::Relaxed);
                // In-process hits never wait; let the writer run.
                tokio::task::yield_now().await;
            }
        }));
    }
    for i in 1..=fills {
        let o = engine
            .orders
            .execution_report(report(ExecutionReportKind::Fill {
                trade_id: TradeId::new(format!("t-{i}")).unwrap(),
                quantity: Quantity::new(d("1")).unwrap(),
                price: Price::new(d("1.00")).unwrap(),
                commission: Money::new(d("0.01"), usd()).unwrap(),
                liquidity_side: LiquiditySide::Taker,
            }))
            .await
            .unwrap();
        acked_version.store(o.version, Ordering::SeqCst);
        acked_fills.store(i, Ordering::SeqCst);
        // Let readers cache the new state before the next write.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    reads.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_reads_never_return_the_state_before_a_write_in_process() {
    let cache = read_cache(Arc::new(MemoryCache::new(10_000)), false);
    let (engine, _store) = engine(cache).await;
    let reads = never_stale(engine, 200, 8).await;
    assert!(reads > 1000, "only {reads} reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_reads_never_return_the_state_before_a_write_over_redis() {
    let _lock = RedisLock::shared();
    if redis_or_skip().await.is_none() {
        return;
    }
    let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
    let cache = read_cache(Arc::new(tiered(&tracker, &cancel).await), true);
    let (engine, _store) = engine(cache).await;
    let reads = never_stale(engine, 200, 8).await;
    assert!(reads > 1000, "only {reads} reads");
    cancel.cancel();
}

fn round_trip<T>(value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for codec in [Codec::Json, Codec::MessagePack] {
        let bytes = encode_value(codec, value).unwrap();
        let back: T = decode_value(codec, &bytes).unwrap();
        assert_eq!(&back, value, "{codec:?}");
        // Exactly: the same decimal scales and texts, not just equal numbers.
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(value).unwrap(),
            "{codec:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_serializers_round_trip_every_cached_type_exactly() {
    let (engine, _store) = engine(Arc::new(ReadCache::off())).await;
    let user = funded_user(&engine, &unique("rt"), "10000.125").await;
    let order = engine
        .orders
        .submit(limit(&user, "c-rt", Side::Buy, "10", "10.50"))
        .await
        .unwrap()
        .order;
    let report = |kind| ExecutionReport {
        order_id: order.id,
        user_id: user.clone(),
        kind,
        ts_event: Utc::now(),
    };
    engine
        .orders
        .execution_report(report(ExecutionReportKind::Accepted {
            venue_order_id: Some("v-1".to_owned()),
        }))
        .await
        .unwrap();
    let order = engine
        .orders
        .execution_report(report(ExecutionReportKind::Fill {
            trade_id: TradeId::new("t-1").unwrap(),
            quantity: Quantity::new(d("3")).unwrap(),
            price: Price::new(d("10.49")).unwrap(),
            commission: Money::new(d("0.0315"), usd()).unwrap(),
            liquidity_side: LiquiditySide::Maker,
        }))
        .await
        .unwrap();
    assert!(order.avg_px.is_some());
    let snap = engine.accounts.snapshot(&user).await.unwrap();
    assert!(!snap.account.reservations.is_empty() && !snap.positions.is_empty());
    round_trip(&order);
    round_trip(&snap.account);
    round_trip(&snap.user);
    round_trip(&snap.positions);
    round_trip(&CachedSnapshot::new(snap.clone(), Utc::now().date_naive()));
    round_trip(&Some(order.id));
    round_trip(&Instrument {
        id: acme(),
        quote_currency: usd(),
        tick_size: Price::new(d("0.0001")).unwrap(),
        lot_size: Quantity::new(d("0.001")).unwrap(),
        min_quantity: Quantity::new(d("0.010")).unwrap(),
        max_quantity: Some(Quantity::new(d("1000000")).unwrap()),
        min_notional: Some(d("0.000000000000000001")),
        multiplier: d("1.50"),
        version: 3,
    });
    round_trip(&Quote {
        instrument_id: acme(),
        bid: Price::new(d("100.01")).unwrap(),
        ask: Price::new(d("100.0300")).unwrap(),
        bid_size: Quantity::new(d("5")).unwrap(),
        ask_size: Quantity::new(d("7.25")).unwrap(),
        ts: Utc::now(),
    });
    round_trip(&Strategy {
        id: StrategyId::new("s-1").unwrap(),
        user_id: UserId::new("alice").unwrap(),
        strategy_type: "price_alert".to_owned(),
        name: "Alert".to_owned(),
        instruments: vec![acme()],
        params: serde_json::json!({
            "threshold": "101.25", "n": 3, "neg": -4, "ratio": 0.5,
            "nested": {"list": [1, "two", null, true]}
        }),
        status: StrategyStatus::Enabled,
        stats: StrategyStats {
            orders: 4,
            fills: 2,
            realized_pnl: d("-12.3400"),
            wins: 1,
            losses: 1,
        },
        created_at: Utc::now(),
        updated_at: Utc::now(),
        version: 2,
        sequence: 5,
    });
}
