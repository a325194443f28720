//! The alert lifecycle end to end: raise, notify, acknowledge, repeat,
//! resolve, silence, inhibit, escalate, retry, restart.

use std::time::Duration;

use ordermon_application::Scope;
use ordermon_domain::alert::{AlertState, Matcher, NewSilence, NotificationKind};
use ordermon_domain::risk::TradingState;

use crate::common::{funded_user, limit};
use crate::harness::{World, world};

async fn halt(w: &World, state: TradingState) {
    w.h.engine
        .admin
        .kill_switch(None, state, "drill".to_owned(), "root".to_owned())
        .await
        .unwrap();
    w.alerting.sync().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_switch_alert_is_notified_acknowledged_not_repeated_and_resolved() {
    let w = world().await;
    halt(&w, TradingState::Halted).await;
    let a = w.active("kill_switch_engaged").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, AlertState::Firing);
    // group_wait (1 s), then one notification to the default receiver.
    assert!(
        w.ops
            .rules()
            .iter()
            .all(|(r, _)| r != "kill_switch_engaged")
    );
    w.advance(1).await;
    // Wait for this rule's notification, not just the first one to arrive.
    let n = w.notified(&w.ops, "kill_switch_engaged").await;
    assert_eq!(n.kind, NotificationKind::Update);
    assert_eq!(n.receiver, "ops");
    // Acknowledged: an hour later, no repeat (the watchdog repeats; it is
    // not acknowledged).
    let acked = w
        .alerting
        .acknowledge(&Scope::All, a[0].id, "ops-oncall")
        .await
        .unwrap();
    assert!(acked.acknowledged);
    let before = w.ops.got.lock().len();
    w.run_for(3700).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kill_repeats = w.ops.got.lock()[before..]
        .iter()
        .filter(|n| {
            n.alerts
                .iter()
                .any(|a| a.rule.as_str() == "kill_switch_engaged")
        })
        .count();
    assert_eq!(kill_repeats, 0, "acknowledged alerts do not repeat");
    let watchdog_repeats = w.ops.got.lock()[before..]
        .iter()
        .filter(|n| {
            n.kind == NotificationKind::Repeat
                && n.alerts.iter().any(|a| a.rule.as_str() == "watchdog")
        })
        .count();
    assert_eq!(
        watchdog_repeats, 1,
        "the dead-man repeats every repeat_interval"
    );
    // Released: resolved, and the receiver is told.
    halt(&w, TradingState::Active).await;
    let all = w.of_rule("kill_switch_engaged").await;
    assert_eq!(all[0].state, AlertState::Resolved);
    let before = w.ops.got.lock().len();
    w.advance(10).await;
    let got = w.delivered(&w.ops, before + 1).await;
    let resolved = got[before..]
        .iter()
        .find(|n| {
            n.alerts
                .iter()
                .any(|a| a.rule.as_str() == "kill_switch_engaged")
        })
        .expect("resolve notification");
    assert_eq!(resolved.status(), AlertState::Resolved);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silenced_alert_is_not_notified_and_unsilenced_it_is() {
    let w = world().await;
    let s = w
        .alerting
        .create_silence(
            &Scope::All,
            NewSilence {
                matchers: vec![Matcher::eq("rule", "kill_switch_engaged").unwrap()],
                starts_at: None,
                ends_at: w.now() + chrono::Duration::minutes(30),
                created_by: "ops".to_owned(),
                comment: "drill".to_owned(),
                user_id: None,
            },
        )
        .await
        .unwrap();
    halt(&w, TradingState::Halted).await;
    let a = w.active("kill_switch_engaged").await;
    assert!(a[0].silenced);
    assert_eq!(a[0].silenced_by, vec![s.id]);
    w.run_for(30).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        w.ops
            .rules()
            .iter()
            .all(|(r, _)| r != "kill_switch_engaged"),
        "{:?}",
        w.ops.rules()
    );
    w.alerting
        .expire_silence(&Scope::All, s.id, "ops")
        .await
        .unwrap();
    assert!(!w.active("kill_switch_engaged").await[0].silenced);
    w.run_for(10).await;
    let n = w.notified(&w.ops, "kill_switch_engaged").await;
    assert!(!n.alerts[0].silenced);
}

#[tokio::test(flavor = "multi_thread")]
async fn unacknowledged_critical_alerts_escalate_to_the_second_receiver_once() {
    let w = world().await;
    halt(&w, TradingState::Halted).await;
    w.run_for(299).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(w.pager.got.lock().is_empty());
    w.run_for(2).await;
    let got = w.delivered(&w.pager, 1).await;
    assert_eq!(got[0].kind, NotificationKind::Escalation);
    assert_eq!(got[0].alerts[0].rule.as_str(), "kill_switch_engaged");
    assert!(
        w.active("kill_switch_engaged").await[0]
            .escalated_at
            .is_some()
    );
    w.run_for(600).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.pager.got.lock().len(), 1, "escalated once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_gets_each_notification_once_when_it_returns() {
    let w = world().await;
    *w.ops.fail_next.lock() = 3;
    halt(&w, TradingState::Halted).await;
    w.advance(1).await;
    // Three failures with backoff (1 s, 2 s, 4 s at most): move time on.
    for _ in 0..20 {
        w.advance(2).await;
        w.alerting.wake_delivery();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let got = w.delivered(&w.ops, 1).await;
    let kill: Vec<_> = got
        .iter()
        .filter(|n| {
            n.alerts
                .iter()
                .any(|a| a.rule.as_str() == "kill_switch_engaged")
        })
        .collect();
    assert_eq!(kill.len(), 1, "{:?}", w.ops.rules());
    assert_eq!(*w.ops.fail_next.lock(), 0);
    let status = w.alerting.status();
    assert!(status.notifications_retried >= 3, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_acks_and_does_not_resend() {
    let w = world().await;
    halt(&w, TradingState::Halted).await;
    w.advance(1).await;
    w.delivered(&w.ops, 1).await;
    let a = w.active("kill_switch_engaged").await.remove(0);
    w.alerting
        .acknowledge(&Scope::All, a.id, "ops")
        .await
        .unwrap();
    // A second service over the same store (the first one stops).
    w.stop_alerting().await;
    let again = crate::harness::restart(&w).await;
    again.run_for(30).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        again.ops.got.lock().is_empty(),
        "nothing resent: {:?}",
        again.ops.rules()
    );
    let still = again.active("kill_switch_engaged").await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].id, a.id, "the same occurrence");
    assert!(still[0].acknowledged, "the ack survived");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_venue_that_is_down_inhibits_its_stuck_order_alerts() {
    let mut c = crate::harness::config();
    c.venue_stuck_after = Duration::from_secs(20);
    let w = crate::harness::world_with(c, ordermon_application::VenueMode::External).await;
    for u in ["u1", "u2", "u3"] {
        let id = funded_user(&w.h, u, "1000").await;
        w.h.engine
            .orders
            .submit(limit(
                &id,
                &format!("{u}-1"),
                ordermon_domain::order::Side::Buy,
                "1",
                "10.00",
            ))
            .await
            .unwrap();
    }
    w.alerting.sync().await;
    w.run_for(40).await;
    let stuck = w.active("stuck_order").await;
    assert_eq!(stuck.len(), 3, "{stuck:?}");
    assert!(stuck.iter().all(|a| a.inhibited), "{stuck:?}");
    let down = w.active("venue_down").await;
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].labels["venue"], "SIM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rules = w.ops.rules();
    assert!(rules.iter().any(|(r, _)| r == "venue_down"), "{rules:?}");
    assert!(rules.iter().all(|(r, _)| r != "stuck_order"), "{rules:?}");
}
