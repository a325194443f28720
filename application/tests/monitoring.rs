//! Monitoring over the in-memory store: database-controlled monitors,
//! contained strategy failures, strategy validation, stuck orders, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::strategy::{
    Strategy, StrategyCommand, StrategyContext, StrategyFactory, StrategyOrder, StrategyRegistry,
};
use ordermon_application::{
    AppError, CreateUser, Engine, EngineConfig, FieldError, MonitorConfig, Monitoring,
    StrategyPatch, UserPatch, VenueMode,
};
use ordermon_domain::event::{EventPayload, MonitorEvent};
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::market::Quote;
use ordermon_domain::order::{OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ChangeSet, OrderQuery, StateChange, SystemClock};
use ordermon_domain::strategy::{Strategy as StrategyConfig, StrategyStatus};
use ordermon_domain::user::UserStatus;
use ordermon_domain::values::{Price, Quantity};
use ordermon_memory::MemoryStore;
use tokio_util::sync::CancellationToken;

/// A strategy type that panics on every quote.
#[derive(Debug)]
struct Panicky;

impl Strategy for Panicky {
    fn on_quote(&mut self, _: &StrategyContext<'_>, _: &Quote) -> Vec<StrategyCommand> {
        panic!("boom");
    }
    fn update_params(&mut self, _: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// Buys far below the market whenever it has no open order: acting twice on
/// one state would show as a second order.
#[derive(Debug)]
struct Eager;

impl Strategy for Eager {
    fn on_quote(&mut self, ctx: &StrategyContext<'_>, q: &Quote) -> Vec<StrategyCommand> {
        if !ctx.open_orders.is_empty() {
            return Vec::new();
        }
        vec![StrategyCommand::Submit(StrategyOrder {
            instrument_id: q.instrument_id.clone(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: Quantity::new(d("1")).unwrap(),
            price: Some(Price::new(d("50")).unwrap()),
            time_in_force: TimeInForce::Gtc,
            reduce_only: false,
        })]
    }
    fn update_params(&mut self, _: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// Buys one when flat, sells it when long: one round trip per price swing.
#[derive(Debug)]
struct RoundTrip;

impl Strategy for RoundTrip {
    fn on_quote(&mut self, ctx: &StrategyContext<'_>, q: &Quote) -> Vec<StrategyCommand> {
        if !ctx.open_orders.is_empty() {
            return Vec::new();
        }
        let long = ctx.position_qty(&q.instrument_id) > d("0");
        vec![StrategyCommand::Submit(StrategyOrder {
            instrument_id: q.instrument_id.clone(),
            side: if long { Side::Sell } else { Side::Buy },
            order_type: OrderType::Market,
            quantity: Quantity::new(d("1")).unwrap(),
            price: None,
            time_in_force: TimeInForce::Ioc,
            reduce_only: long,
        })]
    }
    fn update_params(&mut self, _: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// A test strategy type: a name and how to make an instance.
/// Timer callbacks taken by [`Clocked`] strategies that use the timer, and
/// by those that say they do not.
static TIMER_CALLS: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Counts its timer callbacks; `.0` is what it says of using the timer.
#[derive(Debug)]
struct Clocked(bool);

impl Strategy for Clocked {
    fn on_timer(&mut self, _: &StrategyContext<'_>) -> Vec<StrategyCommand> {
        TIMER_CALLS[usize::from(self.0)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Vec::new()
    }
    fn uses_timer(&self) -> bool {
        self.0
    }
    fn update_params(&mut self, _: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

#[derive(Debug)]
struct TestFactory(&'static str, fn() -> Box<dyn Strategy>);

impl StrategyFactory for TestFactory {
    fn type_name(&self) -> &'static str {
        self.0
    }
    fn description(&self) -> &'static str {
        "a test strategy"
    }
    fn validate(&self, _: &serde_json::Value, _: &[InstrumentId]) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
    fn create(&self, _: &StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>> {
        Ok((self.1)())
    }
}

struct Monitored {
    h: Harness,
    monitoring: Arc<Monitoring>,
    cancel: CancellationToken,
}

async fn monitored(mode: VenueMode) -> Monitored {
    monitored_with(mode, EngineConfig::default().max_event_bytes).await
}

async fn monitored_with(mode: VenueMode, max_event_bytes: usize) -> Monitored {
    monitored_scanning(mode, max_event_bytes, Duration::from_millis(100)).await
}

async fn monitored_scanning(
    mode: VenueMode,
    max_event_bytes: usize,
    scan_interval: Duration,
) -> Monitored {
    let store = Arc::new(MemoryStore::new());
    let mut registry = StrategyRegistry::with_builtins();
    registry.register(Arc::new(TestFactory("panicky", || Box::new(Panicky))));
    registry.register(Arc::new(TestFactory("eager", || Box::new(Eager))));
    registry.register(Arc::new(TestFactory("round_trip", || Box::new(RoundTrip))));
    registry.register(Arc::new(TestFactory("timed", || Box::new(Clocked(true)))));
    registry.register(Arc::new(TestFactory("untimed", || {
        Box::new(Clocked(false))
    })));
    let (engine, cancel) = engine_on(
        Persistence::from_backend(store.clone()),
        EngineConfig {
            venue_mode: mode,
            monitor: MonitorConfig {
                scan_interval,
                tick_interval: Duration::from_millis(50),
                stuck_submit_after: Duration::from_millis(200),
                ..MonitorConfig::default()
            },
            max_event_bytes,
            ..EngineConfig::default()
        },
        registry,
    )
    .await;
    let h = Harness { engine, store };
    add_acme(&h).await;
    let monitoring = Monitoring::spawn(h.engine.clone(), &cancel);
    Monitored {
        h,
        monitoring,
        cancel,
    }
}

/// An engine on `persistence`, stopped by the token returned.
async fn engine_on(
    persistence: Persistence,
    config: EngineConfig,
    registry: StrategyRegistry,
) -> (Arc<Engine>, CancellationToken) {
    let cancel = CancellationToken::new();
    let engine = Engine::start_with_registry(
        persistence,
        Arc::new(QuoteBook::new(1024)),
        Arc::new(SystemClock),
        config,
        CommitConfig::default(),
        cancel.child_token(),
        registry,
    )
    .await
    .unwrap();
    (engine, cancel)
}

async fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within {within:?}: {what}");
}

fn strategy(user: &UserId, id: &str, kind: &str, params: serde_json::Value) -> StrategyConfig {
    StrategyConfig {
        id: StrategyId::new(id).unwrap(),
        user_id: user.clone(),
        strategy_type: kind.to_owned(),
        name: id.to_owned(),
        instruments: vec![acme()],
        params,
        status: StrategyStatus::Enabled,
        stats: Default::default(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
        version: 0,
        sequence: 0,
    }
}

fn publish(m: &Monitored, bid: &str, ask: &str) {
    m.h.engine.instruments.quotes().publish(Quote {
        instrument_id: acme(),
        bid: Price::new(d(bid)).unwrap(),
        ask: Price::new(d(ask)).unwrap(),
        bid_size: Quantity::new(d("100")).unwrap(),
        ask_size: Quantity::new(d("100")).unwrap(),
        ts: Utc::now(),
    });
}

/// What `UPDATE users SET status=...` does: the row changes behind the owner.
async fn set_status_in_database(h: &Harness, user: &UserId, status: UserStatus) {
    let mut u = h.engine.users.get(user).await.unwrap();
    let expected = u.version;
    u.status = status;
    u.version += 1;
    let mut cs = ChangeSet::default();
    cs.changes.push(StateChange::User {
        user: Box::new(u),
        expected,
    });
    ordermon_domain::ports::Store::commit(h.store.as_ref(), cs)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn database_status_starts_and_stops_monitors() {
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "100").await;
    let b = funded_user(&m.h, "bob", "100").await;
    eventually("both monitored", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a) && m.h.engine.is_monitored(&b)
    })
    .await;

    set_status_in_database(&m.h, &a, UserStatus::Disabled).await;
    eventually("alice stopped", Duration::from_secs(2), || {
        !m.h.engine.is_monitored(&a)
    })
    .await;
    assert!(m.h.engine.is_monitored(&b), "bob's monitor is untouched");
    // The owner adopted the database's status: orders are denied.
    let out =
        m.h.engine
            .orders
            .submit(limit(&a, "c-1", Side::Buy, "1", "10.00"))
            .await
            .unwrap();
    assert_eq!(out.order.reason.as_deref(), Some("user_disabled"));

    set_status_in_database(&m.h, &a, UserStatus::Active).await;
    eventually("alice restarted", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a)
    })
    .await;
    assert_eq!(m.monitoring.status().active_users, 2);
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_created_through_the_api_is_monitored_at_once() {
    // Scans an hour apart: only the creation itself can start the monitor.
    let m = monitored_scanning(
        VenueMode::External,
        EngineConfig::default().max_event_bytes,
        Duration::from_secs(3600),
    )
    .await;
    // The first scan runs at start; wait for it so it cannot be the cause.
    eventually("first scan", Duration::from_secs(2), || {
        m.monitoring.status().scans == 1
    })
    .await;
    let created = Instant::now();
    let a = funded_user(&m.h, "alice", "100").await;
    eventually("alice monitored", Duration::from_secs(1), || {
        m.h.engine.is_monitored(&a)
    })
    .await;
    assert_eq!(m.monitoring.status().scans, 1, "no scan ran");
    eprintln!("monitored {:?} after creation", created.elapsed());
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn api_status_change_takes_effect_at_once() {
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "100").await;
    eventually("monitored", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a)
    })
    .await;
    let started = Instant::now();
    m.h.engine
        .users
        .update(
            &a,
            UserPatch {
                status: Some(UserStatus::Disabled),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(
        !m.h.engine.is_monitored(&a),
        "stopped when the call returns"
    );
    m.h.engine
        .users
        .update(
            &a,
            UserPatch {
                status: Some(UserStatus::Active),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(m.h.engine.is_monitored(&a));
    assert!(started.elapsed() < Duration::from_secs(1));
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_strategy_is_contained() {
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "100").await;
    let b = funded_user(&m.h, "bob", "100").await;
    m.h.engine
        .strategies
        .create(strategy(&a, "crashy", "panicky", serde_json::json!({})))
        .await
        .unwrap();
    m.h.engine
        .strategies
        .create(strategy(
            &b,
            "watch",
            "price_alert",
            serde_json::json!({"level": "100"}),
        ))
        .await
        .unwrap();
    eventually("both monitored", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a) && m.h.engine.is_monitored(&b)
    })
    .await;
    publish(&m, "99.00", "99.02");
    eventually("a restart", Duration::from_secs(2), || {
        m.monitoring.status().restarts >= 1
    })
    .await;
    publish(&m, "101.00", "101.02");
    // Bob's strategy kept working: its crossing is recorded as a strategy
    // alert event (the alerting service raises the alert from it).
    let mut found = false;
    for _ in 0..100 {
        let events =
            m.h.engine
                .events
                .after(&ordermon_application::Scope::User(b.clone()), 0, 1000)
                .await
                .unwrap();
        if events.iter().any(|e| {
            matches!(&e.event.payload, EventPayload::Monitor(MonitorEvent::StrategyAlert { rule, .. }) if rule.as_str() == "price_alert")
        }) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(found, "bob's price alert fired");
    // The restart is an event in the log.
    let events =
        m.h.engine
            .events
            .after(&ordermon_application::Scope::User(a.clone()), 0, 1000)
            .await
            .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.event_type == "monitor.restarted")
    );
    assert!(
        m.h.engine.is_monitored(&a),
        "alice's monitor itself keeps running"
    );
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strategy_never_acts_twice_on_one_state() {
    // Quotes reach strategies in lanes, away from the owner that executes what
    // they ask for; a burst of quotes must still see the first order placed.
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "1000").await;
    let b = funded_user(&m.h, "bob", "1000").await;
    for (user, id) in [(&a, "eager-a"), (&b, "eager-b")] {
        m.h.engine
            .strategies
            .create(strategy(user, id, "eager", serde_json::json!({})))
            .await
            .unwrap();
    }
    eventually("both monitored", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a) && m.h.engine.is_monitored(&b)
    })
    .await;
    for n in 0..2_000 {
        publish(&m, "99.00", "99.02");
        if n % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for user in [&a, &b] {
        let orders =
            m.h.engine
                .orders
                .list(&OrderQuery {
                    user_id: Some(user.clone()),
                    limit: 100,
                    ..OrderQuery::default()
                })
                .await
                .unwrap();
        assert_eq!(orders.len(), 1, "{user}: {orders:?}");
        let strategies = m.h.engine.strategies.list(user).await.unwrap();
        assert_eq!(strategies[0].stats.orders, 1);
    }
    // The strategies keep seeing quotes after acting, and do not act again:
    // quotes published now, with each order in place, reach them. (Counted
    // after the burst: how much of a burst a strategy sees while its first
    // order commits depends on the machine's timing.)
    let before = m.monitoring.status().events_processed;
    eventually(
        "strategies called after acting",
        Duration::from_secs(5),
        || {
            for _ in 0..5 {
                publish(&m, "99.00", "99.02");
            }
            m.monitoring.status().events_processed >= before + 100
        },
    )
    .await;
    for user in [&a, &b] {
        let strategies = m.h.engine.strategies.list(user).await.unwrap();
        assert_eq!(strategies[0].stats.orders, 1, "{user} acted again");
    }
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn strategy_stats_count_orders_fills_pnl_and_wins() {
    let m = monitored(VenueMode::Paper).await;
    let venue = ordermon_sim::paper::PaperVenue::new(
        Default::default(),
        m.h.engine.instruments.quotes(),
        m.h.engine.report_sink(),
        Arc::new(SystemClock),
        m.h.engine.instruments.catalog(),
    )
    .unwrap();
    m.h.engine.set_venue(Arc::new(venue));
    let a = funded_user(&m.h, "alice", "1000").await;
    m.h.engine
        .strategies
        .create(strategy(&a, "trips", "round_trip", serde_json::json!({})))
        .await
        .unwrap();
    eventually("monitored", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a)
    })
    .await;
    let stats = || async {
        m.h.engine.strategies.list(&a).await.unwrap()[0]
            .stats
            .clone()
    };
    // Buy at 100.02; sell at 101.00: a winning round trip.
    publish(&m, "100.00", "100.02");
    let start = Instant::now();
    while stats().await.fills < 1 {
        assert!(start.elapsed() < Duration::from_secs(2), "no buy fill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(&m, "101.00", "101.02");
    while stats().await.fills < 2 {
        assert!(start.elapsed() < Duration::from_secs(4), "no sell fill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let won = stats().await;
    assert_eq!((won.orders, won.fills, won.wins, won.losses), (2, 2, 1, 0));
    // 0.98 gained, less commissions on both fills.
    assert!(
        won.realized_pnl > d("0") && won.realized_pnl < d("0.98"),
        "{won:?}"
    );
    // Buy at 101.02 again; sell at 99.00: a losing one.
    publish(&m, "101.00", "101.02");
    while stats().await.fills < 3 {
        assert!(start.elapsed() < Duration::from_secs(6), "no second buy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(&m, "99.00", "99.02");
    while stats().await.fills < 4 {
        assert!(start.elapsed() < Duration::from_secs(8), "no second sell");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lost = stats().await;
    assert_eq!((lost.wins, lost.losses), (1, 1));
    assert!(lost.realized_pnl < won.realized_pnl, "{lost:?}");
    assert_eq!(lost.win_rate(), Some(d("0.5")));
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_params_are_refused_and_nothing_is_saved() {
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "100").await;
    let err =
        m.h.engine
            .strategies
            .create(strategy(
                &a,
                "bad",
                "twap",
                serde_json::json!({"side": "buy"}),
            ))
            .await
            .unwrap_err();
    assert!(matches!(err, AppError::Validation(_)));
    let err =
        m.h.engine
            .strategies
            .create(strategy(&a, "bad2", "nope", serde_json::json!({})))
            .await
            .unwrap_err();
    assert!(matches!(&err, AppError::Validation(e) if e[0].field == "type"));
    assert!(m.h.engine.strategies.list(&a).await.unwrap().is_empty());
    // A good one, then a bad hot update: refused, the old params stay.
    m.h.engine
        .strategies
        .create(strategy(
            &a,
            "ok",
            "price_alert",
            serde_json::json!({"level": "100"}),
        ))
        .await
        .unwrap();
    let id = StrategyId::new("ok").unwrap();
    let err =
        m.h.engine
            .strategies
            .update(
                &a,
                &id,
                StrategyPatch {
                    params: Some(serde_json::json!({"level": "-1"})),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
    assert!(matches!(err, AppError::Validation(_)));
    let s = m.h.engine.strategies.get(&a, &id).await.unwrap();
    assert_eq!(s.params, serde_json::json!({"level": "100"}));
    // Disable through the API: stored at once.
    let s =
        m.h.engine
            .strategies
            .update(
                &a,
                &id,
                StrategyPatch {
                    status: Some(StrategyStatus::Disabled),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(s.status, StrategyStatus::Disabled);
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn strategies_are_bounded_and_their_instruments_deduplicated() {
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "100").await;
    let field = |e: &AppError| match e {
        AppError::Validation(errors) => errors.first().map(|f| f.field.clone()),
        _ => None,
    };
    // ~95,000 repeats of one instrument: one instrument.
    let mut repeated = strategy(
        &a,
        "rep",
        "price_alert",
        serde_json::json!({"level": "100"}),
    );
    repeated.instruments = vec![acme(); 95_000];
    let created = m.h.engine.strategies.create(repeated).await.unwrap();
    assert_eq!(created.instruments, vec![acme()]);
    // More distinct instruments than a strategy may name: refused with one error.
    let mut many = strategy(
        &a,
        "many",
        "price_alert",
        serde_json::json!({"level": "100"}),
    );
    many.instruments = (0..101)
        .map(|i| ordermon_domain::ids::InstrumentId::new(format!("I{i}.SIM")).unwrap())
        .collect();
    let err = m.h.engine.strategies.create(many).await.unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("instruments"), "{err}");
    if let AppError::Validation(errors) = &err {
        assert_eq!(errors.len(), 1);
    }
    // Oversized params: refused, on create and on update.
    let big = serde_json::json!({"level": "100", "note": "x".repeat(20_000)});
    let err =
        m.h.engine
            .strategies
            .create(strategy(&a, "big", "price_alert", big.clone()))
            .await
            .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("params"), "{err}");
    let err =
        m.h.engine
            .strategies
            .update(
                &a,
                &StrategyId::new("rep").unwrap(),
                StrategyPatch {
                    params: Some(big),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("params"), "{err}");
    let names: Vec<String> =
        m.h.engine
            .strategies
            .list(&a)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id.to_string())
            .collect();
    assert_eq!(names, vec!["rep".to_owned()]);
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_whose_event_is_too_large_is_refused_and_changes_nothing() {
    let m = monitored_with(VenueMode::External, 4_096).await;
    let a = funded_user(&m.h, "alice", "100").await;
    // A strategy type that takes any params, kept disabled.
    let quiet = |id: &str, params: serde_json::Value| {
        let mut s = strategy(&a, id, "eager", params);
        s.status = StrategyStatus::Disabled;
        s
    };
    m.h.engine
        .strategies
        .create(quiet("small", serde_json::json!({"level": "100"})))
        .await
        .unwrap();
    // Under the params cap, over this engine's event cap.
    let big = serde_json::json!({"level": "100", "note": "x".repeat(6_000)});
    let err =
        m.h.engine
            .strategies
            .create(quiet("big", big.clone()))
            .await
            .unwrap_err();
    assert!(
        matches!(&err, AppError::Validation(e) if e[0].field == "body" && e[0].message.contains("4096")),
        "{err}"
    );
    let err =
        m.h.engine
            .strategies
            .update(
                &a,
                &StrategyId::new("small").unwrap(),
                StrategyPatch {
                    params: Some(big),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
    assert!(
        matches!(&err, AppError::Validation(e) if e[0].field == "body"),
        "{err}"
    );
    let listed = m.h.engine.strategies.list(&a).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].params, serde_json::json!({"level": "100"}));
    let stored =
        ordermon_domain::ports::StrategyRepository::list_strategies(m.h.store.as_ref(), &a)
            .await
            .unwrap();
    assert_eq!(stored, listed);
    // The owner goes on: a small change commits.
    let s =
        m.h.engine
            .strategies
            .update(
                &a,
                &StrategyId::new("small").unwrap(),
                StrategyPatch {
                    params: Some(serde_json::json!({"level": "101"})),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(s.params, serde_json::json!({"level": "101"}));
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_submissions_are_noticed() {
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "100").await;
    eventually("monitored", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a)
    })
    .await;
    m.h.engine
        .orders
        .submit(limit(&a, "c-1", Side::Buy, "1", "10.00"))
        .await
        .unwrap();
    let scope = ordermon_application::Scope::User(a.clone());
    let mut seen = false;
    for _ in 0..100 {
        let events = m.h.engine.events.after(&scope, 0, 1000).await.unwrap();
        if events
            .iter()
            .any(|e| e.event.event_type == "monitor.stuck_order")
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "a stuck-order event is recorded");
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_with_a_thousand_monitors_is_quick() {
    let m = monitored(VenueMode::External).await;
    for i in 0..1000 {
        m.h.engine
            .users
            .create(CreateUser {
                id: UserId::new(format!("u{i}")).unwrap(),
                name: format!("u{i}"),
                status: UserStatus::Active,
                role: Default::default(),
                account_type: Default::default(),
                limits: Default::default(),
            })
            .await
            .unwrap();
    }
    eventually("1000 monitors", Duration::from_secs(10), || {
        m.h.engine.monitored_users() == 1000
    })
    .await;
    let started = Instant::now();
    m.cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), m.h.engine.shutdown())
        .await
        .expect("clean shutdown within 5 s");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_strategies_that_use_the_timer_are_called_on_ticks() {
    let m = monitored(VenueMode::Paper).await;
    let a = funded_user(&m.h, "alice", "100").await;
    for (id, kind) in [("clock", "timed"), ("quiet", "untimed")] {
        m.h.engine
            .strategies
            .create(strategy(&a, id, kind, serde_json::json!({})))
            .await
            .unwrap();
    }
    eventually("both running", Duration::from_secs(2), || {
        m.h.engine.running_strategies() == 2
    })
    .await;
    // Ticks come every 50 ms: a second is about twenty.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let [untimed, timed] =
        [0, 1].map(|i| TIMER_CALLS[i].load(std::sync::atomic::Ordering::Relaxed));
    assert!(timed >= 5, "the timed strategy was called {timed} times");
    assert_eq!(
        untimed, 0,
        "a strategy without a timer is not called on ticks"
    );
    m.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scan_returns_once_the_monitors_it_started_are_committed() {
    let m = monitored(VenueMode::External).await;
    let a = funded_user(&m.h, "alice", "100").await;
    eventually("monitored", Duration::from_secs(2), || {
        m.h.engine.is_monitored(&a)
    })
    .await;
    set_status_in_database(&m.h, &a, UserStatus::Disabled).await;
    eventually("stopped", Duration::from_secs(2), || {
        !m.h.engine.is_monitored(&a)
    })
    .await;
    set_status_in_database(&m.h, &a, UserStatus::Active).await;
    // This scan, or the loop's running now, starts the monitor; either
    // returns only once the start is committed.
    m.monitoring.scan().await.unwrap();
    assert!(m.h.engine.is_monitored(&a));
    let scope = ordermon_application::Scope::User(a.clone());
    let events = m.h.engine.events.after(&scope, 0, 1000).await.unwrap();
    let started = events
        .iter()
        .filter(|e| e.event.event_type == "monitor.started")
        .count();
    assert_eq!(started, 2, "the second start is in the log");
    m.cancel.cancel();
}

/// The nice values of this process's quote lane threads (Linux).
#[cfg(target_os = "linux")]
fn lane_nice_values() -> Vec<i64> {
    let mut nice = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("ordermon-lane-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // After the command's closing parenthesis: state is field 3, nice field 19.
        let after = stat.rsplit(')').next().unwrap_or("");
        if let Some(n) = after
            .split_whitespace()
            .nth(16)
            .and_then(|v| v.parse().ok())
        {
            nice.push(n);
        }
    }
    nice
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn quote_lanes_run_at_the_nice_value_configured() {
    let (engine, cancel) = engine_on(
        Persistence::from_backend(Arc::new(MemoryStore::new())),
        EngineConfig {
            venue_mode: VenueMode::External,
            // A higher nice value than the process's needs no privilege; no
            // other test asks for 7, so the three threads with it are these.
            monitor: MonitorConfig {
                lanes: 3,
                lane_nice: 7,
                ..MonitorConfig::default()
            },
            ..EngineConfig::default()
        },
        StrategyRegistry::with_builtins(),
    )
    .await;
    let _monitoring = Monitoring::spawn(engine.clone(), &cancel);
    eventually("three lanes at nice 7", Duration::from_secs(5), || {
        lane_nice_values().iter().filter(|n| **n == 7).count() == 3
    })
    .await;
    cancel.cancel();
}

/// Passes every user and strategy read to the store, counting the reads of
/// every row the monitoring scan makes.
#[derive(Debug)]
struct CountingReads {
    store: Arc<MemoryStore>,
    user_reads: std::sync::atomic::AtomicU64,
    strategy_reads: std::sync::atomic::AtomicU64,
}

impl CountingReads {
    fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.user_reads.load(SeqCst),
            self.strategy_reads.load(SeqCst),
        )
    }
}

#[async_trait::async_trait]
impl ordermon_domain::ports::UserRepository for CountingReads {
    async fn get_user(
        &self,
        id: &UserId,
    ) -> Result<Option<ordermon_domain::user::User>, ordermon_domain::ports::StoreError> {
        self.store.get_user(id).await
    }
    async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<ordermon_domain::user::User>, ordermon_domain::ports::StoreError> {
        self.store.list_users(after, limit).await
    }
    async fn user_statuses(
        &self,
    ) -> Result<Vec<(UserId, UserStatus)>, ordermon_domain::ports::StoreError> {
        self.user_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.user_statuses().await
    }
    async fn user_status_stamp(&self) -> Result<Option<u64>, ordermon_domain::ports::StoreError> {
        self.store.user_status_stamp().await
    }
    async fn get_users(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<ordermon_domain::user::User>, ordermon_domain::ports::StoreError> {
        self.store.get_users(ids).await
    }
}

#[async_trait::async_trait]
impl ordermon_domain::ports::StrategyRepository for CountingReads {
    async fn get_strategy(
        &self,
        user: &UserId,
        id: &StrategyId,
    ) -> Result<Option<StrategyConfig>, ordermon_domain::ports::StoreError> {
        self.store.get_strategy(user, id).await
    }
    async fn list_strategies(
        &self,
        user: &UserId,
    ) -> Result<Vec<StrategyConfig>, ordermon_domain::ports::StoreError> {
        self.store.list_strategies(user).await
    }
    async fn strategies_of(
        &self,
        users: &[UserId],
    ) -> Result<Vec<StrategyConfig>, ordermon_domain::ports::StoreError> {
        self.store.strategies_of(users).await
    }
    async fn strategy_statuses(
        &self,
    ) -> Result<Vec<(StrategyId, UserId, StrategyStatus, u64)>, ordermon_domain::ports::StoreError>
    {
        self.strategy_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.strategy_statuses().await
    }
    async fn strategy_stamp(&self) -> Result<Option<u64>, ordermon_domain::ports::StoreError> {
        self.store.strategy_stamp().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scan_reads_users_and_strategies_only_when_they_may_have_changed() {
    use ordermon_domain::ports::{StrategyRepository, UserRepository};
    let store = Arc::new(MemoryStore::new());
    let reads = Arc::new(CountingReads {
        store: store.clone(),
        user_reads: Default::default(),
        strategy_reads: Default::default(),
    });
    let mut persistence = Persistence::from_backend(store.clone());
    persistence.users = reads.clone();
    persistence.strategies = reads.clone();
    let mut registry = StrategyRegistry::with_builtins();
    registry.register(Arc::new(TestFactory("untimed", || {
        Box::new(Clocked(false))
    })));
    let (engine, cancel) = engine_on(
        persistence,
        EngineConfig {
            venue_mode: VenueMode::External,
            // Only the loop's first scan; the others are called here.
            monitor: MonitorConfig {
                scan_interval: Duration::from_secs(3600),
                ..MonitorConfig::default()
            },
            ..EngineConfig::default()
        },
        registry,
    )
    .await;
    let h = Harness {
        engine,
        store: store.clone(),
    };
    add_acme(&h).await;
    let monitoring = Monitoring::spawn(h.engine.clone(), &cancel);
    let alice = funded_user(&h, "alice", "100").await;
    h.engine
        .strategies
        .create(strategy(&alice, "quiet", "untimed", serde_json::json!({})))
        .await
        .unwrap();
    eventually("alice's strategy runs", Duration::from_secs(5), || {
        h.engine.running_strategies() == 1
    })
    .await;
    // The monitor started and the strategy added since the last reads: the
    // next scan reads both, and the one after finds them settled.
    monitoring.scan().await.unwrap();
    monitoring.scan().await.unwrap();
    let settled = reads.counts();
    monitoring.scan().await.unwrap();
    monitoring.scan().await.unwrap();
    assert_eq!(reads.counts(), settled, "nothing changed: no rows read");

    // Disabled in the database behind the owner, as plain SQL would.
    let mut quiet = store
        .get_strategy(&alice, &StrategyId::new("quiet").unwrap())
        .await
        .unwrap()
        .unwrap();
    let expected = quiet.version;
    quiet.status = StrategyStatus::Disabled;
    quiet.version += 1;
    let mut cs = ChangeSet::default();
    cs.changes.push(StateChange::Strategy {
        strategy: Box::new(quiet),
        expected,
    });
    ordermon_domain::ports::Store::commit(store.as_ref(), cs)
        .await
        .unwrap();
    monitoring.scan().await.unwrap();
    assert_eq!(
        reads.counts(),
        (settled.0, settled.1 + 1),
        "the strategies' stamp moved: they are read, the users are not"
    );
    eventually("the strategy stopped", Duration::from_secs(5), || {
        h.engine.running_strategies() == 0
    })
    .await;

    set_status_in_database(&h, &alice, UserStatus::Disabled).await;
    let before = reads.counts();
    monitoring.scan().await.unwrap();
    assert_eq!(reads.counts().0, before.0 + 1, "the users' stamp moved");
    eventually("alice's monitor stopped", Duration::from_secs(5), || {
        !h.engine.is_monitored(&alice)
    })
    .await;
    assert!(store.user_status_stamp().await.unwrap().is_some());
    cancel.cancel();
}
