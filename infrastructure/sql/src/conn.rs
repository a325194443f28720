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
use sqlx::{AssertSqlSafe, MySql, Postgres, Row as _, Sqlite};
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

/// `?, ?, …` for `n` values.
pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

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

/// Bytes per `CopyData` message.
const COPY_CHUNK: usize = 1 << 20;

/// One value in `COPY` text format: `\N` for NULL, and backslash, tab,
/// newline and carriage return escaped. Timestamps are written to the
/// microsecond, truncated, as a bound value is stored.
fn copy_value(buf: &mut Vec<u8>, v: &Val) {
    use std::io::Write as _;
    fn text(buf: &mut Vec<u8>, s: &str) {
        let bytes = s.as_bytes();
        let special = |b: &u8| matches!(b, b'\\' | b'\t' | b'\n' | b'\r');
        // Most values have nothing to escape: copy them whole.
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(special) {
            buf.extend_from_slice(&rest[..i]);
            buf.extend_from_slice(match rest[i] {
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                _ => b"\\r",
            });
            rest = &rest[i + 1..];
        }
        buf.extend_from_slice(rest);
    }
    fn null(buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"\\N");
    }
    fn ts(buf: &mut Vec<u8>, t: &DateTime<Utc>) {
        let _ = write!(buf, "{}", t.format("%Y-%m-%d %H:%M:%S%.6f+00"));
    }
    // Writing into a Vec cannot fail.
    match v {
        Val::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        Val::Bool(b) => buf.push(if *b { b't' } else { b'f' }),
        Val::Text(s) => text(buf, s),
        Val::OptText(s) => match s {
            Some(s) => text(buf, s),
            None => null(buf),
        },
        Val::Dec(d) => {
            let _ = write!(buf, "{d}");
        }
        Val::OptDec(d) => match d {
            Some(d) => {
                let _ = write!(buf, "{d}");
            }
            None => null(buf),
        },
        Val::Ts(t) => ts(buf, t),
        Val::OptTs(t) => match t {
            Some(t) => ts(buf, t),
            None => null(buf),
        },
        Val::Uuid(u) => {
            let _ = write!(buf, "{}", u.hyphenated());
        }
        Val::OptUuid(u) => match u {
            Some(u) => {
                let _ = write!(buf, "{}", u.hyphenated());
            }
            None => null(buf),
        },
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
    q: Query<'q, Sqlite, SqliteArguments>,
    v: Val,
) -> Query<'q, Sqlite, SqliteArguments> {
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
                let q = args
                    .into_iter()
                    .fold(sqlx::query(AssertSqlSafe(sql)), bind_lite);
                Ok(q.execute(&mut **c).await?.rows_affected())
            }
            Self::Postgres(c) => {
                let sql = numbered(sql);
                let q = args
                    .into_iter()
                    .fold(sqlx::query(AssertSqlSafe(&*sql)), bind_pg);
                Ok(q.execute(&mut **c).await?.rows_affected())
            }
            Self::MySql(c) => {
                let q = args
                    .into_iter()
                    .fold(sqlx::query(AssertSqlSafe(sql)), bind_my);
                Ok(q.execute(&mut **c).await?.rows_affected())
            }
        }
    }

    /// Inserts `rows` into `table` with PostgreSQL's `COPY … FROM STDIN` (text
    /// format): one round trip and no statement to parse or plan, several
    /// times faster than multi-row `INSERT`s for thousands of rows. `None` on
    /// the other dialects (the caller inserts instead). A refused row (a
    /// unique key, a bad value) fails the whole copy, as an insert would.
    pub(crate) async fn copy_in(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Val>],
    ) -> Option<Result<u64, sqlx::Error>> {
        let Self::Postgres(c) = self else {
            return None;
        };
        let mut buf = Vec::with_capacity(rows.len() * 128);
        for row in rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                copy_value(&mut buf, v);
            }
            buf.push(b'\n');
        }
        let sql = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
        let copied = async {
            let mut copy = c.copy_in_raw(&sql).await?;
            let mut sent = Ok(());
            for chunk in buf.chunks(COPY_CHUNK) {
                sent = copy.send(chunk).await.map(|_| ());
                if sent.is_err() {
                    break;
                }
            }
            if let Err(e) = sent {
                // Ends the copy so the connection stays usable; the send's
                // error is the one to report.
                let _ = copy.abort("send failed").await;
                return Err(e);
            }
            copy.finish().await
        };
        Some(copied.await)
    }

    /// Runs a query and reads each row as `kinds`.
    pub(crate) async fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Row>, sqlx::Error> {
        self.fetch_with(sql, args, kinds, true).await
    }

    /// Runs a query of `(BIGINT, TEXT)` rows and hands each pair to `f` as
    /// the driver holds it — the text is not copied first (the event log's
    /// pages: hundreds of bytes of JSON a row, decoded once). A row `f`
    /// refuses stops the read with its reason.
    pub(crate) async fn fetch_int_text<T>(
        &mut self,
        sql: &str,
        args: Vec<Val>,
        f: impl Fn(i64, &str) -> Result<T, String>,
    ) -> Result<Result<Vec<T>, String>, sqlx::Error> {
        match self {
            Self::Sqlite(c) => {
                let q = args
                    .into_iter()
                    .fold(sqlx::query(AssertSqlSafe(sql)), bind_lite);
                let rows = q.fetch_all(&mut **c).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    match f(r.try_get(0)?, r.try_get::<&str, _>(1)?) {
                        Ok(v) => out.push(v),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Ok(Ok(out))
            }
            Self::Postgres(c) => {
                let sql = numbered(sql);
                let q = args
                    .into_iter()
                    .fold(sqlx::query(AssertSqlSafe(&*sql)), bind_pg);
                let rows = q.fetch_all(&mut **c).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    match f(r.try_get(0)?, r.try_get::<&str, _>(1)?) {
                        Ok(v) => out.push(v),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Ok(Ok(out))
            }
            Self::MySql(c) => {
                let q = args
                    .into_iter()
                    .fold(sqlx::query(AssertSqlSafe(sql)), bind_my);
                let rows = q.fetch_all(&mut **c).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    // Binary-collated text arrives as bytes (see `text_my`).
                    let text = std::str::from_utf8(r.try_get::<&[u8], _>(1)?)
                        .map_err(|_| decode_err(1, "UTF-8 text"))?;
                    match f(r.try_get(0)?, text) {
                        Ok(v) => out.push(v),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Ok(Ok(out))
            }
        }
    }

    /// [`Conn::fetch`]; `persistent: false` plans the statement for these
    /// values on every run instead of preparing it once. PostgreSQL keeps a
    /// prepared statement's generic plan, made from the statistics of its
    /// sixth run — a plan made while a table was empty (a fresh database, no
    /// `ANALYZE` yet) scans the whole table forever after. Bulk lookups,
    /// whose statement text changes with their key count anyway, take the
    /// per-run plan.
    pub(crate) async fn fetch_with(
        &mut self,
        sql: &str,
        args: Vec<Val>,
        kinds: &[Kind],
        persistent: bool,
    ) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            Self::Sqlite(c) => {
                let q = args.into_iter().fold(
                    sqlx::query(AssertSqlSafe(sql)).persistent(persistent),
                    bind_lite,
                );
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
                let q = args.into_iter().fold(
                    sqlx::query(AssertSqlSafe(&*sql)).persistent(persistent),
                    bind_pg,
                );
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
                let q = args.into_iter().fold(
                    sqlx::query(AssertSqlSafe(sql)).persistent(persistent),
                    bind_my,
                );
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
            Self::Sqlite(c) => c
                .execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                .await?
                .rows_affected(),
            Self::Postgres(c) => c
                .execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                .await?
                .rows_affected(),
            Self::MySql(c) => c
                .execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                .await?
                .rows_affected(),
        };
        Ok(affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let copied = |v: Val| {
            let mut buf = Vec::new();
            copy_value(&mut buf, &v);
            String::from_utf8(buf).unwrap_or_default()
        };
        assert_eq!(copied(Val::text("a\tb\nc\rd\\e")), "a\\tb\\nc\\rd\\\\e");
        assert_eq!(copied(Val::text("\\N")), "\\\\N");
        assert_eq!(copied(Val::text("plain")), "plain");
        assert_eq!(copied(Val::OptText(None)), "\\N");
        assert_eq!(copied(Val::OptDec(None)), "\\N");
        assert_eq!(copied(Val::OptTs(None)), "\\N");
        assert_eq!(copied(Val::OptUuid(None)), "\\N");
        assert_eq!(copied(Val::Bool(true)), "t");
        assert_eq!(copied(Val::Int(-42)), "-42");
        assert_eq!(copied(Val::Dec(Decimal::new(-123_456, 4))), "-12.3456");
        // Microseconds, truncated as a bound timestamp is.
        let t = Utc
            .timestamp_opt(1_700_000_000, 123_456_789)
            .single()
            .unwrap_or_default();
        assert_eq!(copied(Val::Ts(t)), "2023-11-14 22:13:20.123456+00");
        let u = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(copied(Val::Uuid(u)), "01234567-89ab-cdef-0123-456789abcdef");
    }

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
