//! Cache benchmark: the engine's `get_order` (what `GET /api/v1/orders/{id}`
//! calls) with the cache off, in-process (`memory`) and tiered over Redis, on the
//! in-memory store and on PostgreSQL, all in the same run. Reads are spread over
//! 1,000 orders of one user by 8 concurrent tasks; each figure is the time per
//! read at that concurrency (so its inverse is the throughput).
//!
//! Run: `cargo bench -p ordermon-tests --bench cache` (service URLs as for the
//! tests; a backend whose service is unreachable is skipped with a message).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ordermon_application::cache::{CacheSettings, ReadCache};
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::strategy::StrategyRegistry;
use ordermon_application::{CreateUser, Engine, EngineConfig, Scope, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use ordermon_domain::ports::SystemClock;
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_memory::MemoryStore;
use ordermon_memory::cache::MemoryCache;
use ordermon_redis::cache::CacheConfig;
use ordermon_tests::{Backend, provision};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const ORDERS: usize = 1000;
const READERS: u64 = 8;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn engine(
    persistence: Persistence,
    cache: Arc<ReadCache>,
) -> (Arc<Engine>, UserId, Vec<OrderId>) {
    let engine = Engine::start_with_cache(
        persistence,
        Arc::new(QuoteBook::new(1024)),
        Arc::new(SystemClock),
        EngineConfig {
            venue_mode: VenueMode::External,
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        CancellationToken::new(),
        StrategyRegistry::with_builtins(),
        cache,
    )
    .await
    .unwrap();
    let usd = Currency::new("USD").unwrap();
    let acme = InstrumentId::new("ACME.SIM").unwrap();
    engine
        .instruments
        .upsert(Instrument {
            id: acme.clone(),
            quote_currency: usd.clone(),
            tick_size: Price::new(d("0.01")).unwrap(),
            lot_size: Quantity::new(d("1")).unwrap(),
            min_quantity: Quantity::new(d("1")).unwrap(),
            max_quantity: None,
            min_notional: None,
            multiplier: Decimal::ONE,
            version: 0,
        })
        .await
        .unwrap();
    let user = UserId::new(format!(
        "bench{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    ))
    .unwrap();
    engine
        .users
        .create(CreateUser {
            id: user.clone(),
            name: "bench".to_owned(),
            status: Default::default(),
            role: Default::default(),
            account_type: Default::default(),
            limits: Default::default(),
        })
        .await
        .unwrap();
    engine
        .accounts
        .adjust_cash(
            &user,
            Money::new(d("100000000"), usd).unwrap(),
            "bench".to_owned(),
        )
        .await
        .unwrap();
    let mut ids = Vec::with_capacity(ORDERS);
    for i in 0..ORDERS {
        let new = NewOrder {
            client_order_id: ClientOrderId::new(format!("b-{i}")).unwrap(),
            user_id: user.clone(),
            strategy_id: None,
            instrument_id: acme.clone(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: Quantity::new(d("10")).unwrap(),
            price: Some(Price::new(d("101.25")).unwrap()),
            trigger_price: None,
            time_in_force: TimeInForce::Gtc,
            expire_at: None,
            reduce_only: false,
            post_only: false,
        };
        ids.push(engine.orders.submit(new).await.unwrap().order.id);
    }
    (engine, user, ids)
}

/// Time for `iters` reads spread over `READERS` concurrent tasks.
async fn reads(
    engine: &Arc<Engine>,
    user: &UserId,
    ids: &Arc<Vec<OrderId>>,
    iters: u64,
) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..READERS {
        let (engine, ids) = (engine.clone(), ids.clone());
        let scope = Scope::User(user.clone());
        let n = iters / READERS + u64::from(r < iters % READERS);
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let at = usize::try_from((i * 7919 + r * 104_729) % ids.len() as u64).unwrap();
                engine.orders.get(&scope, ids[at]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let redis_url = std::env::var("ORDERMON_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let tiered = rt.block_on(async {
        let t =
            ordermon_redis::cache::connect(&redis_url, &CacheConfig::default(), &tracker, &cancel)
                .await
                .unwrap();
        if t.degraded() {
            eprintln!("skipped: redis unreachable at {redis_url}; no tiered figures");
            None
        } else {
            Some(t)
        }
    });
    let postgres = rt.block_on(provision(Backend::Postgres));
    let mut stores: Vec<(&str, Persistence)> = vec![(
        "memory",
        Persistence::from_backend(Arc::new(MemoryStore::new())),
    )];
    if let Some(pg) = postgres.as_ref().and_then(|t| t.sql.clone()) {
        stores.push(("postgres", Persistence::from_backend(Arc::new(pg))));
    }
    let mut group = c.benchmark_group("get_order");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (store_name, persistence) in stores {
        let mut caches: Vec<(&str, Arc<ReadCache>)> = vec![
            ("cache_off", Arc::new(ReadCache::off())),
            (
                "cache_memory",
                Arc::new(ReadCache::new(
                    Arc::new(MemoryCache::new(100_000)),
                    CacheSettings::default(),
                )),
            ),
        ];
        if let Some(t) = &tiered {
            caches.push((
                "cache_redis_tiered",
                Arc::new(ReadCache::shared(
                    Arc::new(t.clone()),
                    CacheSettings::default(),
                )),
            ));
        }
        for (cache_name, cache) in caches {
            let (engine, user, ids) = rt.block_on(engine(persistence.clone(), cache));
            let ids = Arc::new(ids);
            group.bench_function(format!("{store_name}/{cache_name}"), |b| {
                b.iter_custom(|iters| rt.block_on(reads(&engine, &user, &ids, iters)));
            });
            rt.block_on(engine.shutdown());
        }
    }
    group.finish();
    cancel.cancel();
    drop(postgres);
}

criterion_group!(benches, bench);
criterion_main!(benches);
