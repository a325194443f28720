//! Property tests for the domain's invariants, under random sequences:
//!
//! (a) nothing leaves a terminal status except the documented late fill on a
//!     canceled order (and overfills, which stay filled);
//! (b) `filled_qty <= quantity` unless an overfill is recorded, and then
//!     `filled_qty = quantity + overfill_qty`;
//! (c) a position's quantity is the signed sum of its fills;
//! (d) realized + unrealized PnL equals the fills' cash flows plus the marked
//!     value of what is still open, exactly;
//! (e) `reserved <= total` and `free >= 0` after any mix of accepted orders,
//!     fills, cancels, deposits and withdrawals — and no position is oversold.
//!
//! The number of cases comes from `PROPTEST_CASES` (256 when unset).

// Everything in this file is test code; clippy only recognises `#[test]` bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::account::{Account, AccountType, Hold};
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{
    Applied, NewOrder, Order, OrderEvent, OrderEventKind, OrderStatus, OrderType, Side,
    TimeInForce, TimedOrderEvent, Transition, transition,
};
use ordermon_domain::position::Position;
use ordermon_domain::risk::{
    self, DeniedReason, RiskContext, RiskLimits, RiskParams, TradingState,
};
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use proptest::prelude::*;

/// `ProptestConfig::default()` already reads `PROPTEST_CASES` (default 256), so
/// CI and local runs can change the effort without editing the tests.
fn config() -> ProptestConfig {
    ProptestConfig::default()
}

#[test]
fn case_count_comes_from_the_environment() {
    let expected = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    assert_eq!(config().cases, expected);
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 9, 30, 0).unwrap() + Duration::seconds(secs)
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn dec(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

fn qty(d: Decimal) -> Quantity {
    Quantity::new(d).unwrap()
}

fn px(d: Decimal) -> Price {
    Price::new(d).unwrap()
}

fn new_order(side: Side, order_type: OrderType, quantity: Decimal, limit: Decimal) -> NewOrder {
    NewOrder {
        client_order_id: ClientOrderId::new("c-prop").unwrap(),
        user_id: UserId::new("alice").unwrap(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side,
        order_type,
        quantity: qty(quantity),
        price: order_type.has_price().then(|| px(limit)),
        trigger_price: order_type.has_trigger().then(|| px(limit)),
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    }
}

fn fill_for(order: &Order, trade: &str, q: Decimal, p: Decimal, commission: Decimal) -> Fill {
    Fill {
        trade_id: TradeId::new(trade).unwrap(),
        order_id: order.id,
        user_id: order.user_id.clone(),
        instrument_id: order.instrument_id.clone(),
        side: order.side,
        quantity: qty(q),
        price: px(p),
        commission: Money::new(commission, usd()).unwrap(),
        liquidity_side: LiquiditySide::Taker,
        ts_event: t(0),
    }
}

// ---- (a) and (b): random event sequences on one order -------------------------

/// A random event, turned into a concrete one against the order's current state.
#[derive(Debug, Clone)]
enum Step {
    /// Any non-fill, non-update kind (index into `OrderEventKind::ALL`).
    Kind(usize),
    /// A fill with a trade id from a small pool, so repeats happen.
    Fill { trade: u8, units: i64 },
    /// A modification (any field may be missing or nonsensical).
    Update {
        quantity: Option<i64>,
        price: bool,
        trigger: bool,
    },
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..OrderEventKind::ALL.len()).prop_map(Step::Kind),
        3 => (0u8..8, 1i64..=6).prop_map(|(trade, units)| Step::Fill { trade, units }),
        1 => (proptest::option::of(0i64..=16), any::<bool>(), any::<bool>())
            .prop_map(|(quantity, price, trigger)| Step::Update { quantity, price, trigger }),
    ]
}

fn order_type_strategy() -> impl Strategy<Value = OrderType> {
    prop_oneof![
        Just(OrderType::Market),
        Just(OrderType::Limit),
        Just(OrderType::StopMarket),
        Just(OrderType::StopLimit),
    ]
}

fn concrete(step: &Step, order: &Order) -> OrderEvent {
    match step {
        Step::Kind(i) => match OrderEventKind::ALL[*i] {
            OrderEventKind::Initialized => OrderEvent::Initialized {
                order: Box::new(order.clone()),
            },
            OrderEventKind::Denied => OrderEvent::Denied {
                reason: DeniedReason::MaxPosition,
            },
            OrderEventKind::Submitted => OrderEvent::Submitted,
            OrderEventKind::Accepted => OrderEvent::Accepted {
                venue_order_id: Some("v-1".to_owned()),
            },
            OrderEventKind::Rejected => OrderEvent::Rejected {
                reason: "no".to_owned(),
            },
            OrderEventKind::Canceled => OrderEvent::Canceled,
            OrderEventKind::Expired => OrderEvent::Expired,
            OrderEventKind::Triggered => OrderEvent::Triggered,
            OrderEventKind::PendingUpdate => OrderEvent::PendingUpdate,
            OrderEventKind::PendingCancel => OrderEvent::PendingCancel,
            OrderEventKind::ModifyRejected => OrderEvent::ModifyRejected {
                reason: "no".to_owned(),
            },
            OrderEventKind::CancelRejected => OrderEvent::CancelRejected {
                reason: "no".to_owned(),
            },
            OrderEventKind::Updated => OrderEvent::Updated {
                quantity: None,
                price: None,
                trigger_price: None,
            },
            OrderEventKind::Filled => OrderEvent::Filled {
                fill: fill_for(order, "t-k", dec(1, 0), dec(10, 0), Decimal::ZERO),
            },
        },
        Step::Fill { trade, units } => OrderEvent::Filled {
            fill: fill_for(
                order,
                &format!("t-{trade}"),
                dec(*units, 0),
                dec(1001, 2),
                Decimal::ZERO,
            ),
        },
        Step::Update {
            quantity,
            price,
            trigger,
        } => OrderEvent::Updated {
            quantity: quantity.map(|q| qty(dec(q, 0))),
            price: price.then(|| px(dec(1002, 2))),
            trigger_price: trigger.then(|| px(dec(999, 2))),
        },
    }
}

/// (b), plus the bookkeeping that goes with it.
fn quantities_hold(o: &Order) -> Result<(), TestCaseError> {
    if o.overfill_qty.is_zero() {
        prop_assert!(
            o.filled_qty <= o.quantity,
            "filled beyond quantity without overfill: {o:?}"
        );
    } else {
        prop_assert_eq!(o.filled_qty.get(), o.quantity.get() + o.overfill_qty.get());
        prop_assert_eq!(o.status, OrderStatus::Filled);
    }
    if o.status.is_terminal() {
        prop_assert!(o.leaves_qty().is_zero());
    }
    prop_assert_eq!(o.previous_status.is_some(), o.status.is_pending());
    let mut ids = o.trade_ids.clone();
    ids.sort();
    ids.dedup();
    prop_assert_eq!(ids.len(), o.trade_ids.len(), "a trade id applied twice");
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn order_lifecycle_invariants(
        order_type in order_type_strategy(),
        steps in proptest::collection::vec(step_strategy(), 0..60),
    ) {
        let (mut order, init) =
            Order::create(OrderId::generate(), new_order(Side::Buy, order_type, dec(10, 0), dec(10, 0)), t(0))
                .unwrap();
        let mut history = vec![TimedOrderEvent { at: t(0), event: init }];
        for (i, step) in steps.iter().enumerate() {
            let at = t(i64::try_from(i).unwrap() + 1);
            let event = concrete(step, &order);
            let before = order.clone();
            match order.apply(&event, at) {
                Err(_) => prop_assert_eq!(&order, &before, "an error changed the order"),
                Ok(Applied::Duplicate) => {
                    prop_assert_eq!(&order, &before, "a duplicate changed the order");
                    let OrderEvent::Filled { fill } = &event else {
                        return Err(TestCaseError::fail("only fills can be duplicates"));
                    };
                    prop_assert!(before.trade_ids.contains(&fill.trade_id));
                }
                Ok(Applied::Changed) => {
                    let kind = event.kind();
                    let allowed = transition(before.status, before.previous_status, kind, before.is_stop());
                    prop_assert_ne!(allowed, Transition::Refused);
                    // (a): the only ways out of (or within) a terminal status.
                    if before.status.is_terminal() {
                        match (before.status, kind) {
                            (OrderStatus::Canceled, OrderEventKind::Filled) => prop_assert!(
                                matches!(order.status, OrderStatus::Canceled | OrderStatus::Filled)
                            ),
                            (OrderStatus::Filled, OrderEventKind::Filled) => {
                                prop_assert_eq!(order.status, OrderStatus::Filled);
                                prop_assert!(!order.overfill_qty.is_zero());
                            }
                            other => {
                                return Err(TestCaseError::fail(format!("left a terminal status: {other:?}")));
                            }
                        }
                    }
                    // Once canceled, only a completing late fill may change the status.
                    if before.status == OrderStatus::Canceled && order.status == OrderStatus::Filled {
                        prop_assert!(order.filled_qty >= order.quantity);
                    }
                    prop_assert_eq!(order.sequence, before.sequence + 1);
                    history.push(TimedOrderEvent { at, event });
                }
            }
            quantities_hold(&order)?;
        }
        // The accepted events rebuild the same order.
        prop_assert_eq!(Order::replay(&history), Some(order));
    }
}

// ---- (c) and (d): positions against the cash flows of their fills ----------------

#[derive(Debug, Clone)]
struct TradeSpec {
    buy: bool,
    /// Quantity in thousandths.
    milli: i64,
    /// Price in cents.
    cents: i64,
    /// Commission in cents.
    fee_cents: i64,
}

fn trade_strategy() -> impl Strategy<Value = TradeSpec> {
    (any::<bool>(), 1i64..=20_000, 1i64..=1_000_000, 0i64..=500).prop_map(
        |(buy, milli, cents, fee_cents)| TradeSpec {
            buy,
            milli,
            cents,
            fee_cents,
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn position_matches_the_cash_flows_of_its_fills(
        multiplier in prop_oneof![Just(dec(1, 0)), Just(dec(50, 0)), Just(dec(1, 1)), Just(dec(25, 2))],
        trades in proptest::collection::vec(trade_strategy(), 1..40),
        mark_cents in 1i64..=1_000_000,
    ) {
        let mut p = Position::flat(
            UserId::new("alice").unwrap(),
            InstrumentId::new("ACME.SIM").unwrap(),
            usd(),
            multiplier,
            t(0),
        );
        let mut signed_sum = Decimal::ZERO;
        let mut cash = Decimal::ZERO;
        let mut realized_sum = Decimal::ZERO;
        for (i, tr) in trades.iter().enumerate() {
            let side = if tr.buy { Side::Buy } else { Side::Sell };
            let q = dec(tr.milli, 3);
            let price = dec(tr.cents, 2);
            let fee = dec(tr.fee_cents, 2);
            let change = p.apply_fill(
                side,
                qty(q),
                px(price),
                &Money::new(fee, usd()).unwrap(),
                t(i64::try_from(i).unwrap()),
            );
            signed_sum += side.sign() * q;
            cash += -side.sign() * q * price * multiplier - fee;
            realized_sum += change.realized;

            // (c)
            prop_assert_eq!(p.quantity, signed_sum);
            prop_assert_eq!(change.quantity_after, signed_sum);
            prop_assert_eq!(change.closed_qty + change.opened_qty, q);
            prop_assert_eq!(p.realized_pnl, realized_sum);
            if p.quantity.is_zero() {
                prop_assert!(p.cost.is_zero());
            }

            // (d), at the fill price and at an arbitrary mark.
            for mark in [price, dec(mark_cents, 2)] {
                let total = p.realized_pnl + p.unrealized_pnl(Some(px(mark)));
                prop_assert_eq!(total, cash + p.quantity * mark * multiplier);
            }
        }
    }
}

// ---- (e): reservations under random orders, fills, cancels and cash moves -------

#[derive(Debug, Clone)]
enum AccountOp {
    Deposit(i64),
    Withdraw(i64),
    /// Takes out every free cent, so any fill that costs more than the
    /// reservation it consumes would show as negative free cash.
    WithdrawAllFree,
    Submit {
        buy: bool,
        market: bool,
        units: i64,
        limit_cents: i64,
    },
    Fill {
        order: usize,
        units: i64,
        improvement_cents: i64,
        fee_percent: i64,
    },
    Cancel(usize),
    Mark(i64),
}

fn account_op_strategy() -> impl Strategy<Value = AccountOp> {
    prop_oneof![
        1 => (1i64..=500_000).prop_map(AccountOp::Deposit),
        1 => (1i64..=500_000).prop_map(AccountOp::Withdraw),
        1 => Just(AccountOp::WithdrawAllFree),
        4 => (any::<bool>(), proptest::bool::weighted(0.3), 1i64..=50, 100i64..=20_000).prop_map(
            |(buy, market, units, limit_cents)| AccountOp::Submit { buy, market, units, limit_cents }
        ),
        4 => (0usize..16, 1i64..=30, 0i64..=50, 0i64..=100).prop_map(
            |(order, units, improvement_cents, fee_percent)| AccountOp::Fill {
                order, units, improvement_cents, fee_percent,
            }
        ),
        1 => (0usize..16).prop_map(AccountOp::Cancel),
        1 => (100i64..=20_000).prop_map(AccountOp::Mark),
    ]
}

fn instrument(multiplier: Decimal) -> Instrument {
    Instrument {
        id: InstrumentId::new("ACME.SIM").unwrap(),
        quote_currency: usd(),
        tick_size: px(dec(1, 2)),
        lot_size: qty(dec(1, 0)),
        min_quantity: qty(dec(1, 0)),
        max_quantity: None,
        min_notional: None,
        multiplier,
        version: 0,
    }
}

/// One working order and the price its reservation was sized at.
struct Working {
    order: Order,
    reference_px: Decimal,
}

/// Reserved cash equals the sum of the open cash holds; held position equals the
/// sum of the open position holds and never exceeds the position.
fn account_holds(account: &Account, position: &Position) -> Result<(), TestCaseError> {
    prop_assert!(account.invariants_hold(), "{account:?}");
    for b in account.balances.values() {
        prop_assert!(b.reserved <= b.total);
        prop_assert!(b.free() >= Decimal::ZERO);
    }
    let mut cash_held: BTreeMap<Currency, Decimal> = BTreeMap::new();
    let mut position_held = Decimal::ZERO;
    for r in account.reservations.values() {
        match &r.hold {
            Hold::Cash { currency, amount } => {
                prop_assert!(*amount >= Decimal::ZERO);
                *cash_held.entry(currency.clone()).or_default() += *amount;
            }
            Hold::Position { quantity, .. } => position_held += *quantity,
        }
    }
    for b in account.balances.values() {
        let held = cash_held.get(&b.currency).copied().unwrap_or_default();
        prop_assert_eq!(b.reserved, held);
    }
    let recorded = account
        .position_holds
        .get(&position.instrument_id)
        .map_or(Decimal::ZERO, |q| q.get());
    prop_assert_eq!(recorded, position_held);
    prop_assert!(
        position_held <= position.quantity.max(Decimal::ZERO),
        "oversold"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reservations_never_exceed_what_is_there(
        margin in any::<bool>(),
        multiplier in prop_oneof![Just(dec(1, 0)), Just(dec(10, 0))],
        start_cents in 0i64..=2_000_000,
        start_position in 0i64..=100,
        ops in proptest::collection::vec(account_op_strategy(), 1..80),
    ) {
        let instrument = instrument(multiplier);
        let kind = if margin { AccountType::Margin } else { AccountType::Cash };
        let mut account = Account::new(UserId::new("alice").unwrap(), kind);
        if start_cents > 0 {
            account.adjust_cash(&Money::new(dec(start_cents, 2), usd()).unwrap()).unwrap();
        }
        let mut position = Position::flat(
            UserId::new("alice").unwrap(), instrument.id.clone(), usd(), multiplier, t(0),
        );
        if start_position > 0 {
            // A holding bought before the test began.
            let cost = Money::zero(usd());
            position.apply_fill(Side::Buy, qty(dec(start_position, 0)), px(dec(10, 0)), &cost, t(0));
        }
        let params = RiskParams::default();
        let limits = RiskLimits::default();
        let mut last = px(dec(100, 0));
        let mut orders: Vec<Working> = Vec::new();
        let mut trade_seq = 0u32;

        for (i, op) in ops.iter().enumerate() {
            let now = t(i64::try_from(i).unwrap() + 1);
            match op {
                AccountOp::Deposit(cents) => {
                    account.adjust_cash(&Money::new(dec(*cents, 2), usd()).unwrap()).unwrap();
                }
                AccountOp::Withdraw(cents) => {
                    let before = account.clone();
                    if account.adjust_cash(&Money::new(-dec(*cents, 2), usd()).unwrap()).is_err() {
                        prop_assert_eq!(&account, &before);
                    }
                }
                AccountOp::WithdrawAllFree => {
                    let free = account.free(&usd());
                    if free > Decimal::ZERO {
                        account.adjust_cash(&Money::new(-free, usd()).unwrap()).unwrap();
                    }
                    prop_assert_eq!(account.free(&usd()), Decimal::ZERO);
                }
                AccountOp::Mark(cents) => last = px(dec(*cents, 2)),
                AccountOp::Submit { buy, market, units, limit_cents } => {
                    let side = if *buy { Side::Buy } else { Side::Sell };
                    let order_type = if *market { OrderType::Market } else { OrderType::Limit };
                    let new = new_order(side, order_type, dec(*units, 0), dec(*limit_cents, 2));
                    let (mut order, _) = Order::create(OrderId::generate(), new, now).unwrap();
                    let open = u32::try_from(orders.iter().filter(|w| w.order.is_open()).count()).unwrap();
                    let checked = risk::check_order(&RiskContext {
                        order: &order,
                        instrument: &instrument,
                        account: &account,
                        position: Some(&position),
                        limits: &limits,
                        params: &params,
                        last_price: Some(last),
                        trading_state: TradingState::Active,
                        open_orders: open,
                        orders_last_second: 0,
                        daily_pnl: Decimal::ZERO,
                    });
                    let Ok(request) = checked else { continue };
                    // What risk approved, the account must accept.
                    account.reserve(order.id, &request, position.quantity).unwrap();
                    order.apply(&OrderEvent::Submitted, now).unwrap();
                    order.apply(&OrderEvent::Accepted { venue_order_id: None }, now).unwrap();
                    let reference_px =
                        risk::reservation_price(&order, &params, Some(last)).unwrap();
                    orders.push(Working { order, reference_px });
                }
                AccountOp::Fill { order, units, improvement_cents, fee_percent } => {
                    let Some(w) = orders.get_mut(*order) else { continue };
                    let leaves = w.order.leaves_qty().get();
                    if !w.order.is_open() || leaves.is_zero() {
                        continue;
                    }
                    let q = dec(*units, 0).min(leaves);
                    // At the limit (or reference) price or better.
                    let improvement = dec(*improvement_cents, 2);
                    let price = match w.order.side {
                        Side::Buy if w.reference_px - improvement > Decimal::ZERO => w.reference_px - improvement,
                        Side::Buy => w.reference_px,
                        Side::Sell => w.reference_px + improvement,
                    };
                    // Commission at most the fee estimate for this fill.
                    let estimate = q * w.reference_px.min(price) * multiplier * params.fee_rate;
                    let commission = estimate * dec(*fee_percent, 2);
                    trade_seq += 1;
                    let fill = fill_for(&w.order, &format!("t-{trade_seq}"), q, price, commission);
                    w.order.apply(&OrderEvent::Filled { fill: fill.clone() }, now).unwrap();
                    position.apply_fill(fill.side, fill.quantity, fill.price, &fill.commission, now);
                    account.settle_fill(
                        fill.order_id, fill.side, fill.quantity, fill.price,
                        multiplier, &usd(), &fill.commission,
                    );
                    if !w.order.is_open() {
                        prop_assert!(!account.reservations.contains_key(&w.order.id),
                            "a finished order keeps no reservation");
                    }
                }
                AccountOp::Cancel(index) => {
                    let Some(w) = orders.get_mut(*index) else { continue };
                    if w.order.apply(&OrderEvent::Canceled, now).is_ok() {
                        account.release(w.order.id);
                    }
                }
            }
            account_holds(&account, &position)?;
        }
    }
}
