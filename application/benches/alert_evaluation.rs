//! The cost of alerting's periodic work at 10,000 users, with Criterion:
//!
//! - `full_evaluation`: every built-in rule for every user, as the worker does
//!   every `alerting.evaluation_interval` (users have 15 minutes of order
//!   flow, open orders, and half of them a position);
//! - `sampling`: one sample of every sampled rule (detectors, baselines,
//!   forecasts, the isolation forest) for every user, as at each 10 s bucket;
//! - baseline `walk_users`: visiting the same users and reading one number of
//!   each, the floor of any per-user pass.
//!
//! Run: `cargo bench -p ordermon-application --bench alert_evaluation`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ordermon_application::alerting::AlertingConfig;
use ordermon_application::alerting::eval::{EvalContext, RuleSet, SystemFigures, eval_user};
use ordermon_application::alerting::observed::Observed;
use ordermon_application::alerting::sampled::Sampled;
use ordermon_application::catalog::InstrumentCatalog;
use ordermon_application::market::QuoteBook;
use ordermon_domain::Decimal;
use ordermon_domain::event::{DomainEvent, EventPayload, PositionEvent};
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, Order, OrderEvent, OrderType, Side, TimeInForce};
use ordermon_domain::position::PositionChange;
use ordermon_domain::values::{Currency, Money, Price, Quantity};

const USERS: usize = 10_000;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn event(user: &UserId, id: String, seq: u64, at: DateTime<Utc>, p: EventPayload) -> DomainEvent {
    DomainEvent::new(id, seq, Some(user.clone()), at, None, p)
}

/// 10,000 users, each with an order every 30 s over the last 15 minutes
/// (acknowledged after 20 ms, every other one filled), one left open, and
/// every second user holding a position.
fn world() -> (
    Observed,
    Arc<InstrumentCatalog>,
    Arc<QuoteBook>,
    DateTime<Utc>,
) {
    let acme = InstrumentId::new("ACME.SIM").unwrap();
    let usd = Currency::new("USD").unwrap();
    let catalog = Arc::new(InstrumentCatalog::new([Instrument {
        id: acme.clone(),
        quote_currency: usd.clone(),
        tick_size: Price::new(d("0.01")).unwrap(),
        lot_size: Quantity::new(d("1")).unwrap(),
        min_quantity: Quantity::new(d("1")).unwrap(),
        max_quantity: None,
        min_notional: None,
        multiplier: Decimal::ONE,
        version: 1,
    }]));
    let quotes = Arc::new(QuoteBook::new(16));
    let mut observed = Observed::default();
    let now = t0() + Duration::minutes(15);
    for i in 0..USERS {
        let user = UserId::new(format!("u{i:05}")).unwrap();
        let offset = Duration::milliseconds((i as i64 * 37) % 30_000);
        let mut at = t0() + offset;
        let mut k = 0u64;
        while at < now {
            k += 1;
            let id = OrderId::generate();
            let new = NewOrder {
                client_order_id: ClientOrderId::new(format!("c{k}")).unwrap(),
                user_id: user.clone(),
                strategy_id: None,
                instrument_id: acme.clone(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                quantity: Quantity::new(d("1")).unwrap(),
                price: Some(Price::new(d("100.00")).unwrap()),
                trigger_price: None,
                time_in_force: TimeInForce::Gtc,
                expire_at: None,
                reduce_only: false,
                post_only: false,
            };
            let (order, _initialized) = Order::create(id, new, at).unwrap();
            let oid = id.to_string();
            observed.apply(&event(
                &user,
                oid.clone(),
                1,
                at,
                EventPayload::Order(OrderEvent::Initialized {
                    order: Box::new(order),
                }),
            ));
            observed.apply(&event(
                &user,
                oid.clone(),
                2,
                at,
                EventPayload::Order(OrderEvent::Submitted),
            ));
            let last = at + Duration::seconds(30) >= now;
            if !last {
                let acked = at + Duration::milliseconds(20);
                observed.apply(&event(
                    &user,
                    oid.clone(),
                    3,
                    acked,
                    EventPayload::Order(OrderEvent::Accepted {
                        venue_order_id: None,
                    }),
                ));
                if k.is_multiple_of(2) {
                    let fill = Fill {
                        trade_id: TradeId::new(format!("t{k}")).unwrap(),
                        order_id: id,
                        user_id: user.clone(),
                        instrument_id: acme.clone(),
                        side: Side::Buy,
                        quantity: Quantity::new(d("1")).unwrap(),
                        price: Price::new(d("100.00")).unwrap(),
                        commission: Money::new(d("0.01"), usd.clone()).unwrap(),
                        liquidity_side: LiquiditySide::Taker,
                        ts_event: acked,
                    };
                    observed.apply(&event(
                        &user,
                        oid,
                        4,
                        acked,
                        EventPayload::Order(OrderEvent::Filled { fill }),
                    ));
                }
            }
            at += Duration::seconds(30);
        }
        if i % 2 == 0 {
            let change = PositionChange {
                closed_qty: Decimal::ZERO,
                opened_qty: d("10"),
                realized: Decimal::ZERO,
                flipped: false,
                quantity_after: d("10"),
            };
            observed.apply(&event(
                &user,
                format!("{user}/ACME.SIM"),
                1,
                now,
                EventPayload::Position(PositionEvent::FillApplied {
                    order_id: OrderId::generate(),
                    trade_id: TradeId::new("p1").unwrap(),
                    side: Side::Buy,
                    quantity: Quantity::new(d("10")).unwrap(),
                    price: Price::new(d("100.00")).unwrap(),
                    commission: Money::new(d("0.1"), usd.clone()).unwrap(),
                    change,
                }),
            ));
        }
        let u = observed.user(&user);
        u.seed_account(1, [(usd.clone(), d("100000"))].into_iter().collect());
        u.sample_equity(now - Duration::seconds(10), d("100000"));
    }
    (observed, catalog, quotes, now)
}

fn bench(c: &mut Criterion) {
    let (observed, catalog, quotes, now) = world();
    let config = AlertingConfig::<()>::default();
    let rules = RuleSet {
        rules: config.rules().unwrap().into_iter().map(Arc::new).collect(),
        per_user: std::collections::HashMap::new(),
    };
    let ctx = EvalContext {
        now,
        quotes: &quotes,
        catalog: &catalog,
        venue_stuck_after: std::time::Duration::from_secs(30),
        strategy_alert_hold: std::time::Duration::from_secs(300),
        started_at: t0(),
        system: SystemFigures::default(),
        instance: "bench",
    };
    let sampled = Sampled::default();
    let mut g = c.benchmark_group("alerting_10k_users");
    g.sample_size(20);
    g.bench_function("walk_users", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for u in observed.users.values() {
                n += u.open.len();
            }
            n
        });
    });
    g.bench_function("full_evaluation", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for (user, u) in &observed.users {
                hits += eval_user(&rules, user, u, &sampled, &ctx).len();
            }
            hits
        });
    });
    g.bench_function("sampling", |b| {
        let mut s = Sampled::default();
        let mut k = 0i64;
        b.iter(|| {
            k += 1;
            let ctx = EvalContext {
                now: now + Duration::seconds(10 * k),
                ..ctx
            };
            s.sample(&rules, &observed, &ctx);
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
