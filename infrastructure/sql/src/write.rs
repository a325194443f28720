//! Writing batches inside a transaction.
//!
//! *Precise* writing runs one statement per state row, checks each expected
//! version (`UPDATE … WHERE version = ?`, or an insert for version 0) and turns
//! every refusal into the exact typed error. *Bulk* writing (the group-commit
//! fast path) buffers the inserts of many batches into multi-row statements; any
//! refusal there makes the caller roll the attempt back to a savepoint and write
//! precisely, batch by batch.
//!
//! Events and outbox rows get their positions and ids from the `log_clock` row,
//! locked by every transaction that appends to the log and held until it
//! commits, so positions and ids are handed out — and become visible — in
//! commit order. Writers take it as late as they can: after their state rows,
//! just before the log rows, so that concurrent transactions overlap in their
//! state writes and serialize only for the log and the commit.

use std::collections::{BTreeMap, HashSet};

use ordermon_domain::ports::{ChangeSet, CommitReceipt, StoreError};

use crate::conn::{Cell, Conn, Kind, Val, marks};
use crate::error::{Failure, is_unique_violation};
use crate::rows::{
    Children, EVENT_COLUMNS, Mode, OUTBOX_COLUMNS, RowWrite, event_row, outbox_row, row_write,
};
use crate::url::Dialect;

/// Most bind parameters one statement carries (SQLite allows 32766).
const MAX_PARAMS: usize = 30_000;

/// Most rows one multi-row insert carries.
const MAX_ROWS: usize = 1_000;

/// Rows from which an insert goes through `COPY` where the dialect has it
/// (PostgreSQL).
const COPY_ROWS: usize = 100;

/// A batch checked and mapped to rows, ready to write.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub(crate) batch: &'a ChangeSet,
    rows: Vec<RowWrite>,
}

impl Prepared<'_> {
    /// True when the batch appends events or outbox rows.
    pub(crate) fn needs_clock(&self) -> bool {
        !self.batch.events.is_empty() || !self.batch.outbox.is_empty()
    }
}

/// Maps a batch to rows and checks what needs no database: each value's version
/// is `expected + 1`, and no event id or aggregate sequence repeats in the batch.
pub(crate) fn prepare(batch: &ChangeSet) -> Result<Prepared<'_>, StoreError> {
    let mut rows = batch
        .changes
        .iter()
        .map(row_write)
        .collect::<Result<Vec<_>, _>>()?;
    skip_new_reservation_deletes(&mut rows);
    let mut ids = HashSet::new();
    let mut seqs = HashSet::new();
    for e in &batch.events {
        if !ids.insert(e.event_id) {
            return Err(StoreError::Duplicate {
                entity: "event",
                id: e.event_id.to_string(),
            });
        }
        if !seqs.insert((e.aggregate_type, e.aggregate_id.as_str(), e.sequence)) {
            return Err(StoreError::Duplicate {
                entity: "event",
                id: format!(
                    "{}/{}#{}",
                    e.aggregate_type.as_str(),
                    e.aggregate_id,
                    e.sequence
                ),
            });
        }
    }
    Ok(Prepared { batch, rows })
}

/// An order this batch creates can have no reservation row yet: the keyed
/// delete before its reservation's insert is dropped (for a submit, the
/// whole statement).
fn skip_new_reservation_deletes(rows: &mut [RowWrite]) {
    let created: HashSet<uuid::Uuid> = rows
        .iter()
        .filter(|r| r.table == "orders" && r.mode == Mode::Versioned { expected: 0 })
        .filter_map(|r| match r.key.first() {
            Some((_, Val::Uuid(id))) => Some(*id),
            _ => None,
        })
        .collect();
    if created.is_empty() {
        return;
    }
    for ch in rows.iter_mut().flat_map(|r| r.children.iter_mut()) {
        if ch.table == "account_reservations" && ch.replaces.0 == "order_id" {
            ch.replaces
                .1
                .retain(|k| !matches!(k, Val::Uuid(id) if created.contains(id)));
        }
    }
}

/// The last event position and outbox id handed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Clock {
    event: i64,
    outbox: i64,
}

/// Locks the log clock for the rest of the transaction and reads it.
pub(crate) async fn lock_clock(c: &mut Conn<'_>) -> Result<Clock, Failure> {
    let sql = match c.dialect() {
        // SQLite's writer already holds the database write lock.
        Dialect::Sqlite => "SELECT event_pos, outbox_id FROM log_clock WHERE id = 1",
        Dialect::Postgres | Dialect::MySql => {
            "SELECT event_pos, outbox_id FROM log_clock WHERE id = 1 FOR UPDATE"
        }
    };
    let rows = c.fetch(sql, Vec::new(), &[Kind::Int, Kind::Int]).await?;
    match rows.first().map(Vec::as_slice) {
        Some([Cell::Int(event), Cell::Int(outbox)]) => Ok(Clock {
            event: *event,
            outbox: *outbox,
        }),
        _ => Err(StoreError::Corrupt("log_clock row is missing".to_owned()).into()),
    }
}

/// Stores the clock's new values (under the lock taken by [`lock_clock`]).
pub(crate) async fn save_clock(c: &mut Conn<'_>, clock: Clock) -> Result<(), Failure> {
    c.exec(
        "UPDATE log_clock SET event_pos = ?, outbox_id = ? WHERE id = 1",
        vec![Val::Int(clock.event), Val::Int(clock.outbox)],
    )
    .await?;
    Ok(())
}

/// Locks the log clock and advances it past one batch's events and outbox rows
/// in one step; returns the clock as it was, for the batch to count from. On
/// PostgreSQL and SQLite this is a single `UPDATE … RETURNING`.
pub(crate) async fn reserve_clock(c: &mut Conn<'_>, p: &Prepared<'_>) -> Result<Clock, Failure> {
    let events = i64::try_from(p.batch.events.len()).unwrap_or(i64::MAX);
    let outbox = i64::try_from(p.batch.outbox.len()).unwrap_or(i64::MAX);
    if c.dialect() == Dialect::MySql {
        // MariaDB has no UPDATE … RETURNING.
        let start = lock_clock(c).await?;
        let end = Clock {
            event: start.event + events,
            outbox: start.outbox + outbox,
        };
        save_clock(c, end).await?;
        return Ok(start);
    }
    let rows = c
        .fetch(
            "UPDATE log_clock SET event_pos = event_pos + ?, outbox_id = outbox_id + ? \
             WHERE id = 1 RETURNING event_pos, outbox_id",
            vec![Val::Int(events), Val::Int(outbox)],
            &[Kind::Int, Kind::Int],
        )
        .await?;
    match rows.first().map(Vec::as_slice) {
        Some([Cell::Int(event), Cell::Int(out)]) => Ok(Clock {
            event: event - events,
            outbox: out - outbox,
        }),
        _ => Err(StoreError::Corrupt("log_clock row is missing".to_owned()).into()),
    }
}

/// `INSERT INTO table (columns) VALUES (…), (…)`, chunked; with `ignore`, rows
/// hitting a unique key are skipped (PostgreSQL, SQLite) so the caller can
/// diagnose without aborting the transaction. Returns the rows inserted.
async fn insert_many(
    c: &mut Conn<'_>,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Val>>,
    ignore: bool,
) -> Result<u64, sqlx::Error> {
    if !ignore
        && rows.len() >= COPY_ROWS
        && let Some(copied) = c.copy_in(table, columns, &rows).await
    {
        return copied;
    }
    let per = (MAX_PARAMS / columns.len().max(1)).clamp(1, MAX_ROWS);
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(per).collect();
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        sql.push_str(&vec![one.as_str(); chunk.len()].join(", "));
        if ignore && c.dialect() != Dialect::MySql {
            sql.push_str(" ON CONFLICT DO NOTHING");
        }
        inserted += c.exec(&sql, chunk.into_iter().flatten().collect()).await?;
    }
    Ok(inserted)
}

/// ` AND `-joined `col = ?` conditions and their values.
fn key_filter(key: &[(&'static str, Val)]) -> (String, Vec<Val>) {
    let sql = key
        .iter()
        .map(|(c, _)| format!("{c} = ?"))
        .collect::<Vec<_>>()
        .join(" AND ");
    (sql, key.iter().map(|(_, v)| v.clone()).collect())
}

/// The stored version of a row, if it exists.
async fn stored_version(c: &mut Conn<'_>, r: &RowWrite) -> Result<Option<u64>, Failure> {
    let (filter, args) = key_filter(&r.key);
    let sql = format!("SELECT version FROM {} WHERE {filter}", r.table);
    let rows = c.fetch(&sql, args, &[Kind::Int]).await?;
    match rows.first().map(Vec::as_slice) {
        None => Ok(None),
        Some([Cell::Int(v)]) => Ok(Some(u64::try_from(*v).unwrap_or(0))),
        Some(_) => Err(StoreError::Corrupt(format!("{} {} has no version", r.entity, r.id)).into()),
    }
}

fn conflict(r: &RowWrite, expected: u64, actual: Option<u64>) -> Failure {
    Failure::Fatal(StoreError::Conflict {
        entity: r.entity,
        id: r.id.clone(),
        expected,
        actual,
    })
}

fn duplicate(r: &RowWrite) -> Failure {
    let (entity, id) = r.dup.clone().unwrap_or((r.entity, r.id.clone()));
    Failure::Fatal(StoreError::Duplicate { entity, id })
}

/// The column names and values of a row, key first.
fn insert_parts(r: &RowWrite) -> (Vec<&'static str>, Vec<Val>) {
    r.key
        .iter()
        .chain(&r.cols)
        .map(|(c, v)| (*c, v.clone()))
        .unzip()
}

async fn replace_children(c: &mut Conn<'_>, ch: &Children, existed: bool) -> Result<(), Failure> {
    if existed {
        delete_keys(c, ch.table, ch.replaces.0, &ch.replaces.1).await?;
    }
    if !ch.rows.is_empty() {
        insert_many(c, ch.table, ch.columns, ch.rows.clone(), false).await?;
    }
    Ok(())
}

/// `DELETE … WHERE column IN (keys)`, in statements of bounded size.
async fn delete_keys(
    c: &mut Conn<'_>,
    table: &str,
    column: &str,
    keys: &[Val],
) -> Result<(), Failure> {
    for chunk in keys.chunks(MAX_UPDATE_ROWS) {
        let sql = format!(
            "DELETE FROM {table} WHERE {column} IN ({})",
            marks(chunk.len())
        );
        c.exec(&sql, chunk.to_vec()).await?;
    }
    Ok(())
}

/// `UPDATE … WHERE key AND version = expected` for a versioned row (not its
/// children), with the typed error on refusal.
async fn update_row(c: &mut Conn<'_>, r: &RowWrite) -> Result<(), Failure> {
    let Mode::Versioned { expected } = r.mode else {
        return Err(
            StoreError::Unexpected(format!("{} {} is not an update", r.entity, r.id)).into(),
        );
    };
    let set = r
        .cols
        .iter()
        .map(|(c, _)| format!("{c} = ?"))
        .collect::<Vec<_>>()
        .join(", ");
    let (filter, key_args) = key_filter(&r.key);
    let sql = format!(
        "UPDATE {} SET {set} WHERE {filter} AND version = ?",
        r.table
    );
    let mut args: Vec<Val> = r.cols.iter().map(|(_, v)| v.clone()).collect();
    args.extend(key_args);
    args.push(Val::version(expected));
    match c.exec(&sql, args).await {
        Ok(1) => Ok(()),
        Ok(_) => Err(conflict(r, expected, stored_version(c, r).await?)),
        Err(e) if is_unique_violation(&e) => Err(duplicate(r)),
        Err(e) => Err(e.into()),
    }
}

/// Rows one multi-row update carries (SQLite allows 500 terms in a compound
/// `SELECT`).
const MAX_UPDATE_ROWS: usize = 400;

/// Versioned updates of many rows of one table with the same columns, as one
/// `UPDATE … FROM (SELECT … UNION ALL …)` per chunk (`UPDATE … JOIN` on MySQL),
/// each row matched on its key *and* its expected version. Fewer rows updated
/// than given means a stale version somewhere: the attempt fails (the caller
/// then writes precisely, which names the row).
async fn update_many(c: &mut Conn<'_>, rows: &[&RowWrite]) -> Result<(), Failure> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    if rows.len() == 1 {
        return update_row(c, first).await;
    }
    let keys: Vec<&str> = first.key.iter().map(|(c, _)| *c).collect();
    let cols: Vec<&str> = first.cols.iter().map(|(c, _)| *c).collect();
    let width = keys.len() + cols.len() + 1;
    // PostgreSQL takes the rows as a `VALUES` list, which it plans in time
    // linear in the rows and cheaply; a compound `SELECT` of hundreds of arms
    // costs more to plan than to run. SQLite caps compound selects at 500
    // arms, and MariaDB names `VALUES` columns differently, so they keep it.
    let postgres = c.dialect() == Dialect::Postgres;
    let cap = if postgres { MAX_ROWS } else { MAX_UPDATE_ROWS };
    let per = (MAX_PARAMS / width).clamp(1, cap);
    for chunk in rows.chunks(per) {
        let names = keys
            .iter()
            .chain(&cols)
            .copied()
            .chain(std::iter::once("ordermon_expected"))
            .collect::<Vec<_>>()
            .join(", ");
        let derived = if postgres {
            let one = format!("({})", vec!["?"; width].join(", "));
            format!("VALUES {}", vec![one.as_str(); chunk.len()].join(", "))
        } else {
            let named = keys
                .iter()
                .chain(&cols)
                .map(|c| format!("? AS {c}"))
                .chain(std::iter::once("? AS ordermon_expected".to_owned()))
                .collect::<Vec<_>>()
                .join(", ");
            let plain = vec!["?"; width].join(", ");
            let mut derived = format!("SELECT {named}");
            for _ in 1..chunk.len() {
                derived.push_str(" UNION ALL SELECT ");
                derived.push_str(&plain);
            }
            derived
        };
        let on = keys
            .iter()
            .map(|k| format!("t.{k} = v.{k}"))
            .chain(std::iter::once(
                "t.version = v.ordermon_expected".to_owned(),
            ))
            .collect::<Vec<_>>()
            .join(" AND ");
        let table = first.table;
        let sql = match c.dialect() {
            Dialect::MySql => {
                let set = cols
                    .iter()
                    .map(|c| format!("t.{c} = v.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("UPDATE {table} AS t JOIN ({derived}) AS v ON {on} SET {set}")
            }
            Dialect::Postgres => {
                let set = cols
                    .iter()
                    .map(|c| format!("{c} = v.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("UPDATE {table} AS t SET {set} FROM ({derived}) AS v ({names}) WHERE {on}")
            }
            Dialect::Sqlite => {
                let set = cols
                    .iter()
                    .map(|c| format!("{c} = v.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("UPDATE {table} AS t SET {set} FROM ({derived}) AS v WHERE {on}")
            }
        };
        let mut args = Vec::with_capacity(width * chunk.len());
        for r in chunk {
            let Mode::Versioned { expected } = r.mode else {
                return Err(StoreError::Unexpected(format!(
                    "{} {} is not an update",
                    r.entity, r.id
                ))
                .into());
            };
            args.extend(r.key.iter().map(|(_, v)| v.clone()));
            args.extend(r.cols.iter().map(|(_, v)| v.clone()));
            args.push(Val::version(expected));
        }
        let n = match c.exec(&sql, args).await {
            Ok(n) => n,
            Err(e) if is_unique_violation(&e) => return Err(duplicate(first)),
            Err(e) => return Err(e.into()),
        };
        if n != chunk.len() as u64 {
            // Which row is stale is for the precise path to say.
            return Err(conflict(first, 0, None));
        }
    }
    Ok(())
}

/// Updates waiting to be written as multi-row statements, per table and
/// column list, in first-seen order.
#[derive(Default)]
struct Updates<'a> {
    groups: Vec<Vec<&'a RowWrite>>,
}

impl<'a> Updates<'a> {
    fn push(&mut self, r: &'a RowWrite) {
        let same = |g: &&mut Vec<&'a RowWrite>| {
            g.first().is_some_and(|f| {
                f.table == r.table
                    && f.cols.len() == r.cols.len()
                    && f.cols.iter().zip(&r.cols).all(|(a, b)| a.0 == b.0)
                    && f.key.iter().zip(&r.key).all(|(a, b)| a.0 == b.0)
            })
        };
        match self.groups.iter_mut().find(same) {
            Some(g) => g.push(r),
            None => self.groups.push(vec![r]),
        }
    }

    /// Writes them, with their children's old rows deleted; the new child
    /// rows go to `buffers`.
    async fn write(&mut self, c: &mut Conn<'_>, buffers: &mut Buffers) -> Result<(), Failure> {
        for group in std::mem::take(&mut self.groups) {
            update_many(c, &group).await?;
            // The old child rows the group's writes replace, gathered per
            // table and column: a few statements for the whole group. The
            // new ones are buffered.
            let children: Vec<&Children> = group.iter().flat_map(|r| &r.children).collect();
            let mut replaced: BTreeMap<(&str, &str), Vec<Val>> = BTreeMap::new();
            for ch in &children {
                replaced
                    .entry((ch.table, ch.replaces.0))
                    .or_default()
                    .extend(ch.replaces.1.iter().cloned());
            }
            for ((table, column), keys) in replaced {
                delete_keys(c, table, column, &keys).await?;
            }
            for ch in children {
                for row in &ch.rows {
                    buffers.push(ch.table, ch.columns.to_vec(), row.clone());
                }
                buffers.remember(ch.table, &[&ch.parent.1]);
            }
        }
        Ok(())
    }
}

/// Writes one state row precisely, with its typed error on refusal.
async fn write_row(c: &mut Conn<'_>, r: &RowWrite) -> Result<(), Failure> {
    match r.mode {
        Mode::Versioned { expected: 0 } | Mode::InsertOnly => {
            let (columns, values) = insert_parts(r);
            let inserted = match insert_many(c, r.table, &columns, vec![values], true).await {
                Ok(n) => n == 1,
                Err(e) if is_unique_violation(&e) => false,
                Err(e) => return Err(e.into()),
            };
            if !inserted {
                if r.mode != Mode::InsertOnly
                    && let Some(v) = stored_version(c, r).await?
                {
                    return Err(conflict(r, 0, Some(v)));
                }
                return Err(duplicate(r));
            }
            for ch in &r.children {
                replace_children(c, ch, false).await?;
            }
        }
        Mode::Versioned { .. } => {
            update_row(c, r).await?;
            for ch in &r.children {
                replace_children(c, ch, true).await?;
            }
        }
        Mode::Delete { expected } => {
            let (filter, mut args) = key_filter(&r.key);
            let sql = format!("DELETE FROM {} WHERE {filter} AND version = ?", r.table);
            args.push(Val::version(expected));
            if c.exec(&sql, args).await? != 1 {
                return Err(conflict(r, expected, stored_version(c, r).await?));
            }
        }
    }
    Ok(())
}

/// Rows to insert into one table.
type Rows = Vec<Vec<Val>>;

/// The event and outbox rows of a batch, with positions and ids from the clock.
fn log_rows(
    batch: &ChangeSet,
    clock: &mut Clock,
) -> Result<(CommitReceipt, Rows, Rows), StoreError> {
    let mut positions = Vec::with_capacity(batch.events.len());
    let mut events = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.iter().enumerate() {
        clock.event += 1;
        positions.push(clock.event);
        // `push_events` gives every event its outbox message at the same
        // index, carrying the event's JSON: reuse it rather than serialize again.
        let text = batch
            .outbox
            .get(i)
            .filter(|m| m.event_id == e.event_id)
            .map(|m| m.payload.as_str());
        events.push(event_row(clock.event, e, text)?);
    }
    let mut outbox = Vec::with_capacity(batch.outbox.len());
    for m in &batch.outbox {
        clock.outbox += 1;
        outbox.push(outbox_row(clock.outbox, m));
    }
    let receipt = CommitReceipt {
        event_positions: positions,
    };
    Ok((receipt, events, outbox))
}

/// Finds which event of a refused append already exists, and how.
async fn diagnose_events(c: &mut Conn<'_>, batch: &ChangeSet, positions: &[i64]) -> Failure {
    for (e, pos) in batch.events.iter().zip(positions) {
        let by_id = c
            .fetch(
                "SELECT position FROM events WHERE event_id = ?",
                vec![Val::Uuid(e.event_id.as_uuid())],
                &[Kind::Int],
            )
            .await;
        let by_seq = c
            .fetch(
                "SELECT position FROM events \
                 WHERE aggregate_type = ? AND aggregate_id = ? AND sequence = ?",
                vec![
                    Val::text(e.aggregate_type.as_str()),
                    Val::text(&e.aggregate_id),
                    Val::version(e.sequence),
                ],
                &[Kind::Int],
            )
            .await;
        let other = |rows: &[Vec<Cell>]| rows.iter().any(|r| r.first() != Some(&Cell::Int(*pos)));
        match (by_id, by_seq) {
            (Ok(rows), _) if other(&rows) => {
                return Failure::Fatal(StoreError::Duplicate {
                    entity: "event",
                    id: e.event_id.to_string(),
                });
            }
            (_, Ok(rows)) if other(&rows) => {
                return Failure::Fatal(StoreError::Duplicate {
                    entity: "event",
                    id: format!(
                        "{}/{}#{}",
                        e.aggregate_type.as_str(),
                        e.aggregate_id,
                        e.sequence
                    ),
                });
            }
            (Err(err), _) | (_, Err(err)) => return err.into(),
            _ => {}
        }
    }
    Failure::Fatal(StoreError::Duplicate {
        entity: "event",
        id: "unknown".to_owned(),
    })
}

/// Writes one batch precisely: state rows in order, then events, then outbox rows.
pub(crate) async fn write_precise(
    c: &mut Conn<'_>,
    p: &Prepared<'_>,
    clock: &mut Clock,
) -> Result<CommitReceipt, Failure> {
    write_state(c, p).await?;
    write_log(c, p, clock).await
}

/// A batch's state rows, one statement each, every version checked.
pub(crate) async fn write_state(c: &mut Conn<'_>, p: &Prepared<'_>) -> Result<(), Failure> {
    for r in &p.rows {
        write_row(c, r).await?;
    }
    Ok(())
}

/// A batch's events and outbox rows, positioned by `clock` (which the caller
/// holds locked).
pub(crate) async fn write_log(
    c: &mut Conn<'_>,
    p: &Prepared<'_>,
    clock: &mut Clock,
) -> Result<CommitReceipt, Failure> {
    let (receipt, events, outbox) = log_rows(p.batch, clock)?;
    let n = events.len() as u64;
    if n > 0 {
        match insert_many(c, "events", EVENT_COLUMNS, events, true).await {
            Ok(inserted) if inserted == n => {}
            Ok(_) => return Err(diagnose_events(c, p.batch, &receipt.event_positions).await),
            Err(e) if is_unique_violation(&e) => {
                return Err(diagnose_events(c, p.batch, &receipt.event_positions).await);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !outbox.is_empty() {
        insert_many(c, "outbox", OUTBOX_COLUMNS, outbox, false).await?;
    }
    Ok(receipt)
}

/// Insert buffers of the bulk writer, flushed in this table order (a parent
/// before its children). Every table a [`RowWrite`] names belongs here; one
/// missing would still be flushed on its own, after these.
const TABLE_ORDER: [&str; 13] = [
    "users",
    "instruments",
    "strategies",
    "accounts",
    "account_balances",
    "account_reservations",
    "positions",
    "orders",
    "fills",
    "alerts",
    "silences",
    "notifications",
    "alert_rule_overrides",
];

/// One table's pending inserts: its columns and rows.
type Buffer = (Vec<&'static str>, Rows);

#[derive(Default)]
struct Buffers {
    /// By flush rank and table name (the name keeps two tables of the same
    /// rank apart).
    tables: BTreeMap<(usize, &'static str), Buffer>,
    /// What the buffered rows are, for deciding whether an update must wait
    /// for them: `table|key` of buffered rows, `table|parent` of buffered
    /// child rows.
    keys: HashSet<String>,
}

fn buffer_key(table: &str, values: &[&Val]) -> String {
    format!("{table}|{values:?}")
}

impl Buffers {
    /// True when a buffered row has this key, or a buffered child row this
    /// parent: a statement touching it must run after the buffers are flushed.
    fn touches(&self, table: &str, values: &[&Val]) -> bool {
        !self.keys.is_empty() && self.keys.contains(&buffer_key(table, values))
    }

    fn remember(&mut self, table: &str, values: &[&Val]) {
        self.keys.insert(buffer_key(table, values));
    }

    fn push(&mut self, table: &'static str, columns: Vec<&'static str>, row: Vec<Val>) {
        let rank = TABLE_ORDER
            .iter()
            .position(|t| *t == table)
            .unwrap_or(TABLE_ORDER.len());
        self.tables
            .entry((rank, table))
            .or_insert_with(|| (columns, Vec::new()))
            .1
            .push(row);
    }

    async fn flush(&mut self, c: &mut Conn<'_>) -> Result<(), Failure> {
        self.keys.clear();
        for ((_, table), (columns, rows)) in std::mem::take(&mut self.tables) {
            let n = rows.len() as u64;
            if insert_many(c, table, &columns, rows, false).await? != n {
                return Err(StoreError::Unexpected(format!("short insert into {table}")).into());
            }
        }
        Ok(())
    }
}

/// Writes the state rows of many batches as one (the group-commit fast path):
/// new rows go out as multi-row inserts, updates run in order after flushing
/// what precedes them. Any refusal fails the whole attempt; the caller then
/// rolls back to its savepoint and writes batch by batch. Needs no clock, so
/// it runs before the clock is locked: concurrent group commits overlap here.
pub(crate) async fn write_bulk_state(
    c: &mut Conn<'_>,
    batches: &[&Prepared<'_>],
) -> Result<(), Failure> {
    let mut buffers = Buffers::default();
    let mut updates = Updates::default();
    let mut updated: HashSet<String> = HashSet::new();
    for p in batches {
        for r in &p.rows {
            let key: Vec<&Val> = r.key.iter().map(|(_, v)| v).collect();
            match r.mode {
                Mode::Versioned { expected: 0 } | Mode::InsertOnly => {
                    if updated.contains(&buffer_key(r.table, &key)) {
                        // Its own row waits in the updates: keep the order.
                        updates.write(c, &mut buffers).await?;
                        buffers.flush(c).await?;
                        updated.clear();
                    }
                    let (columns, values) = insert_parts(r);
                    buffers.push(r.table, columns, values);
                    buffers.remember(r.table, &key);
                    for ch in &r.children {
                        for row in &ch.rows {
                            buffers.push(ch.table, ch.columns.to_vec(), row.clone());
                        }
                        buffers.remember(ch.table, &[&ch.parent.1]);
                    }
                }
                Mode::Versioned { .. } => {
                    // Updates are gathered into multi-row statements. One waits
                    // for what is buffered only when that is its own row or its
                    // children, or when its row is already waiting (never, in
                    // practice: a group holds one batch per user).
                    let child_pending = r
                        .children
                        .iter()
                        .any(|ch| buffers.touches(ch.table, &[&ch.parent.1]));
                    let seen = !updated.insert(buffer_key(r.table, &key));
                    if buffers.touches(r.table, &key) || child_pending || seen {
                        updates.write(c, &mut buffers).await?;
                        buffers.flush(c).await?;
                        updated.clear();
                        updated.insert(buffer_key(r.table, &key));
                    }
                    updates.push(r);
                }
                Mode::Delete { .. } => {
                    updates.write(c, &mut buffers).await?;
                    buffers.flush(c).await?;
                    updated.clear();
                    write_row(c, r).await?;
                }
            }
        }
    }
    updates.write(c, &mut buffers).await?;
    buffers.flush(c).await
}

/// PostgreSQL: advances the log clock and inserts the events and outbox rows
/// of many batches in one statement, positioned from the clock as that
/// statement finds it. The clock row stays locked until the commit, so this
/// is the last statement before it: the lock is held for one statement and
/// the commit instead of a round trip per step, and group commits queue on
/// it that much less. `None` when it does not apply (another dialect, or
/// more rows than one statement should carry); the caller then locks the
/// clock and writes the rows as usual.
pub(crate) async fn write_bulk_log_locked(
    c: &mut Conn<'_>,
    batches: &[&Prepared<'_>],
) -> Result<Option<Vec<CommitReceipt>>, Failure> {
    if c.dialect() != Dialect::Postgres {
        return Ok(None);
    }
    let events_n: usize = batches.iter().map(|p| p.batch.events.len()).sum();
    let outbox_n: usize = batches.iter().map(|p| p.batch.outbox.len()).sum();
    let params = events_n * EVENT_COLUMNS.len() + outbox_n * OUTBOX_COLUMNS.len() + 4;
    if params > MAX_PARAMS || events_n >= COPY_ROWS || outbox_n >= COPY_ROWS {
        return Ok(None);
    }
    // Rows and receipts counted from zero; the statement adds the clock.
    let mut relative = Clock::default();
    let mut receipts = Vec::with_capacity(batches.len());
    let (mut events, mut outbox) = (Vec::with_capacity(events_n), Vec::with_capacity(outbox_n));
    for p in batches {
        let (receipt, e, o) = log_rows(p.batch, &mut relative)?;
        receipts.push(receipt);
        events.extend(e);
        outbox.extend(o);
    }
    let (e_total, o_total) = (relative.event, relative.outbox);
    let mut args = vec![
        Val::Int(e_total),
        Val::Int(o_total),
        Val::Int(e_total),
        Val::Int(o_total),
    ];
    let mut sql = String::from(
        "WITH clk AS (UPDATE log_clock SET event_pos = event_pos + ?, outbox_id = outbox_id + ? \
         WHERE id = 1 RETURNING event_pos - ? AS e0, outbox_id - ? AS o0)",
    );
    for (name, table, columns, rows, base) in [
        ("ev", "events", EVENT_COLUMNS, events, "e0"),
        ("ob", "outbox", OUTBOX_COLUMNS, outbox, "o0"),
    ] {
        if rows.is_empty() {
            continue;
        }
        // The first column is the position (or id), counted from the clock.
        let aliases: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
        let picked: Vec<String> = aliases
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i == 0 {
                    format!("clk.{base} + v.{a}")
                } else {
                    format!("v.{a}")
                }
            })
            .collect();
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        sql.push_str(&format!(
            ", {name} AS (INSERT INTO {table} ({}) SELECT {} FROM clk, (VALUES {}) AS v ({}))",
            columns.join(", "),
            picked.join(", "),
            vec![one.as_str(); rows.len()].join(", "),
            aliases.join(", ")
        ));
        args.extend(rows.into_iter().flatten());
    }
    sql.push_str(" SELECT e0, o0 FROM clk");
    let rows = c.fetch(&sql, args, &[Kind::Int, Kind::Int]).await?;
    let Some([Cell::Int(e0), Cell::Int(_)]) = rows.first().map(Vec::as_slice) else {
        return Err(StoreError::Corrupt("log_clock row is missing".to_owned()).into());
    };
    for r in &mut receipts {
        for p in &mut r.event_positions {
            *p += e0;
        }
    }
    Ok(Some(receipts))
}

/// The events and outbox rows of many batches as two multi-row inserts,
/// positioned by `clock` (which the caller holds locked).
pub(crate) async fn write_bulk_log(
    c: &mut Conn<'_>,
    batches: &[&Prepared<'_>],
    clock: &mut Clock,
) -> Result<Vec<CommitReceipt>, Failure> {
    let mut receipts = Vec::with_capacity(batches.len());
    let (mut events, mut outbox) = (Vec::new(), Vec::new());
    for p in batches {
        let (receipt, e, o) = log_rows(p.batch, clock)?;
        receipts.push(receipt);
        events.extend(e);
        outbox.extend(o);
    }
    for (table, columns, rows) in [
        ("events", EVENT_COLUMNS, events),
        ("outbox", OUTBOX_COLUMNS, outbox),
    ] {
        let n = rows.len() as u64;
        if n > 0 && insert_many(c, table, columns, rows, false).await? != n {
            return Err(StoreError::Unexpected(format!("short insert into {table}")).into());
        }
    }
    Ok(receipts)
}
