//! Test data: orders, users, strategies, accounts and the batches that commit them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use ordermon_domain::account::{Account, AccountType};
use ordermon_domain::alert::{Alert, Severity};
use ordermon_domain::event::{DomainEvent, EventPayload};
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, RuleName, TradeId, UserId};
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
    let mut a = Alert::raise(
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
