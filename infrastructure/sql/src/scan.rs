//! Maintenance reads and writes over SQL: key-ordered bulk scans of the
//! projections for `backfill replay` (one statement per page, never one per
//! aggregate), the high-water marks, and retention for `backfill purge`.
//!
//! Scans read each row's real columns as well as its `data` JSON, because
//! operators change the columns with plain SQL and the replay must see that.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::account::Account;
use ordermon_domain::high_water::HighWaterMark;
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::order::Order;
use ordermon_domain::ports::{
    HighWaterRepository, ProjectionScan, PurgeCounts, Retention, StoreError, StoredRow,
};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;
use ordermon_domain::values::{Price, Quantity};
use rust_decimal::Decimal;

use crate::alerting::newer_in_group;
use crate::conn::{Cell, Kind, Val};
use crate::decode::{
    corrupt, dec, int, json, overlay_balances, overlay_reservations, parsed, text, ts,
};
use crate::repos::limit;
use crate::store::SqlStore;

fn opt_dec(row: &[Cell], i: usize) -> Result<Option<Decimal>, StoreError> {
    match row.get(i) {
        Some(Cell::Null) => Ok(None),
        _ => dec(row, i).map(Some),
    }
}

fn opt_ts(row: &[Cell], i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
    match row.get(i) {
        Some(Cell::Null) => Ok(None),
        _ => ts(row, i).map(Some),
    }
}

fn opt_text(row: &[Cell], i: usize) -> Result<Option<String>, StoreError> {
    match row.get(i) {
        Some(Cell::Null) => Ok(None),
        _ => text(row, i).map(|s| Some(s.to_owned())),
    }
}

fn quantity(row: &[Cell], i: usize) -> Result<Quantity, StoreError> {
    Quantity::new(dec(row, i)?).map_err(|e| corrupt(format!("bad stored quantity: {e}")))
}

fn opt_price(row: &[Cell], i: usize) -> Result<Option<Price>, StoreError> {
    opt_dec(row, i)?
        .map(|d| Price::new(d).map_err(|e| corrupt(format!("bad stored price: {e}"))))
        .transpose()
}

/// Lays a column over the JSON's value only when they differ, so the JSON's
/// exact text of a numerically equal value (`10` vs `10.000…`) is kept.
fn set<T: PartialEq>(field: &mut T, column: T) {
    if *field != column {
        *field = column;
    }
}

const ORDER_COLUMNS: &str = "data, status, quantity, price, trigger_price, filled_qty, avg_px, \
                             reason, updated_at";
const ORDER_KINDS: [Kind; 9] = [
    Kind::Text,
    Kind::Text,
    Kind::Dec,
    Kind::Dec,
    Kind::Dec,
    Kind::Dec,
    Kind::Dec,
    Kind::Text,
    Kind::Ts,
];

fn order_row(r: &[Cell]) -> Result<StoredRow<Order>, StoreError> {
    let data: Order = json(r, 0, "order")?;
    let mut o = data.clone();
    set(&mut o.status, parsed(r, 1, "order status")?);
    set(&mut o.quantity, quantity(r, 2)?);
    set(&mut o.price, opt_price(r, 3)?);
    set(&mut o.trigger_price, opt_price(r, 4)?);
    set(&mut o.filled_qty, quantity(r, 5)?);
    set(&mut o.avg_px, opt_dec(r, 6)?);
    set(&mut o.reason, opt_text(r, 7)?);
    set(&mut o.updated_at, ts(r, 8)?);
    Ok(StoredRow { columns: o, data })
}

const POSITION_COLUMNS: &str = "data, quote_currency, quantity, cost, realized_pnl, \
                                commissions, last_mark, opened_at, closed_at, updated_at";
const POSITION_KINDS: [Kind; 10] = [
    Kind::Text,
    Kind::Text,
    Kind::Dec,
    Kind::Dec,
    Kind::Dec,
    Kind::Dec,
    Kind::Dec,
    Kind::Ts,
    Kind::Ts,
    Kind::Ts,
];

fn position_row(r: &[Cell]) -> Result<StoredRow<Position>, StoreError> {
    let data: Position = json(r, 0, "position")?;
    let mut p = data.clone();
    set(&mut p.quote_currency, parsed(r, 1, "currency")?);
    set(&mut p.quantity, dec(r, 2)?);
    set(&mut p.cost, dec(r, 3)?);
    set(&mut p.realized_pnl, dec(r, 4)?);
    set(&mut p.commissions, dec(r, 5)?);
    set(&mut p.last_mark, opt_price(r, 6)?);
    set(&mut p.opened_at, opt_ts(r, 7)?);
    set(&mut p.closed_at, opt_ts(r, 8)?);
    set(&mut p.updated_at, ts(r, 9)?);
    Ok(StoredRow { columns: p, data })
}

fn strategy_row(r: &[Cell]) -> Result<StoredRow<Strategy>, StoreError> {
    let data: Strategy = json(r, 0, "strategy")?;
    let mut s = data.clone();
    set(&mut s.status, parsed(r, 1, "strategy status")?);
    set(&mut s.user_id, parsed(r, 2, "user id")?);
    set(&mut s.strategy_type, text(r, 3)?.to_owned());
    set(&mut s.name, text(r, 4)?.to_owned());
    Ok(StoredRow { columns: s, data })
}

#[async_trait]
impl ProjectionScan for SqlStore {
    async fn scan_orders(
        &self,
        after: Option<OrderId>,
        n: u32,
    ) -> Result<Vec<StoredRow<Order>>, StoreError> {
        let (filter, mut args) = match after {
            Some(id) => (" WHERE id > ?", vec![Val::Uuid(id.as_uuid())]),
            None => ("", Vec::new()),
        };
        args.push(limit(n));
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders{filter} ORDER BY id LIMIT ?");
        let rows = self.fetch(&sql, args, &ORDER_KINDS).await?;
        rows.iter().map(|r| order_row(r)).collect()
    }

    async fn scan_accounts(
        &self,
        after: Option<&UserId>,
        n: u32,
    ) -> Result<Vec<StoredRow<Account>>, StoreError> {
        let (filter, mut args) = match after {
            Some(u) => (" WHERE user_id > ?", vec![Val::text(u)]),
            None => ("", Vec::new()),
        };
        args.push(limit(n));
        let sql = format!(
            "SELECT user_id, data, account_type FROM accounts{filter} ORDER BY user_id LIMIT ?"
        );
        let kinds = [Kind::Text, Kind::Text, Kind::Text];
        let heads = self.fetch(&sql, args, &kinds).await?;
        let (Some(first), Some(last)) = (heads.first(), heads.last()) else {
            return Ok(Vec::new());
        };
        // The page's balances in one statement, by the same key order.
        let sql = "SELECT user_id, currency, total, reserved FROM account_balances \
                   WHERE user_id >= ? AND user_id <= ? ORDER BY user_id, currency";
        let args = vec![Val::text(text(first, 0)?), Val::text(text(last, 0)?)];
        let kinds = [Kind::Text, Kind::Text, Kind::Dec, Kind::Dec];
        let balances = self.fetch(sql, args, &kinds).await?;
        let mut balances = balances.into_iter().peekable();
        let sql = "SELECT user_id, data FROM account_reservations \
                   WHERE user_id >= ? AND user_id <= ? ORDER BY user_id, order_id";
        let args = vec![Val::text(text(first, 0)?), Val::text(text(last, 0)?)];
        let reservations = self.fetch(sql, args, &[Kind::Text, Kind::Text]).await?;
        let mut reservations = reservations.into_iter().peekable();
        let mut out = Vec::with_capacity(heads.len());
        for h in &heads {
            let user = text(h, 0)?;
            let mut data: Account = json(h, 1, "account")?;
            let mut held = Vec::new();
            while let Some(r) =
                reservations.next_if(|r| r.first() == Some(&Cell::Text(user.to_owned())))
            {
                held.push(r);
            }
            overlay_reservations(&mut data, &held, 1)?;
            let mut columns = data.clone();
            set(&mut columns.account_type, {
                let name = text(h, 2)?;
                serde_json::from_value(serde_json::Value::String(name.to_owned()))
                    .map_err(|e| corrupt(format!("bad account type {name:?}: {e}")))?
            });
            let mut mine = Vec::new();
            while let Some(b) =
                balances.next_if(|b| b.first() == Some(&Cell::Text(user.to_owned())))
            {
                mine.push(b);
            }
            overlay_balances(&mut columns, &mine, 1)?;
            out.push(StoredRow { columns, data });
        }
        Ok(out)
    }

    async fn scan_positions(
        &self,
        after: Option<(&UserId, &InstrumentId)>,
        n: u32,
    ) -> Result<Vec<StoredRow<Position>>, StoreError> {
        let (filter, mut args) = match after {
            Some((u, i)) => (
                " WHERE user_id > ? OR (user_id = ? AND instrument_id > ?)",
                vec![Val::text(u), Val::text(u), Val::text(i)],
            ),
            None => ("", Vec::new()),
        };
        args.push(limit(n));
        let sql = format!(
            "SELECT {POSITION_COLUMNS} FROM positions{filter} \
             ORDER BY user_id, instrument_id LIMIT ?"
        );
        let rows = self.fetch(&sql, args, &POSITION_KINDS).await?;
        rows.iter().map(|r| position_row(r)).collect()
    }

    async fn scan_strategies(
        &self,
        after: Option<&(UserId, StrategyId)>,
        n: u32,
    ) -> Result<Vec<StoredRow<Strategy>>, StoreError> {
        let (filter, mut args) = match after {
            Some((user, id)) => (
                " WHERE user_id > ? OR (user_id = ? AND id > ?)",
                vec![Val::text(user), Val::text(user), Val::text(id)],
            ),
            None => ("", Vec::new()),
        };
        args.push(limit(n));
        let sql = format!(
            "SELECT data, status, user_id, strategy_type, name FROM strategies{filter} \
             ORDER BY user_id, id LIMIT ?"
        );
        let kinds = [Kind::Text; 5];
        let rows = self.fetch(&sql, args, &kinds).await?;
        rows.iter().map(|r| strategy_row(r)).collect()
    }
}

/// A mark from `(data, value, currency)`: the columns win.
fn high_water_row(r: &[Cell]) -> Result<HighWaterMark, StoreError> {
    let mut m: HighWaterMark = json(r, 0, "high-water mark")?;
    set(&mut m.value, dec(r, 1)?);
    set(&mut m.currency, parsed(r, 2, "currency")?);
    Ok(m)
}

#[async_trait]
impl HighWaterRepository for SqlStore {
    async fn get_high_water(&self, user: &UserId) -> Result<Option<HighWaterMark>, StoreError> {
        let sql = "SELECT data, value, currency FROM high_water_marks WHERE user_id = ?";
        let kinds = [Kind::Text, Kind::Dec, Kind::Text];
        let rows = self.fetch(sql, vec![Val::text(user)], &kinds).await?;
        rows.first().map(|r| high_water_row(r)).transpose()
    }

    async fn list_high_water(
        &self,
        after: Option<&UserId>,
        n: u32,
    ) -> Result<Vec<HighWaterMark>, StoreError> {
        let (filter, mut args) = match after {
            Some(u) => (" WHERE user_id > ?", vec![Val::text(u)]),
            None => ("", Vec::new()),
        };
        args.push(limit(n));
        let sql = format!(
            "SELECT data, value, currency FROM high_water_marks{filter} ORDER BY user_id LIMIT ?"
        );
        let kinds = [Kind::Text, Kind::Dec, Kind::Text];
        let rows = self.fetch(&sql, args, &kinds).await?;
        rows.iter().map(|r| high_water_row(r)).collect()
    }
}

impl SqlStore {
    async fn count(&self, sql: &str, args: Vec<Val>) -> Result<u64, StoreError> {
        let rows = self.fetch(sql, args, &[Kind::Int]).await?;
        let n = rows.first().map_or(Ok(0), |r| int(r, 0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[async_trait]
impl Retention for SqlStore {
    async fn purgeable(&self, before: DateTime<Utc>) -> Result<PurgeCounts, StoreError> {
        let bars = self
            .count(
                "SELECT COUNT(*) FROM bars WHERE open_time < ?",
                vec![Val::Ts(before)],
            )
            .await?;
        // The same rule as `Outbox::purge_sent`: below the oldest unsent row.
        let oldest = self
            .fetch(
                "SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1",
                Vec::new(),
                &[Kind::Int],
            )
            .await?;
        let below = oldest.first().map_or(Ok(i64::MAX), |r| int(r, 0))?;
        let outbox = self
            .count(
                "SELECT COUNT(*) FROM outbox WHERE id < ? AND sent_at IS NOT NULL AND sent_at < ?",
                vec![Val::Int(below), Val::Ts(before)],
            )
            .await?;
        // The same rule as `NotificationLog::purge_notifications`.
        let sql = format!(
            "SELECT COUNT(*) FROM notifications n WHERE n.status IN ('delivered', 'failed') \
             AND n.created_at < ? AND {}",
            newer_in_group("n")
        );
        let notifications = self.count(&sql, vec![Val::Ts(before)]).await?;
        // The same rule as `CredentialRepository::purge_sessions`.
        let sessions = self
            .count(
                "SELECT COUNT(*) FROM auth_sessions WHERE expires_at < ?",
                vec![Val::Ts(before)],
            )
            .await?;
        Ok(PurgeCounts {
            bars,
            outbox,
            notifications,
            sessions,
        })
    }

    async fn purge_bars(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.exec_each(&[(
            "DELETE FROM bars WHERE open_time < ?".to_owned(),
            vec![Val::Ts(before)],
        )])
        .await
    }
}
