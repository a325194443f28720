//! Connection pools per dialect: configuration, connecting with retry and
//! backoff, write transactions (one writer at a time on SQLite), read
//! connections, and the embedded migrations.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ordermon_domain::ports::StoreError;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Executor as _, MySql, Postgres, Sqlite, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::conn::Conn;
use crate::error::is_transient;
use crate::retry::Backoff;
use crate::url::{Dialect, Scrubber, redact_url};

/// Pool and retry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a caller waits for a free connection before the attempt fails
    /// (and is retried as transient).
    pub acquire_timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Option<Duration>,
    /// Attempts to reach the database at start before giving up.
    pub connect_attempts: u32,
    /// Attempts of one operation that meets transient errors (deadlock,
    /// serialization failure, lost connection, busy) before it fails with
    /// [`StoreError::Unavailable`].
    pub retry_attempts: u32,
    /// First backoff between attempts; doubles each time, with jitter.
    pub initial_backoff: Duration,
    /// Longest backoff between attempts.
    pub max_backoff: Duration,
    /// How long SQLite waits on a lock held by another process before `SQLITE_BUSY`.
    pub sqlite_busy_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            connect_attempts: 6,
            retry_attempts: 6,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(2),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

impl PoolConfig {
    /// The backoff schedule for `attempts` tries.
    pub(crate) fn backoff(&self, attempts: u32) -> Backoff {
        Backoff::new(attempts, self.initial_backoff, self.max_backoff)
    }
}

/// The pools of one database.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// SQLite has one writer: writes queue on `writer` so concurrent callers
    /// never see `SQLITE_BUSY`; reads run in parallel (WAL).
    Sqlite {
        pool: SqlitePool,
        writer: Arc<Mutex<()>>,
    },
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// An open write transaction (holding SQLite's writer slot while it lives).
pub(crate) struct WriteTx {
    tx: TxInner,
    /// Dropped after `tx`, so the writer slot outlives the transaction.
    _writer: Option<OwnedMutexGuard<()>>,
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    MySql(Transaction<'static, MySql>),
}

impl WriteTx {
    /// The transaction's connection.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match &mut self.tx {
            TxInner::Sqlite(t) => Conn::Sqlite(t),
            TxInner::Postgres(t) => Conn::Postgres(t),
            TxInner::MySql(t) => Conn::MySql(t),
        }
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        let Self { tx, _writer } = self;
        match tx {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
            TxInner::MySql(t) => t.commit().await,
        }
    }

    /// Rolls back (dropping the transaction does too, lazily).
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        let Self { tx, _writer } = self;
        match tx {
            TxInner::Sqlite(t) => t.rollback().await,
            TxInner::Postgres(t) => t.rollback().await,
            TxInner::MySql(t) => t.rollback().await,
        }
    }
}

/// A task waiting for a pooled connection: counted in
/// `ordermon_db_pool_waiters` while it waits, and the wait recorded in
/// `ordermon_db_pool_acquire_seconds` when it ends (for writes, with the
/// transaction begun; on SQLite, with the writer slot taken). Dropped, not
/// awaited: a wait cut short by cancellation is counted out too.
struct Waiting {
    kind: &'static str,
    since: std::time::Instant,
}

impl Waiting {
    fn new(kind: &'static str) -> Self {
        metrics::gauge!("ordermon_db_pool_waiters").increment(1.0);
        Self {
            kind,
            since: std::time::Instant::now(),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!("ordermon_db_pool_waiters").decrement(1.0);
        metrics::histogram!("ordermon_db_pool_acquire_seconds", "kind" => self.kind)
            .record(self.since.elapsed().as_secs_f64());
    }
}

/// A pooled connection for reads.
pub(crate) enum ReadConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
    MySql(PoolConnection<MySql>),
}

impl ReadConn {
    /// The connection.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
            Self::MySql(c) => Conn::MySql(c),
        }
    }
}

impl Pools {
    /// Connections open in the pool, and how many of them are idle.
    pub(crate) fn connections(&self) -> (u32, usize) {
        match self {
            Self::Sqlite { pool, .. } => (pool.size(), pool.num_idle()),
            Self::Postgres(p) => (p.size(), p.num_idle()),
            Self::MySql(p) => (p.size(), p.num_idle()),
        }
    }

    /// The dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite { .. } => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
            Self::MySql(_) => Dialect::MySql,
        }
    }

    /// Begins a write transaction. On SQLite it first waits for the writer slot,
    /// then takes the database's write lock at once (`BEGIN IMMEDIATE`).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let _waiting = Waiting::new("write");
        Ok(match self {
            Self::Sqlite { pool, writer } => {
                let guard = Arc::clone(writer).lock_owned().await;
                let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                WriteTx {
                    tx: TxInner::Sqlite(tx),
                    _writer: Some(guard),
                }
            }
            Self::Postgres(p) => WriteTx {
                tx: TxInner::Postgres(p.begin().await?),
                _writer: None,
            },
            Self::MySql(p) => WriteTx {
                tx: TxInner::MySql(p.begin().await?),
                _writer: None,
            },
        })
    }

    /// A connection for reads.
    pub(crate) async fn read(&self) -> Result<ReadConn, sqlx::Error> {
        let _waiting = Waiting::new("read");
        Ok(match self {
            Self::Sqlite { pool, .. } => ReadConn::Sqlite(pool.acquire().await?),
            Self::Postgres(p) => ReadConn::Postgres(p.acquire().await?),
            Self::MySql(p) => ReadConn::MySql(p.acquire().await?),
        })
    }

    /// Runs operator SQL outside any batch (on SQLite, in the writer slot).
    pub(crate) async fn execute_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let affected = match self {
            Self::Sqlite { pool, writer } => {
                let _slot = writer.lock().await;
                pool.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                    .await?
                    .rows_affected()
            }
            Self::Postgres(p) => p
                .execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                .await?
                .rows_affected(),
            Self::MySql(p) => p
                .execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                .await?
                .rows_affected(),
        };
        Ok(affected)
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite { pool, .. } => pool.close().await,
            Self::Postgres(p) => p.close().await,
            Self::MySql(p) => p.close().await,
        }
    }

    /// Applies the dialect's pending migrations.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let failed = |e: sqlx::migrate::MigrateError| {
            StoreError::Unexpected(format!("migration failed: {e}"))
        };
        match self {
            Self::Sqlite { pool, writer } => {
                let _slot = writer.lock().await;
                migrator(SQLITE).await?.run(pool).await.map_err(failed)
            }
            Self::Postgres(p) => migrator(POSTGRES).await?.run(p).await.map_err(failed),
            Self::MySql(p) => migrator(MYSQL).await?.run(p).await.map_err(failed),
        }
    }
}

/// How long a pooled connection may sit idle and still be handed out without
/// a ping first.
const TRUST_IDLE: Duration = Duration::from_secs(1);

/// Checks a pooled connection before use only when it sat idle for a while
/// (the database may have restarted meanwhile): pinging every time costs a
/// round trip per statement. A connection that died in use anyway fails its
/// statement with an I/O error, which is transient and retried.
async fn ping_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= TRUST_IDLE {
        conn.ping().await?;
    }
    Ok(true)
}

/// Connects to `url`, retrying transient failures with exponential backoff.
pub(crate) async fn connect(url: &str, cfg: &PoolConfig) -> Result<Pools, StoreError> {
    let dialect = Dialect::from_url(url).ok_or_else(|| {
        StoreError::Unexpected(format!("unsupported database URL: {}", redact_url(url)))
    })?;
    let mut backoff = cfg.backoff(cfg.connect_attempts.max(1));
    loop {
        match try_connect(dialect, url, cfg).await {
            Ok(pools) => {
                tracing::info!(dialect = %dialect, url = %redact_url(url), "database connected");
                return Ok(pools);
            }
            Err(e) => {
                let text = Scrubber::new(url).scrub(&e.to_string());
                let transient = is_transient(&e)
                    || matches!(&e, sqlx::Error::Database(db) if db.is_transient_in_connect_phase());
                match backoff.next_delay() {
                    Some(delay) if transient => {
                        tracing::warn!(dialect = %dialect, url = %redact_url(url), error = %text,
                            ?delay, "database not reachable yet; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    _ if transient => {
                        return Err(StoreError::Unavailable(format!(
                            "cannot reach {dialect} at {}: {text}",
                            redact_url(url)
                        )));
                    }
                    _ => {
                        return Err(StoreError::Unexpected(format!(
                            "cannot connect to {dialect} at {}: {text}",
                            redact_url(url)
                        )));
                    }
                }
            }
        }
    }
}

/// Prepared statements each connection keeps (sqlx's default is 100). Group
/// commits write multi-row statements whose text varies with the number of
/// rows, so the write path alone has a few hundred shapes; a statement that
/// fell out of the cache costs two more round trips (prepare, and close of
/// the one it evicts) before it runs.
const STATEMENT_CACHE: usize = 512;

async fn try_connect(dialect: Dialect, url: &str, cfg: &PoolConfig) -> Result<Pools, sqlx::Error> {
    Ok(match dialect {
        Dialect::Sqlite => {
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode survives a process kill; only power loss
                // can take the last transactions.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(cfg.sqlite_busy_timeout)
                .foreign_keys(true)
                .statement_cache_capacity(STATEMENT_CACHE);
            let mut pool = SqlitePoolOptions::new()
                // A file connection does not go stale; skip the ping per acquire.
                .test_before_acquire(false)
                .max_connections(cfg.max_connections.max(1))
                .min_connections(cfg.min_connections)
                .acquire_timeout(cfg.acquire_timeout)
                .acquire_slow_level(SLOW_ACQUIRE_LOG)
                .idle_timeout(cfg.idle_timeout);
            if in_memory {
                // An in-memory database lives as long as one of its connections,
                // and shared-cache connections lock tables against each other:
                // keep exactly one, forever.
                pool = pool
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            Pools::Sqlite {
                pool: pool.connect_with(opts).await?,
                writer: Arc::new(Mutex::new(())),
            }
        }
        Dialect::Postgres => {
            let opts = PgConnectOptions::from_str(url)?
                .application_name("ordermon")
                .statement_cache_capacity(STATEMENT_CACHE);
            let pool = PgPoolOptions::new()
                .test_before_acquire(false)
                .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
                .max_connections(cfg.max_connections.max(1))
                .min_connections(cfg.min_connections)
                .acquire_timeout(cfg.acquire_timeout)
                .acquire_slow_level(SLOW_ACQUIRE_LOG)
                .idle_timeout(cfg.idle_timeout)
                .connect_with(opts)
                .await?;
            Pools::Postgres(pool)
        }
        Dialect::MySql => {
            // sqlx names the scheme `mysql`; MariaDB speaks the same protocol.
            let url = match url.strip_prefix("mariadb://") {
                Some(rest) => Cow::Owned(format!("mysql://{rest}")),
                None => Cow::Borrowed(url),
            };
            let opts =
                MySqlConnectOptions::from_str(&url)?.statement_cache_capacity(STATEMENT_CACHE);
            let pool = MySqlPoolOptions::new()
                .test_before_acquire(false)
                .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
                .max_connections(cfg.max_connections.max(1))
                .min_connections(cfg.min_connections)
                .acquire_timeout(cfg.acquire_timeout)
                .acquire_slow_level(SLOW_ACQUIRE_LOG)
                .idle_timeout(cfg.idle_timeout)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // READ COMMITTED avoids InnoDB gap locks between concurrent
                        // inserters; strict mode refuses truncation instead of warning.
                        conn.execute(sqlx::raw_sql(
                            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                        ))
                        .await?;
                        conn.execute(sqlx::raw_sql(
                            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
                        ))
                        .await?;
                        Ok(())
                    })
                })
                .connect_with(opts)
                .await?;
            Pools::MySql(pool)
        }
    })
}

/// The level of sqlx's line per slow connection acquire: debug, not its
/// default warning. Under a burst (every owner loading at start) it wrote one
/// line per waiting task — 206,732 lines in a 15 s restart of 50,000 users —
/// while `ordermon_db_pool_acquire_seconds` and `ordermon_db_pool_waiters`
/// already say how long acquires take and how many wait.
const SLOW_ACQUIRE_LOG: log::LevelFilter = log::LevelFilter::Debug;

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

/// SQLite migrations, embedded at compile time.
const SQLITE: &[Embedded] = &[
    (
        20_260_101_000_001,
        "store",
        include_str!("../../../migrations/sqlite/20260101000001_store.sql"),
    ),
    (
        20_261_203_000_001,
        "alerting",
        include_str!("../../../migrations/sqlite/20261203000001_alerting.sql"),
    ),
    (
        20_261_210_000_001,
        "high_water",
        include_str!("../../../migrations/sqlite/20261210000001_high_water.sql"),
    ),
    (
        20_261_220_000_001,
        "credentials",
        include_str!("../../../migrations/sqlite/20261220000001_credentials.sql"),
    ),
    (
        20_261_230_000_001,
        "account_reservations",
        include_str!("../../../migrations/sqlite/20261230000001_account_reservations.sql"),
    ),
    (
        20_261_231_000_001,
        "strategy_per_user",
        include_str!("../../../migrations/sqlite/20261231000001_strategy_per_user.sql"),
    ),
    (
        20_270_105_000_001,
        "leases",
        include_str!("../../../migrations/sqlite/20270105000001_leases.sql"),
    ),
    (
        20_270_112_000_001,
        "outbox_traceparent",
        include_str!("../../../migrations/sqlite/20270112000001_outbox_traceparent.sql"),
    ),
];

/// PostgreSQL migrations, embedded at compile time.
const POSTGRES: &[Embedded] = &[
    (
        20_260_101_000_001,
        "store",
        include_str!("../../../migrations/postgres/20260101000001_store.sql"),
    ),
    (
        20_261_203_000_001,
        "alerting",
        include_str!("../../../migrations/postgres/20261203000001_alerting.sql"),
    ),
    (
        20_261_210_000_001,
        "high_water",
        include_str!("../../../migrations/postgres/20261210000001_high_water.sql"),
    ),
    (
        20_261_220_000_001,
        "credentials",
        include_str!("../../../migrations/postgres/20261220000001_credentials.sql"),
    ),
    (
        20_261_230_000_001,
        "account_reservations",
        include_str!("../../../migrations/postgres/20261230000001_account_reservations.sql"),
    ),
    (
        20_261_231_000_001,
        "strategy_per_user",
        include_str!("../../../migrations/postgres/20261231000001_strategy_per_user.sql"),
    ),
    (
        20_270_105_000_001,
        "leases",
        include_str!("../../../migrations/postgres/20270105000001_leases.sql"),
    ),
    (
        20_270_112_000_001,
        "outbox_traceparent",
        include_str!("../../../migrations/postgres/20270112000001_outbox_traceparent.sql"),
    ),
];

/// MySQL/MariaDB migrations, embedded at compile time.
const MYSQL: &[Embedded] = &[
    (
        20_260_101_000_001,
        "store",
        include_str!("../../../migrations/mysql/20260101000001_store.sql"),
    ),
    (
        20_261_203_000_001,
        "alerting",
        include_str!("../../../migrations/mysql/20261203000001_alerting.sql"),
    ),
    (
        20_261_210_000_001,
        "high_water",
        include_str!("../../../migrations/mysql/20261210000001_high_water.sql"),
    ),
    (
        20_261_220_000_001,
        "credentials",
        include_str!("../../../migrations/mysql/20261220000001_credentials.sql"),
    ),
    (
        20_261_230_000_001,
        "account_reservations",
        include_str!("../../../migrations/mysql/20261230000001_account_reservations.sql"),
    ),
    (
        20_261_231_000_001,
        "strategy_per_user",
        include_str!("../../../migrations/mysql/20261231000001_strategy_per_user.sql"),
    ),
    (
        20_270_105_000_001,
        "leases",
        include_str!("../../../migrations/mysql/20270105000001_leases.sql"),
    ),
    (
        20_270_112_000_001,
        "outbox_traceparent",
        include_str!("../../../migrations/mysql/20270112000001_outbox_traceparent.sql"),
    ),
];

/// A migration source over embedded files (the binary needs no migrations
/// folder at run time, and building needs no database).
#[derive(Debug)]
struct EmbeddedSource(&'static [Embedded]);

impl<'s> MigrationSource<'s> for EmbeddedSource {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        sqlx::SqlSafeStr::into_sql_str(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

async fn migrator(files: &'static [Embedded]) -> Result<Migrator, StoreError> {
    Migrator::new(EmbeddedSource(files))
        .await
        .map_err(|e| StoreError::Unexpected(format!("bad embedded migrations: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `migrations/<dialect>/` is embedded, under its own version.
    #[test]
    fn every_migration_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        for (dir, embedded) in [("sqlite", SQLITE), ("postgres", POSTGRES), ("mysql", MYSQL)] {
            let mut files: Vec<String> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            files.sort();
            let names: Vec<String> = embedded
                .iter()
                .map(|(v, d, _)| format!("{v}_{d}.sql"))
                .collect();
            assert_eq!(
                files, names,
                "migrations/{dir} and the embedded list differ"
            );
        }
    }
}
