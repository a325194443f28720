//! How each aggregate maps to its table: the real columns operators query and
//! filter on, plus `data` (the entity's full JSON).

use std::collections::BTreeMap;

use ordermon_domain::account::{Account, AccountType, Balance, Reservation};
use ordermon_domain::alert::{Alert, NotificationRecord, RuleOverride, Silence};
use ordermon_domain::event::{DomainEvent, position_aggregate_id};
use ordermon_domain::fill::Fill;
use ordermon_domain::high_water::HighWaterMark;
use ordermon_domain::ids::{InstrumentId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::Order;
use ordermon_domain::ports::{OutboxMessage, ReservationWrite, StateChange, StoreError};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;
use ordermon_domain::user::User;
use ordermon_domain::values::{Currency, Quantity, decimal_string};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::conn::Val;

/// How a row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Inserted when `expected == 0`, else updated where `version = expected`.
    Versioned { expected: u64 },
    /// Insert only; any unique violation is a duplicate.
    InsertOnly,
    /// Deleted where `version = expected`.
    Delete { expected: u64 },
}

/// One state row to write.
#[derive(Debug, Clone)]
pub(crate) struct RowWrite {
    /// Entity name for errors.
    pub(crate) entity: &'static str,
    pub(crate) table: &'static str,
    /// The row's id as errors report it.
    pub(crate) id: String,
    /// Primary-key columns (empty for insert-only rows with a surrogate key).
    pub(crate) key: Vec<(&'static str, Val)>,
    /// Every other column, `version` and `data` included.
    pub(crate) cols: Vec<(&'static str, Val)>,
    pub(crate) mode: Mode,
    /// What a unique violation on another key means: `(entity, id)`.
    pub(crate) dup: Option<(&'static str, String)>,
    /// Child rows replacing current ones (account balances, reservations).
    pub(crate) children: Vec<Children>,
}

/// Rows of a child table owned by one parent row.
#[derive(Debug, Clone)]
pub(crate) struct Children {
    pub(crate) table: &'static str,
    /// The column naming the parent, and its value.
    pub(crate) parent: (&'static str, Val),
    pub(crate) columns: &'static [&'static str],
    /// The rows to insert, after the rows `replaces` names are deleted.
    pub(crate) rows: Vec<Vec<Val>>,
    /// The current rows this write replaces: those with one of these values
    /// in this column (the parent's column for all of them, or a unique
    /// column for some).
    pub(crate) replaces: (&'static str, Vec<Val>),
}

/// The columns of `account_balances`.
pub(crate) const BALANCE_COLUMNS: &[&str] = &["user_id", "currency", "total", "reserved"];

/// The columns of `account_reservations`.
pub(crate) const RESERVATION_COLUMNS: &[&str] = &["order_id", "user_id", "data"];

/// The columns of `events`.
pub(crate) const EVENT_COLUMNS: &[&str] = &[
    "position",
    "event_id",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "user_id",
    "occurred_at",
    "correlation_id",
    "data",
];

/// The columns of `outbox`.
pub(crate) const OUTBOX_COLUMNS: &[&str] = &[
    "id",
    "event_id",
    "topic",
    "msg_key",
    "payload",
    "created_at",
    "traceparent",
];

/// The JSON of an entity.
fn json<T: Serialize>(value: &T) -> Result<Val, StoreError> {
    serde_json::to_string(value)
        .map(Val::Text)
        .map_err(|e| StoreError::Unexpected(format!("cannot serialize: {e}")))
}

/// The serde name of a unit enum variant (`"active"`, `"margin"`, …).
fn name<T: Serialize>(value: &T) -> Result<Val, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(Val::Text(s)),
        _ => Err(StoreError::Unexpected(
            "enum without a string name".to_owned(),
        )),
    }
}

/// Checks the value's own version against `expected + 1`.
fn versioned(
    entity: &'static str,
    id: &str,
    expected: u64,
    version: u64,
) -> Result<Mode, StoreError> {
    if version != expected.saturating_add(1) {
        return Err(StoreError::Conflict {
            entity,
            id: id.to_owned(),
            expected,
            actual: None,
        });
    }
    Ok(Mode::Versioned { expected })
}

/// The row write of one state change.
pub(crate) fn row_write(change: &StateChange) -> Result<RowWrite, StoreError> {
    match change {
        StateChange::Order { order, expected } => order_row(order, *expected),
        StateChange::Fill(fill) => fill_row(fill),
        StateChange::Account {
            account,
            expected,
            reservations,
        } => account_row(account, *expected, reservations),
        StateChange::Position { position, expected } => position_row(position, *expected),
        StateChange::User { user, expected } => user_row(user, *expected),
        StateChange::Strategy { strategy, expected } => strategy_row(strategy, *expected),
        StateChange::DeleteStrategy {
            id,
            user_id,
            expected,
        } => Ok(RowWrite {
            entity: "strategy",
            table: "strategies",
            id: id.to_string(),
            key: vec![("user_id", Val::text(user_id)), ("id", Val::text(id))],
            cols: Vec::new(),
            mode: Mode::Delete {
                expected: *expected,
            },
            dup: None,
            children: Vec::new(),
        }),
        StateChange::Instrument {
            instrument,
            expected,
        } => instrument_row(instrument, *expected),
        StateChange::Alert { alert, expected } => alert_row(alert, *expected),
        StateChange::Silence { silence, expected } => silence_row(silence, *expected),
        StateChange::Notification { record, expected } => notification_row(record, *expected),
        StateChange::RuleOverride {
            rule_override,
            expected,
        } => rule_override_row(rule_override, *expected),
        StateChange::HighWater { mark, expected } => high_water_row(mark, *expected),
        StateChange::DeleteRuleOverride {
            rule,
            user_id,
            expected,
        } => Ok(RowWrite {
            entity: "rule_override",
            table: "alert_rule_overrides",
            id: format!("{rule}/{user_id}"),
            key: vec![("rule", Val::text(rule)), ("user_id", Val::text(user_id))],
            cols: Vec::new(),
            mode: Mode::Delete {
                expected: *expected,
            },
            dup: None,
            children: Vec::new(),
        }),
    }
}

fn order_row(o: &Order, expected: u64) -> Result<RowWrite, StoreError> {
    let id = o.id.to_string();
    Ok(RowWrite {
        entity: "order",
        table: "orders",
        mode: versioned("order", &id, expected, o.version)?,
        key: vec![("id", Val::Uuid(o.id.as_uuid()))],
        cols: vec![
            ("user_id", Val::text(&o.user_id)),
            ("client_order_id", Val::text(&o.client_order_id)),
            (
                "strategy_id",
                Val::OptText(o.strategy_id.as_ref().map(ToString::to_string)),
            ),
            ("instrument_id", Val::text(&o.instrument_id)),
            ("side", Val::text(o.side.as_str())),
            ("order_type", Val::text(o.order_type.as_str())),
            ("time_in_force", Val::text(o.time_in_force.as_str())),
            ("status", Val::text(o.status.as_str())),
            ("quantity", Val::Dec(o.quantity.get())),
            ("price", Val::OptDec(o.price.map(|p| p.get()))),
            (
                "trigger_price",
                Val::OptDec(o.trigger_price.map(|p| p.get())),
            ),
            ("filled_qty", Val::Dec(o.filled_qty.get())),
            ("leaves_qty", Val::Dec(o.leaves_qty().get())),
            ("avg_px", Val::OptDec(o.avg_px)),
            ("reason", Val::OptText(o.reason.clone())),
            ("created_at", Val::Ts(o.created_at)),
            ("updated_at", Val::Ts(o.updated_at)),
            ("version", Val::version(o.version)),
            ("data", json(o)?),
        ],
        dup: Some(("order", format!("{}/{}", o.user_id, o.client_order_id))),
        children: Vec::new(),
        id,
    })
}

fn fill_row(f: &Fill) -> Result<RowWrite, StoreError> {
    Ok(RowWrite {
        entity: "fill",
        table: "fills",
        id: format!("{}/{}", f.order_id, f.trade_id),
        key: Vec::new(),
        cols: vec![
            ("order_id", Val::Uuid(f.order_id.as_uuid())),
            ("trade_id", Val::text(&f.trade_id)),
            ("user_id", Val::text(&f.user_id)),
            ("instrument_id", Val::text(&f.instrument_id)),
            ("side", Val::text(f.side.as_str())),
            ("quantity", Val::Dec(f.quantity.get())),
            ("price", Val::Dec(f.price.get())),
            ("commission", Val::Dec(f.commission.amount)),
            ("commission_currency", Val::text(&f.commission.currency)),
            ("liquidity_side", name(&f.liquidity_side)?),
            ("ts_event", Val::Ts(f.ts_event)),
            ("data", json(f)?),
        ],
        mode: Mode::InsertOnly,
        dup: Some(("fill", format!("{}/{}", f.order_id, f.trade_id))),
        children: Vec::new(),
    })
}

/// The account's `data` JSON: every field but its reservations, which have
/// their own rows.
#[derive(Serialize)]
struct AccountDoc<'a> {
    user_id: &'a UserId,
    account_type: &'a AccountType,
    balances: &'a BTreeMap<Currency, Balance>,
    position_holds: &'a BTreeMap<InstrumentId, Quantity>,
    #[serde(with = "decimal_string")]
    high_water_mark: Decimal,
    version: u64,
    sequence: u64,
}

impl<'a> From<&'a Account> for AccountDoc<'a> {
    fn from(a: &'a Account) -> Self {
        Self {
            user_id: &a.user_id,
            account_type: &a.account_type,
            balances: &a.balances,
            position_holds: &a.position_holds,
            high_water_mark: a.high_water_mark,
            version: a.version,
            sequence: a.sequence,
        }
    }
}

/// One `account_reservations` row.
fn reservation_row(user: &UserId, r: &Reservation) -> Result<Vec<Val>, StoreError> {
    Ok(vec![
        Val::Uuid(r.order_id.as_uuid()),
        Val::text(user),
        json(r)?,
    ])
}

fn account_row(
    a: &Account,
    expected: u64,
    reservations: &ReservationWrite,
) -> Result<RowWrite, StoreError> {
    let id = a.user_id.to_string();
    let balances = a
        .balances
        .values()
        .map(|b| {
            vec![
                Val::text(&a.user_id),
                Val::text(&b.currency),
                Val::Dec(b.total),
                Val::Dec(b.reserved),
            ]
        })
        .collect();
    let user = || ("user_id", vec![Val::text(&a.user_id)]);
    let (rows, replaces) = match reservations {
        ReservationWrite::All => (
            a.reservations
                .values()
                .map(|r| reservation_row(&a.user_id, r))
                .collect::<Result<_, _>>()?,
            user(),
        ),
        ReservationWrite::Orders(ids) => (
            ids.iter()
                .filter_map(|id| a.reservations.get(id))
                .map(|r| reservation_row(&a.user_id, r))
                .collect::<Result<_, _>>()?,
            (
                "order_id",
                ids.iter().map(|id| Val::Uuid(id.as_uuid())).collect(),
            ),
        ),
    };
    Ok(RowWrite {
        entity: "account",
        table: "accounts",
        mode: versioned("account", &id, expected, a.version)?,
        key: vec![("user_id", Val::text(&a.user_id))],
        cols: vec![
            ("account_type", name(&a.account_type)?),
            ("high_water_mark", Val::Dec(a.high_water_mark)),
            ("version", Val::version(a.version)),
            ("data", json(&AccountDoc::from(a))?),
        ],
        dup: None,
        children: vec![
            Children {
                table: "account_balances",
                parent: ("user_id", Val::text(&a.user_id)),
                columns: BALANCE_COLUMNS,
                rows: balances,
                replaces: user(),
            },
            Children {
                table: "account_reservations",
                parent: ("user_id", Val::text(&a.user_id)),
                columns: RESERVATION_COLUMNS,
                rows,
                replaces,
            },
        ],
        id,
    })
}

fn position_row(p: &Position, expected: u64) -> Result<RowWrite, StoreError> {
    let id = position_aggregate_id(&p.user_id, &p.instrument_id);
    Ok(RowWrite {
        entity: "position",
        table: "positions",
        mode: versioned("position", &id, expected, p.version)?,
        key: vec![
            ("user_id", Val::text(&p.user_id)),
            ("instrument_id", Val::text(&p.instrument_id)),
        ],
        cols: vec![
            ("quote_currency", Val::text(&p.quote_currency)),
            ("quantity", Val::Dec(p.quantity)),
            ("cost", Val::Dec(p.cost)),
            ("realized_pnl", Val::Dec(p.realized_pnl)),
            ("commissions", Val::Dec(p.commissions)),
            ("last_mark", Val::OptDec(p.last_mark.map(|m| m.get()))),
            ("opened_at", Val::OptTs(p.opened_at)),
            ("closed_at", Val::OptTs(p.closed_at)),
            ("updated_at", Val::Ts(p.updated_at)),
            ("version", Val::version(p.version)),
            ("data", json(p)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn user_row(u: &User, expected: u64) -> Result<RowWrite, StoreError> {
    let id = u.id.to_string();
    Ok(RowWrite {
        entity: "user",
        table: "users",
        mode: versioned("user", &id, expected, u.version)?,
        key: vec![("id", Val::text(&u.id))],
        cols: vec![
            ("name", Val::text(&u.name)),
            ("status", Val::text(u.status.as_str())),
            ("role", Val::text(u.role.as_str())),
            ("account_type", name(&u.account_type)?),
            ("trading_state", name(&u.trading_state)?),
            ("version", Val::version(u.version)),
            ("created_at", Val::Ts(u.created_at)),
            ("updated_at", Val::Ts(u.updated_at)),
            ("data", json(u)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn strategy_row(s: &Strategy, expected: u64) -> Result<RowWrite, StoreError> {
    let id = s.id.to_string();
    Ok(RowWrite {
        entity: "strategy",
        table: "strategies",
        mode: versioned("strategy", &id, expected, s.version)?,
        key: vec![("user_id", Val::text(&s.user_id)), ("id", Val::text(&s.id))],
        cols: vec![
            ("strategy_type", Val::text(&s.strategy_type)),
            ("name", Val::text(&s.name)),
            ("status", Val::text(s.status.as_str())),
            ("version", Val::version(s.version)),
            ("created_at", Val::Ts(s.created_at)),
            ("updated_at", Val::Ts(s.updated_at)),
            ("data", json(s)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn instrument_row(i: &Instrument, expected: u64) -> Result<RowWrite, StoreError> {
    let id = i.id.to_string();
    Ok(RowWrite {
        entity: "instrument",
        table: "instruments",
        mode: versioned("instrument", &id, expected, i.version)?,
        key: vec![("id", Val::text(&i.id))],
        cols: vec![
            ("quote_currency", Val::text(&i.quote_currency)),
            ("tick_size", Val::Dec(i.tick_size.get())),
            ("lot_size", Val::Dec(i.lot_size.get())),
            ("min_quantity", Val::Dec(i.min_quantity.get())),
            ("max_quantity", Val::OptDec(i.max_quantity.map(|q| q.get()))),
            ("min_notional", Val::OptDec(i.min_notional)),
            ("multiplier", Val::Dec(i.multiplier)),
            ("version", Val::version(i.version)),
            ("data", json(i)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn alert_row(a: &Alert, expected: u64) -> Result<RowWrite, StoreError> {
    let id = a.id.to_string();
    Ok(RowWrite {
        entity: "alert",
        table: "alerts",
        mode: versioned("alert", &id, expected, a.version)?,
        key: vec![("id", Val::Uuid(a.id.as_uuid()))],
        cols: vec![
            ("fingerprint", Val::text(a.fingerprint)),
            ("rule", Val::text(&a.rule)),
            ("severity", name(&a.severity)?),
            ("state", name(&a.state)?),
            (
                "user_id",
                Val::OptText(a.user_id.as_ref().map(ToString::to_string)),
            ),
            ("acknowledged", Val::Bool(a.acknowledged)),
            ("silenced", Val::Bool(a.silenced)),
            ("starts_at", Val::Ts(a.starts_at)),
            ("ends_at", Val::OptTs(a.ends_at)),
            ("updated_at", Val::Ts(a.updated_at)),
            ("version", Val::version(a.version)),
            ("data", json(a)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn silence_row(s: &Silence, expected: u64) -> Result<RowWrite, StoreError> {
    let id = s.id.to_string();
    Ok(RowWrite {
        entity: "silence",
        table: "silences",
        mode: versioned("silence", &id, expected, s.version)?,
        key: vec![("id", Val::Uuid(s.id.as_uuid()))],
        cols: vec![
            (
                "user_id",
                Val::OptText(s.user_id.as_ref().map(ToString::to_string)),
            ),
            ("created_by", Val::text(&s.created_by)),
            ("starts_at", Val::Ts(s.starts_at)),
            ("ends_at", Val::Ts(s.ends_at)),
            ("created_at", Val::Ts(s.created_at)),
            ("updated_at", Val::Ts(s.updated_at)),
            ("version", Val::version(s.version)),
            ("data", json(s)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn notification_row(r: &NotificationRecord, expected: u64) -> Result<RowWrite, StoreError> {
    let id = r.id().to_string();
    Ok(RowWrite {
        entity: "notification",
        table: "notifications",
        mode: versioned("notification", &id, expected, r.version)?,
        key: vec![("id", Val::Uuid(r.id().as_uuid()))],
        cols: vec![
            ("receiver", Val::text(&r.notification.receiver)),
            ("group_id", Val::text(&r.group_id)),
            ("status", Val::text(r.status.as_str())),
            ("attempts", Val::Int(i64::from(r.attempts))),
            ("next_attempt_at", Val::Ts(r.next_attempt_at)),
            ("claimed_until", Val::OptTs(r.claimed_until)),
            ("created_at", Val::Ts(r.notification.created_at)),
            ("delivered_at", Val::OptTs(r.delivered_at)),
            ("version", Val::version(r.version)),
            ("data", json(r)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn rule_override_row(o: &RuleOverride, expected: u64) -> Result<RowWrite, StoreError> {
    let id = format!("{}/{}", o.rule, o.user_id);
    Ok(RowWrite {
        entity: "rule_override",
        table: "alert_rule_overrides",
        mode: versioned("rule_override", &id, expected, o.version)?,
        key: vec![
            ("rule", Val::text(&o.rule)),
            ("user_id", Val::text(&o.user_id)),
        ],
        cols: vec![
            ("updated_at", Val::Ts(o.updated_at)),
            ("version", Val::version(o.version)),
            ("data", json(o)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

fn high_water_row(m: &HighWaterMark, expected: u64) -> Result<RowWrite, StoreError> {
    let id = m.user_id.to_string();
    Ok(RowWrite {
        entity: "high_water_mark",
        table: "high_water_marks",
        mode: versioned("high_water_mark", &id, expected, m.version)?,
        key: vec![("user_id", Val::text(&m.user_id))],
        cols: vec![
            ("currency", Val::text(&m.currency)),
            ("value", Val::Dec(m.value)),
            ("updated_at", Val::Ts(m.updated_at)),
            ("version", Val::version(m.version)),
            ("data", json(m)?),
        ],
        dup: None,
        children: Vec::new(),
        id,
    })
}

/// The `events` row of an event at a global position. `json` is the event's
/// JSON when the caller has it already (its outbox message carries the same
/// text), so an event is serialized once per commit, not twice.
pub(crate) fn event_row(
    position: i64,
    e: &DomainEvent,
    json_text: Option<&str>,
) -> Result<Vec<Val>, StoreError> {
    let data = match json_text {
        Some(t) => Val::text(t),
        None => json(e)?,
    };
    Ok(vec![
        Val::Int(position),
        Val::Uuid(e.event_id.as_uuid()),
        Val::text(e.aggregate_type.as_str()),
        Val::text(&e.aggregate_id),
        Val::version(e.sequence),
        Val::text(&e.event_type),
        Val::OptText(e.user_id.as_ref().map(ToString::to_string)),
        Val::Ts(e.occurred_at),
        Val::OptUuid(e.correlation_id),
        data,
    ])
}

/// The `outbox` row of a message under its id.
pub(crate) fn outbox_row(id: i64, m: &OutboxMessage) -> Vec<Val> {
    vec![
        Val::Int(id),
        Val::Uuid(m.event_id.as_uuid()),
        Val::text(&m.topic),
        Val::text(&m.key),
        Val::text(&m.payload),
        Val::Ts(m.created_at),
        Val::OptText(m.traceparent.clone()),
    ]
}
