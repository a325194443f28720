//! The surprising edges of the lifecycle: pending memory, acks that arrive while
//! a request is in flight, late fills, duplicates, overfills and stop triggers.

use rstest::rstest;

use super::*;
use OrderEventKind as E;
use OrderStatus as S;

/// A limit order (not a stop) in `status`.
fn limit_in(status: OrderStatus) -> Order {
    order_in_type(status, OrderType::Limit)
}

#[rstest]
fn pending_remembers_and_returns_on_reject(
    #[values(S::Submitted, S::Accepted, S::Triggered, S::PartiallyFilled)] origin: OrderStatus,
    #[values(
        (E::PendingUpdate, E::ModifyRejected),
        (E::PendingCancel, E::CancelRejected)
    )]
    request_and_refusal: (OrderEventKind, OrderEventKind),
) {
    let (request, refusal) = request_and_refusal;
    let mut o = order_in(origin);
    step_kind(&mut o, request);
    let pending = if request == E::PendingUpdate {
        S::PendingUpdate
    } else {
        S::PendingCancel
    };
    assert_eq!(o.status, pending);
    assert_eq!(o.previous_status, Some(origin));
    // A working order stays working while it waits.
    assert!(o.is_open());
    assert_eq!(o.leaves_qty(), order_in(origin).leaves_qty());

    step_kind(&mut o, refusal);
    assert_eq!(o.status, origin);
    assert_eq!(o.previous_status, None);
    assert!(
        o.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("too late"))
    );
}

#[test]
fn cancel_while_modify_in_flight_keeps_the_older_memory() {
    let mut o = order_in(S::PartiallyFilled);
    step(&mut o, &OrderEvent::PendingUpdate);
    step(&mut o, &OrderEvent::PendingCancel);
    assert_eq!(o.status, S::PendingCancel);
    assert_eq!(o.previous_status, Some(S::PartiallyFilled));
    // The modify's reply still lands while the cancel waits.
    step_kind(&mut o, E::Updated);
    assert_eq!(o.status, S::PendingCancel);
    assert_eq!(o.quantity, qty(dec!(12)));
    step_kind(&mut o, E::CancelRejected);
    assert_eq!(o.status, S::PartiallyFilled);
    assert_eq!(o.leaves_qty(), qty(dec!(8)));
}

#[test]
fn repeated_requests_while_pending_are_idempotent() {
    let mut o = order_in(S::Accepted);
    step(&mut o, &OrderEvent::PendingUpdate);
    step(&mut o, &OrderEvent::PendingUpdate);
    assert_eq!(
        (o.status, o.previous_status),
        (S::PendingUpdate, Some(S::Accepted))
    );
    let mut c = order_in(S::Accepted);
    step(&mut c, &OrderEvent::PendingCancel);
    step(&mut c, &OrderEvent::PendingCancel);
    assert_eq!(
        (c.status, c.previous_status),
        (S::PendingCancel, Some(S::Accepted))
    );
}

#[rstest]
#[case(E::PendingCancel, S::PendingCancel, E::CancelRejected)]
#[case(E::PendingUpdate, S::PendingUpdate, E::ModifyRejected)]
fn ack_while_pending_from_submitted_updates_the_memory(
    #[case] request: OrderEventKind,
    #[case] pending: OrderStatus,
    #[case] refusal: OrderEventKind,
) {
    let mut o = limit_in(S::Submitted);
    step_kind(&mut o, request);
    assert_eq!(o.previous_status, Some(S::Submitted));
    step(
        &mut o,
        &OrderEvent::Accepted {
            venue_order_id: Some("v-77".to_owned()),
        },
    );
    assert_eq!(o.status, pending);
    assert_eq!(o.previous_status, Some(S::Accepted));
    assert_eq!(o.venue_order_id.as_deref(), Some("v-77"));
    // A second ack is now a protocol error.
    let before = o.clone();
    let ack = event_of(E::Accepted, &o);
    assert!(matches!(
        o.apply(&ack, at(2)),
        Err(OrderError::InvalidTransition { .. })
    ));
    assert_eq!(o, before);
    step_kind(&mut o, refusal);
    assert_eq!(o.status, S::Accepted);
}

#[test]
fn trigger_while_pending_updates_the_memory_of_a_stop() {
    let mut o = order_in(S::Accepted);
    step(&mut o, &OrderEvent::PendingUpdate);
    step(&mut o, &OrderEvent::Triggered);
    assert_eq!(
        (o.status, o.previous_status),
        (S::PendingUpdate, Some(S::Triggered))
    );
    step_kind(&mut o, E::ModifyRejected);
    assert_eq!(o.status, S::Triggered);
    // Once triggered it cannot trigger again, pending or not.
    step(&mut o, &OrderEvent::PendingCancel);
    assert!(o.apply(&OrderEvent::Triggered, at(3)).is_err());
}

#[rstest]
#[case(OrderType::Market, false)]
#[case(OrderType::Limit, false)]
#[case(OrderType::StopMarket, true)]
#[case(OrderType::StopLimit, true)]
fn only_stop_orders_trigger(#[case] order_type: OrderType, #[case] triggers: bool) {
    let mut o = order_in_type(S::Accepted, order_type);
    assert_eq!(o.is_stop(), triggers);
    let before = o.clone();
    let result = o.apply(&OrderEvent::Triggered, at(5));
    if triggers {
        assert_eq!(result, Ok(Applied::Changed));
        assert_eq!(o.status, S::Triggered);
    } else {
        assert_eq!(
            result,
            Err(OrderError::InvalidTransition {
                from: S::Accepted,
                event: E::Triggered
            })
        );
        assert_eq!(o, before);
    }
    // The same holds while a request is in flight.
    let mut p = order_in_type(S::Accepted, order_type);
    step(&mut p, &OrderEvent::PendingCancel);
    assert_eq!(p.apply(&OrderEvent::Triggered, at(6)).is_ok(), triggers);
}

#[rstest]
#[case(E::PendingUpdate, S::PendingUpdate, E::ModifyRejected)]
#[case(E::PendingCancel, S::PendingCancel, E::CancelRejected)]
fn a_fill_while_pending_returns_to_partially_filled(
    #[case] request: OrderEventKind,
    #[case] pending: OrderStatus,
    #[case] refusal: OrderEventKind,
) {
    let mut o = limit_in(S::Accepted);
    step_kind(&mut o, request);
    fill(&mut o, "t-1", dec!(3), dec!(10));
    assert_eq!(o.status, pending);
    assert_eq!(o.previous_status, Some(S::PartiallyFilled));
    assert_eq!(o.leaves_qty(), qty(dec!(7)));
    step_kind(&mut o, refusal);
    assert_eq!(o.status, S::PartiallyFilled);
}

#[test]
fn a_fill_completing_a_pending_order_fills_it() {
    let mut o = limit_in(S::Accepted);
    step(&mut o, &OrderEvent::PendingCancel);
    fill(&mut o, "t-1", dec!(10), dec!(10));
    assert_eq!((o.status, o.previous_status), (S::Filled, None));
    assert_eq!(o.leaves_qty(), Quantity::ZERO);
    assert!(o.apply(&OrderEvent::Canceled, at(9)).is_err());
}

#[test]
fn late_fill_on_canceled_is_kept_and_the_order_stays_canceled() {
    let mut o = limit_in(S::PartiallyFilled);
    step(&mut o, &OrderEvent::Canceled);
    fill(&mut o, "t-late", dec!(2), dec!(9.90));
    assert_eq!(o.status, S::Canceled);
    assert_eq!(o.filled_qty, qty(dec!(6)));
    assert_eq!(o.leaves_qty(), Quantity::ZERO);
    assert_eq!(o.overfill_qty, Quantity::ZERO);
    // (4 × 10 + 2 × 9.90) / 6
    assert_eq!(o.avg_px, Some(dec!(9.966666666666666667)));
    assert!(!o.is_open());
}

#[test]
fn late_fill_that_completes_a_canceled_order_fills_it() {
    let mut o = limit_in(S::PartiallyFilled);
    step(&mut o, &OrderEvent::Canceled);
    fill(&mut o, "t-late", dec!(6), dec!(10));
    assert_eq!(o.status, S::Filled);
    assert_eq!(o.filled_qty, o.quantity);
    assert_eq!(o.overfill_qty, Quantity::ZERO);
}

#[rstest]
fn duplicate_trade_id_changes_nothing(
    #[values(S::PartiallyFilled, S::Filled)] status: OrderStatus,
    #[values(false, true)] canceled_first: bool,
) {
    let mut o = limit_in(status);
    if canceled_first && status == S::PartiallyFilled {
        step(&mut o, &OrderEvent::Canceled);
    }
    let trade = o.trade_ids[0].clone();
    let before = o.clone();
    // Same trade id, even with different numbers: never a second fill.
    let repeat = fill_of(&o, trade.as_str(), dec!(3), dec!(11));
    assert_eq!(o.apply(&repeat, at(30)), Ok(Applied::Duplicate));
    assert_eq!(o, before);
}

#[test]
fn overfill_is_recorded_and_the_order_stays_filled() {
    let mut o = limit_in(S::Filled);
    fill(&mut o, "t-extra", dec!(2), dec!(10));
    assert_eq!(o.status, S::Filled);
    assert_eq!(o.filled_qty, qty(dec!(12)));
    assert_eq!(o.overfill_qty, qty(dec!(2)));
    assert!(o.filled_qty > o.quantity);
    assert_eq!(o.filled_qty.get(), o.quantity.get() + o.overfill_qty.get());
    assert_eq!(o.leaves_qty(), Quantity::ZERO);
    fill(&mut o, "t-extra-2", dec!(1), dec!(10));
    assert_eq!(o.overfill_qty, qty(dec!(3)));
}

#[test]
fn one_fill_beyond_quantity_fills_with_overfill() {
    let mut o = limit_in(S::Accepted);
    fill(&mut o, "t-big", dec!(15), dec!(10));
    assert_eq!(o.status, S::Filled);
    assert_eq!(o.overfill_qty, qty(dec!(5)));
    assert_eq!(o.filled_qty, qty(dec!(15)));
}

#[test]
fn fill_overtaking_the_ack_and_the_late_ack() {
    let mut o = limit_in(S::Submitted);
    fill(&mut o, "t-1", dec!(4), dec!(10));
    assert_eq!(o.status, S::PartiallyFilled);
    // The table has no edge for an ack after a fill: it is refused, typed.
    let ack = event_of(E::Accepted, &o);
    assert_eq!(
        o.apply(&ack, at(2)),
        Err(OrderError::InvalidTransition {
            from: S::PartiallyFilled,
            event: E::Accepted
        })
    );
}

#[test]
fn a_fill_for_another_order_is_refused() {
    let mut o = limit_in(S::Accepted);
    let other = limit_in(S::Accepted);
    let before = o.clone();
    assert_eq!(
        o.apply(&fill_of(&other, "t-1", dec!(1), dec!(10)), at(2)),
        Err(OrderError::ForeignFill)
    );
    assert_eq!(o, before);
}

#[test]
fn fills_average_their_prices_and_track_trade_ids() {
    let mut o = limit_in(S::Accepted);
    fill(&mut o, "t-1", dec!(4), dec!(10));
    fill(&mut o, "t-2", dec!(6), dec!(11));
    assert_eq!(o.avg_px, Some(dec!(10.6)));
    assert_eq!(o.status, S::Filled);
    assert_eq!(
        o.trade_ids,
        vec![TradeId::new("t-1").unwrap(), TradeId::new("t-2").unwrap()]
    );
    assert_eq!(o.sequence, 5);
}

#[rstest]
#[case(S::Initialized, dec!(10))]
#[case(S::Submitted, dec!(10))]
#[case(S::PartiallyFilled, dec!(6))]
#[case(S::PendingCancel, dec!(10))]
#[case(S::Denied, dec!(0))]
#[case(S::Canceled, dec!(0))]
#[case(S::Filled, dec!(0))]
fn leaves_quantity(#[case] status: OrderStatus, #[case] leaves: Decimal) {
    assert_eq!(order_in(status).leaves_qty(), qty(leaves));
}

#[test]
fn denial_and_rejection_record_their_reason() {
    let mut d = create(OrderType::Limit);
    step(
        &mut d,
        &OrderEvent::Denied {
            reason: DeniedReason::MaxOpenOrders,
        },
    );
    assert_eq!(d.reason.as_deref(), Some("max_open_orders"));
    let r = limit_in(S::Rejected);
    assert_eq!(r.reason.as_deref(), Some("venue says no"));
}

#[test]
fn external_mode_accepts_straight_from_initialized() {
    let mut o = create(OrderType::Limit);
    step_kind(&mut o, E::Accepted);
    assert_eq!(o.status, S::Accepted);
    assert_eq!(o.venue_order_id.as_deref(), Some("v-1"));
    // A fill still needs the order to be at least submitted.
    let mut fresh = create(OrderType::Limit);
    let early = fill_of(&fresh, "t-1", dec!(1), dec!(10));
    assert!(fresh.apply(&early, at(1)).is_err());
}
