//! Leases over SQL (`leases`: name, holder, epoch, expiry in milliseconds on
//! the database's clock). Taking a lease is one short write transaction: make
//! sure the row exists, lock it, then renew, take over or leave it, so two
//! instances racing for one lease are serialized by the row lock and exactly
//! one wins. A failed attempt is not retried here: callers renew on a timer.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::ports::{Lease, LeaseStore, StoreError, check_lease_name};

use crate::conn::{Cell, Kind, Row, Val};
use crate::decode::{int, text, uint};
use crate::error::is_transient;
use crate::pool::{Pools, WriteTx};
use crate::store::SqlStore;
use crate::url::Dialect;

/// Milliseconds since the Unix epoch on the database's clock.
fn now_ms(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Dialect::MySql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    }
}

fn insert_absent(d: Dialect) -> &'static str {
    match d {
        Dialect::MySql => {
            "INSERT IGNORE INTO leases (name, holder, epoch, expires_ms) VALUES (?, '', 0, 0)"
        }
        Dialect::Postgres | Dialect::Sqlite => {
            "INSERT INTO leases (name, holder, epoch, expires_ms) VALUES (?, '', 0, 0) \
             ON CONFLICT (name) DO NOTHING"
        }
    }
}

const KINDS: [Kind; 5] = [Kind::Text, Kind::Text, Kind::Int, Kind::Int, Kind::Int];

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `name, holder, epoch, expires_ms, now_ms`.
fn lease(row: &Row) -> Result<Lease, StoreError> {
    let expires = int(row, 3)?;
    Ok(Lease {
        name: text(row, 0)?.to_owned(),
        holder: text(row, 1)?.to_owned(),
        epoch: uint(row, 2)?,
        expires_at: at(expires),
        live: expires > int(row, 4)?,
    })
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis())
        .unwrap_or(i64::MAX)
        .clamp(1, 10 * 365 * 86_400_000)
}

impl SqlStore {
    /// [`LeaseStore::acquire`] on `pools`.
    async fn acquire_on(
        &self,
        pools: &Pools,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        if let Some(e) =
            check_lease_name("name", name).or_else(|| check_lease_name("holder", holder))
        {
            return Err(e);
        }
        let d = self.dialect();
        let lock = if d == Dialect::Sqlite {
            ""
        } else {
            " FOR UPDATE"
        };
        let select = format!(
            "SELECT name, holder, epoch, expires_ms, {} FROM leases WHERE name = ?{lock}",
            now_ms(d)
        );
        let attempt = || async {
            let mut tx = pools.begin_write().await?;
            let key = || vec![Val::text(name)];
            let mut rows = tx.conn().fetch(&select, key(), &KINDS).await?;
            if rows.is_empty() {
                tx.conn().exec(insert_absent(d), key()).await?;
                rows = tx.conn().fetch(&select, key(), &KINDS).await?;
            }
            settle(tx, rows, name, holder, ttl).await
        };
        // Racing first takers can deadlock on MySQL's insert locks: the
        // loser is rolled back and asks again.
        let mut tries = 0;
        let rows = loop {
            match attempt().await {
                Ok(rows) => break rows,
                Err(e) if tries < 5 && is_transient(&e) => {
                    tries += 1;
                    let jitter = rand::random_range(5..25 * tries);
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(e) => return Err(self.scrubbed(&e)),
            }
        };
        rows.first()
            .ok_or_else(|| StoreError::Unexpected(format!("lease {name} vanished")))
            .and_then(lease)
    }
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.acquire_on(self.pools(), name, holder, ttl).await
    }

    async fn keep(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.acquire_on(self.keeper_pools(), name, holder, ttl)
            .await
    }

    async fn release(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE leases SET expires_ms = 0 WHERE name = ? AND holder = ? AND expires_ms > {}",
            now_ms(self.dialect())
        );
        let attempt = async {
            let mut tx = self.pools().begin_write().await?;
            let n = tx
                .conn()
                .exec(&sql, vec![Val::text(name), Val::text(holder)])
                .await?;
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(n)
        };
        Ok(attempt.await.map_err(|e| self.scrubbed(&e))? > 0)
    }

    async fn renew_all(
        &self,
        prefix: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        let d = self.dialect();
        let now = now_ms(d);
        // The prefix's length is a literal: an integer, never user text.
        let which = format!(
            "holder = ? AND expires_ms > {now} AND SUBSTR(name, 1, {}) = ?",
            prefix.chars().count()
        );
        // A renewal must not wait behind commits: a lease that lapses while
        // its renewal queues is lost, and its user with it. On PostgreSQL
        // commits hold their lease rows `FOR KEY SHARE`, which an update of
        // `expires_ms` alone (a `FOR NO KEY UPDATE` lock) does not wait for,
        // while a takeover's `FOR UPDATE` does. On MySQL share locks do block
        // it: rows are locked in name order, as `check_fences` locks them, so
        // a renewal and a commit fencing several users never deadlock.
        let sql = match d {
            Dialect::Postgres => format!(
                "UPDATE leases SET expires_ms = {now} + ? WHERE name IN \
                 (SELECT name FROM leases WHERE {which} ORDER BY name FOR NO KEY UPDATE)"
            ),
            Dialect::MySql => {
                format!("UPDATE leases SET expires_ms = {now} + ? WHERE {which} ORDER BY name")
            }
            Dialect::Sqlite => format!("UPDATE leases SET expires_ms = {now} + ? WHERE {which}"),
        };
        let args = vec![Val::Int(ms(ttl)), Val::text(holder), Val::text(prefix)];
        self.exec_each_on(self.keeper_pools(), &[(sql, args)]).await
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>, StoreError> {
        // Filtered here, not with LIKE: names hold `_` and `%` of user ids.
        let sql = format!(
            "SELECT name, holder, epoch, expires_ms, {} FROM leases ORDER BY name",
            now_ms(self.dialect())
        );
        let rows = self.fetch(&sql, Vec::new(), &KINDS).await?;
        rows.iter()
            .filter(|r| matches!(r.first(), Some(Cell::Text(n)) if n.starts_with(prefix)))
            .map(lease)
            .collect()
    }
}

/// Decides on the locked lease row `rows` (see [`LeaseStore::acquire`]),
/// writes the decision and commits; returns the row as it stands.
async fn settle(
    mut tx: WriteTx,
    rows: Vec<Row>,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Vec<Row>, sqlx::Error> {
    let Some(row) = rows.into_iter().next() else {
        tx.rollback().await?;
        return Ok(Vec::new());
    };
    let (
        Some(Cell::Text(current)),
        Some(Cell::Int(epoch)),
        Some(Cell::Int(expires)),
        Some(Cell::Int(now)),
    ) = (row.get(1), row.get(2), row.get(3), row.get(4))
    else {
        tx.rollback().await?;
        return Ok(vec![row]);
    };
    let (current, epoch, expires, now) = (current.clone(), *epoch, *expires, *now);
    let until = now.saturating_add(ms(ttl));
    let (holder, epoch) = if current == holder && expires > now {
        (holder.to_owned(), epoch)
    } else if expires <= now {
        (holder.to_owned(), epoch.saturating_add(1))
    } else {
        // Held by another, still live: leave it.
        tx.rollback().await?;
        return Ok(vec![row]);
    };
    tx.conn()
        .exec(
            "UPDATE leases SET holder = ?, epoch = ?, expires_ms = ? WHERE name = ?",
            vec![
                Val::text(&holder),
                Val::Int(epoch),
                Val::Int(until),
                Val::text(name),
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(vec![vec![
        Cell::Text(name.to_owned()),
        Cell::Text(holder),
        Cell::Int(epoch),
        Cell::Int(until),
        Cell::Int(now),
    ]])
}
