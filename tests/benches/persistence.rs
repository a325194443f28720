//! Persistence benchmark: commit N new orders (each with its `Initialized` event
//! and outbox row) one per transaction, and in group commits of 100, on every
//! backend; beside a same-run baseline of raw single-row INSERTs into a plain
//! two-column table of the same database.
//!
//! Run: `cargo bench -p ordermon-tests --bench persistence`
//! (`ORDERMON_BENCH_ORDERS` sets N, default 10000; service URLs as for the tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::time::Instant;

use chrono::Utc;
use ordermon_domain::event::{DomainEvent, EventPayload};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, UserId};
use ordermon_domain::order::{NewOrder, Order, OrderEvent, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ChangeSet, StateChange};
use ordermon_domain::values::{Price, Quantity};
use ordermon_tests::{Backend, TestStore, provision};
use rust_decimal_macros::dec;
use sqlx::Connection as _;

const GROUP: usize = 100;

fn batch(i: usize) -> ChangeSet {
    let new = NewOrder {
        client_order_id: ClientOrderId::new(format!("bench-{i}")).unwrap(),
        user_id: UserId::new(format!("user{}", i % 50)).unwrap(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: Quantity::new(dec!(10)).unwrap(),
        price: Some(Price::new(dec!(101.25)).unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    };
    let (mut order, event) = Order::create(OrderId::generate(), new, Utc::now()).unwrap();
    order.version = 1;
    let event = DomainEvent::new(
        order.id.to_string(),
        1,
        Some(order.user_id.clone()),
        order.created_at,
        None,
        EventPayload::Order(event),
    );
    let mut set = ChangeSet {
        changes: vec![StateChange::Order {
            order: Box::new(order),
            expected: 0,
        }],
        ..ChangeSet::default()
    };
    set.push_events([event]).unwrap();
    debug_assert!(matches!(
        set.events[0].payload,
        EventPayload::Order(OrderEvent::Initialized { .. })
    ));
    set
}

/// Raw single-row autocommit INSERTs on one connection; returns rows per second.
async fn raw_inserts(t: &TestStore, n: usize) -> Option<f64> {
    let url = t.url.as_deref()?;
    t.operator_sql("CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, v TEXT NOT NULL)")
        .await;
    let start;
    match t.backend {
        Backend::Sqlite => {
            use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
            let opts = SqliteConnectOptions::from_str(url)
                .unwrap()
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
            start = Instant::now();
            for i in 0..n {
                sqlx::query("INSERT INTO bench_raw (id, v) VALUES (?, ?)")
                    .bind(i as i64)
                    .bind(format!("row {i}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            start = Instant::now();
            for i in 0..n {
                sqlx::query("INSERT INTO bench_raw (id, v) VALUES ($1, $2)")
                    .bind(i as i64)
                    .bind(format!("row {i}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
            start = Instant::now();
            for i in 0..n {
                sqlx::query("INSERT INTO bench_raw (id, v) VALUES (?, ?)")
                    .bind(i as i64)
                    .bind(format!("row {i}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
        Backend::Memory => return None,
    }
    Some(n as f64 / start.elapsed().as_secs_f64())
}

/// One commit per order; returns orders per second.
async fn single(t: &TestStore, batches: Vec<ChangeSet>) -> f64 {
    let n = batches.len();
    let start = Instant::now();
    for b in batches {
        t.store.commit(b).await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Group commits of [`GROUP`] orders; returns orders per second.
async fn grouped(t: &TestStore, batches: Vec<ChangeSet>) -> f64 {
    let n = batches.len();
    let mut groups = Vec::new();
    let mut it = batches.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(GROUP).collect::<Vec<_>>());
    }
    let start = Instant::now();
    for g in groups {
        for r in t.store.commit_group(g).await {
            r.unwrap();
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("ORDERMON_BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("persistence benchmark: {n} orders per run, groups of {GROUP}\n");
    println!(
        "| backend | raw INSERT rows/s | one per tx orders/s | group of {GROUP} orders/s | group ÷ single | single ÷ raw |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for backend in [
        Backend::Memory,
        Backend::Sqlite,
        Backend::Postgres,
        Backend::MySql,
    ] {
        rt.block_on(async {
            let Some(t) = provision(backend).await else {
                return;
            };
            let raw = raw_inserts(&t, n).await;
            let single_rate = single(&t, (0..n).map(batch).collect()).await;
            let group_rate = grouped(&t, (n..2 * n).map(batch).collect()).await;
            let raw_text = raw.map_or("–".to_owned(), |r| format!("{r:.0}"));
            let vs_raw = raw.map_or("–".to_owned(), |r| format!("{:.2}", single_rate / r));
            println!(
                "| {} | {raw_text} | {single_rate:.0} | {group_rate:.0} | {:.1}× | {vs_raw} |",
                backend.name(),
                group_rate / single_rate,
            );
        });
    }
}
