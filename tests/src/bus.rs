//! Bus testkit: a uniquely named bus of each kind per test (exchange, queues,
//! stream or topic suffixed with a random id), removed afterwards even when the
//! test panics, and fault injection that breaks only this process's broker
//! connections (so tests never disturb other users of a shared broker).
//!
//! Broker addresses come from `ORDERMON_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`), `ORDERMON_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`) and `ORDERMON_TEST_KAFKA_BROKERS` (default
//! `127.0.0.1:9092`). An unreachable broker fails the test naming it when
//! `ORDERMON_REQUIRE_SERVICES=1`, and otherwise the test prints
//! `skipped: <service> unreachable` and returns.

use std::sync::Arc;
use std::time::Duration;

use ordermon_domain::ports::MessageBus;
#[cfg(feature = "kafka")]
use ordermon_kafka::{KafkaBus, KafkaConfig};
use ordermon_memory::bus::{MemoryBus, MemoryBusConfig};
use ordermon_rabbitmq::{RabbitBus, RabbitConfig};
use ordermon_redis::bus::{RedisBus, RedisBusConfig};
use parking_lot::Mutex;

use crate::services_required;

/// The bus implementations the contract suites run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// The in-process bus.
    Memory,
    /// RabbitMQ.
    RabbitMq,
    /// Kafka (or a Kafka-compatible broker such as tansu).
    Kafka,
    /// Redis Streams.
    Redis,
}

impl BusKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Memory, Self::RabbitMq, Self::Kafka, Self::Redis];

    /// The service's name in messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::RabbitMq => "rabbitmq",
            Self::Kafka => "kafka",
            Self::Redis => "redis",
        }
    }
}

/// The RabbitMQ URL tests use.
#[must_use]
pub fn amqp_url() -> String {
    std::env::var("ORDERMON_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The Redis URL tests use.
#[must_use]
pub fn redis_url() -> String {
    std::env::var("ORDERMON_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// The Kafka brokers tests use.
#[must_use]
pub fn kafka_brokers() -> String {
    std::env::var("ORDERMON_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// Settings for a test bus.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Retry delays (short, so retry tests are quick).
    pub retry_delays: Vec<Duration>,
}

impl Default for BusOptions {
    fn default() -> Self {
        Self {
            retry_delays: vec![
                Duration::from_millis(100),
                Duration::from_millis(200),
                Duration::from_millis(400),
            ],
        }
    }
}

/// The concrete bus, for cleanup and fault injection.
#[derive(Debug, Clone)]
enum Concrete {
    Memory,
    Rabbit(RabbitBus),
    Redis(Box<RedisBus>),
    #[cfg(feature = "kafka")]
    Kafka(KafkaBus),
}

/// A bus for one test; its names are unique and removed when it is dropped.
#[derive(Debug)]
pub struct TestBus {
    /// Which kind.
    pub kind: BusKind,
    /// The port.
    pub bus: Arc<dyn MessageBus>,
    /// The random suffix of every name.
    pub suffix: String,
    concrete: Concrete,
    groups: Mutex<Vec<String>>,
    /// Held (shared) while a Redis bus is in use: suites that stop Redis take
    /// it exclusively, so they never stop it under this test.
    _redis_lock: Option<std::fs::File>,
}

/// Takes the cross-process Redis lock in shared mode (waiting while a test
/// that stops Redis holds it).
async fn redis_shared_lock() -> std::fs::File {
    tokio::task::spawn_blocking(|| {
        let path = std::env::temp_dir().join("ordermon-cache-tests-redis.lock");
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        // File locks are newer than the workspace's MSRV; the test harness only
        // runs on the current toolchain.
        #[allow(clippy::incompatible_msrv)]
        f.lock_shared()
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
        f
    })
    .await
    .unwrap_or_else(|e| panic!("lock task failed: {e}"))
}

/// Reports an unreachable broker: fails when services are required, and
/// otherwise says the test is skipped.
fn unreachable(kind: BusKind, address: &str, error: &dyn std::fmt::Display) -> Option<TestBus> {
    let service = kind.name();
    if services_required() {
        panic!("{service} unreachable at {address} (ORDERMON_REQUIRE_SERVICES=1): {error}");
    }
    eprintln!("skipped: {service} unreachable at {address} ({error})");
    None
}

/// A fresh bus of `kind`, or `None` (after saying why) when its broker cannot be
/// reached and services are not required.
///
/// # Panics
/// When a required broker is unreachable.
pub async fn provision_bus(kind: BusKind, options: BusOptions) -> Option<TestBus> {
    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
    let connect_timeout = Duration::from_secs(20);
    let redis_lock = if kind == BusKind::Redis {
        Some(redis_shared_lock().await)
    } else {
        None
    };
    let (bus, concrete): (Arc<dyn MessageBus>, Concrete) = match kind {
        BusKind::Memory => {
            let bus = MemoryBus::with_config(MemoryBusConfig {
                retry_delays: options.retry_delays,
                ..MemoryBusConfig::default()
            });
            (Arc::new(bus), Concrete::Memory)
        }
        BusKind::RabbitMq => {
            let url = amqp_url();
            let mut config = RabbitConfig::new(&url);
            config.exchange = format!("ordermon.test.{suffix}");
            config.retry_delays = options.retry_delays;
            config.connection_name = format!("ordermon-test-{suffix}");
            match tokio::time::timeout(connect_timeout, RabbitBus::connect(config)).await {
                Ok(Ok(bus)) => (Arc::new(bus.clone()), Concrete::Rabbit(bus)),
                Ok(Err(e)) => return unreachable(kind, &url, &e),
                Err(_) => return unreachable(kind, &url, &"timed out"),
            }
        }
        BusKind::Redis => {
            let url = redis_url();
            let mut config = RedisBusConfig::new(&url);
            config.stream = format!("ordermon:test:{suffix}");
            config.retry_delays = options.retry_delays;
            config.block = Duration::from_millis(200);
            config.claim_idle = Duration::from_secs(2);
            match tokio::time::timeout(connect_timeout, RedisBus::connect(config)).await {
                Ok(Ok(bus)) => (Arc::new(bus.clone()), Concrete::Redis(Box::new(bus))),
                Ok(Err(e)) => return unreachable(kind, &url, &e),
                Err(_) => return unreachable(kind, &url, &"timed out"),
            }
        }
        #[cfg(not(feature = "kafka"))]
        BusKind::Kafka => {
            return unreachable(
                kind,
                &kafka_brokers(),
                &"this build leaves Kafka out (the ordermon-tests feature `kafka`)",
            );
        }
        #[cfg(feature = "kafka")]
        BusKind::Kafka => {
            let brokers = kafka_brokers();
            let mut config = KafkaConfig::new(&brokers);
            config.topic = format!("ordermon.test.{suffix}");
            config.retry_delays = options.retry_delays;
            match tokio::time::timeout(connect_timeout, KafkaBus::connect(config)).await {
                Ok(Ok(bus)) => (Arc::new(bus.clone()), Concrete::Kafka(bus)),
                Ok(Err(e)) => return unreachable(kind, &brokers, &e),
                Err(_) => return unreachable(kind, &brokers, &"timed out"),
            }
        }
    };
    Some(TestBus {
        kind,
        bus,
        suffix,
        concrete,
        groups: Mutex::new(Vec::new()),
        _redis_lock: redis_lock,
    })
}

impl TestBus {
    /// The `bus.url` a `monitor-server` needs to use this bus (`memory` for
    /// the in-process one, which another process cannot share).
    #[must_use]
    pub fn server_url(&self) -> String {
        match self.kind {
            BusKind::Memory => "memory".to_owned(),
            BusKind::RabbitMq => amqp_url(),
            BusKind::Redis => redis_url(),
            BusKind::Kafka => format!("kafka://{}", kafka_brokers()),
        }
    }

    /// The `bus.topic` a `monitor-server` needs to use this bus: this test's
    /// exchange (RabbitMQ), stream (Redis) or topic (Kafka).
    #[must_use]
    pub fn server_topic(&self) -> String {
        match self.kind {
            BusKind::Memory => "ordermon.events".to_owned(),
            BusKind::RabbitMq | BusKind::Kafka => format!("ordermon.test.{}", self.suffix),
            BusKind::Redis => format!("ordermon:test:{}", self.suffix),
        }
    }

    /// A unique consumer-group name for `name`, removed with the bus.
    #[must_use]
    pub fn group(&self, name: &str) -> String {
        let group = format!("{name}-{}", self.suffix);
        self.groups.lock().push(group.clone());
        group
    }

    /// Breaks this process's connections to the broker, the way a broker
    /// restart or a network fault does, and returns how many were broken:
    /// RabbitMQ closes them (`rabbitmqctl close_connection`), Redis kills them
    /// (`CLIENT KILL ADDR`), and Kafka's are destroyed under the client
    /// (`ss -K`), since restarting the test broker (tansu with in-memory
    /// storage) would lose its topics. The in-process bus has no connection: 0.
    ///
    /// # Panics
    /// When the fault cannot be injected.
    pub async fn break_connections(&self) -> usize {
        match &self.concrete {
            Concrete::Memory => 0,
            Concrete::Rabbit(_) => {
                let ports = own_local_ports(5672);
                tokio::task::spawn_blocking(move || close_rabbit_connections(&ports))
                    .await
                    .unwrap_or_else(|e| panic!("rabbitmqctl task failed: {e}"))
            }
            Concrete::Redis(_) => {
                let ports = own_local_ports(6379);
                kill_redis_clients(&ports).await
            }
            #[cfg(feature = "kafka")]
            Concrete::Kafka(_) => {
                let ports = own_local_ports(9092);
                tokio::task::spawn_blocking(move || destroy_sockets(9092, &ports))
                    .await
                    .unwrap_or_else(|e| panic!("ss task failed: {e}"))
            }
        }
    }
}

/// Local ports of this process's established TCP connections to `remote_port`
/// on localhost (from `ss -tnp`).
#[must_use]
pub fn own_local_ports(remote_port: u16) -> Vec<u16> {
    let me = format!("pid={},", std::process::id());
    let filter = format!("( dport = :{remote_port} )");
    let out = std::process::Command::new("ss")
        .args(["-tnpH", "state", "established", &filter])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ss: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&me))
        .filter_map(|l| {
            // Recv-Q Send-Q Local:Port Peer:Port Process
            let local = l.split_whitespace().nth(2)?;
            local.rsplit(':').next()?.parse().ok()
        })
        .collect()
}

fn close_rabbit_connections(ports: &[u16]) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "name"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl: {e}"));
    let mut closed = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((pid, name)) = line.split_once('\t') else {
            continue;
        };
        // name: "127.0.0.1:54321 -> 127.0.0.1:5672"
        let local_port = name
            .split(" -> ")
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        if local_port.is_some_and(|p| ports.contains(&p)) {
            let status = std::process::Command::new("rabbitmqctl")
                .args(["-q", "close_connection", pid, "test fault"])
                .status()
                .unwrap_or_else(|e| panic!("cannot run rabbitmqctl: {e}"));
            assert!(status.success(), "rabbitmqctl close_connection failed");
            closed += 1;
        }
    }
    closed
}

async fn kill_redis_clients(ports: &[u16]) -> usize {
    let client =
        redis::Client::open(redis_url()).unwrap_or_else(|e| panic!("invalid redis url: {e}"));
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("redis unreachable: {e}"));
    let mut killed = 0;
    for port in ports {
        let n: redis::RedisResult<u64> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ADDR")
            .arg(format!("127.0.0.1:{port}"))
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut c)
            .await;
        killed += usize::try_from(n.unwrap_or(0)).unwrap_or(0);
    }
    killed
}

#[cfg(feature = "kafka")]
fn destroy_sockets(remote_port: u16, ports: &[u16]) -> usize {
    let mut destroyed = 0;
    for port in ports {
        let filter = format!("( dport = :{remote_port} and sport = :{port} )");
        let status = std::process::Command::new("ss")
            .args(["-K", "state", "established", &filter])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run ss: {e}"));
        if status.success() {
            destroyed += 1;
        }
    }
    destroyed
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let groups = std::mem::take(&mut *self.groups.lock());
        let concrete = self.concrete.clone();
        // Drop runs outside async; a private runtime on its own thread can still
        // await the deletes, whatever runtime the test used.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
                let cleanup = async {
                    match &concrete {
                        Concrete::Memory => Ok(()),
                        Concrete::Rabbit(b) => {
                            for g in &refs {
                                b.delete_group(g).await?;
                            }
                            b.delete_exchanges().await?;
                            b.close().await;
                            Ok(())
                        }
                        // A fresh connection: the bus's own one is driven by
                        // the test's runtime.
                        Concrete::Redis(b) => {
                            RedisBus::connect(b.config().clone())
                                .await?
                                .delete(&refs)
                                .await
                        }
                        #[cfg(feature = "kafka")]
                        Concrete::Kafka(b) => b.delete_topics(&refs).await,
                    }
                };
                tokio::time::timeout(Duration::from_secs(20), cleanup)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(done, Ok(Some(Ok(())))) {
            eprintln!("warning: could not remove test bus names (left behind)");
        }
    }
}
