//! Dead letters end to end on a real broker: a message the server's consumer
//! cannot decode is dead-lettered at once; `monitor-server dlq list` and the
//! admin API show it; `dlq replay` and the API send it back (where it fails
//! again, since it still cannot be decoded); bad input is refused by name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{call, ready, token};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::BusMessage;
use ordermon_domain::user::Role;
use ordermon_tests::bus::{BusKind, BusOptions, TestBus, provision_bus};
use ordermon_tests::{Backend, provision};
use serde_json::{Value, json};

fn bus_env(bus: &TestBus) -> Vec<(&'static str, String)> {
    vec![
        ("ORDERMON_BUS__URL", bus.server_url()),
        ("ORDERMON_BUS__TOPIC", bus.server_topic()),
        ("ORDERMON_BUS__INSTANCE", bus.suffix.clone()),
        // Only the undecodable message fails; replays come back quickly.
        ("ORDERMON_BUS__RETRY_DELAYS", "[\"100ms\"]".to_owned()),
    ]
}

fn cli(db: &str, logs: &std::path::Path, bus: &TestBus, args: &[&str]) -> Output {
    common::command(db, logs, common::free_port(), &bus_env(bus), args)
        .output()
        .expect("monitor-server runs")
}

async fn dead_letters(http: &reqwest::Client, base: &str, admin: &str) -> Vec<Value> {
    let (s, body) = call(
        http.get(format!("{base}/api/v1/admin/dead-letters"))
            .bearer_auth(admin),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn wait_for_dead_letter(http: &reqwest::Client, base: &str, admin: &str, id: EventId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = dead_letters(http, base, admin).await;
        if items.iter().any(|d| d["event_id"] == id.to_string()) {
            return;
        }
        if Instant::now() >= deadline {
            let (_, status) = call(http.get(format!("{base}/status")).bearer_auth(admin)).await;
            panic!(
                "never dead-lettered: {items:?}; consumer: {}",
                status["components"]["consumer"]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dead_letters_listed_and_replayed(kind: BusKind) {
    let Some(store) = provision(Backend::Sqlite).await else {
        return;
    };
    let Some(bus) = provision_bus(kind, BusOptions::default()).await else {
        return;
    };
    let group = bus.group("instance");
    let db = store.url.clone().unwrap();
    let logs = common::logs_dir("dlq");
    let http = reqwest::Client::new();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = common::serve(&db, &logs, port, &bus_env(&bus));
    ready(&http, &base).await;
    let admin = token("root", Role::Admin);
    assert!(dead_letters(&http, &base, &admin).await.is_empty());

    // Something on the topic that no consumer can decode.
    let id = EventId::generate();
    bus.bus
        .publish(&[BusMessage {
            id,
            topic: "order.initialized.alice".to_owned(),
            key: "alice".to_owned(),
            payload: b"{not an event".to_vec(),
            headers: BTreeMap::new(),
        }])
        .await
        .unwrap();
    wait_for_dead_letter(&http, &base, &admin, id).await;

    // The CLI sees it, in this instance's group by default.
    let out = cli(&db, &logs, &bus, &["dlq", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{stdout}");
    assert_eq!(listed[0]["event_id"], id.to_string());
    assert_eq!(listed[0]["group"], group);
    assert_eq!(listed[0]["payload"], "{not an event");

    // Replayed by id: it goes back to the group, fails again, and is back.
    let out = cli(
        &db,
        &logs,
        &bus,
        &["dlq", "replay", "--id", &id.to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("replayed 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_for_dead_letter(&http, &base, &admin, id).await;

    // The same through the API.
    let (s, body) = call(
        http.post(format!("{base}/api/v1/admin/dead-letters/replay"))
            .bearer_auth(&admin)
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["replayed"], 1, "{body}");
    assert_eq!(body["group"], group);
    wait_for_dead_letter(&http, &base, &admin, id).await;

    // Bad input: refused by name, nothing replayed.
    let (s, body) = call(
        http.get(format!(
            "{base}/api/v1/admin/dead-letters?group=no%20spaces"
        ))
        .bearer_auth(&admin),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "group", "{body}");
    let (s, body) = call(
        http.get(format!("{base}/api/v1/admin/dead-letters?limit=0"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = call(
        http.post(format!("{base}/api/v1/admin/dead-letters/replay"))
            .bearer_auth(&admin)
            .json(&json!({"event_ids": []})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = call(
        http.post(format!("{base}/api/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({"id": "alice", "name": "Alice"})),
    )
    .await;
    assert!(s == 201 || s == 409, "{s} {body}");
    let (s, _) = call(
        http.get(format!("{base}/api/v1/admin/dead-letters"))
            .bearer_auth(token("alice", Role::Trader)),
    )
    .await;
    assert_eq!(s, 403, "traders do not administer the bus");
    let out = cli(&db, &logs, &bus, &["dlq", "list", "--group", "bad group"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("group"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    server.kill9();
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_rabbitmq() {
    dead_letters_listed_and_replayed(BusKind::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_redis_streams() {
    dead_letters_listed_and_replayed(BusKind::Redis).await;
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_kafka() {
    dead_letters_listed_and_replayed(BusKind::Kafka).await;
}
