//! `backfill replay --verify` throughput on PostgreSQL, against a same-run
//! baseline: a plain keyset scan of the events table (`SELECT position, data
//! … ORDER BY position LIMIT 10000`, rows fetched, nothing decoded).
//!
//! Seeds `REPLAY_EVENTS` events (default 1,000,000) through the store's group
//! commit, with the state rows the engine would write: per user an opened
//! and funded account, then orders that are initialized, submitted,
//! accepted, reserved, filled (position fill and account settlement), built
//! by the domain's own aggregates. Then times the replay the binary runs
//! (`ordermon_application::replay::replay` in verify mode) and the baseline,
//! and prints events/s and the ratio.
//!
//! ```sh
//! cargo bench -p ordermon-tests --bench replay
//! REPLAY_EVENTS=200000 cargo bench -p ordermon-tests --bench replay
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ordermon_application::persistence::Persistence;
use ordermon_application::replay::{self, ReplayMode};
use ordermon_domain::account::{Account, AccountType, Hold, ReservationRequest};
use ordermon_domain::event::{
    AccountEvent, DomainEvent, EventPayload, PositionEvent, position_aggregate_id,
};
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, Order, OrderEvent, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ChangeSet, ReservationWrite, StateChange, Store as _};
use ordermon_domain::position::Position;
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_tests::{Backend, provision};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::Row as _;

/// Events per filled order: 4 order events, a reservation, a settlement and
/// a position fill.
const PER_ORDER: usize = 7;
const ORDERS_PER_USER: usize = 100;

fn event(id: String, seq: u64, user: &UserId, payload: EventPayload) -> DomainEvent {
    DomainEvent::new(id, seq, Some(user.clone()), Utc::now(), None, payload)
}

/// One user's whole history and final state rows, as one batch.
fn user_batch(n: usize, instrument: &Instrument) -> ChangeSet {
    let user = UserId::new(format!("u{n:06}")).unwrap();
    let usd = Currency::new("USD").unwrap();
    let mut events = Vec::new();
    let mut account = Account::new(user.clone(), AccountType::Cash);
    let deposit = Money::new(dec!(10000000), usd.clone()).unwrap();
    account.adjust_cash(&deposit).unwrap();
    account.sequence = 2;
    let uid = user.to_string();
    events.push(event(
        uid.clone(),
        1,
        &user,
        EventPayload::Account(AccountEvent::Opened {
            account_type: AccountType::Cash,
        }),
    ));
    events.push(event(
        uid.clone(),
        2,
        &user,
        EventPayload::Account(AccountEvent::CashAdjusted {
            amount: deposit,
            reason: "bench".into(),
        }),
    ));
    let mut position = Position::flat(
        user.clone(),
        instrument.id.clone(),
        usd.clone(),
        Decimal::ONE,
        Utc::now(),
    );
    let mut changes = Vec::new();
    for i in 0..ORDERS_PER_USER {
        let now = Utc::now();
        let (mut order, init) = Order::create(
            OrderId::generate(),
            NewOrder {
                client_order_id: ClientOrderId::new(format!("c-{i}")).unwrap(),
                user_id: user.clone(),
                strategy_id: None,
                instrument_id: instrument.id.clone(),
                side: if i % 3 == 2 { Side::Sell } else { Side::Buy },
                order_type: OrderType::Limit,
                quantity: Quantity::new(dec!(10)).unwrap(),
                price: Some(Price::new(dec!(100.25)).unwrap()),
                trigger_price: None,
                time_in_force: TimeInForce::Gtc,
                expire_at: None,
                reduce_only: false,
                post_only: false,
            },
            now,
        )
        .unwrap();
        let oid = order.id.to_string();
        events.push(event(oid.clone(), 1, &user, EventPayload::Order(init)));
        for e in [
            OrderEvent::Submitted,
            OrderEvent::Accepted {
                venue_order_id: Some(format!("V{i}")),
            },
        ] {
            order.apply(&e, now).unwrap();
            events.push(event(
                oid.clone(),
                order.sequence,
                &user,
                EventPayload::Order(e),
            ));
        }
        let hold = if order.side == Side::Buy {
            Hold::Cash {
                currency: usd.clone(),
                amount: dec!(1003.5),
            }
        } else {
            Hold::Position {
                instrument_id: instrument.id.clone(),
                quantity: dec!(10),
            }
        };
        let request = ReservationRequest {
            hold,
            quantity: order.quantity,
        };
        let held = position.quantity;
        account.reserve(order.id, &request, held).unwrap();
        account.sequence += 1;
        events.push(event(
            uid.clone(),
            account.sequence,
            &user,
            EventPayload::Account(AccountEvent::Reserved {
                order_id: order.id,
                request,
                position_qty: held,
            }),
        ));
        let price = Price::new(dec!(100.25)).unwrap();
        let commission = Money::new(dec!(1.0025), usd.clone()).unwrap();
        let fill = Fill {
            trade_id: TradeId::new(format!("t{i}")).unwrap(),
            order_id: order.id,
            user_id: user.clone(),
            instrument_id: instrument.id.clone(),
            side: order.side,
            quantity: order.quantity,
            price,
            commission: commission.clone(),
            liquidity_side: LiquiditySide::Taker,
            ts_event: now,
        };
        let filled = OrderEvent::Filled { fill: fill.clone() };
        order.apply(&filled, now).unwrap();
        events.push(event(
            oid,
            order.sequence,
            &user,
            EventPayload::Order(filled),
        ));
        let change = position.apply_fill(fill.side, fill.quantity, price, &commission, now);
        position.sequence += 1;
        events.push(event(
            position_aggregate_id(&user, &instrument.id),
            position.sequence,
            &user,
            EventPayload::Position(PositionEvent::FillApplied {
                order_id: order.id,
                trade_id: fill.trade_id.clone(),
                side: fill.side,
                quantity: fill.quantity,
                price,
                commission: commission.clone(),
                change,
            }),
        ));
        let settlement = account.settle_fill(
            order.id,
            fill.side,
            fill.quantity,
            price,
            Decimal::ONE,
            &usd,
            &commission,
        );
        account.sequence += 1;
        events.push(event(
            uid.clone(),
            account.sequence,
            &user,
            EventPayload::Account(AccountEvent::FillSettled {
                order_id: order.id,
                trade_id: fill.trade_id.clone(),
                side: fill.side,
                quantity: fill.quantity,
                price,
                multiplier: Decimal::ONE,
                quote_currency: usd.clone(),
                commission,
                settlement,
            }),
        ));
        order.version = 1;
        changes.push(StateChange::Order {
            order: Box::new(order),
            expected: 0,
        });
        changes.push(StateChange::Fill(Box::new(fill)));
    }
    account.version = 1;
    position.version = 1;
    changes.push(StateChange::Account {
        account: Box::new(account),
        expected: 0,
        reservations: ReservationWrite::All,
    });
    changes.push(StateChange::Position {
        position: Box::new(position),
        expected: 0,
    });
    let mut cs = ChangeSet {
        changes,
        ..ChangeSet::default()
    };
    // The event log only: the relay's outbox plays no part in a replay.
    cs.events = events;
    cs
}

fn main() {
    let wanted: usize = std::env::var("REPLAY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let Some(t) = provision(Backend::Postgres).await else {
            eprintln!("skipped: PostgreSQL unreachable");
            return;
        };
        let sql = t.sql.clone().unwrap();
        let store = Arc::new(sql.clone());
        let p = Persistence::from_backend(store.clone());
        let instrument = Instrument {
            id: InstrumentId::new("ACME.SIM").unwrap(),
            quote_currency: Currency::new("USD").unwrap(),
            tick_size: Price::new(dec!(0.01)).unwrap(),
            lot_size: Quantity::new(dec!(1)).unwrap(),
            min_quantity: Quantity::new(dec!(1)).unwrap(),
            max_quantity: None,
            min_notional: None,
            multiplier: Decimal::ONE,
            version: 1,
        };
        store
            .commit(ChangeSet {
                changes: vec![StateChange::Instrument { instrument: Box::new(instrument.clone()), expected: 0 }],
                ..ChangeSet::default()
            })
            .await
            .unwrap();
        let users = wanted.div_ceil(2 + ORDERS_PER_USER * PER_ORDER);
        let seeding = Instant::now();
        for chunk in (0..users).collect::<Vec<_>>().chunks(8) {
            let batches: Vec<ChangeSet> = chunk.iter().map(|n| user_batch(*n, &instrument)).collect();
            for r in store.commit_group(batches).await {
                r.unwrap();
            }
        }
        let events = users * (2 + ORDERS_PER_USER * PER_ORDER);
        eprintln!(
            "seeded {events} events ({users} users, {} orders) in {:.1} s",
            users * ORDERS_PER_USER,
            seeding.elapsed().as_secs_f64()
        );
        sql.execute_unprepared("ANALYZE").await.unwrap();

        // Baseline: the same keyset pages, rows fetched, nothing decoded.
        let url = t.url.clone().unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let mut best_scan = f64::MAX;
        let mut best_replay = f64::MAX;
        for round in 0..3 {
            let started = Instant::now();
            let (mut after, mut rows, mut bytes) = (0_i64, 0_usize, 0_usize);
            loop {
                let page = sqlx::query(
                    "SELECT position, data FROM events WHERE position > $1 ORDER BY position LIMIT 10000",
                )
                .bind(after)
                .fetch_all(&pool)
                .await
                .unwrap();
                let Some(last) = page.last() else { break };
                after = last.get::<i64, _>(0);
                rows += page.len();
                bytes += page.iter().map(|r| r.get::<&str, _>(1).len()).sum::<usize>();
            }
            let scan = started.elapsed().as_secs_f64();
            assert_eq!(rows, events);
            // Decoding alone: the JSON of one page, parsed as domain events.
            let page = sqlx::query("SELECT data FROM events ORDER BY position LIMIT 10000")
                .fetch_all(&pool)
                .await
                .unwrap();
            let texts: Vec<String> = page.iter().map(|r| r.get::<String, _>(0)).collect();
            let started = Instant::now();
            for t in &texts {
                let e: DomainEvent = serde_json::from_str(t).unwrap();
                std::hint::black_box(e);
            }
            let decode = texts.len() as f64 / started.elapsed().as_secs_f64();

            let started = Instant::now();
            let report = replay::replay(&p, ReplayMode::Verify, &|_| {}).await.unwrap();
            let replayed = started.elapsed().as_secs_f64();
            assert_eq!(report.events as usize, events);
            assert!(report.differences.is_empty(), "{:?}", &report.differences[..3.min(report.differences.len())]);
            eprintln!(
                "round {round}: scan {:.0} events/s ({:.2} s, {} MB), JSON decode alone {decode:.0} events/s, replay --verify {:.0} events/s ({:.2} s; log {:.2} s, {} rows checked)",
                events as f64 / scan,
                scan,
                bytes / 1_000_000,
                events as f64 / replayed,
                replayed,
                report.replay_time.as_secs_f64(),
                report.checked.total(),
            );
            best_scan = best_scan.min(scan);
            best_replay = best_replay.min(replayed);
        }
        println!(
            "replay --verify on PostgreSQL: {events} events, best of 3: {:.0} events/s; baseline SELECT scan {:.0} events/s; replay/scan = {:.2}",
            events as f64 / best_replay,
            events as f64 / best_scan,
            best_scan / best_replay,
        );
        pool.close().await;
    });
}
