//! Graceful shutdown at scale (SPEC §3.6): `monitor-server` with 1,000 active
//! users, each with a running monitor and strategy, gets SIGTERM; it exits
//! successfully within 5 s, and every monitor's stop is in the event log
//! (the owners commit their last batches before the committer stops), and
//! each started exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{call, ready, token};
use ordermon_domain::event::{EventPayload, MonitorEvent};
use ordermon_domain::user::Role;
use ordermon_tests::{Backend, provision};
use serde_json::json;

const USERS: usize = 1000;
/// Every user has a monitor, the bootstrap admin `root` included.
const MONITORS: usize = USERS + 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_thousand_monitors_is_clean_and_quick() {
    let Some(store) = provision(Backend::Sqlite).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let logs = common::logs_dir("sigterm");
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = common::serve(
        &db,
        &logs,
        port,
        &[("ORDERMON_MONITOR__SCAN_INTERVAL", "1s".to_owned())],
    );
    ready(&http, &base).await;
    let admin = token("root", Role::Admin);
    common::list_acme(&http, &base).await;

    // 1,000 active users, each with a price alert, created 16 at a time.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, base, admin, next) = (http.clone(), base.clone(), admin.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= USERS {
                    return;
                }
                let user = format!("u{i}");
                let (s, b) = call(http.post(format!("{base}/api/v1/users")).bearer_auth(&admin)
                    .json(&json!({"id": user, "name": user}))).await;
                assert_eq!(s, 201, "{b}");
                let (s, b) = call(http.post(format!("{base}/api/v1/strategies?user_id={user}")).bearer_auth(&admin)
                    .json(&json!({"id": format!("alert-{i}"), "type": "price_alert", "name": "alert",
                        "instruments": ["ACME.SIM"], "params": {"level": "1000", "direction": "above"}}))).await;
                assert_eq!(s, 201, "{b}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, status) = call(http.get(format!("{base}/status")).bearer_auth(&admin)).await;
        assert_eq!(s, 200, "{status}");
        if status["monitors"].as_u64() == Some(MONITORS as u64)
            && status["strategies"].as_u64() == Some(USERS as u64)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "monitors never all ran: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (took, ok) = server.terminate();
    assert!(ok, "monitor-server did not exit successfully on SIGTERM");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    eprintln!("SIGTERM with {MONITORS} monitors: exited cleanly in {took:?}");

    // Every monitor's stop was committed, and each started exactly once (a
    // user never had two owners).
    let mut stopped = 0;
    let mut started = 0;
    let mut after = 0;
    loop {
        let page = store.store.events_after(after, None, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        started += page
            .iter()
            .filter(|e| {
                matches!(
                    &e.event.payload,
                    EventPayload::Monitor(MonitorEvent::Started)
                )
            })
            .count();
        stopped += page
            .iter()
            .filter(|e| {
                matches!(&e.event.payload, EventPayload::Monitor(MonitorEvent::Stopped { reason }) if reason == "shutdown")
            })
            .count();
    }
    assert_eq!(started, MONITORS, "every monitor started once");
    assert_eq!(
        stopped, MONITORS,
        "every monitor's stop is in the event log"
    );
    let _ = std::fs::remove_dir_all(&logs);
}
