//! Each built-in rule, made to happen through the engine's own use cases (and
//! its monitor's events), on a manual clock.

use std::sync::Arc;

use ordermon_application::UserPatch;
use ordermon_application::alerting::OverridePatch;
use ordermon_domain::alert::{AlertState, Severity};
use ordermon_domain::event::{DomainEvent, EventPayload, MonitorEvent};
use ordermon_domain::ids::{OrderId, RuleName, StrategyId, UserId};
use ordermon_domain::market::Quote;
use ordermon_domain::order::{Order, OrderStatus, Side};
use ordermon_domain::ports::{ChangeSet, ExecutionReportKind};
use ordermon_domain::risk::RiskLimits;
use ordermon_domain::values::{Price, Quantity};

use crate::common::{acme, d, fill, funded_user, limit, report};
use crate::harness::{World, world};

async fn submit(w: &World, user: &UserId, cid: &str, side: Side, qty: &str, px: &str) -> Order {
    w.h.engine
        .orders
        .submit(limit(user, cid, side, qty, px))
        .await
        .unwrap()
        .order
}

async fn exec(w: &World, user: &UserId, id: OrderId, kind: ExecutionReportKind) {
    let mut r = report(user, id, kind);
    r.ts_event = w.now();
    w.h.engine.orders.execution_report(r).await.unwrap();
}

async fn accept(w: &World, user: &UserId, id: OrderId) {
    exec(
        w,
        user,
        id,
        ExecutionReportKind::Accepted {
            venue_order_id: None,
        },
    )
    .await;
}

async fn limits(w: &World, user: &UserId, l: RiskLimits) {
    w.h.engine
        .users
        .update(
            user,
            UserPatch {
                limits: Some(l),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
}

fn quote(w: &World, px: &str) {
    let p = Price::new(d(px)).unwrap();
    w.quotes.publish(Quote {
        instrument_id: acme(),
        bid: p,
        ask: p,
        bid_size: Quantity::new(d("100")).unwrap(),
        ask_size: Quantity::new(d("100")).unwrap(),
        ts: w.now(),
    });
}

/// Commits a monitor event for `user`, as the user's owner does.
async fn monitor_event(w: &World, user: &UserId, seq: u64, event: MonitorEvent) {
    let mut cs = ChangeSet::default();
    cs.push_events([DomainEvent::new(
        format!("{user}:test"),
        seq,
        Some(user.clone()),
        w.now(),
        None,
        EventPayload::Monitor(event),
    )])
    .unwrap();
    w.h.engine.committer().commit(cs).await.unwrap();
}

async fn settle(w: &World) {
    w.alerting.sync().await;
    w.alerting.evaluate_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_order_and_stuck_cancel_fire_and_clear_with_the_venue_reply() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "10000").await;
    let o = submit(&w, &alice, "c1", Side::Buy, "1", "10.00").await;
    assert_eq!(o.status, OrderStatus::Submitted);
    settle(&w).await;
    w.advance(29).await;
    assert!(w.active("stuck_order").await.is_empty());
    w.advance(2).await;
    let a = w.active("stuck_order").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].labels["venue"], "SIM");
    assert_eq!(a[0].labels["user_id"], "alice");
    assert_eq!(a[0].user_id.as_ref(), Some(&alice));
    assert!(
        a[0].annotations["summary"].contains("unacknowledged for 31 s"),
        "{:?}",
        a[0].annotations
    );
    accept(&w, &alice, o.id).await;
    settle(&w).await;
    assert!(w.active("stuck_order").await.is_empty());
    assert_eq!(
        w.of_rule("stuck_order").await[0].state,
        AlertState::Resolved
    );
    // A cancel the venue does not confirm.
    w.h.engine.orders.cancel(&alice, o.id).await.unwrap();
    settle(&w).await;
    w.advance(31).await;
    assert_eq!(w.active("stuck_cancel").await.len(), 1);
    exec(&w, &alice, o.id, ExecutionReportKind::Canceled).await;
    settle(&w).await;
    assert!(w.active("stuck_cancel").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_orders_raise_reject_rate_and_rate_limit_exhaustion() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "10000").await;
    limits(
        &w,
        &alice,
        RiskLimits {
            max_orders_per_second: Some(1),
            ..RiskLimits::default()
        },
    )
    .await;
    for i in 0..12 {
        submit(&w, &alice, &format!("t{i}"), Side::Buy, "1", "10.00").await;
    }
    settle(&w).await;
    let reject = w.active("reject_rate_spike").await;
    assert_eq!(reject.len(), 1, "{:?}", w.alerts().await);
    // The value is the one that fired: the ratio once ten or more orders were
    // in (events are evaluated as they come, so it may be a few orders later).
    // (Shown to four decimals: all twelve in gives 11/12 as 0.9167.)
    let v: f64 = reject[0].value.as_deref().unwrap().parse().unwrap();
    assert!((0.5..=11.0 / 12.0 + 5e-5).contains(&v), "{v}");
    let throttled = w.active("api_rate_limit_exhaustion").await;
    let v: u32 = throttled[0].value.as_deref().unwrap().parse().unwrap();
    assert!((5..=11).contains(&v), "{v}");
    // A minute later the window is empty: both resolve.
    w.run_for(70).await;
    assert!(w.active("reject_rate_spike").await.is_empty());
    assert!(w.active("api_rate_limit_exhaustion").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn runaway_order_rate_follows_the_users_override() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "100000").await;
    let bob = funded_user(&w.h, "bob", "100000").await;
    w.alerting
        .set_override(
            &RuleName::new("runaway_order_rate").unwrap(),
            &alice,
            OverridePatch {
                threshold: Some(d("1")),
                severity: Some(Severity::Warning),
                ..OverridePatch::default()
            },
            "root",
        )
        .await
        .unwrap();
    for i in 0..15 {
        submit(
            &w,
            &alice,
            &format!("a{i}"),
            Side::Buy,
            "1",
            &format!("{}.00", 10 + i),
        )
        .await;
        submit(
            &w,
            &bob,
            &format!("b{i}"),
            Side::Buy,
            "1",
            &format!("{}.00", 10 + i),
        )
        .await;
    }
    settle(&w).await;
    let a = w.active("runaway_order_rate").await;
    assert_eq!(a.len(), 1, "only alice's threshold (1/s) is crossed: {a:?}");
    assert_eq!(a[0].labels["user_id"], "alice");
    assert_eq!(a[0].severity, Severity::Warning, "the override's severity");
    let v: f64 = a[0].value.as_deref().unwrap().parse().unwrap();
    assert!(
        (1.0..=1.5).contains(&v),
        "fired from the tenth order in 10 s: {v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_orders_within_ten_seconds_are_duplicates() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "100000").await;
    for i in 0..6 {
        submit(&w, &alice, &format!("d{i}"), Side::Buy, "3", "12.50").await;
    }
    settle(&w).await;
    let a = w.active("duplicate_orders").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].value.as_deref(), Some("5"));
}

#[tokio::test(flavor = "multi_thread")]
async fn position_limit_approach_then_breach_which_inhibits_the_approach() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "100000").await;
    limits(
        &w,
        &alice,
        RiskLimits {
            max_position: Some(d("10")),
            ..RiskLimits::default()
        },
    )
    .await;
    let o = submit(&w, &alice, "p1", Side::Buy, "9", "10.00").await;
    accept(&w, &alice, o.id).await;
    exec(&w, &alice, o.id, fill("t1", "9", "10.00", "0")).await;
    settle(&w).await;
    let a = w.active("position_limit_approach").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].labels["instrument_id"], "ACME.SIM");
    assert_eq!(a[0].value.as_deref(), Some("0.9"));
    assert!(w.active("position_limit_breach").await.is_empty());
    // The limit is lowered below the position: a breach.
    limits(
        &w,
        &alice,
        RiskLimits {
            max_position: Some(d("5")),
            ..RiskLimits::default()
        },
    )
    .await;
    settle(&w).await;
    let b = w.active("position_limit_breach").await;
    assert_eq!(b[0].value.as_deref(), Some("1.8"));
    assert_eq!(b[0].severity, Severity::Critical);
    assert!(w.active("position_limit_approach").await[0].inhibited);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_falling_mark_raises_drawdown_loss_velocity_and_daily_loss() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "10000").await;
    limits(
        &w,
        &alice,
        RiskLimits {
            max_daily_loss: Some(d("1000")),
            ..RiskLimits::default()
        },
    )
    .await;
    quote(&w, "100.00");
    let o = submit(&w, &alice, "b1", Side::Buy, "50", "100.00").await;
    accept(&w, &alice, o.id).await;
    exec(&w, &alice, o.id, fill("t1", "50", "100.00", "0")).await;
    settle(&w).await;
    // Equity 10,000 is sampled as the high-water mark and the day's start.
    w.run_for(20).await;
    assert!(w.active("drawdown").await.is_empty());
    quote(&w, "70.00");
    w.advance(10).await;
    // 50 × 30 = 1,500 lost: 15 % drawdown, 15 % in minutes, 1.5 × the daily limit.
    let dd = w.active("drawdown").await;
    assert_eq!(dd[0].value.as_deref(), Some("0.15"), "{dd:?}");
    assert_eq!(
        w.active("loss_velocity").await[0].value.as_deref(),
        Some("0.15")
    );
    assert_eq!(
        w.active("daily_loss_approach").await[0].value.as_deref(),
        Some("1.5")
    );
    // The mark recovers: all clear.
    quote(&w, "100.00");
    w.advance(10).await;
    assert!(w.active("drawdown").await.is_empty());
    assert!(w.active("daily_loss_approach").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_market_data_fires_without_quotes_and_clears_with_one() {
    let w = world().await;
    quote(&w, "10.00");
    w.advance(29).await;
    assert!(w.active("stale_market_data").await.is_empty());
    w.advance(2).await;
    let a = w.active("stale_market_data").await;
    assert_eq!(a[0].labels["instrument_id"], "ACME.SIM");
    assert_eq!(a[0].user_id, None);
    quote(&w, "10.01");
    w.advance(1).await;
    assert!(w.active("stale_market_data").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overfill_is_a_reconciliation_mismatch() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "10000").await;
    let o = submit(&w, &alice, "o1", Side::Buy, "10", "10.00").await;
    accept(&w, &alice, o.id).await;
    exec(&w, &alice, o.id, fill("t1", "10", "10.00", "0")).await;
    settle(&w).await;
    assert!(w.active("reconciliation_mismatch").await.is_empty());
    exec(&w, &alice, o.id, fill("t2", "5", "10.00", "0")).await;
    settle(&w).await;
    let a = w.active("reconciliation_mismatch").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].severity, Severity::Critical);
    // Fifteen quiet minutes later it is over.
    w.run_for(910).await;
    assert!(w.active("reconciliation_mismatch").await.is_empty());
}

/// An open order the venue no longer knew when the owner started counts as a
/// mismatch too.
#[tokio::test(flavor = "multi_thread")]
async fn an_order_the_venue_forgot_is_a_reconciliation_mismatch() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "10000").await;
    let o = submit(&w, &alice, "o1", Side::Buy, "10", "10.00").await;
    settle(&w).await;
    assert!(w.active("reconciliation_mismatch").await.is_empty());
    monitor_event(
        &w,
        &alice,
        1,
        MonitorEvent::ReconciliationMismatch {
            order_id: o.id,
            detail: "the venue does not trade ACME.SIM any more".to_owned(),
        },
    )
    .await;
    settle(&w).await;
    let a = w.active("reconciliation_mismatch").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].labels["user_id"], "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn strategy_heartbeat_crash_and_strategy_alerts_come_from_monitor_events() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "10000").await;
    let s = StrategyId::new("mr-1").unwrap();
    monitor_event(
        &w,
        &alice,
        1,
        MonitorEvent::StrategyHeartbeatMissing {
            strategy_id: s.clone(),
            silent_secs: 65,
        },
    )
    .await;
    settle(&w).await;
    let hb = w.active("strategy_heartbeat_missing").await;
    assert_eq!(hb[0].labels["strategy_id"], "mr-1");
    monitor_event(
        &w,
        &alice,
        2,
        MonitorEvent::StrategyHeartbeatResumed {
            strategy_id: s.clone(),
        },
    )
    .await;
    settle(&w).await;
    assert!(w.active("strategy_heartbeat_missing").await.is_empty());
    monitor_event(
        &w,
        &alice,
        3,
        MonitorEvent::Restarted {
            strategy_id: Some(s.clone()),
            error: "boom".to_owned(),
            attempt: 1,
        },
    )
    .await;
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("instrument_id".to_owned(), "ACME.SIM".to_owned());
    monitor_event(
        &w,
        &alice,
        4,
        MonitorEvent::StrategyAlert {
            strategy_id: s.clone(),
            rule: RuleName::new("price_alert").unwrap(),
            severity: Severity::Info,
            summary: "ACME.SIM crossed 100".to_owned(),
            labels,
        },
    )
    .await;
    settle(&w).await;
    assert_eq!(
        w.active("strategy_crashed").await[0].value.as_deref(),
        Some("1")
    );
    let p = w.active("price_alert").await;
    assert_eq!(p[0].annotations["summary"], "ACME.SIM crossed 100");
    assert_eq!(p[0].labels["strategy_id"], "mr-1");
    // Held five minutes after the strategy's last word; the crash ten.
    w.run_for(310).await;
    assert!(w.active("price_alert").await.is_empty());
    assert_eq!(w.active("strategy_crashed").await.len(), 1);
    w.run_for(300).await;
    assert!(w.active("strategy_crashed").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_acknowledgement_after_a_steady_history_is_a_latency_spike() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "1000000").await;
    for i in 0..40 {
        let o = submit(&w, &alice, &format!("l{i}"), Side::Buy, "1", "10.00").await;
        w.clock
            .advance(chrono::Duration::milliseconds(20 + (i % 5) * 3));
        accept(&w, &alice, o.id).await;
        settle(&w).await;
        w.advance(10).await;
    }
    assert!(w.active("latency_spike").await.is_empty());
    let o = submit(&w, &alice, "slow", Side::Buy, "1", "10.00").await;
    w.clock.advance(chrono::Duration::milliseconds(2000));
    accept(&w, &alice, o.id).await;
    settle(&w).await;
    w.advance(10).await;
    let a = w.active("latency_spike").await;
    assert_eq!(a.len(), 1, "{:?}", w.alerts().await);
    assert_eq!(a[0].value.as_deref(), Some("2000"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fills_drying_up_is_a_fill_rate_drop() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "10000000").await;
    let mut n = 0;
    let mut step = |filled: bool| {
        n += 1;
        (format!("f{n}"), filled)
    };
    for round in 0..70 {
        let filled = round < 45;
        for _ in 0..2 {
            let (cid, fills) = step(filled);
            let o = submit(&w, &alice, &cid, Side::Buy, "1", "10.00").await;
            accept(&w, &alice, o.id).await;
            if fills {
                exec(
                    &w,
                    &alice,
                    o.id,
                    fill(&format!("t-{cid}"), "1", "10.00", "0"),
                )
                .await;
            }
        }
        settle(&w).await;
        w.advance(10).await;
        if round < 45 {
            assert!(w.active("fill_rate_drop").await.is_empty(), "round {round}");
        }
    }
    let a = w.active("fill_rate_drop").await;
    assert_eq!(a.len(), 1, "{:?}", w.alerts().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_unlike_the_users_history_is_unusual_and_an_order_rate_anomaly() {
    // A fusion of two rolling detectors as a rule of one's own; the built-in
    // order_rate_anomaly also wants the seasonal view, which needs two weeks.
    let mut c = crate::harness::config();
    c.rules.push(
        toml::from_str(
            r#"
            name = "rate_fusion"
            signal = "order_rate"
            window = "1m"
            threshold = "1"
            detector = { kind = "fusion", min_agree = 2, detectors = [{ kind = "zscore", direction = "up" }, { kind = "ewma", direction = "up" }] }
            "#,
        )
        .unwrap(),
    );
    let w = crate::harness::world_with(c, ordermon_application::VenueMode::External).await;
    let alice = funded_user(&w.h, "alice", "100000000").await;
    let mut k = 0;
    for round in 0..80 {
        for j in 0..(2 + round % 2) {
            k += 1;
            let o = submit(
                &w,
                &alice,
                &format!("u{k}"),
                Side::Buy,
                "1",
                &format!("{}.00", 10 + j),
            )
            .await;
            accept(&w, &alice, o.id).await;
            exec(&w, &alice, o.id, fill(&format!("t{k}"), "1", "10.00", "0")).await;
        }
        settle(&w).await;
        w.advance(10).await;
    }
    assert!(
        w.active("unusual_trading_behaviour").await.is_empty(),
        "{:?}",
        w.alerts().await
    );
    assert!(w.active("rate_fusion").await.is_empty());
    // A burst of large orders that are all refused (no funds for them).
    for i in 0..120 {
        submit(&w, &alice, &format!("x{i}"), Side::Buy, "1000000", "999.00").await;
    }
    settle(&w).await;
    w.advance(10).await;
    let u = w.active("unusual_trading_behaviour").await;
    assert_eq!(u.len(), 1, "{:?}", w.alerts().await);
    assert!(u[0].value.as_deref().unwrap().parse::<f64>().unwrap() >= 0.6);
    assert_eq!(
        w.active("rate_fusion").await.len(),
        1,
        "both rolling detectors agree"
    );
    assert!(
        w.active("order_rate_anomaly").await.is_empty(),
        "the seasonal detector has no history yet: one detector alone does not page"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_position_growing_toward_its_limit_is_forecast() {
    let w = world().await;
    let alice = funded_user(&w.h, "alice", "100000000").await;
    limits(
        &w,
        &alice,
        RiskLimits {
            max_position: Some(d("100")),
            ..RiskLimits::default()
        },
    )
    .await;
    let mut fired_at = None;
    for i in 0..60 {
        let o = submit(&w, &alice, &format!("g{i}"), Side::Buy, "1", "10.00").await;
        accept(&w, &alice, o.id).await;
        exec(&w, &alice, o.id, fill(&format!("t{i}"), "1", "10.00", "0")).await;
        settle(&w).await;
        w.advance(10).await;
        if fired_at.is_none() && !w.active("position_limit_forecast").await.is_empty() {
            fired_at = Some(i + 1);
        }
    }
    // One lot every 10 s: 100 is reached within 10 minutes once the position
    // is past about 40.
    let at = fired_at.expect("forecast fired");
    assert!((38..=50).contains(&at), "fired at position {at}");
    let a = w.active("position_limit_forecast").await;
    let secs: i64 = a[0].value.as_deref().unwrap().parse().unwrap();
    assert!(secs <= 600, "{secs}");
    assert!(w.active("position_limit_breach").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_figures_raise_dead_letters_and_forecast_the_outbox() {
    let probe = Arc::new(crate::harness::FakeProbe::default());
    let w = crate::harness::world_with_probe(probe.clone()).await;
    probe.set(0, 0);
    w.run_for(30).await;
    assert!(w.active("dead_letters").await.is_empty());
    probe.set(2, 0);
    w.advance(1).await;
    w.advance(1).await;
    assert_eq!(
        w.active("dead_letters").await[0].value.as_deref(),
        Some("2")
    );
    // The outbox grows by 500 rows every 10 s: 100,000 is about 33 min away…
    let mut pending = 0;
    for _ in 0..20 {
        pending += 500;
        probe.set(2, pending);
        w.advance(10).await;
    }
    assert!(w.active("outbox_backlog_forecast").await.is_empty());
    // …then by 5,000 every 10 s: under ten minutes, before it is reached.
    let mut fired = false;
    for _ in 0..15 {
        pending += 5000;
        probe.set(2, pending);
        w.advance(10).await;
        if !w.active("outbox_backlog_forecast").await.is_empty() {
            fired = true;
            break;
        }
    }
    assert!(fired, "{:?}", w.alerts().await);
    assert!(pending < 100_000, "{pending}");
    let a = w.active("outbox_backlog_forecast").await;
    assert_eq!(a[0].labels["instance"], "test");
    let secs: u64 = a[0].value.as_deref().unwrap().parse().unwrap();
    assert!(secs <= 600, "{secs}");
}
