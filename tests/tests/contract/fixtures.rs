//! Test data: orders, users, strategies, accounts, the alerting model's
//! entities, and the batches that commit them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use ordermon_domain::account::{Account, AccountType};
use ordermon_domain::alert::{
    Alert, MatchOp, Matcher, Notification, NotificationKind, NotificationRecord, RuleOverride,
    Severity, Silence,
};
use ordermon_domain::event::{DomainEvent, EventPayload};
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{
    ClientOrderId, InstrumentId, NotificationId, OrderId, RuleName, SilenceId, TradeId, UserId,
};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, BarInterval};
use ordermon_domain::order::{NewOrder, Order, OrderEvent, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ChangeSet, StateChange};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;
use ordermon_domain::user::User;
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;

/// The smallest amount a column must keep.
pub(crate) const TINY: Decimal = dec!(0.000000000000000001);
/// A large amount with many places.
pub(crate) const BIG: Decimal = dec!(123456789012.123456789);

pub(crate) fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

pub(crate) fn iid(s: &str) -> InstrumentId {
    InstrumentId::new(s).unwrap()
}

pub(crate) fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

/// A new limit order (version 1, ready to insert).
pub(crate) fn order_with(
    user: &str,
    cid: &str,
    instrument: &str,
    qty: Decimal,
    px: Decimal,
    at: DateTime<Utc>,
) -> Order {
    let new = NewOrder {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        user_id: uid(user),
        strategy_id: None,
        instrument_id: iid(instrument),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: Quantity::new(qty).unwrap(),
        price: Some(Price::new(px).unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    };
    let (mut order, _) = Order::create(OrderId::generate(), new, at).unwrap();
    order.version = 1;
    order
}

pub(crate) fn order(user: &str, cid: &str) -> Order {
    order_with(user, cid, "ACME.SIM", dec!(10), dec!(10.25), Utc::now())
}

fn event(order: &Order, e: OrderEvent, at: DateTime<Utc>) -> DomainEvent {
    DomainEvent::new(
        order.id.to_string(),
        order.sequence,
        Some(order.user_id.clone()),
        at,
        None,
        EventPayload::Order(e),
    )
}

/// The batch that creates an order: the row, its `Initialized` event, its outbox row.
pub(crate) fn created(order: &Order) -> ChangeSet {
    let mut initial = order.clone();
    initial.version = 0;
    let e = event(
        order,
        OrderEvent::Initialized {
            order: Box::new(initial),
        },
        order.created_at,
    );
    let mut batch = ChangeSet {
        changes: vec![StateChange::Order {
            order: Box::new(order.clone()),
            expected: 0,
        }],
        ..ChangeSet::default()
    };
    batch.push_events([e]).unwrap();
    batch
}

/// Applies an event to an order and returns the new state and its batch.
pub(crate) fn advance(order: &Order, e: OrderEvent) -> (Order, ChangeSet) {
    let at = order.updated_at + Duration::nanoseconds(1_234_567);
    let mut next = order.clone();
    next.apply(&e, at).unwrap();
    next.version = order.version + 1;
    let ev = event(&next, e, at);
    let mut batch = ChangeSet {
        changes: vec![StateChange::Order {
            order: Box::new(next.clone()),
            expected: order.version,
        }],
        ..ChangeSet::default()
    };
    batch.push_events([ev]).unwrap();
    (next, batch)
}

/// A batch with only a state row.
pub(crate) fn only(change: StateChange) -> ChangeSet {
    ChangeSet {
        changes: vec![change],
        ..ChangeSet::default()
    }
}

pub(crate) fn fill(order: &Order, trade: &str, qty: Decimal, px: Decimal) -> Fill {
    Fill {
        trade_id: TradeId::new(trade).unwrap(),
        order_id: order.id,
        user_id: order.user_id.clone(),
        instrument_id: order.instrument_id.clone(),
        side: order.side,
        quantity: Quantity::new(qty).unwrap(),
        price: Price::new(px).unwrap(),
        commission: Money::new(TINY, usd()).unwrap(),
        liquidity_side: LiquiditySide::Taker,
        ts_event: Utc::now(),
    }
}

pub(crate) fn user(id: &str) -> User {
    let now = Utc::now();
    serde_json::from_value(json!({
        "id": id, "name": format!("User {id}"), "status": "active", "role": "trader",
        "created_at": now, "updated_at": now, "version": 1,
    }))
    .unwrap()
}

pub(crate) fn strategy(id: &str, user: &str) -> Strategy {
    let now = Utc::now();
    serde_json::from_value(json!({
        "id": id, "user_id": user, "type": "twap", "name": "slicer",
        "instruments": ["ACME.SIM"], "params": {"slices": 4}, "status": "enabled",
        "created_at": now, "updated_at": now, "version": 1,
    }))
    .unwrap()
}

pub(crate) fn instrument(id: &str) -> Instrument {
    serde_json::from_value(json!({
        "id": id, "quote_currency": "USD", "tick_size": "0.000000000000000001",
        "lot_size": "0.000000000000000001", "min_quantity": "0.000000000000000001",
        "max_quantity": "123456789012.123456789", "min_notional": "0.5", "multiplier": "1",
        "version": 1,
    }))
    .unwrap()
}

/// An account holding `total` with `reserved` of it held back.
pub(crate) fn account(user: &str, total: Decimal, reserved: Decimal) -> Account {
    let mut a = Account::new(uid(user), AccountType::Cash);
    a.adjust_cash(&Money::new(total, usd()).unwrap()).unwrap();
    if let Some(b) = a.balances.get_mut(&usd()) {
        b.reserved = reserved;
    }
    a.high_water_mark = BIG;
    a.version = 1;
    a
}

pub(crate) fn position(user: &str, instrument: &str, qty: Decimal, cost: Decimal) -> Position {
    let mut p = Position::flat(uid(user), iid(instrument), usd(), Decimal::ONE, Utc::now());
    p.quantity = qty;
    p.cost = cost;
    p.realized_pnl = -TINY;
    p.last_mark = Some(Price::new(BIG).unwrap());
    p.opened_at = Some(Utc::now());
    p.version = 1;
    p
}

pub(crate) fn alert(rule: &str, user: Option<&str>) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("user_id".to_owned(), user.unwrap_or("-").to_owned());
    let mut a = Alert::new(
        RuleName::new(rule).unwrap(),
        Severity::Warning,
        labels,
        BTreeMap::new(),
        user.map(uid),
        Duration::zero(),
        Utc::now(),
    );
    a.version = 1;
    a
}

/// A one-minute bar at `minute` minutes after a fixed hour.
pub(crate) fn bar(instrument: &str, minute: i64, close: Decimal) -> Bar {
    let base = DateTime::parse_from_rfc3339("2026-01-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let open_time = (base + Duration::minutes(minute))
        .duration_trunc(Duration::minutes(1))
        .unwrap();
    Bar {
        instrument_id: iid(instrument),
        interval: BarInterval::M1,
        open_time,
        open: Price::new(BIG).unwrap(),
        high: Price::new(BIG).unwrap(),
        low: Price::new(TINY).unwrap(),
        close: Price::new(close).unwrap(),
        volume: TINY,
    }
}

/// A fixed instant, whole seconds: stored timestamp columns keep microseconds
/// (PostgreSQL, MySQL), so times the stores compare are built from it.
pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// `t0` plus whole seconds.
pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

pub(crate) fn rule(name: &str) -> RuleName {
    RuleName::new(name).unwrap()
}

/// A silence of `user` (an admin's when `None`) for `[starts, ends)` seconds
/// after `t0` (version 1).
pub(crate) fn silence(user: Option<&str>, starts: i64, ends: i64) -> Silence {
    Silence {
        id: SilenceId::generate(),
        matchers: vec![
            Matcher::eq("rule", "stuck_order").unwrap(),
            Matcher::new("instrument_id", MatchOp::Regex, "ACME\\..*").unwrap(),
            Matcher::new("venue", MatchOp::NotEq, "LIVE").unwrap(),
        ],
        starts_at: at(starts),
        ends_at: at(ends),
        created_by: "ops-on-call".to_owned(),
        comment: "maintenance — venue restart ✓".to_owned(),
        user_id: user.map(uid),
        created_at: at(starts),
        updated_at: at(starts),
        version: 1,
    }
}

/// An alert of `rule` with a severity, a tenant and a state (version 1).
pub(crate) fn alert_of(
    rule_name: &str,
    severity: Severity,
    user: Option<&str>,
    state: ordermon_domain::alert::AlertState,
) -> Alert {
    let mut a = alert(rule_name, user);
    a.severity = severity;
    a.state = state;
    a
}

/// A pending notification record of `receiver` and `group`, created (and due)
/// `created` seconds after `t0` (version 1).
pub(crate) fn notification(receiver: &str, group: &str, created: i64) -> NotificationRecord {
    let mut firing = alert("stuck_order", Some("alice"));
    firing.value = Some("42.5".to_owned());
    firing
        .annotations
        .insert("summary".to_owned(), "order stuck for 5m".to_owned());
    let mut group_labels = BTreeMap::new();
    group_labels.insert("rule".to_owned(), "stuck_order".to_owned());
    group_labels.insert("user_id".to_owned(), "alice".to_owned());
    let n = Notification {
        id: NotificationId::generate(),
        receiver: receiver.to_owned(),
        group_key: format!("{{}}/{{rule=\"stuck_order\"}}:{{user_id=\"{group}\"}}"),
        group_labels,
        kind: NotificationKind::Update,
        alerts: vec![firing],
        truncated_alerts: 0,
        created_at: at(created),
    };
    NotificationRecord::pending(n, group.to_owned())
}

/// `user`'s override of `rule` (version 1).
pub(crate) fn rule_override(rule_name: &str, user: &str) -> RuleOverride {
    RuleOverride {
        rule: rule(rule_name),
        user_id: uid(user),
        enabled: Some(true),
        threshold: Some(dec!(25.000000000000000001)),
        for_duration: Some(std::time::Duration::from_secs(90)),
        severity: Some(Severity::Critical),
        updated_by: "root".to_owned(),
        updated_at: at(0),
        version: 1,
    }
}

/// The batch writing a silence over `expected`.
pub(crate) fn put_silence(s: &Silence, expected: u64) -> ChangeSet {
    only(StateChange::Silence {
        silence: Box::new(s.clone()),
        expected,
    })
}

/// The batch writing a notification record over `expected`.
pub(crate) fn put_notification(r: &NotificationRecord, expected: u64) -> ChangeSet {
    only(StateChange::Notification {
        record: Box::new(r.clone()),
        expected,
    })
}

/// The batch writing a rule override over `expected`.
pub(crate) fn put_override(o: &RuleOverride, expected: u64) -> ChangeSet {
    only(StateChange::RuleOverride {
        rule_override: Box::new(o.clone()),
        expected,
    })
}

/// The batch writing an alert over `expected`.
pub(crate) fn put_alert(a: &Alert, expected: u64) -> ChangeSet {
    only(StateChange::Alert {
        alert: Box::new(a.clone()),
        expected,
    })
}
