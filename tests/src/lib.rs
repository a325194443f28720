//! ordermon's integration testkit: provisions a fresh, isolated backend for each
//! test (a temporary SQLite file, a new PostgreSQL or MySQL database) and removes
//! it afterwards, even when the test panics.
//!
//! Service URLs come from `ORDERMON_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `ORDERMON_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/test`). When a service cannot be reached,
//! a test fails naming it if `ORDERMON_REQUIRE_SERVICES=1`, and otherwise prints
//! `skipped: <service> unreachable` and returns — it never passes silently.

pub mod bus;
pub mod otlp;
pub mod receivers;
pub mod webdriver;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ordermon_domain::ports::{
    AccountRepository, AlertRepository, AlertRuleRepository, BarRepository, EventLog,
    FillRepository, InstrumentRepository, NotificationLog, OrderRepository, Outbox,
    PositionRepository, SilenceRepository, Store, StoreError, StrategyRepository, UserRepository,
};
use ordermon_domain::ports::{
    CredentialRepository, HighWaterRepository, LeaseStore, ProjectionScan, Retention,
};
use ordermon_memory::MemoryStore;
use ordermon_sql::{PoolConfig, SqlStore, redact_url};
use sqlx::Connection as _;

/// Every port a store implements, as one object-safe trait.
pub trait FullStore:
    Store
    + OrderRepository
    + FillRepository
    + PositionRepository
    + AccountRepository
    + UserRepository
    + StrategyRepository
    + InstrumentRepository
    + EventLog
    + Outbox
    + AlertRepository
    + SilenceRepository
    + NotificationLog
    + AlertRuleRepository
    + BarRepository
    + HighWaterRepository
    + ProjectionScan
    + Retention
    + CredentialRepository
    + LeaseStore
{
}

impl<T> FullStore for T where
    T: Store
        + OrderRepository
        + FillRepository
        + PositionRepository
        + AccountRepository
        + UserRepository
        + StrategyRepository
        + InstrumentRepository
        + EventLog
        + Outbox
        + AlertRepository
        + SilenceRepository
        + NotificationLog
        + AlertRuleRepository
        + BarRepository
        + HighWaterRepository
        + ProjectionScan
        + Retention
        + CredentialRepository
        + LeaseStore
{
}

/// The store implementations the contract suites run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The in-memory store.
    Memory,
    /// SQLite in a temporary file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
    /// A fresh MySQL/MariaDB database.
    MySql,
}

impl Backend {
    /// The service's name in messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }
}

/// The PostgreSQL server URL tests create their databases on.
#[must_use]
pub fn postgres_url() -> String {
    std::env::var("ORDERMON_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The MySQL/MariaDB server URL tests create their databases on.
#[must_use]
pub fn mysql_url() -> String {
    std::env::var("ORDERMON_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// True when unreachable services must fail the tests (CI).
#[must_use]
pub fn services_required() -> bool {
    std::env::var("ORDERMON_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

/// A store for one test, removed when dropped.
#[derive(Debug)]
pub struct TestStore {
    /// Which backend.
    pub backend: Backend,
    /// Every port.
    pub store: Arc<dyn FullStore>,
    /// The SQL store itself (for operator SQL), unless in memory.
    pub sql: Option<SqlStore>,
    /// The store's URL, for benchmarks and raw access (`None` in memory).
    pub url: Option<String>,
    _cleanup: Cleanup,
}

impl TestStore {
    /// The application's ports, every one on this store.
    #[must_use]
    pub fn persistence(&self) -> ordermon_application::persistence::Persistence {
        let s = self.store.clone();
        ordermon_application::persistence::Persistence {
            store: s.clone(),
            orders: s.clone(),
            fills: s.clone(),
            positions: s.clone(),
            accounts: s.clone(),
            users: s.clone(),
            strategies: s.clone(),
            instruments: s.clone(),
            events: s.clone(),
            outbox: s.clone(),
            alerts: s.clone(),
            silences: s.clone(),
            notifications: s.clone(),
            alert_rules: s.clone(),
            bars: s.clone(),
            high_water: s.clone(),
            scan: s.clone(),
            retention: s.clone(),
            credentials: s.clone(),
            leases: s,
        }
    }

    /// Runs operator SQL on a SQL backend; `None` in memory.
    ///
    /// # Panics
    /// When the statement fails.
    pub async fn operator_sql(&self, sql: &str) -> Option<u64> {
        let store = self.sql.as_ref()?;
        match store.execute_unprepared(sql).await {
            Ok(n) => Some(n),
            Err(e) => panic!(
                "operator SQL {sql:?} failed on {}: {e}",
                self.backend.name()
            ),
        }
    }
}

/// What to remove after a test.
#[derive(Debug)]
enum Cleanup {
    Nothing,
    File(PathBuf),
    Database {
        server: String,
        name: String,
        postgres: bool,
    },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Self::Nothing => {}
            Self::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Self::Database {
                server,
                name,
                postgres,
            } => {
                let (server, name, postgres) = (server.clone(), name.clone(), *postgres);
                // Drop runs outside async; a private runtime on its own thread can
                // still await the DROP, whatever runtime the test used.
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    rt.map(|rt| rt.block_on(drop_database(&server, &name, postgres)))
                })
                .join();
                if !matches!(dropped, Ok(Ok(Ok(())))) {
                    eprintln!("warning: could not drop test database (left behind)");
                }
            }
        }
    }
}

async fn drop_database(server: &str, name: &str, postgres: bool) -> Result<(), sqlx::Error> {
    if postgres {
        let mut c = sqlx::PgConnection::connect(server).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await?;
    } else {
        let mut c = sqlx::MySqlConnection::connect(server).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut c)
        .await?;
    }
    Ok(())
}

/// `url` pointing at database `name` on the same server.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => url.split_at(q),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &base[..path_start])
}

/// Pool settings for tests: fail fast when a service is down.
fn test_config() -> PoolConfig {
    PoolConfig {
        max_connections: 20,
        acquire_timeout: Duration::from_secs(30),
        connect_attempts: 3,
        ..PoolConfig::default()
    }
}

/// Reports an unreachable service: fails when services are required, and
/// otherwise says the test is skipped.
fn unreachable(backend: Backend, url: &str, error: &dyn std::fmt::Display) -> Option<TestStore> {
    let service = backend.name();
    if services_required() {
        panic!(
            "{service} unreachable at {} (ORDERMON_REQUIRE_SERVICES=1): {error}",
            redact_url(url)
        );
    }
    eprintln!(
        "skipped: {service} unreachable at {} ({error})",
        redact_url(url)
    );
    None
}

/// A fresh, migrated store of `backend`, or `None` (after saying why) when its
/// service cannot be reached and services are not required.
///
/// # Panics
/// When a required service is unreachable, or provisioning fails otherwise.
pub async fn provision(backend: Backend) -> Option<TestStore> {
    let unique = uuid::Uuid::now_v7().simple().to_string();
    match backend {
        Backend::Memory => Some(TestStore {
            backend,
            store: Arc::new(MemoryStore::new()),
            sql: None,
            url: None,
            _cleanup: Cleanup::Nothing,
        }),
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("ordermon-test-{unique}.db"));
            let url = format!("sqlite://{}", path.display());
            let cleanup = Cleanup::File(path);
            let sql = open(backend, &url).await;
            Some(TestStore {
                backend,
                store: Arc::new(sql.clone()),
                sql: Some(sql),
                url: Some(url),
                _cleanup: cleanup,
            })
        }
        Backend::Postgres => provision_on(backend, &postgres_url()).await,
        Backend::MySql => provision_on(backend, &mysql_url()).await,
    }
}

/// A fresh, migrated database of `backend` (PostgreSQL or MySQL) on the server
/// at `server` — e.g. a TLS endpoint, whose URL options the new database's URL
/// keeps — or `None` (after saying why) as for [`provision`].
///
/// # Panics
/// When `backend` is not a server backend, a required service is unreachable,
/// or provisioning fails otherwise.
pub async fn provision_on(backend: Backend, server: &str) -> Option<TestStore> {
    let unique = uuid::Uuid::now_v7().simple().to_string();
    match backend {
        Backend::Memory | Backend::Sqlite => {
            panic!(
                "provision_on needs a server backend, not {}",
                backend.name()
            )
        }
        Backend::Postgres | Backend::MySql => {
            let postgres = backend == Backend::Postgres;
            let server = server.to_owned();
            let name = format!("ordermon_t_{unique}");
            let created = tokio::time::timeout(Duration::from_secs(10), async {
                if postgres {
                    let mut c = sqlx::PgConnection::connect(&server).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut c)
                        .await?;
                } else {
                    let mut c = sqlx::MySqlConnection::connect(&server).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )))
                    .execute(&mut c)
                    .await?;
                }
                Ok::<(), sqlx::Error>(())
            })
            .await;
            match created {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return unreachable(backend, &server, &e),
                Err(_) => return unreachable(backend, &server, &"timed out"),
            }
            let cleanup = Cleanup::Database {
                server: server.clone(),
                name: name.clone(),
                postgres,
            };
            let url = with_database(&server, &name);
            let sql = open(backend, &url).await;
            Some(TestStore {
                backend,
                store: Arc::new(sql.clone()),
                sql: Some(sql),
                url: Some(url),
                _cleanup: cleanup,
            })
        }
    }
}

async fn open(backend: Backend, url: &str) -> SqlStore {
    let store = SqlStore::connect(url, test_config())
        .await
        .unwrap_or_else(|e: StoreError| panic!("cannot open {} store: {e}", backend.name()));
    if let Err(e) = store.migrate().await {
        panic!("cannot migrate {} store: {e}", backend.name());
    }
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_swapped_in_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test?ssl-mode=disabled", "t2"),
            "mysql://root@127.0.0.1:3306/t2?ssl-mode=disabled"
        );
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
    }
}
