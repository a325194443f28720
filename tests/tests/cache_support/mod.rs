//! Shared setup of the cache suites: the Redis service check, a cross-process
//! lock between tests that use Redis and tests that stop it, a guard that always
//! restarts Redis, and an engine over the in-memory store reading through a cache.

// `File::lock` is stable since 1.89; the workspace toolchain is newer than
// the declared minimum, and only these tests use it.
#![allow(clippy::incompatible_msrv)]
#![allow(dead_code)]

use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ordermon_application::cache::{CacheSettings, ReadCache};
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::strategy::StrategyRegistry;
use ordermon_application::{CreateUser, Engine, EngineConfig, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{Cache, SystemClock};
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_memory::MemoryStore;
use ordermon_redis::cache::{CacheConfig, RedisCache, RedisCacheConfig, TieredCache};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The Redis the suites use.
pub(crate) fn redis_url() -> String {
    std::env::var("ORDERMON_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A unique name for this test's keys and users.
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// Held while a test uses or stops Redis, across test processes and threads:
/// a test that stops Redis never overlaps another cache test. A bound loopback
/// port is the lock, so a crashed process cannot leave it held.
#[derive(Debug)]
pub(crate) struct RedisLock(std::net::TcpListener);

impl RedisLock {
    fn acquire() -> Self {
        let started = std::time::Instant::now();
        loop {
            match std::net::TcpListener::bind(("127.0.0.1", 46_379)) {
                Ok(l) => return Self(l),
                Err(e) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(600),
                        "cache test lock (port 46379) not free after 10 min: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// For tests that only use Redis.
    pub(crate) fn shared() -> Self {
        Self::acquire()
    }

    /// For tests that stop Redis.
    pub(crate) fn exclusive() -> Self {
        Self::acquire()
    }
}

/// Checks Redis: `Some` when reachable; otherwise fails naming the service when
/// `ORDERMON_REQUIRE_SERVICES=1`, and says the test is skipped if not.
pub(crate) async fn redis_or_skip() -> Option<()> {
    let url = redis_url();
    let probe = RedisCache::new(&url, &RedisCacheConfig::default())
        .map(|c| async move { c.health().await });
    let result = match probe {
        Ok(f) => f.await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => Some(()),
        Err(e) if ordermon_tests::services_required() => {
            panic!("redis unreachable at {url} (ORDERMON_REQUIRE_SERVICES=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped: redis unreachable at {url} ({e})");
            None
        }
    }
}

/// Cache settings that notice failures and recover quickly in tests.
pub(crate) fn fast_config() -> CacheConfig {
    let mut c = CacheConfig::default();
    c.redis.connect_timeout = Duration::from_millis(300);
    c.redis.command_timeout = Duration::from_millis(500);
    c.tiered.probe_interval = Duration::from_millis(100);
    c.tiered.feed_timeout = Duration::from_millis(600);
    c.tiered.max_backoff = Duration::from_millis(400);
    c
}

/// A tiered cache over the test Redis, its tasks stopped when the token is.
pub(crate) async fn tiered(tracker: &TaskTracker, cancel: &CancellationToken) -> TieredCache {
    let t = ordermon_redis::cache::connect(&redis_url(), &fast_config(), tracker, cancel)
        .await
        .expect("connect");
    assert!(
        t.wait_connected(Duration::from_secs(5)).await,
        "cache did not connect"
    );
    t
}

pub(crate) fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub(crate) fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

pub(crate) fn acme() -> InstrumentId {
    InstrumentId::new("ACME.SIM").unwrap()
}

/// An engine over a fresh in-memory store reading through `cache`, in external
/// venue mode (the test drives executions), with ACME.SIM listed.
pub(crate) async fn engine(cache: Arc<ReadCache>) -> (Arc<Engine>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::start_with_cache(
        Persistence::from_backend(store.clone()),
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
    engine
        .instruments
        .upsert(Instrument {
            id: acme(),
            quote_currency: usd(),
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
    (engine, store)
}

/// A read-through cache with the default settings.
pub(crate) fn read_cache(backend: Arc<dyn Cache>, shared: bool) -> Arc<ReadCache> {
    Arc::new(if shared {
        ReadCache::shared(backend, CacheSettings::default())
    } else {
        ReadCache::new(backend, CacheSettings::default())
    })
}

/// Creates a user with cash.
pub(crate) async fn funded_user(engine: &Engine, id: &str, cash: &str) -> UserId {
    let user = UserId::new(id).unwrap();
    engine
        .users
        .create(CreateUser {
            id: user.clone(),
            name: id.to_owned(),
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
            Money::new(d(cash), usd()).unwrap(),
            "initial deposit".to_owned(),
        )
        .await
        .unwrap();
    user
}

/// A GTC limit order on ACME.SIM.
pub(crate) fn limit(user: &UserId, cid: &str, side: Side, qty: &str, px: &str) -> NewOrder {
    NewOrder {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        user_id: user.clone(),
        strategy_id: None,
        instrument_id: acme(),
        side,
        order_type: OrderType::Limit,
        quantity: Quantity::new(d(qty)).unwrap(),
        price: Some(Price::new(d(px)).unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    }
}

/// Stops Redis (`SHUTDOWN NOSAVE`); the guard restarts it when dropped, also
/// when the test fails, since other suites need it.
#[derive(Debug)]
pub(crate) struct RedisOutage;

impl RedisOutage {
    /// Stops Redis and waits until the port is closed.
    pub(crate) fn stop() -> Self {
        let _ = Command::new("redis-cli")
            .args(["-p", "6379", "shutdown", "nosave"])
            .status();
        for _ in 0..100 {
            if !port_open() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!port_open(), "redis did not stop");
        Self
    }

    /// Restarts Redis now (idempotent) and waits for it.
    pub(crate) fn restart(&self) {
        restart_redis();
    }
}

impl Drop for RedisOutage {
    fn drop(&mut self) {
        restart_redis();
    }
}

fn port_open() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 6379)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn restart_redis() {
    if port_open() {
        return;
    }
    let status = Command::new("redis-server")
        .args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("warning: redis-server did not start: {status:?}");
    }
    for _ in 0..200 {
        if port_open() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("warning: redis did not come back on port 6379");
}
