//! Tests of the monitor's health checks, and the slots and quotes the
//! monitor's tests share.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{Duration, Utc};
use ordermon_domain::event::MonitorEvent;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::market::Quote;
use ordermon_domain::order::{
    NewOrder, Order, OrderEvent, OrderStatus, OrderType, Side, TimeInForce,
};
use ordermon_domain::values::{Price, Quantity};
use tokio::sync::mpsc;

use super::health;
use crate::error::FieldError;
use crate::owner::lanes::{Running, Slot};
use crate::owner::{Command, MonitorConfig};
use crate::strategy::Strategy;

#[derive(Debug)]
struct Nop;

impl Strategy for Nop {
    fn update_params(&mut self, _: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// A running slot of a strategy that does nothing, and the mailbox its lane
/// would hand decisions to (kept open while the test runs).
pub(super) fn slot() -> (Arc<Slot>, mpsc::Receiver<Command>) {
    let (tx, rx) = mpsc::channel(1);
    let slot = Slot::new(
        StrategyId::new("s1").unwrap(),
        UserId::new("alice").unwrap(),
        tx.downgrade(),
        Running::new(Box::new(Nop), Utc::now()),
        Arc::default(),
    );
    (slot, rx)
}

pub(super) fn quote(instrument: &str) -> Quote {
    Quote {
        instrument_id: InstrumentId::new(instrument).unwrap(),
        bid: Price::from_str("99").unwrap(),
        ask: Price::from_str("101").unwrap(),
        bid_size: Quantity::from_str("1").unwrap(),
        ask_size: Quantity::from_str("1").unwrap(),
        ts: Utc::now(),
    }
}

fn submitted_order(cid: &str) -> Order {
    let new = NewOrder {
        user_id: UserId::new("alice").unwrap(),
        client_order_id: ClientOrderId::new(cid).unwrap(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: Quantity::from_str("1").unwrap(),
        price: Some(Price::from_str("1").unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        post_only: false,
        reduce_only: false,
    };
    let now = Utc::now();
    let (mut order, _) = Order::create(OrderId::generate(), new, now).unwrap();
    order.apply(&OrderEvent::Submitted, now).unwrap();
    order
}

#[test]
fn a_strategy_that_keeps_failing_is_suspended_for_longer_each_time() {
    let cfg = MonitorConfig {
        max_restarts_per_minute: 2,
        ..MonitorConfig::default()
    };
    let (slot, _rx) = slot();
    let mut st = slot.state.lock();
    let t0 = Utc::now();
    assert_eq!(health::note_failure(&mut st.run, t0, &cfg), 1);
    assert_eq!(health::note_failure(&mut st.run, t0, &cfg), 2);
    assert!(!st.run.suspended(t0), "within the limit: restarted at once");
    assert_eq!(health::note_failure(&mut st.run, t0, &cfg), 3);
    assert_eq!(st.run.suspended_until, Some(t0 + Duration::seconds(2)));
    assert_eq!(health::note_failure(&mut st.run, t0, &cfg), 4);
    assert_eq!(st.run.suspended_until, Some(t0 + Duration::seconds(4)));
    // A minute later the earlier failures no longer count.
    let later = t0 + Duration::seconds(61);
    assert_eq!(health::note_failure(&mut st.run, later, &cfg), 1);
}

#[test]
fn a_silent_strategy_is_reported_once_and_again_when_it_resumes() {
    let cfg = MonitorConfig::default();
    let (slot, _rx) = slot();
    let id = slot.strategy_id.clone();
    let start = slot.state.lock().run.last_beat;
    let running = BTreeMap::from([(id.clone(), slot.clone())]);
    let late = start + Duration::seconds(61);
    let events = health::silent_strategies(&running, late, &cfg);
    assert!(matches!(
        events.as_slice(),
        [MonitorEvent::StrategyHeartbeatMissing { strategy_id, silent_secs: 61 }] if *strategy_id == id
    ));
    assert!(health::silent_strategies(&running, late, &cfg).is_empty());
    slot.state.lock().run.beat(late);
    let events = health::silent_strategies(&running, late, &cfg);
    assert!(matches!(
        events.as_slice(),
        [MonitorEvent::StrategyHeartbeatResumed { strategy_id }] if *strategy_id == id
    ));
}

#[test]
fn an_order_the_venue_does_not_answer_is_reported_once() {
    let cfg = MonitorConfig::default();
    let order = submitted_order("c1");
    let (id, since) = (order.id, order.updated_at);
    let orders = HashMap::from([(id, order)]);
    let mut reported = HashSet::new();
    assert!(
        health::stuck_orders(&mut reported, &orders, since + Duration::seconds(30), &cfg)
            .is_empty()
    );
    let events = health::stuck_orders(&mut reported, &orders, since + Duration::seconds(31), &cfg);
    assert!(matches!(
        events.as_slice(),
        [MonitorEvent::StuckOrder { order_id, status: OrderStatus::Submitted, waited_secs: 31 }] if *order_id == id
    ));
    assert!(
        health::stuck_orders(&mut reported, &orders, since + Duration::seconds(90), &cfg)
            .is_empty()
    );
}
