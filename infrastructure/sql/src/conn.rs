//! One statement runner over the three drivers: dialect-neutral values to bind,
//! typed cells read back, and a connection handle that picks the driver.
//!
//! Statements are written once with `?` placeholders (PostgreSQL gets `$n`).
//! Each value is bound with the type its dialect stores exactly: decimals are
//! `NUMERIC`/`DECIMAL` on PostgreSQL and MySQL and canonical text on SQLite;
//! timestamps are native on PostgreSQL/MySQL and fixed-width UTC text on SQLite.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlRow};
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{MySql, Postgres, Row as _, Sqlite};
use uuid::Uuid;

use crate::url::Dialect;

/// A value to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Int(i64),
    Bool(bool),
    Text(String),
    OptText(Option<String>),
    Dec(Decimal),
    OptDec(Option<Decimal>),
    Ts(DateTime<Utc>),
    OptTs(Option<DateTime<Utc>>),
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
}

impl Val {
    /// A text value from anything displayable.
    pub(crate) fn text(s: impl ToString) -> Self {
        Self::Text(s.to_string())
    }

    /// A version number (stored as BIGINT; versions never reach 2^63).
    pub(crate) fn version(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// What a selected column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Dec,
    Ts,
    Uuid,
}

/// One value read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Dec(Decimal),
    Ts(DateTime<Utc>),
    Uuid(Uuid),
}

/// A row read back, one cell per requested kind.
pub(crate) type Row = Vec<Cell>;

/// SQLite's timestamp text: RFC 3339 in UTC with exactly nine fractional
/// digits, so text order is time order and nanoseconds survive.
pub(crate) fn sqlite_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Rewrites `?` placeholders as `$1, $2, …` for PostgreSQL. Statements carry no
/// string literals containing `?`, so a plain scan is exact.
pub(crate) fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn bind_pg<'q>(q: Query<'q, Postgres, PgArguments>, v: Val) -> Query<'q, Postgres, PgArguments> {
    match v {
        Val::Int(i) => q.bind(i),
        Val::Bool(b) => q.bind(b),
        Val::Text(s) => q.bind(s),
        Val::OptText(s) => q.bind(s),
        Val::Dec(d) => q.bind(d),
        Val::OptDec(d) => q.bind(d),
        Val::Ts(t) => q.bind(t),
        Val::OptTs(t) => q.bind(t),
        Val::Uuid(u) => q.bind(u),
        Val::OptUuid(u) => q.bind(u),
    }
}

fn bind_my<'q>(q: Query<'q, MySql, MySqlArguments>, v: Val) -> Query<'q, MySql, MySqlArguments> {
    match v {
        Val::Int(i) => q.bind(i),
        Val::Bool(b) => q.bind(b),
        Val::Text(s) => q.bind(s),
        Val::OptText(s) => q.bind(s),
        Val::Dec(d) => q.bind(d),
        Val::OptDec(d) => q.bind(d),
        Val::Ts(t) => q.bind(t),
        Val::OptTs(t) => q.bind(t),
        // CHAR(36): the hyphenated lowercase form sorts like the UUID's bytes.
        Val::Uuid(u) => q.bind(u.to_string()),
        Val::OptUuid(u) => q.bind(u.map(|u| u.to_string())),
    }
}

fn bind_lite<'q>(
    q: Query<'q, Sqlite, SqliteArguments<'q>>,
    v: Val,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    match v {
        Val::Int(i) => q.bind(i),
        Val::Bool(b) => q.bind(b),
        Val::Text(s) => q.bind(s),
        Val::OptText(s) => q.bind(s),
        Val::Dec(d) => q.bind(d.to_string()),
        Val::OptDec(d) => q.bind(d.map(|d| d.to_string())),
        Val::Ts(t) => q.bind(sqlite_ts(t)),
        Val::OptTs(t) => q.bind(t.map(sqlite_ts)),
        Val::Uuid(u) => q.bind(u.to_string()),
        Val::OptUuid(u) => q.bind(u.map(|u| u.to_string())),
    }
}

fn decode_err(index: usize, what: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: format!("cannot decode {what}").into(),
    }
}

fn cell_pg(r: &PgRow, i: usize, k: Kind) -> Result<Cell, sqlx::Error> {
    Ok(match k {
        Kind::Int => r
            .try_get::<Option<i64>, _>(i)?
            .map_or(Cell::Null, Cell::Int),
        Kind::Text => r
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        // NUMERIC(38,18) pads to 18 places; the value is the same without them.
        Kind::Dec => r
            .try_get::<Option<Decimal>, _>(i)?
            .map_or(Cell::Null, |d| Cell::Dec(d.normalize())),
        Kind::Ts => r
            .try_get::<Option<DateTime<Utc>>, _>(i)?
            .map_or(Cell::Null, Cell::Ts),
        Kind::Uuid => r
            .try_get::<Option<Uuid>, _>(i)?
            .map_or(Cell::Null, Cell::Uuid),
    })
}

/// MySQL text in a binary collation (`utf8mb4_bin`) is reported as BLOB, so
/// text is read as bytes and checked to be UTF-8.
fn text_my(r: &MySqlRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    r.try_get::<Option<Vec<u8>>, _>(i)?
        .map(|b| String::from_utf8(b).map_err(|_| decode_err(i, "UTF-8 text")))
        .transpose()
}

fn cell_my(r: &MySqlRow, i: usize, k: Kind) -> Result<Cell, sqlx::Error> {
    Ok(match k {
        Kind::Int => r
            .try_get::<Option<i64>, _>(i)?
            .map_or(Cell::Null, Cell::Int),
        Kind::Text => text_my(r, i)?.map_or(Cell::Null, Cell::Text),
        // DECIMAL(38,18) pads to 18 places; the value is the same without them.
        Kind::Dec => r
            .try_get::<Option<Decimal>, _>(i)?
            .map_or(Cell::Null, |d| Cell::Dec(d.normalize())),
        Kind::Ts => r
            .try_get::<Option<DateTime<Utc>>, _>(i)?
            .map_or(Cell::Null, Cell::Ts),
        Kind::Uuid => match text_my(r, i)? {
            None => Cell::Null,
            Some(s) => Cell::Uuid(Uuid::parse_str(&s).map_err(|_| decode_err(i, "a uuid"))?),
        },
    })
}

fn cell_lite(r: &SqliteRow, i: usize, k: Kind) -> Result<Cell, sqlx::Error> {
    Ok(match k {
        Kind::Int => r
            .try_get::<Option<i64>, _>(i)?
            .map_or(Cell::Null, Cell::Int),
        Kind::Text => r
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Dec => match r.try_get::<Option<String>, _>(i)? {
            None => Cell::Null,
            Some(s) => {
                Cell::Dec(Decimal::from_str_exact(&s).map_err(|_| decode_err(i, "a decimal"))?)
            }
        },
        Kind::Ts => match r.try_get::<Option<String>, _>(i)? {
            None => Cell::Null,
            Some(s) => Cell::Ts(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|_| decode_err(i, "a timestamp"))?
                    .with_timezone(&Utc),
            ),
        },
        Kind::Uuid => match r.try_get::<Option<String>, _>(i)? {
            None => Cell::Null,
            Some(s) => Cell::Uuid(Uuid::parse_str(&s).map_err(|_| decode_err(i, "a uuid"))?),
        },
    })
}

/// A connection of one of the three drivers.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
    MySql(&'a mut MySqlConnection),
}

impl Conn<'_> {
    /// The connection's dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
            Self::MySql(_) => Dialect::MySql,
        }
    }

    /// Runs a statement; returns the rows it affected.
    pub(crate) async fn exec(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, sqlx::Error> {
        match self {
            Self::Sqlite(c) => {
                let q = args.into_iter().fold(sqlx::query(sql), bind_lite);
                Ok(q.execute(&mut **c).await?.rows_affected())
            }
            Self::Postgres(c) => {
                let sql = numbered(sql);
                let q = args.into_iter().fold(sqlx::query(&sql), bind_pg);
                Ok(q.execute(&mut **c).await?.rows_affected())
            }
            Self::MySql(c) => {
                let q = args.into_iter().fold(sqlx::query(sql), bind_my);
                Ok(q.execute(&mut **c).await?.rows_affected())
            }
        }
    }

    /// Runs a query and reads each row as `kinds`.
    pub(crate) async fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            Self::Sqlite(c) => {
                let q = args.into_iter().fold(sqlx::query(sql), bind_lite);
                let rows = q.fetch_all(&mut **c).await?;
                rows.iter()
                    .map(|r| {
                        kinds
                            .iter()
                            .enumerate()
                            .map(|(i, k)| cell_lite(r, i, *k))
                            .collect()
                    })
                    .collect()
            }
            Self::Postgres(c) => {
                let sql = numbered(sql);
                let q = args.into_iter().fold(sqlx::query(&sql), bind_pg);
                let rows = q.fetch_all(&mut **c).await?;
                rows.iter()
                    .map(|r| {
                        kinds
                            .iter()
                            .enumerate()
                            .map(|(i, k)| cell_pg(r, i, *k))
                            .collect()
                    })
                    .collect()
            }
            Self::MySql(c) => {
                let q = args.into_iter().fold(sqlx::query(sql), bind_my);
                let rows = q.fetch_all(&mut **c).await?;
                rows.iter()
                    .map(|r| {
                        kinds
                            .iter()
                            .enumerate()
                            .map(|(i, k)| cell_my(r, i, *k))
                            .collect()
                    })
                    .collect()
            }
        }
    }

    /// Runs a statement with no parameters over the simple protocol (DDL,
    /// `SAVEPOINT`, operator SQL).
    pub(crate) async fn raw(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        use sqlx::Executor as _;
        let affected = match self {
            Self::Sqlite(c) => c.execute(sqlx::raw_sql(sql)).await?.rows_affected(),
            Self::Postgres(c) => c.execute(sqlx::raw_sql(sql)).await?.rows_affected(),
            Self::MySql(c) => c.execute(sqlx::raw_sql(sql)).await?.rows_affected(),
        };
        Ok(affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
        assert_eq!(
            numbered("UPDATE t SET a = ?, b = ? WHERE id = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE id = $3"
        );
    }

    #[test]
    fn sqlite_timestamps_are_fixed_width_and_sortable() {
        let a = Utc
            .timestamp_opt(1_700_000_000, 5)
            .single()
            .unwrap_or_default();
        let b = Utc
            .timestamp_opt(1_700_000_000, 500_000_000)
            .single()
            .unwrap_or_default();
        let c = Utc
            .timestamp_opt(1_700_000_001, 0)
            .single()
            .unwrap_or_default();
        let (sa, sb, sc) = (sqlite_ts(a), sqlite_ts(b), sqlite_ts(c));
        assert_eq!(sa.len(), sc.len());
        assert!(sa < sb && sb < sc);
        assert_eq!(sa, "2023-11-14T22:13:20.000000005Z");
        let back = DateTime::parse_from_rfc3339(&sa).map(|t| t.with_timezone(&Utc));
        assert_eq!(back, Ok(a));
    }
}
