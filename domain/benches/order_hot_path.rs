//! The domain's hot path for one order, as the application runs it: create the
//! order, check pre-trade risk, submit, reserve, accept, then ten partial fills,
//! each applied to the order, the position and the account — every change wrapped
//! in a `DomainEvent` envelope. Throughput is counted in domain events.
//!
//! Baselines in the same group give same-run ratios: the ten `Order::apply` fills
//! alone, and the envelopes alone (id, aggregate id, event type, payload move).

// Bench harness code: a failed setup should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ordermon_domain::Decimal;
use ordermon_domain::account::{Account, AccountType};
use ordermon_domain::event::{
    AccountEvent, DomainEvent, EventPayload, PositionEvent, position_aggregate_id,
};
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{
    NewOrder, Order, OrderEvent, OrderStatus, OrderType, Side, TimeInForce,
};
use ordermon_domain::position::Position;
use ordermon_domain::risk::{self, RiskContext, RiskLimits, RiskParams, TradingState};
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use uuid::Uuid;

/// Fills per order.
const FILLS: usize = 10;
/// Events per order: initialized, reserved, submitted, accepted, and for every
/// fill one order, one position and one account event.
const EVENTS_PER_ORDER: usize = 4 + 3 * FILLS;

/// Everything that outlives one order: reference data, the user's account and
/// position, limits, and the venue's trade ids.
struct Desk {
    user: UserId,
    instrument: Instrument,
    account: Account,
    position: Position,
    limits: RiskLimits,
    params: RiskParams,
    last_price: Price,
    request: NewOrder,
    trade_ids: Vec<TradeId>,
    fill_qty: Quantity,
    fill_px: Price,
    commission: Money,
    now: DateTime<Utc>,
}

impl Desk {
    fn new() -> Self {
        let now = Utc.with_ymd_and_hms(2024, 6, 3, 14, 30, 0).unwrap();
        let user = UserId::new("alice").unwrap();
        let usd = Currency::new("USD").unwrap();
        let instrument = Instrument {
            id: InstrumentId::new("ACME.SIM").unwrap(),
            quote_currency: usd.clone(),
            tick_size: Price::new(Decimal::new(1, 2)).unwrap(),
            lot_size: Quantity::new(Decimal::ONE).unwrap(),
            min_quantity: Quantity::new(Decimal::ONE).unwrap(),
            max_quantity: None,
            min_notional: None,
            multiplier: Decimal::ONE,
            version: 1,
        };
        let mut account = Account::new(user.clone(), AccountType::Cash);
        // Enough for hundreds of millions of iterations of 100 × 10.00.
        account
            .adjust_cash(
                &Money::new(
                    Decimal::new(1, 0) * Decimal::from(10_i64.pow(15)),
                    usd.clone(),
                )
                .unwrap(),
            )
            .unwrap();
        let position = Position::flat(
            user.clone(),
            instrument.id.clone(),
            usd.clone(),
            Decimal::ONE,
            now,
        );
        let request = NewOrder {
            client_order_id: ClientOrderId::new("bench-1").unwrap(),
            user_id: user.clone(),
            strategy_id: None,
            instrument_id: instrument.id.clone(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: Quantity::new(Decimal::from(100)).unwrap(),
            price: Some(Price::new(Decimal::new(1000, 2)).unwrap()),
            trigger_price: None,
            time_in_force: TimeInForce::Gtc,
            expire_at: None,
            reduce_only: false,
            post_only: false,
        };
        Self {
            user,
            instrument,
            account,
            position,
            limits: RiskLimits {
                max_order_notional: Some(Decimal::from(1_000_000)),
                max_open_orders: Some(1000),
                max_position: None,
                max_daily_loss: Some(Decimal::from(50_000)),
                max_orders_per_second: Some(1000),
            },
            params: RiskParams::default(),
            last_price: Price::new(Decimal::new(1001, 2)).unwrap(),
            request,
            trade_ids: (0..FILLS)
                .map(|i| TradeId::new(format!("T-{i:08}")).unwrap())
                .collect(),
            fill_qty: Quantity::new(Decimal::from(10)).unwrap(),
            // Fills at the limit or better.
            fill_px: Price::new(Decimal::new(999, 2)).unwrap(),
            commission: Money::new(Decimal::new(5, 2), usd).unwrap(),
            now,
        }
    }

    /// One order's whole life; its events are appended to `events`.
    fn run_order(&mut self, events: &mut Vec<DomainEvent>) {
        let now = self.now;
        let user = Some(self.user.clone());
        let correlation = Some(Uuid::now_v7());

        let (mut order, init) =
            Order::create(OrderId::generate(), self.request.clone(), now).unwrap();
        let order_agg = order.id.to_string();
        let account_agg = self.user.as_str().to_owned();
        let position_agg = position_aggregate_id(&self.user, &self.instrument.id);
        events.push(DomainEvent::new(
            order_agg.clone(),
            order.sequence,
            user.clone(),
            now,
            correlation,
            EventPayload::Order(init),
        ));

        let request = risk::check_order(&RiskContext {
            order: &order,
            instrument: &self.instrument,
            account: &self.account,
            position: Some(&self.position),
            limits: &self.limits,
            params: &self.params,
            last_price: Some(self.last_price),
            trading_state: TradingState::Active,
            open_orders: 0,
            orders_last_second: 0,
            daily_pnl: Decimal::ZERO,
        })
        .unwrap();
        self.account
            .reserve(order.id, &request, self.position.quantity)
            .unwrap();
        self.account.sequence += 1;
        events.push(DomainEvent::new(
            account_agg.clone(),
            self.account.sequence,
            user.clone(),
            now,
            correlation,
            EventPayload::Account(AccountEvent::Reserved {
                order_id: order.id,
                request,
                position_qty: self.position.quantity,
            }),
        ));

        for event in [
            OrderEvent::Submitted,
            OrderEvent::Accepted {
                venue_order_id: None,
            },
        ] {
            order.apply(&event, now).unwrap();
            events.push(DomainEvent::new(
                order_agg.clone(),
                order.sequence,
                user.clone(),
                now,
                correlation,
                EventPayload::Order(event),
            ));
        }

        for trade_id in &self.trade_ids {
            let fill = Fill {
                trade_id: trade_id.clone(),
                order_id: order.id,
                user_id: self.user.clone(),
                instrument_id: self.instrument.id.clone(),
                side: order.side,
                quantity: self.fill_qty,
                price: self.fill_px,
                commission: self.commission.clone(),
                liquidity_side: LiquiditySide::Maker,
                ts_event: now,
            };
            let change = self.position.apply_fill(
                fill.side,
                fill.quantity,
                fill.price,
                &fill.commission,
                now,
            );
            self.position.sequence += 1;
            let settlement = self.account.settle_fill(
                order.id,
                fill.side,
                fill.quantity,
                fill.price,
                self.instrument.multiplier,
                &self.instrument.quote_currency,
                &fill.commission,
            );
            self.account.sequence += 1;
            let position_event = PositionEvent::FillApplied {
                order_id: order.id,
                trade_id: fill.trade_id.clone(),
                side: fill.side,
                quantity: fill.quantity,
                price: fill.price,
                commission: fill.commission.clone(),
                change,
            };
            let account_event = AccountEvent::FillSettled {
                order_id: order.id,
                trade_id: fill.trade_id.clone(),
                side: fill.side,
                quantity: fill.quantity,
                price: fill.price,
                multiplier: self.instrument.multiplier,
                quote_currency: self.instrument.quote_currency.clone(),
                commission: fill.commission.clone(),
                settlement,
            };
            let order_event = OrderEvent::Filled { fill };
            order.apply(&order_event, now).unwrap();
            events.push(DomainEvent::new(
                order_agg.clone(),
                order.sequence,
                user.clone(),
                now,
                correlation,
                EventPayload::Order(order_event),
            ));
            events.push(DomainEvent::new(
                position_agg.clone(),
                self.position.sequence,
                user.clone(),
                now,
                correlation,
                EventPayload::Position(position_event),
            ));
            events.push(DomainEvent::new(
                account_agg.clone(),
                self.account.sequence,
                user.clone(),
                now,
                correlation,
                EventPayload::Account(account_event),
            ));
        }
        debug_assert_eq!(order.status, OrderStatus::Filled);
    }
}

fn hot_path(c: &mut Criterion) {
    // One checked run first: the bench measures the real thing or nothing.
    let mut check = Desk::new();
    let mut events = Vec::new();
    check.run_order(&mut events);
    assert_eq!(events.len(), EVENTS_PER_ORDER);
    assert!(
        check.account.reservations.is_empty(),
        "the last fill frees the reservation"
    );
    assert!(check.account.invariants_hold());
    assert_eq!(check.position.quantity, Decimal::from(100));

    let mut group = c.benchmark_group("order_hot_path");

    group.throughput(Throughput::Elements(EVENTS_PER_ORDER as u64));
    group.bench_function("order_lifecycle_34_events", |b| {
        let mut desk = Desk::new();
        let mut events = Vec::with_capacity(EVENTS_PER_ORDER);
        b.iter(|| {
            events.clear();
            desk.run_order(&mut events);
            black_box(&events);
        });
    });

    // Baseline: the envelopes alone, with the cheapest payload.
    group.bench_function("envelopes_only_34_events", |b| {
        let desk = Desk::new();
        let agg = OrderId::generate().to_string();
        let mut events = Vec::with_capacity(EVENTS_PER_ORDER);
        b.iter(|| {
            events.clear();
            let correlation = Some(Uuid::now_v7());
            for seq in 0..EVENTS_PER_ORDER as u64 {
                events.push(DomainEvent::new(
                    agg.clone(),
                    seq,
                    Some(desk.user.clone()),
                    desk.now,
                    correlation,
                    EventPayload::Order(OrderEvent::Submitted),
                ));
            }
            black_box(&events);
        });
    });

    // Baseline: the ten `Order::apply` fills on an accepted order, nothing else.
    group.throughput(Throughput::Elements(FILLS as u64));
    group.bench_function("order_apply_10_fills", |b| {
        let desk = Desk::new();
        let (mut accepted, _) =
            Order::create(OrderId::generate(), desk.request.clone(), desk.now).unwrap();
        accepted.apply(&OrderEvent::Submitted, desk.now).unwrap();
        accepted
            .apply(
                &OrderEvent::Accepted {
                    venue_order_id: None,
                },
                desk.now,
            )
            .unwrap();
        let fills: Vec<OrderEvent> = desk
            .trade_ids
            .iter()
            .map(|trade_id| OrderEvent::Filled {
                fill: Fill {
                    trade_id: trade_id.clone(),
                    order_id: accepted.id,
                    user_id: desk.user.clone(),
                    instrument_id: desk.instrument.id.clone(),
                    side: Side::Buy,
                    quantity: desk.fill_qty,
                    price: desk.fill_px,
                    commission: desk.commission.clone(),
                    liquidity_side: LiquiditySide::Maker,
                    ts_event: desk.now,
                },
            })
            .collect();
        b.iter_batched(
            || accepted.clone(),
            |mut order| {
                for fill in &fills {
                    order.apply(fill, desk.now).unwrap();
                }
                order
            },
            BatchSize::SmallInput,
        );
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(60);
    targets = hot_path
}
criterion_main!(benches);
