//! Escalation on every backend: a critical alert nobody acknowledges within
//! `escalation.after` reaches the escalation receiver, once; one acknowledged
//! in time does not; an info alert (the watchdog) never does.

use std::time::{Duration, Instant};

use ordermon_tests::receivers::HttpReceiver;
use ordermon_tests::{Backend, provision};

use crate::support::{SETTLE, Server, WAIT, eventually, fast_alerting, webhook};
use crate::wire::{accepted, assert_delivered_once, find, kind_of};

const RULE: &str = "kill_switch_engaged";
const AFTER: Duration = Duration::from_secs(1);

crate::per_backend!(only_unacknowledged_critical_alerts_escalate_once);

async fn only_unacknowledged_critical_alerts_escalate_once(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let (ops, pager) = (HttpReceiver::start().await, HttpReceiver::start().await);
    let server = Server::start(&store, |a| {
        fast_alerting(
            a,
            vec![
                ("ops", webhook(&ops.url("/ops"))),
                ("pager", webhook(&pager.url("/pager"))),
            ],
        );
        a.escalation.receiver = Some("pager".to_owned());
        a.escalation.after = AFTER;
    })
    .await;

    // Left unacknowledged: escalated once the delay is past.
    let engaged = Instant::now();
    server.global_kill_switch("halted").await;
    let alert = server.wait_alert(RULE, "firing").await;
    let escalated = eventually("the escalation", WAIT, || find(&pager, RULE, "firing")).await;
    assert!(
        escalated.at - engaged >= AFTER,
        "escalated after {:?}",
        escalated.at - engaged
    );
    let e = &escalated.json;
    assert_eq!(
        (kind_of(&escalated), e["receiver"].as_str()),
        ("escalation", Some("pager"))
    );
    assert_eq!(e["alerts"].as_array().map(Vec::len), Some(1), "{e}");
    assert_eq!(e["alerts"][0]["fingerprint"], alert["fingerprint"]);
    assert_eq!(e["groupLabels"]["fingerprint"], alert["fingerprint"]);
    let id = alert["id"].as_str().unwrap();
    let stored = server.get(&format!("/api/v1/alerts/{id}")).await;
    assert!(stored["escalated_at"].is_string(), "{stored}");
    tokio::time::sleep(AFTER + SETTLE).await;
    assert_eq!(
        accepted(&pager).len(),
        1,
        "escalated once, and the watchdog (info) not at all"
    );

    // Released, engaged again and acknowledged at once: no escalation.
    server.global_kill_switch("active").await;
    server.wait_alert(RULE, "resolved").await;
    eventually("the resolution at ops", WAIT, || {
        find(&ops, RULE, "resolved")
    })
    .await;
    server.global_kill_switch("halted").await;
    let again = server.wait_alert(RULE, "firing").await;
    assert_ne!(again["id"], alert["id"], "a new occurrence");
    server.ack(&again).await;
    tokio::time::sleep(AFTER + SETTLE).await;
    let paged = accepted(&pager);
    assert_eq!(
        paged.len(),
        1,
        "an acknowledged alert does not escalate: {paged:#?}"
    );
    let again = server
        .get(&format!("/api/v1/alerts/{}", again["id"].as_str().unwrap()))
        .await;
    assert!(again["escalated_at"].is_null(), "{again}");
    // The ordinary route heard all of it: fired, resolved, fired again.
    let told: Vec<_> = accepted(&ops)
        .into_iter()
        .filter(|r| r.json["alerts"][0]["labels"]["rule"] == RULE)
        .map(|r| r.json["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(told, ["firing", "resolved", "firing"]);
    assert_delivered_once(&pager.received());
    server.stop().await;
}
