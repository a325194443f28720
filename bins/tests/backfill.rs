//! `backfill replay` and `backfill purge` as a process, on every SQL backend:
//! a database written by the real engine (orders, fills, cancels, cash over
//! several users, strategies) replays without a difference; a projection
//! changed by hand with SQL is named by `--verify` and repaired by a plain
//! replay; purge deletes what is old and never an event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::{CreateUser, Engine, EngineConfig, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, StrategyId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind, SystemClock};
use ordermon_domain::strategy::{Strategy, StrategyStatus};
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_tests::{Backend, TestStore, provision};
use tokio_util::sync::CancellationToken;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn acme() -> InstrumentId {
    InstrumentId::new("ACME.SIM").unwrap()
}

mod common;

use common::backfill;

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn start(store: &TestStore) -> Arc<Engine> {
    let sql = store.sql.clone().expect("a SQL backend");
    Engine::start(
        Persistence::from_backend(Arc::new(sql)),
        Arc::new(QuoteBook::new(1024)),
        Arc::new(SystemClock),
        EngineConfig {
            venue_mode: VenueMode::External,
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn order(user: &UserId, cid: &str, side: Side, qty: &str, px: &str) -> NewOrder {
    NewOrder {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        user_id: user.clone(),
        strategy_id: None,
        instrument_id: acme(),
        side,
        order_type: OrderType::Limit,
        quantity: Quantity::new(d(qty)).unwrap(),
        price: Some(Price::new(d(px)).unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    }
}

async fn report(e: &Engine, user: &UserId, id: OrderId, kind: ExecutionReportKind) {
    e.orders
        .execution_report(ExecutionReport {
            order_id: id,
            user_id: user.clone(),
            kind,
            ts_event: Utc::now(),
        })
        .await
        .unwrap();
}

fn fill(trade: &str, qty: &str, px: &str) -> ExecutionReportKind {
    ExecutionReportKind::Fill {
        trade_id: TradeId::new(trade).unwrap(),
        quantity: Quantity::new(d(qty)).unwrap(),
        price: Price::new(d(px)).unwrap(),
        commission: Money::new(d("0.05"), usd()).unwrap(),
        liquidity_side: LiquiditySide::Taker,
    }
}

const ACCEPTED: ExecutionReportKind = ExecutionReportKind::Accepted {
    venue_order_id: None,
};

/// Trading over three users: deposits and a withdrawal, fills that open,
/// add to, reduce and flip positions, a cancel, a strategy with orders.
async fn trade(e: &Engine) {
    e.instruments
        .upsert(Instrument {
            id: acme(),
            quote_currency: usd(),
            tick_size: Price::new(d("0.01")).unwrap(),
            lot_size: Quantity::new(d("1")).unwrap(),
            min_quantity: Quantity::new(d("1")).unwrap(),
            max_quantity: None,
            min_notional: None,
            multiplier: Decimal::ONE,
            version: 0,
        })
        .await
        .unwrap();
    for (i, name) in ["alice", "bob", "carol"].into_iter().enumerate() {
        let user = UserId::new(name).unwrap();
        e.users
            .create(CreateUser {
                id: user.clone(),
                name: name.to_owned(),
                status: Default::default(),
                role: Default::default(),
                account_type: Default::default(),
                limits: Default::default(),
            })
            .await
            .unwrap();
        e.accounts
            .adjust_cash(
                &user,
                Money::new(d("10000"), usd()).unwrap(),
                "deposit".into(),
            )
            .await
            .unwrap();
        e.accounts
            .adjust_cash(&user, Money::new(d("-250.5"), usd()).unwrap(), "fee".into())
            .await
            .unwrap();
        let strategy = StrategyId::new(format!("s-{name}")).unwrap();
        e.strategies
            .create(Strategy {
                id: strategy.clone(),
                user_id: user.clone(),
                strategy_type: "price_alert".to_owned(),
                name: format!("watch {name}"),
                instruments: vec![acme()],
                params: serde_json::json!({"level": "100"}),
                status: StrategyStatus::Enabled,
                stats: Default::default(),
                created_at: Utc::now(),
                updated_at: Utc::now(),
                version: 0,
                sequence: 0,
            })
            .await
            .unwrap();
        // Buy 10, buy 5 more, sell 12: open, add, reduce.
        let mut tagged = order(&user, "b-1", Side::Buy, "10", "10.00");
        tagged.strategy_id = Some(strategy.clone());
        let b1 = e.orders.submit(tagged).await.unwrap().order.id;
        report(e, &user, b1, ACCEPTED).await;
        report(e, &user, b1, fill(&format!("t1-{i}"), "4", "9.99")).await;
        report(e, &user, b1, fill(&format!("t2-{i}"), "6", "10.00")).await;
        let b2 = e
            .orders
            .submit(order(&user, "b-2", Side::Buy, "5", "11.00"))
            .await
            .unwrap()
            .order
            .id;
        report(e, &user, b2, ACCEPTED).await;
        report(e, &user, b2, fill(&format!("t3-{i}"), "5", "10.50")).await;
        let mut sell = order(&user, "s-1", Side::Sell, "12", "12.00");
        sell.strategy_id = Some(strategy);
        let s1 = e.orders.submit(sell).await.unwrap().order.id;
        report(e, &user, s1, ACCEPTED).await;
        report(e, &user, s1, fill(&format!("t4-{i}"), "12", "12.25")).await;
        // A resting order that is canceled, one that stays open.
        let c1 = e
            .orders
            .submit(order(&user, "c-1", Side::Buy, "3", "8.00"))
            .await
            .unwrap()
            .order
            .id;
        report(e, &user, c1, ACCEPTED).await;
        e.orders.cancel(&user, c1).await.unwrap();
        report(e, &user, c1, ExecutionReportKind::Canceled).await;
        let o1 = e
            .orders
            .submit(order(&user, "o-1", Side::Buy, "2", "7.00"))
            .await
            .unwrap()
            .order
            .id;
        report(e, &user, o1, ACCEPTED).await;
        // A portfolio read stores the high-water mark.
        e.accounts.portfolio(&user).await.unwrap();
    }
}

async fn replay_repairs_a_hand_edit(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let logs = std::env::temp_dir().join(format!("ordermon-bf-{}", uuid::Uuid::now_v7().simple()));
    let engine = start(&store).await;
    trade(&engine).await;
    engine.shutdown().await;

    let o = backfill(&db, &logs, &["replay", "--verify"]);
    assert!(
        o.status.success(),
        "a database written by the engine replays clean: {}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("differences:        0"), "{out}");
    assert!(out.contains("events/s:"), "{out}");

    // An operator changes a position by hand.
    store
        .operator_sql(
            "UPDATE positions SET quantity = 10 WHERE user_id = 'bob' AND instrument_id = 'ACME.SIM'",
        )
        .await
        .unwrap();
    let o = backfill(&db, &logs, &["replay", "--verify"]);
    assert!(!o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("positions bob/ACME.SIM: quantity stored 10, replayed 3"),
        "the changed row is named: {}",
        text(&o)
    );
    assert!(out.contains("differences:        1"), "{out}");

    // A plain replay rewrites it; the next verify is clean.
    let o = backfill(&db, &logs, &["replay"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("rows rewritten:     "),
        "{}",
        text(&o)
    );
    let o = backfill(&db, &logs, &["replay", "--verify"]);
    assert!(o.status.success(), "repaired: {}", text(&o));
    let _ = std::fs::remove_dir_all(&logs);
}

async fn purge_keeps_the_event_log(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let logs = std::env::temp_dir().join(format!("ordermon-bf-{}", uuid::Uuid::now_v7().simple()));
    let old = logs.join("system").join("ordermon_2020-01-01.log");
    let new = logs
        .join("system")
        .join(format!("ordermon_{}.log", Utc::now().format("%Y-%m-%d")));
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, "old\n").unwrap();
    std::fs::write(&new, "new\n").unwrap();
    let engine = start(&store).await;
    trade(&engine).await;
    engine.shutdown().await;
    let sql = store.sql.clone().unwrap();
    use ordermon_domain::ports::BarRepository as _;
    let bar = |t: chrono::DateTime<Utc>| ordermon_domain::market::Bar {
        instrument_id: acme(),
        interval: ordermon_domain::market::BarInterval::M1,
        open_time: t,
        open: Price::new(d("1")).unwrap(),
        high: Price::new(d("1")).unwrap(),
        low: Price::new(d("1")).unwrap(),
        close: Price::new(d("1")).unwrap(),
        volume: d("1"),
    };
    let long_ago = Utc::now() - chrono::Duration::days(200);
    sql.upsert_bars(&[
        bar(long_ago),
        bar(Utc::now() - chrono::Duration::minutes(5)),
    ])
    .await
    .unwrap();
    let events = |s: ordermon_sql::SqlStore| async move {
        use ordermon_domain::ports::EventLog as _;
        s.events_after(0, None, 10_000).await.unwrap().len()
    };
    let before = events(sql.clone()).await;

    let o = backfill(&db, &logs, &["purge", "--older-than", "12h"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("under 1 day"),
        "{}",
        text(&o)
    );

    let o = backfill(&db, &logs, &["purge", "--older-than", "90d", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("would delete"), "{out}");
    assert!(out.contains("bars:                     1"), "{out}");
    assert!(out.contains("log files:                1"), "{out}");
    assert!(old.exists(), "a dry run deletes nothing");

    let o = backfill(&db, &logs, &["purge", "--older-than", "90d"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("bars:                     1"), "{out}");
    assert!(!old.exists() && new.exists(), "only the old log file went");
    assert_eq!(events(sql.clone()).await, before, "no event was purged");
    let o = backfill(&db, &logs, &["replay", "--verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_sqlite() {
    replay_repairs_a_hand_edit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_postgres() {
    replay_repairs_a_hand_edit(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_mysql() {
    replay_repairs_a_hand_edit(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_sqlite() {
    purge_keeps_the_event_log(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_postgres() {
    purge_keeps_the_event_log(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_mysql() {
    purge_keeps_the_event_log(Backend::MySql).await;
}

#[test]
fn commands_fail_clearly() {
    let logs = std::env::temp_dir();
    for args in [
        &["orders", "--file", "no-such-file.csv"][..],
        &["fills", "--file", "no-such-file.jsonl", "--dry-run"],
    ] {
        let o = backfill("sqlite::memory:", &logs, args);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("cannot open no-such-file"),
            "{}",
            text(&o)
        );
    }
    let o = backfill("memory", &logs, &["replay", "--verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing to replay"),
        "{}",
        text(&o)
    );
    let o = backfill(
        "postgres://u:hunter2@127.0.0.1:1/x",
        &logs,
        &["replay", "--verify"],
    );
    assert!(!o.status.success());
    assert!(
        !text(&o).contains("hunter2"),
        "no password printed: {}",
        text(&o)
    );
}
