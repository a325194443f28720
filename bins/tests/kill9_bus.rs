//! Messaging durability: `kill -9` of `monitor-server` while orders stream in,
//! on PostgreSQL with a real broker. After a restart the outbox relay has
//! published every committed event, and a consumer (the consumer framework,
//! deduplicating by event id) has applied each exactly once: none is lost, none
//! has a double effect, whatever the relay sent twice around the kill.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ordermon_domain::user::Role;
use ordermon_tests::bus::{BusKind, BusOptions, TestBus, provision_bus};
use ordermon_tests::{Backend, provision};
use serde_json::json;

mod common;

use common::audit::{Audit, logged_events};
use common::{call, ready, token};

fn start(db: &str, bus: &TestBus, logs: &std::path::Path, port: u16) -> common::Server {
    let env = [
        ("ORDERMON_BUS__URL", bus.server_url()),
        ("ORDERMON_BUS__TOPIC", bus.server_topic()),
        ("ORDERMON_BUS__INSTANCE", bus.suffix.clone()),
    ];
    common::serve(db, logs, port, &env)
}

async fn kill_during_load(kind: BusKind) {
    let Some(store) = provision(Backend::Postgres).await else {
        return;
    };
    let Some(bus) = provision_bus(kind, BusOptions::default()).await else {
        return;
    };
    // The server's own group, removed with the test bus.
    let _server_group = bus.group("instance");
    let db = store.url.clone().unwrap();
    let logs = common::logs_dir("kill9-bus");

    // An independent consumer of everything the server publishes.
    let audit = Audit::start(&bus).await;

    let http = reqwest::Client::new();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&db, &bus, &logs, port);
    ready(&http, &base).await;
    let admin = token("root", Role::Admin);
    common::list_acme(&http, &base).await;
    for user in ["alice", "bob"] {
        common::funded_user(&http, &base, user, "1000000").await;
    }

    // Eight clients submit as fast as they can while the server is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let user = if w % 2 == 0 { "alice" } else { "bob" };
        let (http, base, tok, stop, answered) = (
            http.clone(),
            base.clone(),
            token(user, Role::Trader),
            stop.clone(),
            answered.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"client_order_id": format!("k-{w}-{n}"), "instrument_id": "ACME.SIM",
                    "side": "buy", "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"});
                match http.post(format!("{base}/api/v1/orders")).bearer_auth(&tok).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let answered = answered.load(Ordering::Relaxed);
    assert!(answered > 20, "the load ran before the kill ({answered})");

    let mut server = start(&db, &bus, &logs, port);
    ready(&http, &base).await;
    let committed = logged_events(&http, &base, &admin).await;
    assert!(
        committed.len() > answered,
        "every answered order has events ({} events, {answered} orders)",
        committed.len()
    );

    // Everything committed arrives, once per event id.
    audit
        .every_one_once(&committed, Duration::from_secs(90), kind.name())
        .await;
    let (s, status) = call(http.get(format!("{base}/status")).bearer_auth(&admin)).await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(
        status["components"]["relay"]["bus"],
        kind.name(),
        "{status}"
    );
    eprintln!(
        "{}: {answered} orders answered before the kill, {} events committed, all applied once; duplicates absorbed {}",
        kind.name(),
        committed.len(),
        audit.consumer.status().duplicates
    );
    // Every projection equals a replay of the event log.
    common::assert_replay_verifies(&db, &logs);

    server.kill9();
    audit.stop().await;
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_rabbitmq() {
    kill_during_load(BusKind::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_redis_streams() {
    kill_during_load(BusKind::Redis).await;
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_kafka() {
    kill_during_load(BusKind::Kafka).await;
}
