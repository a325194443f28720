//! `backfill replay`: rebuilds the trading projections (orders, accounts,
//! positions, strategies and their statistics) from the event log and
//! compares every rebuilt aggregate with its stored row; optionally rewrites
//! the rows that differ.
//!
//! The log is streamed in pages by global position (the next page is read
//! while the current one is applied), the aggregates are rebuilt in memory
//! ([`rebuild`]), and the projections are then read back in key-ordered pages
//! through [`ProjectionScan`](ordermon_domain::ports::ProjectionScan) — a few
//! statements per page, never one per aggregate — and compared ([`diff`]).
//!
//! What the log determines and what it cannot is listed in
//! docs/operations.md ("backfill"). In short: versions count commits and are
//! never compared; the high-water mark is observed at market marks, which are
//! not events, so only its currency and user are checked; strategy
//! configuration beyond user and type may change with plain SQL, and stored
//! strategy statistics are a snapshot, so statistics are rebuilt (and
//! written by a rewrite) but not compared.

pub mod diff;
pub mod rebuild;
mod rewrite;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordermon_domain::event::strategy_aggregate_id;
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::order::Order;
use ordermon_domain::ports::{EventLog, ProjectionScan, StoreError, StoredEvent, StoredRow};

use crate::persistence::Persistence;
pub use diff::Difference;
pub use rebuild::{LogProblem, Rebuilt};
use rewrite::Rewrite;

/// Events per page read from the log (the stores' page maximum).
pub const EVENT_PAGE: u32 = 10_000;

/// Rows per page read from each projection.
pub const ROW_PAGE: u32 = 5_000;

/// What to do with the differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    /// Report them and change nothing.
    Verify,
    /// Rewrite the rows that differ from the replay, through the store, in
    /// transactions of `batch` rows.
    Rewrite {
        /// State changes per transaction.
        batch: usize,
    },
}

/// How many rows of each projection were compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Orders.
    pub orders: u64,
    /// Accounts.
    pub accounts: u64,
    /// Positions.
    pub positions: u64,
    /// Strategies.
    pub strategies: u64,
    /// High-water marks.
    pub high_water_marks: u64,
}

impl Checked {
    /// All rows and aggregates compared.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.orders + self.accounts + self.positions + self.strategies + self.high_water_marks
    }
}

/// The outcome of a replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayReport {
    /// Events read from the log.
    pub events: u64,
    /// Aggregates and rows compared.
    pub checked: Checked,
    /// Every difference found (before any rewrite).
    pub differences: Vec<Difference>,
    /// Rows rewritten (rewrite mode).
    pub rewritten: u64,
    /// Differences a rewrite cannot repair (a refused history, a row with no
    /// events, a high-water mark); empty in verify mode.
    pub unrepaired: Vec<Difference>,
    /// Time spent reading the log and rebuilding.
    pub replay_time: Duration,
    /// Total time.
    pub elapsed: Duration,
}

impl ReplayReport {
    /// Events replayed per second of the whole run.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn events_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.events as f64 / secs
        } else {
            0.0
        }
    }
}

/// Pages of the log read (and decoded) at the same time.
const READ_AHEAD: usize = 3;

/// Reads page `k` of the log: the events at positions `(k·P, (k+1)·P]`.
/// Positions only ever grow, so `events_after(k·P, P)` holds the whole range
/// (it may run past it where positions have gaps; that part belongs to the
/// next page). `None` when nothing at all follows `k·P`: the end of the log.
async fn page(log: Arc<dyn EventLog>, k: i64) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    let size = i64::from(EVENT_PAGE);
    let mut events = log.events_after(k * size, None, EVENT_PAGE).await?;
    if events.is_empty() {
        return Ok(None);
    }
    events.retain(|e| e.position <= (k + 1) * size);
    Ok(Some(events))
}

/// Streams the whole log into a [`Rebuilt`]. Pages are position ranges, so
/// several are read and decoded at once (on every core) while the oldest is
/// applied, in order. `progress` gets the number of events so far.
///
/// # Errors
/// Store failures reading the log.
pub async fn rebuild(
    p: &Persistence,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Rebuilt, StoreError> {
    let catalog = p.instruments.list_instruments().await?;
    let mut rebuilt = Rebuilt::new(catalog);
    let mut reading = std::collections::VecDeque::new();
    let mut next = 0_i64;
    loop {
        while reading.len() < READ_AHEAD {
            reading.push_back(tokio::spawn(page(p.events.clone(), next)));
            next += 1;
        }
        let Some(oldest) = reading.pop_front() else {
            break;
        };
        let outcome = oldest
            .await
            .map_err(|e| StoreError::Unexpected(format!("log reader failed: {e}")));
        let events = match outcome.and_then(|r| r) {
            Ok(Some(events)) => events,
            Ok(None) => break,
            Err(e) => {
                reading.iter().for_each(tokio::task::JoinHandle::abort);
                return Err(e);
            }
        };
        for e in &events {
            rebuilt.apply(&e.event);
        }
        progress(rebuilt.events);
    }
    // Pages past the end read nothing; stop them.
    reading.iter().for_each(tokio::task::JoinHandle::abort);
    rebuilt.finish();
    Ok(rebuilt)
}

/// Rebuilds the projections from the log and compares them with the stored
/// rows; in [`ReplayMode::Rewrite`] also rewrites the rows that differ.
///
/// # Errors
/// Store failures; a version conflict while rewriting (something else wrote
/// a row meanwhile: stop the server first).
pub async fn replay(
    p: &Persistence,
    mode: ReplayMode,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReplayReport, StoreError> {
    let started = Instant::now();
    let mut rebuilt = rebuild(p, progress).await?;
    let mut report = ReplayReport {
        events: rebuilt.events,
        replay_time: started.elapsed(),
        ..ReplayReport::default()
    };
    let mut fix = match mode {
        ReplayMode::Verify => None,
        ReplayMode::Rewrite { batch } => Some(Rewrite::new(p.store.clone(), batch)),
    };
    let mut broken: Vec<Difference> = rebuilt
        .broken
        .values()
        .map(|b| Difference {
            table: "events",
            id: format!("{} {}", b.aggregate, b.id),
            field: format!("sequence {}", b.sequence),
            stored: "recorded".to_owned(),
            replayed: format!("refused ({})", b.reason),
        })
        .collect();
    broken.sort_by(|a, b| a.id.cmp(&b.id));
    report.differences.extend(broken.iter().cloned());
    report.unrepaired.extend(broken);

    compare_orders(p, &mut rebuilt, &mut report, fix.as_mut()).await?;
    compare_accounts(p, &mut rebuilt, &mut report, fix.as_mut()).await?;
    compare_positions(p, &mut rebuilt, &mut report, fix.as_mut()).await?;
    compare_strategies(p, &mut rebuilt, &mut report, fix.as_mut()).await?;
    compare_high_water(p, &rebuilt, &mut report).await?;
    if let Some(mut fix) = fix {
        fix.flush().await?;
        report.rewritten = fix.written();
    } else {
        report.unrepaired.clear();
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Records a row's differences; a rewrite repairs them with `repair` unless
/// the aggregate's history was refused.
fn record(
    report: &mut ReplayReport,
    found: Vec<Difference>,
    broken: bool,
    repair: impl FnOnce() -> bool,
) {
    if found.is_empty() {
        return;
    }
    let repaired = !broken && repair();
    if !repaired {
        report.unrepaired.extend(found.iter().cloned());
    }
    report.differences.extend(found);
}

/// The stored orders with ids in `(after, until]` (`until` `None`: to the
/// end), in id order, read a page at a time.
async fn order_range(
    scan: Arc<dyn ProjectionScan>,
    mut after: Option<OrderId>,
    until: Option<OrderId>,
) -> Result<Vec<StoredRow<Order>>, StoreError> {
    let mut rows = Vec::new();
    loop {
        let mut page = scan.scan_orders(after, ROW_PAGE).await?;
        let full = page.len() == ROW_PAGE as usize;
        let Some(last) = page.last().map(|r| r.data.id) else {
            break;
        };
        let past = until.is_some_and(|u| last > u);
        if let Some(u) = until {
            page.retain(|r| r.data.id <= u);
        }
        rows.append(&mut page);
        if !full || past || until == Some(last) {
            break;
        }
        after = Some(last);
    }
    Ok(rows)
}

/// Compares the stored orders with the rebuilt ones. The id space is cut
/// into ranges of about [`ROW_PAGE`] rebuilt orders each, so several ranges
/// are read and decoded at once (on every core) while the oldest is
/// compared, in id order.
async fn compare_orders(
    p: &Persistence,
    r: &mut Rebuilt,
    report: &mut ReplayReport,
    mut fix: Option<&mut Rewrite>,
) -> Result<(), StoreError> {
    let mut ids: Vec<OrderId> = r.orders.keys().copied().collect();
    ids.sort_unstable();
    // Range k holds the ids after the last of chunk k-1, up to the last of
    // chunk k; the last range runs to the end of the table.
    let mut ends: Vec<Option<OrderId>> = ids
        .chunks(ROW_PAGE as usize)
        .map(|c| c.last().copied())
        .collect();
    drop(ids);
    if let Some(last) = ends.last_mut() {
        *last = None;
    } else {
        ends.push(None);
    }
    let mut ranges = ends.into_iter();
    let mut start: Option<OrderId> = None;
    let mut reading = std::collections::VecDeque::new();
    loop {
        while reading.len() < READ_AHEAD {
            let Some(end) = ranges.next() else { break };
            reading.push_back(tokio::spawn(order_range(p.scan.clone(), start, end)));
            start = end;
        }
        let Some(oldest) = reading.pop_front() else {
            break;
        };
        let page = match oldest.await {
            Ok(Ok(page)) => page,
            failed => {
                reading.iter().for_each(tokio::task::JoinHandle::abort);
                return Err(match failed {
                    Ok(Err(e)) => e,
                    Err(e) => StoreError::Unexpected(format!("projection reader failed: {e}")),
                    Ok(Ok(_)) => unreachable!("handled above"),
                });
            }
        };
        for row in &page {
            report.checked.orders += 1;
            let id = row.data.id;
            let broken = r.is_broken("order", id);
            match r.orders.remove(&id) {
                Some(replayed) => {
                    let found = if broken {
                        Vec::new()
                    } else {
                        diff::order(row, &replayed)
                    };
                    record(report, found, broken, || {
                        fix.as_deref_mut()
                            .is_some_and(|f| f.order(replayed, row.columns.version))
                    });
                }
                None => {
                    let found = vec![diff::missing("orders", id.to_string(), true)];
                    record(report, found, true, || false);
                }
            }
        }
        if let Some(f) = fix.as_deref_mut() {
            f.flush_if_full().await?;
        }
    }
    let mut left: Vec<_> = r.orders.drain().collect();
    left.sort_by_key(|(id, _)| *id);
    for (id, replayed) in left {
        let broken = r.is_broken("order", id);
        report.checked.orders += 1;
        let found = vec![diff::missing("orders", id.to_string(), false)];
        record(report, found, broken, || {
            fix.as_deref_mut().is_some_and(|f| f.order(replayed, 0))
        });
    }
    Ok(())
}

async fn compare_accounts(
    p: &Persistence,
    r: &mut Rebuilt,
    report: &mut ReplayReport,
    mut fix: Option<&mut Rewrite>,
) -> Result<(), StoreError> {
    let mut after: Option<UserId> = None;
    // Accounts stay in the rebuild: the high-water check reads them last.
    let mut seen: HashMap<UserId, ()> = HashMap::new();
    loop {
        let page = p.scan.scan_accounts(after.as_ref(), ROW_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.data.user_id.clone());
        for row in &page {
            report.checked.accounts += 1;
            let user = &row.data.user_id;
            seen.insert(user.clone(), ());
            let broken = r.is_broken("account", user);
            match r.accounts.get(user) {
                Some(replayed) => {
                    let found = if broken {
                        Vec::new()
                    } else {
                        diff::account(row, replayed)
                    };
                    record(report, found, broken, || {
                        fix.as_deref_mut().is_some_and(|f| {
                            f.account(replayed.clone(), &row.data, row.columns.version)
                        })
                    });
                }
                None => {
                    let found = vec![diff::missing("accounts", user.to_string(), true)];
                    record(report, found, true, || false);
                }
            }
        }
        if let Some(f) = fix.as_deref_mut() {
            f.flush_if_full().await?;
        }
    }
    let mut left: Vec<_> = r
        .accounts
        .iter()
        .filter(|(u, _)| !seen.contains_key(*u))
        .collect();
    left.sort_by(|a, b| a.0.cmp(b.0));
    for (user, replayed) in left {
        report.checked.accounts += 1;
        let broken = r.is_broken("account", user);
        let found = vec![diff::missing("accounts", user.to_string(), false)];
        record(report, found, broken, || {
            fix.as_deref_mut()
                .is_some_and(|f| f.new_account(replayed.clone()))
        });
    }
    Ok(())
}

async fn compare_positions(
    p: &Persistence,
    r: &mut Rebuilt,
    report: &mut ReplayReport,
    mut fix: Option<&mut Rewrite>,
) -> Result<(), StoreError> {
    let mut after: Option<(UserId, InstrumentId)> = None;
    loop {
        let page = p
            .scan
            .scan_positions(after.as_ref().map(|(u, i)| (u, i)), ROW_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.data.user_id.clone(), last.data.instrument_id.clone()));
        for row in &page {
            report.checked.positions += 1;
            let key = (row.data.user_id.clone(), row.data.instrument_id.clone());
            let id = format!("{}/{}", key.0, key.1);
            let broken = r.is_broken("position", &id);
            match r.positions.remove(&key) {
                Some(replayed) => {
                    let found = if broken {
                        Vec::new()
                    } else {
                        diff::position(row, &replayed)
                    };
                    record(report, found, broken, || {
                        fix.as_deref_mut()
                            .is_some_and(|f| f.position(replayed, row.columns.version))
                    });
                }
                None => {
                    let found = vec![diff::missing("positions", id, true)];
                    record(report, found, true, || false);
                }
            }
        }
        if let Some(f) = fix.as_deref_mut() {
            f.flush_if_full().await?;
        }
    }
    let mut left: Vec<_> = r.positions.drain().collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    for ((user, instrument), replayed) in left {
        report.checked.positions += 1;
        let id = format!("{user}/{instrument}");
        let broken = r.is_broken("position", &id);
        let found = vec![diff::missing("positions", id, false)];
        record(report, found, broken, || {
            fix.as_deref_mut().is_some_and(|f| f.position(replayed, 0))
        });
    }
    Ok(())
}

/// Whether a strategy's history was refused, under its aggregate id or, for
/// events written before strategy ids were per user, its bare id.
fn strategy_broken(r: &Rebuilt, key: &(UserId, StrategyId)) -> bool {
    r.is_broken("strategy", strategy_aggregate_id(&key.0, &key.1))
        || r.is_broken("strategy", &key.1)
}

async fn compare_strategies(
    p: &Persistence,
    r: &mut Rebuilt,
    report: &mut ReplayReport,
    mut fix: Option<&mut Rewrite>,
) -> Result<(), StoreError> {
    let mut after: Option<(UserId, StrategyId)> = None;
    loop {
        let page = p.scan.scan_strategies(after.as_ref(), ROW_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.data.user_id.clone(), last.data.id.clone()));
        for row in &page {
            report.checked.strategies += 1;
            let key = (row.data.user_id.clone(), row.data.id.clone());
            let name = strategy_aggregate_id(&key.0, &key.1);
            let broken = strategy_broken(r, &key);
            match r.strategies.remove(&key) {
                Some(replayed) if !replayed.deleted => {
                    let found = if broken {
                        Vec::new()
                    } else {
                        diff::strategy(row, &replayed)
                    };
                    if found.is_empty() && !broken {
                        // Statistics are rebuilt, not compared: a rewrite
                        // writes them when they differ.
                        if let Some(f) = fix.as_deref_mut() {
                            f.strategy_stats(&row.columns, &replayed);
                        }
                    }
                    record(report, found, broken, || {
                        fix.as_deref_mut()
                            .is_some_and(|f| f.strategy(&row.columns, &replayed))
                    });
                }
                Some(_) => {
                    let mut found = diff::missing("strategies", name, true);
                    found.replayed = "deleted".to_owned();
                    record(report, vec![found], broken, || {
                        fix.as_deref_mut()
                            .is_some_and(|f| f.delete_strategy(&row.columns))
                    });
                }
                None => {
                    let found = vec![diff::missing("strategies", name, true)];
                    record(report, found, true, || false);
                }
            }
        }
        if let Some(f) = fix.as_deref_mut() {
            f.flush_if_full().await?;
        }
    }
    let mut left: Vec<_> = r.strategies.drain().filter(|(_, s)| !s.deleted).collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, replayed) in left {
        report.checked.strategies += 1;
        let broken = strategy_broken(r, &key);
        let name = strategy_aggregate_id(&key.0, &key.1);
        let found = vec![diff::missing("strategies", name, false)];
        record(report, found, broken, || {
            fix.as_deref_mut()
                .is_some_and(|f| f.new_strategy(&replayed))
        });
    }
    Ok(())
}

/// High-water marks are observed at market marks, not derived from events:
/// each must belong to an account the log opened, in the currency its equity
/// is measured in (the account's first currency). Never rewritten.
async fn compare_high_water(
    p: &Persistence,
    r: &Rebuilt,
    report: &mut ReplayReport,
) -> Result<(), StoreError> {
    let mut after: Option<UserId> = None;
    loop {
        let page = p
            .high_water
            .list_high_water(after.as_ref(), ROW_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        for mark in &page {
            report.checked.high_water_marks += 1;
            let found = match r.accounts.get(&mark.user_id) {
                None => Some(Difference {
                    table: "high_water_marks",
                    id: mark.user_id.to_string(),
                    field: "row".to_owned(),
                    stored: "present".to_owned(),
                    replayed: "absent (no account)".to_owned(),
                }),
                Some(a) => a
                    .balances
                    .keys()
                    .next()
                    .filter(|first| **first != mark.currency)
                    .map(|first| Difference {
                        table: "high_water_marks",
                        id: mark.user_id.to_string(),
                        field: "currency".to_owned(),
                        stored: mark.currency.to_string(),
                        replayed: first.to_string(),
                    }),
            };
            if let Some(d) = found {
                report.unrepaired.push(d.clone());
                report.differences.push(d);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
