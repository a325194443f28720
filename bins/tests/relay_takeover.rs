//! The outbox relay moves between instances: two `monitor-server` processes
//! share PostgreSQL and a broker, and both may relay, so they compete for the
//! `outbox-relay` lease. While orders stream into the standby, the holder is
//! killed with `kill -9` (it never releases the lease): the standby relays
//! within the lease's TTL, and an independent consumer sees every committed
//! event exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ordermon_domain::user::Role;
use ordermon_tests::bus::{BusKind, BusOptions, TestBus, provision_bus};
use ordermon_tests::{Backend, provision};
use serde_json::{Value, json};

mod common;

use common::audit::{Audit, logged_events};
use common::{call, ready, token};

const TTL: Duration = Duration::from_secs(2);

fn start(db: &str, bus: &TestBus, logs: &std::path::Path, port: u16, name: &str) -> common::Server {
    let env = [
        ("ORDERMON_BUS__URL", bus.server_url()),
        ("ORDERMON_BUS__TOPIC", bus.server_topic()),
        ("ORDERMON_BUS__INSTANCE", format!("{name}-{}", bus.suffix)),
        ("ORDERMON_BUS__RELAY_LEASE_TTL", "2s".to_owned()),
        ("ORDERMON_BUS__RELAY_POLL_INTERVAL", "50ms".to_owned()),
    ];
    common::serve(db, logs, port, &env)
}

async fn relay_status(http: &reqwest::Client, base: &str, admin: &str) -> Value {
    let (s, status) = call(http.get(format!("{base}/status")).bearer_auth(admin)).await;
    assert_eq!(s, 200, "{status}");
    status["components"]["relay"].clone()
}

async fn takeover(kind: BusKind) {
    let Some(store) = provision(Backend::Postgres).await else {
        return;
    };
    let Some(bus) = provision_bus(kind, BusOptions::default()).await else {
        return;
    };
    let _groups = (bus.group("instance-a"), bus.group("instance-b"));
    let db = store.url.clone().unwrap();
    let logs = common::logs_dir("relay-takeover");

    let audit = Audit::start(&bus).await;

    let http = reqwest::Client::new();
    let admin = token("root", Role::Admin);
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let (base_a, base_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    let mut a = start(&db, &bus, &logs, port_a, "a");
    ready(&http, &base_a).await;
    // a relays (it came first); b, started next, stands by.
    let t0 = Instant::now();
    while relay_status(&http, &base_a, &admin).await["running"] != true {
        assert!(t0.elapsed() < Duration::from_secs(10), "a never relayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut b = start(&db, &bus, &logs, port_b, "b");
    ready(&http, &base_b).await;
    tokio::time::sleep(TTL / 2).await;
    let rb = relay_status(&http, &base_b, &admin).await;
    assert_eq!(rb["running"], false, "two relays at once: {rb}");
    assert_eq!(rb["lease"]["held"], false, "{rb}");
    let ra = relay_status(&http, &base_a, &admin).await;
    assert_eq!(
        rb["lease"]["holder"], ra["lease"]["instance"],
        "b sees a hold it: {ra} {rb}"
    );
    assert_eq!(ra["lease"]["epoch"], rb["lease"]["epoch"]);

    common::list_acme(&http, &base_b).await;
    for user in ["alice", "bob"] {
        common::funded_user(&http, &base_b, user, "1000000").await;
    }

    // Eight clients submit to b throughout; a is killed in the middle.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let user = if w % 2 == 0 { "alice" } else { "bob" };
        let (http, base, tok, stop, answered) = (
            http.clone(),
            base_b.clone(),
            token(user, Role::Trader),
            stop.clone(),
            answered.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"client_order_id": format!("t-{w}-{n}"), "instrument_id": "ACME.SIM",
                    "side": "buy", "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"});
                let r = http.post(format!("{base}/api/v1/orders")).bearer_auth(&tok).json(&body).send().await;
                if r.is_ok_and(|r| r.status().is_success()) {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_kill = answered.load(Ordering::Relaxed);
    a.kill9();
    let killed = Instant::now();
    let took_over = loop {
        if relay_status(&http, &base_b, &admin).await["running"] == true {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < TTL * 5, "b did not take the relay over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    assert!(
        before_kill > 20 && answered > before_kill,
        "load ran across the kill ({before_kill}, {answered})"
    );
    // Within the TTL from the holder's last renewal, plus one standby ask
    // (a tenth of it) and this loop's own polling.
    assert!(
        took_over <= TTL + Duration::from_secs(1),
        "takeover took {took_over:?}"
    );
    let rb = relay_status(&http, &base_b, &admin).await;
    assert_eq!(rb["lease"]["held"], true, "{rb}");
    assert_eq!(
        rb["lease"]["epoch"],
        ra["lease"]["epoch"].as_u64().unwrap() + 1,
        "{rb}"
    );

    let committed = logged_events(&http, &base_b, &admin).await;
    audit
        .every_one_once(&committed, Duration::from_secs(60), kind.name())
        .await;
    eprintln!(
        "{}: takeover {} ms after kill -9 (lease TTL {} ms); {answered} orders, {} events, each applied once ({} duplicates absorbed)",
        kind.name(),
        took_over.as_millis(),
        TTL.as_millis(),
        committed.len(),
        audit.consumer.status().duplicates
    );
    common::assert_replay_verifies(&db, &logs);
    b.kill9();
    audit.stop().await;
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_moves_when_its_holder_is_killed_rabbitmq() {
    takeover(BusKind::RabbitMq).await;
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_moves_when_its_holder_is_killed_kafka() {
    takeover(BusKind::Kafka).await;
}
