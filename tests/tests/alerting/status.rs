//! `/status` → `components.alerting` on every backend: ready once the store
//! has been read, receivers by name, active alerts and delivered
//! notifications counted as they happen.

use ordermon_tests::receivers::HttpReceiver;
use ordermon_tests::{Backend, provision};
use serde_json::json;

use crate::support::{Server, WAIT, eventually, fast_alerting, webhook};
use crate::wire::find;

crate::per_backend!(alerting_status_counts_what_happens);

async fn alerting_status_counts_what_happens(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let hook = HttpReceiver::start().await;
    let server = Server::start(&store, |a| {
        fast_alerting(a, vec![("ops", webhook(&hook.url("/hook")))])
    })
    .await;

    let s = server.wait_counter("notifications_sent", 1).await;
    assert_eq!(s["enabled"], true);
    assert_eq!(s["ready"], true, "{s}");
    assert_eq!(s["receivers"], json!(["ops"]));
    assert!(s["rules"].as_u64() >= Some(17), "every built-in rule: {s}");
    assert_eq!(s["active_alerts"], 1, "the watchdog: {s}");
    assert_eq!(
        (
            s["notifications_sent"].as_u64(),
            s["notifications_retried"].as_u64(),
            s["notifications_failed"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{s}"
    );
    let evaluations = s["evaluations"].as_u64().expect("evaluations");

    server.global_kill_switch("halted").await;
    eventually("the kill switch notification", WAIT, || {
        find(&hook, "kill_switch_engaged", "firing")
    })
    .await;
    let s = server.wait_counter("notifications_sent", 2).await;
    assert_eq!(s["active_alerts"], 2, "{s}");
    assert!(
        s["evaluations"].as_u64() > Some(evaluations),
        "evaluations go on: {s}"
    );

    server.global_kill_switch("active").await;
    eventually("the resolve notification", WAIT, || {
        find(&hook, "kill_switch_engaged", "resolved")
    })
    .await;
    let s = server.wait_counter("notifications_sent", 3).await;
    assert_eq!(s["notifications_sent"], 3, "{s}");
    assert_eq!(s["active_alerts"], 1, "{s}");
    assert_eq!(hook.received().len(), 3);
    server.stop().await;
}
