//! Request validation, modification checks, replay from history and the JSON
//! form of order events.

use rstest::rstest;

use super::*;
use OrderEventKind as E;
use OrderStatus as S;

#[rstest]
#[case::limit_ok(OrderType::Limit, |_: &mut NewOrder| {}, Ok(()))]
#[case::market_ok(OrderType::Market, |_: &mut NewOrder| {}, Ok(()))]
#[case::stop_market_ok(OrderType::StopMarket, |_: &mut NewOrder| {}, Ok(()))]
#[case::stop_limit_ok(OrderType::StopLimit, |_: &mut NewOrder| {}, Ok(()))]
#[case::zero_quantity(OrderType::Limit, |n: &mut NewOrder| n.quantity = Quantity::ZERO, Err(OrderError::ZeroQuantity))]
#[case::limit_without_price(
    OrderType::Limit,
    |n: &mut NewOrder| n.price = None,
    Err(OrderError::MissingPrice(OrderType::Limit))
)]
#[case::stop_limit_without_price(
    OrderType::StopLimit,
    |n: &mut NewOrder| n.price = None,
    Err(OrderError::MissingPrice(OrderType::StopLimit))
)]
#[case::market_with_price(
    OrderType::Market,
    |n: &mut NewOrder| n.price = Some(px(dec!(10))),
    Err(OrderError::UnexpectedPrice(OrderType::Market))
)]
#[case::stop_market_with_price(
    OrderType::StopMarket,
    |n: &mut NewOrder| n.price = Some(px(dec!(10))),
    Err(OrderError::UnexpectedPrice(OrderType::StopMarket))
)]
#[case::stop_market_without_trigger(
    OrderType::StopMarket,
    |n: &mut NewOrder| n.trigger_price = None,
    Err(OrderError::MissingTrigger(OrderType::StopMarket))
)]
#[case::stop_limit_without_trigger(
    OrderType::StopLimit,
    |n: &mut NewOrder| n.trigger_price = None,
    Err(OrderError::MissingTrigger(OrderType::StopLimit))
)]
#[case::limit_with_trigger(
    OrderType::Limit,
    |n: &mut NewOrder| n.trigger_price = Some(px(dec!(9))),
    Err(OrderError::UnexpectedTrigger(OrderType::Limit))
)]
#[case::market_with_trigger(
    OrderType::Market,
    |n: &mut NewOrder| n.trigger_price = Some(px(dec!(9))),
    Err(OrderError::UnexpectedTrigger(OrderType::Market))
)]
#[case::gtd_without_expiry(
    OrderType::Limit,
    |n: &mut NewOrder| n.time_in_force = TimeInForce::Gtd,
    Err(OrderError::ExpireAt)
)]
#[case::gtc_with_expiry(
    OrderType::Limit,
    |n: &mut NewOrder| n.expire_at = Some(at(3600)),
    Err(OrderError::ExpireAt)
)]
#[case::day_with_expiry(
    OrderType::Market,
    |n: &mut NewOrder| { n.time_in_force = TimeInForce::Day; n.expire_at = Some(at(3600)); },
    Err(OrderError::ExpireAt)
)]
#[case::gtd_in_the_past(
    OrderType::Limit,
    |n: &mut NewOrder| { n.time_in_force = TimeInForce::Gtd; n.expire_at = Some(at(-1)); },
    Err(OrderError::ExpireAtPast)
)]
#[case::gtd_now(
    OrderType::Limit,
    |n: &mut NewOrder| { n.time_in_force = TimeInForce::Gtd; n.expire_at = Some(t0()); },
    Err(OrderError::ExpireAtPast)
)]
#[case::gtd_in_the_future(
    OrderType::Limit,
    |n: &mut NewOrder| { n.time_in_force = TimeInForce::Gtd; n.expire_at = Some(at(1)); },
    Ok(())
)]
#[case::post_only_limit_gtc(OrderType::Limit, |n: &mut NewOrder| n.post_only = true, Ok(()))]
#[case::post_only_market(OrderType::Market, |n: &mut NewOrder| n.post_only = true, Err(OrderError::PostOnly))]
#[case::post_only_stop_limit(
    OrderType::StopLimit,
    |n: &mut NewOrder| n.post_only = true,
    Err(OrderError::PostOnly)
)]
#[case::post_only_ioc(
    OrderType::Limit,
    |n: &mut NewOrder| { n.post_only = true; n.time_in_force = TimeInForce::Ioc; },
    Err(OrderError::PostOnly)
)]
#[case::post_only_fok(
    OrderType::Limit,
    |n: &mut NewOrder| { n.post_only = true; n.time_in_force = TimeInForce::Fok; },
    Err(OrderError::PostOnly)
)]
#[case::post_only_day(
    OrderType::Limit,
    |n: &mut NewOrder| { n.post_only = true; n.time_in_force = TimeInForce::Day; },
    Ok(())
)]
fn new_order_validation(
    #[case] order_type: OrderType,
    #[case] edit: impl Fn(&mut NewOrder),
    #[case] expected: Result<(), OrderError>,
) {
    let mut new = request(order_type);
    edit(&mut new);
    assert_eq!(new.validate(t0()), expected);
    // `create` runs the same checks and builds nothing on error.
    let created = Order::create(OrderId::generate(), new, t0());
    assert_eq!(
        created.map(|(o, _)| o.status),
        expected.map(|()| S::Initialized)
    );
}

#[rstest]
#[case::below_filled(
    OrderType::Limit, S::PartiallyFilled, Some(dec!(3)), None, None,
    Err(OrderError::QuantityBelowFilled { new: dec!(3), filled: dec!(4) })
)]
#[case::equal_to_filled(
    OrderType::Limit, S::PartiallyFilled, Some(dec!(4)), None, None,
    Err(OrderError::QuantityBelowFilled { new: dec!(4), filled: dec!(4) })
)]
#[case::zero(
    OrderType::Limit, S::Accepted, Some(dec!(0)), None, None,
    Err(OrderError::QuantityBelowFilled { new: dec!(0), filled: dec!(0) })
)]
#[case::price_on_market(
    OrderType::Market, S::Accepted, None, Some(dec!(11)), None,
    Err(OrderError::InvalidUpdate("this order type has no price"))
)]
#[case::price_on_stop_market(
    OrderType::StopMarket, S::Accepted, None, Some(dec!(11)), None,
    Err(OrderError::InvalidUpdate("this order type has no price"))
)]
#[case::trigger_on_limit(
    OrderType::Limit, S::Accepted, None, None, Some(dec!(9)),
    Err(OrderError::InvalidUpdate("this order type has no trigger_price"))
)]
#[case::reduce_above_filled(OrderType::Limit, S::PartiallyFilled, Some(dec!(5)), None, None, Ok(()))]
#[case::grow(OrderType::Limit, S::Accepted, Some(dec!(20)), Some(dec!(9.99)), None, Ok(()))]
#[case::move_trigger(OrderType::StopLimit, S::Accepted, None, Some(dec!(9.8)), Some(dec!(9.7)), Ok(()))]
fn update_validation(
    #[case] order_type: OrderType,
    #[case] status: OrderStatus,
    #[case] quantity: Option<Decimal>,
    #[case] price: Option<Decimal>,
    #[case] trigger_price: Option<Decimal>,
    #[case] expected: Result<(), OrderError>,
) {
    let event = OrderEvent::Updated {
        quantity: quantity.map(qty),
        price: price.map(px),
        trigger_price: trigger_price.map(px),
    };
    // Venue-side amend of a working order, and the reply to our own modify.
    for via_pending in [false, true] {
        let mut o = order_in_type(status, order_type);
        if via_pending {
            step(&mut o, &OrderEvent::PendingUpdate);
        }
        let before = o.clone();
        let result = o.apply(&event, at(20));
        assert_eq!(result.map(|_| ()), expected);
        match expected {
            Ok(()) => {
                assert_eq!(o.status, status, "back to (or still in) the working status");
                assert_eq!(o.quantity, quantity.map_or(before.quantity, qty));
                assert_eq!(o.price, price.map(px).or(before.price));
                assert_eq!(
                    o.trigger_price,
                    trigger_price.map(px).or(before.trigger_price)
                );
            }
            // Still pending when it was; nothing changed.
            Err(_) => assert_eq!(o, before),
        }
    }
}

/// Records each applied event with its time, as the event log would.
struct History {
    order: Order,
    events: Vec<TimedOrderEvent>,
}

impl History {
    fn new(order_type: OrderType) -> Self {
        let (order, init) = Order::create(OrderId::generate(), request(order_type), t0()).unwrap();
        Self {
            order,
            events: vec![TimedOrderEvent {
                at: t0(),
                event: init,
            }],
        }
    }

    fn push(&mut self, event: OrderEvent) {
        let when = at(i64::try_from(self.events.len()).unwrap());
        self.order.apply(&event, when).unwrap();
        self.events.push(TimedOrderEvent { at: when, event });
    }
}

#[test]
fn replay_rebuilds_the_same_order() {
    let mut h = History::new(OrderType::StopLimit);
    let o = h.order.clone();
    for event in [
        OrderEvent::Submitted,
        event_of(E::PendingCancel, &o),
        event_of(E::Accepted, &o),
        event_of(E::CancelRejected, &o),
        OrderEvent::Triggered,
        fill_of(&o, "t-1", dec!(3), dec!(10)),
        OrderEvent::PendingUpdate,
        fill_of(&o, "t-2", dec!(2), dec!(9.95)),
        event_of(E::Updated, &o),
        // A repeated execution in the history is harmless.
        fill_of(&o, "t-2", dec!(2), dec!(9.95)),
        OrderEvent::PendingCancel,
        OrderEvent::Canceled,
        fill_of(&o, "t-3", dec!(1), dec!(10)),
    ] {
        h.push(event);
    }
    assert_eq!(h.order.status, S::Canceled);
    assert_eq!(h.order.filled_qty, qty(dec!(6)));
    assert_eq!(h.order.quantity, qty(dec!(12)));
    let rebuilt = Order::replay(&h.events);
    assert_eq!(rebuilt.as_ref(), Some(&h.order));

    // The history survives the event log's JSON.
    let json = serde_json::to_string(&h.events).unwrap();
    let back: Vec<TimedOrderEvent> = serde_json::from_str(&json).unwrap();
    assert_eq!(Order::replay(&back), Some(h.order));
}

#[test]
fn replay_refuses_malformed_histories() {
    let mut h = History::new(OrderType::Limit);
    h.push(OrderEvent::Submitted);
    assert!(Order::replay(&[]).is_none());
    assert!(
        Order::replay(&h.events[1..]).is_none(),
        "must start with initialized"
    );
    let mut bad = h.events.clone();
    bad.push(TimedOrderEvent {
        at: at(9),
        event: OrderEvent::Submitted,
    });
    assert!(
        Order::replay(&bad).is_none(),
        "an illegal step breaks the replay"
    );
}

#[rstest]
fn every_event_round_trips_through_json(
    #[values(
        E::Initialized,
        E::Denied,
        E::Submitted,
        E::Accepted,
        E::Rejected,
        E::Canceled,
        E::Expired,
        E::Triggered,
        E::PendingUpdate,
        E::PendingCancel,
        E::ModifyRejected,
        E::CancelRejected,
        E::Updated,
        E::Filled
    )]
    kind: OrderEventKind,
) {
    let order = order_in(S::PartiallyFilled);
    let event = event_of(kind, &order);
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], kind.as_str());
    let back: OrderEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, event);
}

#[test]
fn event_decimals_are_json_strings() {
    let order = order_in(S::Accepted);
    let json_fill = serde_json::to_value(fill_of(&order, "t-9", dec!(2.50), dec!(10.05))).unwrap();
    assert_eq!(json_fill["fill"]["quantity"], "2.50");
    assert_eq!(json_fill["fill"]["price"], "10.05");
    assert_eq!(json_fill["fill"]["commission"]["amount"], "0.01");
    let update = serde_json::to_value(event_of(E::Updated, &order)).unwrap();
    assert_eq!(
        update,
        serde_json::json!({"type": "updated", "quantity": "12", "price": "10.50", "trigger_price": null})
    );
    let denied = serde_json::to_value(event_of(E::Denied, &order)).unwrap();
    assert_eq!(
        denied,
        serde_json::json!({"type": "denied", "reason": "insufficient_funds"})
    );

    // A JSON number may already have lost precision: refused.
    let as_number = r#"{"type":"updated","quantity":12,"price":"10.50"}"#;
    assert!(serde_json::from_str::<OrderEvent>(as_number).is_err());
    let negative = r#"{"type":"updated","quantity":"-1"}"#;
    assert!(serde_json::from_str::<OrderEvent>(negative).is_err());

    // The order snapshot keeps exact decimals, average price included.
    let mut o = order_in(S::Accepted);
    fill(&mut o, "t-1", dec!(3), dec!(10.01));
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["avg_px"], "10.01");
    assert_eq!(json["filled_qty"], "3");
    assert_eq!(json["status"], "partially_filled");
    assert_eq!(serde_json::from_value::<Order>(json).unwrap(), o);
}
