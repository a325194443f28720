//! Unit tests for the order transition table and aggregate.
//!
//! `table` checks every cell of the 12 × 14 table and renders it for the
//! architecture document; `lifecycle` covers the surprising edges (pending memory,
//! late fills, duplicates, overfills, stops); `shape` covers validation, replay
//! and the JSON form of events.

mod lifecycle;
mod shape;
mod table;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::fill::{Fill, LiquiditySide};
use crate::risk::DeniedReason;
use crate::values::{Currency, Money};

/// A fixed start time so every run builds identical orders.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 2, 9, 30, 0).unwrap()
}

/// `t0` plus some seconds.
fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

fn qty(d: Decimal) -> Quantity {
    Quantity::new(d).unwrap()
}

fn px(d: Decimal) -> Price {
    Price::new(d).unwrap()
}

/// A valid request of the given type: buy 10 ACME.SIM, limit 10.00, trigger 9.50.
fn request(order_type: OrderType) -> NewOrder {
    NewOrder {
        client_order_id: ClientOrderId::new("c-1").unwrap(),
        user_id: UserId::new("alice").unwrap(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side: Side::Buy,
        order_type,
        quantity: qty(dec!(10)),
        price: order_type.has_price().then(|| px(dec!(10.00))),
        trigger_price: order_type.has_trigger().then(|| px(dec!(9.50))),
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    }
}

/// A freshly created order of the given type (status `initialized`).
fn create(order_type: OrderType) -> Order {
    let id = OrderId::generate();
    let (order, event) = Order::create(id, request(order_type), t0()).unwrap();
    assert_eq!(
        event,
        OrderEvent::Initialized {
            order: Box::new(order.clone())
        }
    );
    order
}

/// A fill of `q` at `p` for `order`, with the given trade id.
fn fill_of(order: &Order, trade_id: &str, q: Decimal, p: Decimal) -> OrderEvent {
    OrderEvent::Filled {
        fill: Fill {
            trade_id: TradeId::new(trade_id).unwrap(),
            order_id: order.id,
            user_id: order.user_id.clone(),
            instrument_id: order.instrument_id.clone(),
            side: order.side,
            quantity: qty(q),
            price: px(p),
            commission: Money::new(dec!(0.01), Currency::new("USD").unwrap()).unwrap(),
            liquidity_side: LiquiditySide::Taker,
            ts_event: t0(),
        },
    }
}

/// Applies an event that must be accepted.
fn step(order: &mut Order, event: &OrderEvent) {
    let before = order.status;
    let result = order.apply(event, at(1));
    assert_eq!(
        result,
        Ok(Applied::Changed),
        "{before} + {} should be accepted",
        event.kind()
    );
}

/// Applies a fill of `q` at `p`, which must be accepted.
fn fill(order: &mut Order, trade_id: &str, q: Decimal, p: Decimal) {
    let event = fill_of(order, trade_id, q, p);
    step(order, &event);
}

/// Applies the representative event of `kind` (see [`event_of`]), which must be accepted.
fn step_kind(order: &mut Order, kind: OrderEventKind) {
    let event = event_of(kind, order);
    step(order, &event);
}

/// A representative event of each kind for `order`: fills are one unit with a
/// fresh trade id; updates raise the quantity to 12 and move the limit price.
fn event_of(kind: OrderEventKind, order: &Order) -> OrderEvent {
    match kind {
        OrderEventKind::Initialized => OrderEvent::Initialized {
            order: Box::new(order.clone()),
        },
        OrderEventKind::Denied => OrderEvent::Denied {
            reason: DeniedReason::InsufficientFunds,
        },
        OrderEventKind::Submitted => OrderEvent::Submitted,
        OrderEventKind::Accepted => OrderEvent::Accepted {
            venue_order_id: Some("v-1".to_owned()),
        },
        OrderEventKind::Rejected => OrderEvent::Rejected {
            reason: "venue says no".to_owned(),
        },
        OrderEventKind::Canceled => OrderEvent::Canceled,
        OrderEventKind::Expired => OrderEvent::Expired,
        OrderEventKind::Triggered => OrderEvent::Triggered,
        OrderEventKind::PendingUpdate => OrderEvent::PendingUpdate,
        OrderEventKind::PendingCancel => OrderEvent::PendingCancel,
        OrderEventKind::ModifyRejected => OrderEvent::ModifyRejected {
            reason: "too late to modify".to_owned(),
        },
        OrderEventKind::CancelRejected => OrderEvent::CancelRejected {
            reason: "too late to cancel".to_owned(),
        },
        OrderEventKind::Updated => OrderEvent::Updated {
            quantity: Some(qty(dec!(12))),
            price: order.order_type.has_price().then(|| px(dec!(10.50))),
            trigger_price: None,
        },
        OrderEventKind::Filled => fill_of(order, "t-new", dec!(1), dec!(10)),
    }
}

/// An order of `order_type` driven through real events into `status`. Pending
/// statuses are entered from `accepted`; `partially_filled` has 4 of 10 filled;
/// `triggered` needs a stop type.
fn order_in_type(status: OrderStatus, order_type: OrderType) -> Order {
    use OrderStatus as S;
    let mut o = create(order_type);
    let path: &[OrderEventKind] = match status {
        S::Initialized => &[],
        S::Denied => &[OrderEventKind::Denied],
        S::Submitted => &[OrderEventKind::Submitted],
        S::Accepted => &[OrderEventKind::Submitted, OrderEventKind::Accepted],
        S::Rejected => &[OrderEventKind::Submitted, OrderEventKind::Rejected],
        S::Canceled => &[
            OrderEventKind::Submitted,
            OrderEventKind::Accepted,
            OrderEventKind::Canceled,
        ],
        S::Expired => &[
            OrderEventKind::Submitted,
            OrderEventKind::Accepted,
            OrderEventKind::Expired,
        ],
        S::Triggered => &[
            OrderEventKind::Submitted,
            OrderEventKind::Accepted,
            OrderEventKind::Triggered,
        ],
        S::PendingUpdate => &[
            OrderEventKind::Submitted,
            OrderEventKind::Accepted,
            OrderEventKind::PendingUpdate,
        ],
        S::PendingCancel => &[
            OrderEventKind::Submitted,
            OrderEventKind::Accepted,
            OrderEventKind::PendingCancel,
        ],
        S::PartiallyFilled | S::Filled => &[OrderEventKind::Submitted, OrderEventKind::Accepted],
    };
    for kind in path {
        step_kind(&mut o, *kind);
    }
    match status {
        S::PartiallyFilled => fill(&mut o, "t-4", dec!(4), dec!(10)),
        S::Filled => fill(&mut o, "t-10", dec!(10), dec!(10)),
        _ => {}
    }
    assert_eq!(o.status, status, "fixture for {status}");
    o
}

/// A stop-limit order in `status` (stop, so `triggered` is reachable).
fn order_in(status: OrderStatus) -> Order {
    order_in_type(status, OrderType::StopLimit)
}
