//! [`SqlStore`]: connecting, migrating, and the transactional write side
//! (single and group commit) with bounded retries of transient failures.

use async_trait::async_trait;
use ordermon_domain::ports::{ChangeSet, CommitReceipt, Store, StoreError};

use crate::conn::{Kind, Row, Val};
use crate::error::{Failure, to_store_error};
use crate::fence::check_fences;
use crate::pool::{PoolConfig, Pools, connect};
use crate::url::{Dialect, Scrubber, redact_url};
use crate::write::{
    Clock, Prepared, lock_clock, prepare, reserve_clock, save_clock, write_bulk_log,
    write_bulk_log_locked, write_bulk_state, write_log, write_precise, write_state,
};

/// Connections of the lease keepers' own pool: the membership's and the
/// relay's renewals and the owners' `renew_all`, a few statements a second.
const KEEPER_CONNECTIONS: u32 = 2;

/// The SQL store: a pool per database (and a small one of its own for
/// lease renewals on PostgreSQL and MySQL), any of SQLite, PostgreSQL and
/// MySQL/MariaDB, implementing [`Store`] and every query repository port.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pools: Pools,
    /// Lease renewals' own connections (PostgreSQL, MySQL; SQLite shares its
    /// one writer): [`LeaseStore::keep`] and `renew_all` must not queue behind
    /// the store's work or bulk takes, or a busy instance loses its leases
    /// while it is healthy.
    ///
    /// [`LeaseStore::keep`]: ordermon_domain::ports::LeaseStore::keep
    keeper_pools: Pools,
    config: PoolConfig,
    /// The URL with its password masked, for logs and errors.
    url: String,
    /// Masks the URL's secrets in driver error texts.
    scrubber: Scrubber,
}

impl SqlStore {
    /// Connects to the database `url` names by its scheme (`sqlite:`,
    /// `postgres://` / `postgresql://`, `mysql://` / `mariadb://`), retrying with
    /// exponential backoff while it is unreachable. SQLite files are created when
    /// missing and run in WAL mode with a busy timeout.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database stays unreachable;
    /// [`StoreError::Unexpected`] for a bad URL or refused credentials. Error
    /// texts carry the URL with its password masked.
    pub async fn connect(url: &str, config: PoolConfig) -> Result<Self, StoreError> {
        let pools = connect(url, &config).await?;
        let keeper_pools = match pools.dialect() {
            Dialect::Sqlite => pools.clone(),
            Dialect::Postgres | Dialect::MySql => {
                let keepers = PoolConfig {
                    max_connections: KEEPER_CONNECTIONS,
                    min_connections: 0,
                    ..config.clone()
                };
                match connect(url, &keepers).await {
                    Ok(p) => p,
                    Err(e) => {
                        pools.close().await;
                        return Err(e);
                    }
                }
            }
        };
        Ok(Self {
            pools,
            keeper_pools,
            config,
            url: redact_url(url),
            scrubber: Scrubber::new(url),
        })
    }

    /// Applies the dialect's pending migrations (embedded in the binary).
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] when a migration fails or the database holds
    /// migrations this build does not know.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.pools.migrate().await
    }

    /// The database's dialect.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.pools.dialect()
    }

    /// The URL this store connected to, with any password masked.
    #[must_use]
    pub fn redacted_url(&self) -> &str {
        &self.url
    }

    /// Runs operator SQL (no parameters) outside any batch, e.g.
    /// `UPDATE users SET status = 'disabled' WHERE id = 'alice'`; returns the
    /// rows affected.
    ///
    /// # Errors
    /// Any database error, typed as for commits.
    pub async fn execute_unprepared(&self, sql: &str) -> Result<u64, StoreError> {
        self.pools
            .execute_raw(sql)
            .await
            .map_err(|e| self.scrubbed(&e))
    }

    /// Closes every pooled connection (graceful shutdown).
    pub async fn close(&self) {
        self.pools.close().await;
        self.keeper_pools.close().await;
    }

    pub(crate) fn scrubbed(&self, e: &sqlx::Error) -> StoreError {
        self.clean(to_store_error(e))
    }

    /// The error with the URL's secrets masked in its text (drivers may echo them).
    fn clean(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(self.scrubber.scrub(&m)),
            StoreError::Unexpected(m) => StoreError::Unexpected(self.scrubber.scrub(&m)),
            StoreError::Corrupt(m) => StoreError::Corrupt(self.scrubber.scrub(&m)),
            other => other,
        }
    }

    /// Connections open in the pool and how many are idle, for metrics.
    #[must_use]
    pub fn pool_connections(&self) -> (u32, usize) {
        self.pools.connections()
    }

    /// The pools lease renewals use (see the `keeper_pools` field).
    pub(crate) fn keeper_pools(&self) -> &Pools {
        &self.keeper_pools
    }

    /// The pools, for statements that need their own transaction shape.
    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Runs one read statement on a pooled connection, retrying transient errors.
    pub(crate) async fn fetch(
        &self,
        sql: &str,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Row>, StoreError> {
        self.fetch_with(sql, args, kinds, true).await
    }

    /// `(BIGINT, TEXT)` rows mapped by `f` straight from the driver's rows
    /// (see [`crate::conn::Conn::fetch_int_text`]); a refused row is
    /// [`StoreError::Corrupt`].
    pub(crate) async fn fetch_int_text<T>(
        &self,
        sql: &str,
        args: Vec<Val>,
        f: impl Fn(i64, &str) -> Result<T, String>,
    ) -> Result<Vec<T>, StoreError> {
        let mut backoff = self.config.backoff(self.config.retry_attempts.max(1));
        loop {
            let attempt = async {
                let mut conn = self.pools.read().await?;
                conn.conn().fetch_int_text(sql, args.clone(), &f).await
            };
            match attempt.await {
                Ok(rows) => return rows.map_err(StoreError::Corrupt),
                Err(e) => match Failure::from(e) {
                    Failure::Fatal(err) => return Err(self.clean(err)),
                    Failure::Transient(e) => self.pause(&mut backoff, &e).await?,
                },
            }
        }
    }

    /// [`SqlStore::fetch`] of a statement planned for its values on every
    /// run (see [`crate::conn::Conn::fetch_with`]): bulk lookups.
    pub(crate) async fn fetch_planned(
        &self,
        sql: &str,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Row>, StoreError> {
        self.fetch_with(sql, args, kinds, false).await
    }

    async fn fetch_with(
        &self,
        sql: &str,
        args: Vec<Val>,
        kinds: &[Kind],
        persistent: bool,
    ) -> Result<Vec<Row>, StoreError> {
        let mut backoff = self.config.backoff(self.config.retry_attempts.max(1));
        loop {
            let attempt = async {
                let mut conn = self.pools.read().await?;
                conn.conn()
                    .fetch_with(sql, args.clone(), kinds, persistent)
                    .await
            };
            match attempt.await {
                Ok(rows) => return Ok(rows),
                Err(e) => match Failure::from(e) {
                    Failure::Fatal(err) => return Err(self.clean(err)),
                    Failure::Transient(e) => self.pause(&mut backoff, &e).await?,
                },
            }
        }
    }

    /// Runs one write statement outside the batch machinery (bars, outbox marks),
    /// in its own transaction, retrying transient errors.
    pub(crate) async fn exec_each(
        &self,
        statements: &[(String, Vec<Val>)],
    ) -> Result<u64, StoreError> {
        self.exec_each_on(&self.pools, statements).await
    }

    /// [`SqlStore::exec_each`] on `pools`.
    pub(crate) async fn exec_each_on(
        &self,
        pools: &Pools,
        statements: &[(String, Vec<Val>)],
    ) -> Result<u64, StoreError> {
        let mut backoff = self.config.backoff(self.config.retry_attempts.max(1));
        loop {
            let attempt = async {
                let mut tx = pools.begin_write().await?;
                let mut n = 0;
                for (sql, args) in statements {
                    n += tx.conn().exec(sql, args.clone()).await?;
                }
                tx.commit().await?;
                Ok::<u64, sqlx::Error>(n)
            };
            match attempt.await {
                Ok(n) => return Ok(n),
                Err(e) => match Failure::from(e) {
                    Failure::Fatal(err) => return Err(self.clean(err)),
                    Failure::Transient(e) => self.pause(&mut backoff, &e).await?,
                },
            }
        }
    }

    /// Sleeps before the next attempt, or gives up with `Unavailable`.
    async fn pause(
        &self,
        backoff: &mut crate::retry::Backoff,
        e: &sqlx::Error,
    ) -> Result<(), StoreError> {
        let text = self.scrubber.scrub(&e.to_string());
        match backoff.next_delay() {
            Some(delay) => {
                tracing::debug!(db = %self.url, error = %text, ?delay, "transient database error; retrying");
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => {
                tracing::warn!(db = %self.url, error = %text, "database unavailable after retries");
                Err(StoreError::Unavailable(text))
            }
        }
    }

    /// One attempt at committing one batch.
    async fn commit_once(&self, p: &Prepared<'_>) -> Result<CommitReceipt, Failure> {
        let mut tx = self.pools.begin_write().await?;
        let result = async {
            let mut conn = tx.conn();
            // State rows first, then the clock (locked until the commit), then
            // the log rows: the lock is held only for the log and the commit.
            // The whole transaction rolls back if the batch is refused.
            check_fences(&mut conn, &p.batch.fence.iter().collect::<Vec<_>>()).await?;
            write_state(&mut conn, p).await?;
            let mut clock = if p.needs_clock() {
                reserve_clock(&mut conn, p).await?
            } else {
                Clock::default()
            };
            write_log(&mut conn, p, &mut clock).await
        }
        .await;
        match result {
            Ok(receipt) => {
                tx.commit().await.map_err(commit_failure)?;
                Ok(receipt)
            }
            Err(e) => {
                // Nothing of the batch stays; a failed rollback closes the connection.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// One attempt at a group commit: the fast path in one transaction; on a
    /// refusal, a second transaction writing batch by batch, each under a
    /// savepoint, so that one refused batch fails alone.
    async fn group_once(
        &self,
        batches: &[&Prepared<'_>],
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, Failure> {
        match self.group_fast(batches).await? {
            Some(receipts) => Ok(receipts.into_iter().map(Ok).collect()),
            None => self.group_careful(batches).await,
        }
    }

    /// Every batch's state rows in multi-row statements, then the clock, then
    /// the log rows: the clock is locked only for the log rows and the
    /// commit (on PostgreSQL, one statement and the commit). `None` when the
    /// database refused something (a stale version, a duplicate): nothing
    /// was written, and the careful path finds out which batch it was. No
    /// savepoint: a refusal rolls the whole transaction back, which spares
    /// every successful group a round trip.
    async fn group_fast(
        &self,
        batches: &[&Prepared<'_>],
    ) -> Result<Option<Vec<CommitReceipt>>, Failure> {
        let mut tx = self.pools.begin_write().await?;
        let attempt = async {
            let mut conn = tx.conn();
            let fences: Vec<_> = batches
                .iter()
                .filter_map(|p| p.batch.fence.as_ref())
                .collect();
            check_fences(&mut conn, &fences).await?;
            write_bulk_state(&mut conn, batches).await?;
            if !batches.iter().any(|p| p.needs_clock()) {
                return write_bulk_log(&mut conn, batches, &mut Clock::default()).await;
            }
            if let Some(receipts) = write_bulk_log_locked(&mut conn, batches).await? {
                return Ok(receipts);
            }
            let mut clock = lock_clock(&mut conn).await?;
            let receipts = write_bulk_log(&mut conn, batches, &mut clock).await?;
            save_clock(&mut conn, clock).await?;
            Ok(receipts)
        }
        .await;
        match attempt {
            Ok(receipts) => {
                tx.commit().await.map_err(commit_failure)?;
                Ok(Some(receipts))
            }
            Err(Failure::Fatal(e)) => {
                tracing::debug!(error = %e, "group fast path refused; committing batch by batch");
                let _ = tx.rollback().await;
                Ok(None)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// The careful path: the clock locked first and held throughout, each
    /// batch written row by row under its own savepoint, each refusal typed
    /// and kept to its batch.
    async fn group_careful(
        &self,
        batches: &[&Prepared<'_>],
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, Failure> {
        let mut tx = self.pools.begin_write().await?;
        let result =
            async {
                let mut conn = tx.conn();
                let needs_clock = batches.iter().any(|p| p.needs_clock());
                let mut clock = Clock::default();
                if needs_clock {
                    clock = lock_clock(&mut conn).await?;
                }
                let mut results = Vec::with_capacity(batches.len());
                for p in batches {
                    conn.raw("SAVEPOINT og_batch").await?;
                    let before = clock;
                    let written =
                        match check_fences(&mut conn, &p.batch.fence.iter().collect::<Vec<_>>())
                            .await
                        {
                            Ok(()) => write_precise(&mut conn, p, &mut clock).await,
                            Err(e) => Err(e),
                        };
                    match written {
                        Ok(receipt) => {
                            conn.raw("RELEASE SAVEPOINT og_batch").await?;
                            results.push(Ok(receipt));
                        }
                        Err(Failure::Transient(e)) => return Err(Failure::Transient(e)),
                        Err(Failure::Fatal(e)) => {
                            conn.raw("ROLLBACK TO SAVEPOINT og_batch").await?;
                            conn.raw("RELEASE SAVEPOINT og_batch").await?;
                            clock = before;
                            results.push(Err(e));
                        }
                    }
                }
                if needs_clock {
                    save_clock(&mut conn, clock).await?;
                }
                Ok(results)
            }
            .await;
        match result {
            Ok(results) => {
                tx.commit().await.map_err(commit_failure)?;
                Ok(results)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

/// A failed COMMIT: the database refusing it (deadlock, serialization, busy)
/// means nothing was written and a retry is safe; a lost connection leaves the
/// outcome unknown, so that is reported rather than retried.
fn commit_failure(e: sqlx::Error) -> Failure {
    match &e {
        sqlx::Error::Database(_) => Failure::from(e),
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
            Failure::Fatal(StoreError::Unavailable(format!(
                "commit outcome unknown: {e}"
            )))
        }
        _ => Failure::Fatal(to_store_error(&e)),
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn commit(&self, batch: ChangeSet) -> Result<CommitReceipt, StoreError> {
        let prepared = prepare(&batch)?;
        let mut backoff = self.config.backoff(self.config.retry_attempts.max(1));
        loop {
            match self.commit_once(&prepared).await {
                Ok(receipt) => return Ok(receipt),
                Err(Failure::Fatal(e)) => return Err(self.clean(e)),
                Err(Failure::Transient(e)) => self.pause(&mut backoff, &e).await?,
            }
        }
    }

    async fn commit_group(
        &self,
        batches: Vec<ChangeSet>,
    ) -> Vec<Result<CommitReceipt, StoreError>> {
        let prepared: Vec<Result<Prepared<'_>, StoreError>> = batches.iter().map(prepare).collect();
        let ready: Vec<&Prepared<'_>> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let mut outcomes: Vec<Result<CommitReceipt, StoreError>> = Vec::new();
        if !ready.is_empty() {
            let mut backoff = self.config.backoff(self.config.retry_attempts.max(1));
            outcomes = loop {
                match self.group_once(&ready).await {
                    Ok(results) => {
                        break results
                            .into_iter()
                            .map(|r| r.map_err(|e| self.clean(e)))
                            .collect();
                    }
                    Err(Failure::Fatal(e)) => break vec![Err(self.clean(e)); ready.len()],
                    Err(Failure::Transient(e)) => {
                        if let Err(e) = self.pause(&mut backoff, &e).await {
                            break vec![Err(e); ready.len()];
                        }
                    }
                }
            };
        }
        let mut outcomes = outcomes.into_iter();
        prepared
            .into_iter()
            .map(|p| match p {
                Ok(_) => outcomes.next().unwrap_or_else(|| {
                    Err(StoreError::Unexpected("missing group result".to_owned()))
                }),
                Err(e) => Err(e),
            })
            .collect()
    }

    async fn health(&self) -> Result<(), StoreError> {
        // One attempt, no retries: a readiness probe wants the answer now.
        let probe = async {
            let mut conn = self.pools.read().await?;
            conn.conn().fetch("SELECT 1", Vec::new(), &[]).await
        };
        let limit = self
            .config
            .acquire_timeout
            .min(std::time::Duration::from_secs(5));
        match tokio::time::timeout(limit, probe).await {
            Ok(Ok(rows)) if rows.len() == 1 => Ok(()),
            Ok(Ok(_)) => Err(StoreError::Unavailable(
                "health check returned no row".to_owned(),
            )),
            Ok(Err(e)) => Err(StoreError::Unavailable(self.scrubber.scrub(&e.to_string()))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {limit:?}"
            ))),
        }
    }
}
