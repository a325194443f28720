//! Receivers failing the way real ones do — a webhook answering 500, an
//! SMTP server refusing with 451 — and every notification still delivered
//! exactly once, on every backend (the retries are stored records). A
//! receiver down across a restart is in `restart.rs`.

use ordermon_tests::receivers::{HttpReceiver, Reply, SmtpSink, SmtpStage};
use ordermon_tests::{Backend, provision};
use serde_json::json;

use crate::support::{SETTLE, Server, WAIT, eventually, fast_alerting, receiver, webhook};
use crate::wire::{accepted, assert_all_delivered, assert_delivered_once, find, id_of, records};

const RULE: &str = "kill_switch_engaged";

crate::per_backend!(
    a_webhook_failing_with_500_gets_each_notification_once,
    smtp_refusals_are_retried_until_accepted,
);

async fn a_webhook_failing_with_500_gets_each_notification_once(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let hook = HttpReceiver::start().await;
    hook.reply_next(3, Reply::status(500).body("upstream unavailable"));
    let server = Server::start(&store, |a| {
        fast_alerting(a, vec![("ops", webhook(&hook.url("/hook")))])
    })
    .await;

    // The watchdog's notification fails three times, then goes through.
    let watchdog = eventually("the watchdog once the hook recovers", WAIT, || {
        find(&hook, "watchdog", "firing")
    })
    .await;
    let attempts = hook.received();
    assert_eq!(attempts.len(), 4, "three refusals, then accepted");
    assert!(attempts[..3].iter().all(|r| r.answered == 500));
    assert!(
        attempts.iter().all(|r| id_of(r) == id_of(&watchdog)),
        "retries carry the same notification, not a new one"
    );
    assert!(attempts.windows(2).all(|w| w[1].at > w[0].at));

    // A later alert goes through at the first try.
    server.global_kill_switch("halted").await;
    eventually("the kill switch notification", WAIT, || {
        find(&hook, RULE, "firing")
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    let all = hook.received();
    assert_eq!(all.len(), 5, "nothing else was sent: {all:#?}");
    assert_delivered_once(&all);
    assert_eq!(accepted(&hook).len(), 2);
    let status = server.alerting_status().await;
    assert_eq!(status["notifications_sent"], 2, "{status}");
    assert_eq!(status["notifications_retried"], 3, "{status}");
    assert_eq!(status["notifications_failed"], 0, "{status}");
    assert_all_delivered(&store, "ops", 2).await;
    if let Some(list) = records(&store, "ops").await {
        assert_eq!(list[0].notification.id.to_string(), id_of(&watchdog));
        assert_eq!(list[0].attempts, 4, "{:#?}", list[0]);
    }
    server.stop().await;
}

async fn smtp_refusals_are_retried_until_accepted(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    sink.refuse_next(2, SmtpStage::MailFrom, 451);
    let mail = receiver(json!({
        "kind": "email", "smarthost": sink.smarthost(), "tls": "none",
        "from": "ordermon@example.com", "to": ["ops@example.com"], "timeout": "2s",
    }));
    let server = Server::start(&store, |a| fast_alerting(a, vec![("mail", mail)])).await;
    let mails = sink.wait_for(1, WAIT).await;
    assert!(
        sink.sessions() >= 3,
        "two refused sessions first, got {}",
        sink.sessions()
    );
    assert_eq!(mails[0].subject().as_deref(), Some("[FIRING:1] watchdog"));
    server.global_kill_switch("halted").await;
    sink.wait_for(2, WAIT).await;
    tokio::time::sleep(SETTLE).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 2, "each notification once");
    let ids: std::collections::BTreeSet<_> = mails
        .iter()
        .filter_map(|m| m.header("X-Ordermon-Notification-Id"))
        .collect();
    assert_eq!(ids.len(), 2, "distinct notifications: {ids:?}");
    assert_eq!(mails[1].subject(), Some(format!("[FIRING:1] {RULE}")));
    let status = server.alerting_status().await;
    assert_eq!(status["notifications_sent"], 2, "{status}");
    assert_eq!(status["notifications_retried"], 2, "{status}");
    assert_eq!(status["notifications_failed"], 0, "{status}");
    assert_all_delivered(&store, "mail", 2).await;
    server.stop().await;
}
