//! Comparing a rebuilt aggregate with its stored row, field by field.
//!
//! Only what the event log determines is compared: versions count commits,
//! not events, and are never compared; timestamps are compared to within
//! [`TOLERANCE_MS`](super::rebuild::TOLERANCE_MS). A SQL row is compared twice,
//! through its columns and through its `data` JSON, so a hand edit of either
//! is found.

use std::fmt;

use chrono::{DateTime, Utc};
use ordermon_domain::account::Account;
use ordermon_domain::order::Order;
use ordermon_domain::ports::StoredRow;
use ordermon_domain::position::Position;
use rust_decimal::Decimal;
use serde::Serialize;

use super::rebuild::{ReplayedStrategy, same_instant};
use ordermon_domain::strategy::Strategy;

/// One difference between a stored row and the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The table (`orders`, `accounts`, `positions`, `strategies`,
    /// `high_water_marks`, or `events` for a history the domain refuses).
    pub table: &'static str,
    /// The row's id (`alice/ACME.SIM` for a position).
    pub id: String,
    /// The field (`quantity`, `balances.USD.total`; `row` when the row is
    /// missing on one side; a `(data)` suffix when only the JSON differs).
    pub field: String,
    /// The stored value.
    pub stored: String,
    /// The replayed value.
    pub replayed: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} stored {}, replayed {}",
            self.table, self.id, self.field, self.stored, self.replayed
        )
    }
}

/// A value as people read it: decimals without trailing zeros, `none` for
/// nothing, enums by their snake-case name.
pub(crate) fn show<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Null) => "none".to_owned(),
        Ok(serde_json::Value::String(s)) => match s.parse::<Decimal>() {
            Ok(d) => d.normalize().to_string(),
            Err(_) => s,
        },
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// Collects the differences of one row.
pub(crate) struct RowDiff<'a, T> {
    table: &'static str,
    /// The row's id, built only when a difference is found.
    id: Box<dyn Fn() -> String + 'a>,
    row: &'a StoredRow<T>,
    replayed: &'a T,
    out: Vec<Difference>,
}

impl<'a, T> RowDiff<'a, T> {
    pub(crate) fn new(
        table: &'static str,
        id: impl Fn() -> String + 'a,
        row: &'a StoredRow<T>,
        replayed: &'a T,
    ) -> Self {
        Self {
            table,
            id: Box::new(id),
            row,
            replayed,
            out: Vec::new(),
        }
    }

    /// Compares a field read by reference (no copy when equal).
    fn check_ref<V: Serialize + PartialEq + ?Sized>(
        &mut self,
        field: &str,
        get: impl Fn(&T) -> &V,
    ) {
        let (row, replayed) = (self.row, self.replayed);
        self.compare(
            field,
            get(&row.columns),
            || get(&row.data),
            get(replayed),
            |a, b| a == b,
        );
    }

    /// Compares one field with `same`, through the columns first.
    fn check_by<V: Serialize>(
        &mut self,
        field: &str,
        get: impl Fn(&T) -> V,
        same: impl Fn(&V, &V) -> bool,
    ) {
        let (row, replayed) = (self.row, self.replayed);
        self.compare(
            field,
            get(&row.columns),
            || get(&row.data),
            get(replayed),
            same,
        );
    }

    /// Records a difference when the stored columns differ from the replay,
    /// or else when the stored JSON copy (read only then) does.
    fn compare<W: Serialize>(
        &mut self,
        field: &str,
        columns: W,
        data: impl FnOnce() -> W,
        replayed: W,
        same: impl Fn(&W, &W) -> bool,
    ) {
        let (stored, field) = if !same(&columns, &replayed) {
            (columns, field.to_owned())
        } else {
            let data = data();
            if same(&data, &replayed) {
                return;
            }
            (data, format!("{field} (data)"))
        };
        self.out.push(Difference {
            table: self.table,
            id: (self.id)(),
            field,
            stored: show(&stored),
            replayed: show(&replayed),
        });
    }

    fn check<V: Serialize + PartialEq>(&mut self, field: &str, get: impl Fn(&T) -> V) {
        self.check_by(field, get, |a, b| a == b);
    }

    fn check_time(&mut self, field: &str, get: impl Fn(&T) -> DateTime<Utc>) {
        self.check_by(field, get, |a, b| same_instant(*a, *b));
    }

    fn check_opt_time(&mut self, field: &str, get: impl Fn(&T) -> Option<DateTime<Utc>>) {
        self.check_by(field, get, |a, b| match (a, b) {
            (Some(a), Some(b)) => same_instant(*a, *b),
            (a, b) => a.is_none() && b.is_none(),
        });
    }

    pub(crate) fn finish(self) -> Vec<Difference> {
        self.out
    }
}

/// The differences of an order.
pub(crate) fn order(row: &StoredRow<Order>, replayed: &Order) -> Vec<Difference> {
    let mut d = RowDiff::new("orders", || replayed.id.to_string(), row, replayed);
    d.check_ref("user_id", |o| &o.user_id);
    d.check_ref("client_order_id", |o| &o.client_order_id);
    d.check_ref("strategy_id", |o| &o.strategy_id);
    d.check_ref("instrument_id", |o| &o.instrument_id);
    d.check("side", |o| o.side);
    d.check("order_type", |o| o.order_type);
    d.check("time_in_force", |o| o.time_in_force);
    d.check_opt_time("expire_at", |o| o.expire_at);
    d.check("reduce_only", |o| o.reduce_only);
    d.check("post_only", |o| o.post_only);
    d.check("status", |o| o.status);
    d.check("previous_status", |o| o.previous_status);
    d.check("quantity", |o| o.quantity);
    d.check("price", |o| o.price);
    d.check("trigger_price", |o| o.trigger_price);
    d.check("filled_qty", |o| o.filled_qty);
    d.check("overfill_qty", |o| o.overfill_qty);
    d.check("leaves_qty", Order::leaves_qty);
    d.check("avg_px", |o| o.avg_px);
    d.check_ref("reason", |o| &o.reason);
    d.check_ref("venue_order_id", |o| &o.venue_order_id);
    d.check_ref("trade_ids", |o| &o.trade_ids);
    d.check_time("created_at", |o| o.created_at);
    d.check_time("updated_at", |o| o.updated_at);
    d.check("sequence", |o| o.sequence);
    d.finish()
}

/// The differences of an account (its balances, reservations and holds).
pub(crate) fn account(row: &StoredRow<Account>, replayed: &Account) -> Vec<Difference> {
    let mut d = RowDiff::new("accounts", || replayed.user_id.to_string(), row, replayed);
    d.check("account_type", |a| a.account_type);
    let mut currencies: Vec<_> = row
        .columns
        .balances
        .keys()
        .chain(row.data.balances.keys())
        .chain(replayed.balances.keys())
        .cloned()
        .collect();
    currencies.sort();
    currencies.dedup();
    for c in &currencies {
        // A balance that was never funded reads as zero on either side.
        d.check(&format!("balances.{c}.total"), |a| a.balance(c).total);
        d.check(&format!("balances.{c}.reserved"), |a| a.balance(c).reserved);
    }
    d.check("reservations", |a| {
        a.reservations.values().cloned().collect::<Vec<_>>()
    });
    d.check("position_holds", |a| a.position_holds.clone());
    d.check("sequence", |a| a.sequence);
    d.finish()
}

/// The differences of a position.
pub(crate) fn position(row: &StoredRow<Position>, replayed: &Position) -> Vec<Difference> {
    let id = || format!("{}/{}", replayed.user_id, replayed.instrument_id);
    let mut d = RowDiff::new("positions", id, row, replayed);
    d.check_ref("quote_currency", |p| &p.quote_currency);
    d.check("multiplier", |p| p.multiplier);
    d.check("quantity", |p| p.quantity);
    d.check("cost", |p| p.cost);
    d.check("realized_pnl", |p| p.realized_pnl);
    d.check("commissions", |p| p.commissions);
    d.check("last_mark", |p| p.last_mark);
    d.check_opt_time("opened_at", |p| p.opened_at);
    d.check_opt_time("closed_at", |p| p.closed_at);
    d.check_time("updated_at", |p| p.updated_at);
    d.check("sequence", |p| p.sequence);
    d.finish()
}

/// The differences of a strategy: what the log determines of its
/// configuration (user and type). Name, instruments, params and status may
/// be changed with plain SQL or without an event, and the stored statistics
/// are a snapshot of the last configuration write, so those are not compared.
pub(crate) fn strategy(row: &StoredRow<Strategy>, replayed: &ReplayedStrategy) -> Vec<Difference> {
    let mut d = RowDiff::new(
        "strategies",
        || replayed.strategy.id.to_string(),
        row,
        &replayed.strategy,
    );
    d.check("user_id", |s| s.user_id.clone());
    d.check("strategy_type", |s| s.strategy_type.clone());
    d.finish()
}

/// A row on one side only.
pub(crate) fn missing(table: &'static str, id: String, stored: bool) -> Difference {
    let (s, r) = if stored {
        ("present", "absent (no events)")
    } else {
        ("absent", "present")
    };
    Difference {
        table,
        id,
        field: "row".to_owned(),
        stored: s.to_owned(),
        replayed: r.to_owned(),
    }
}
