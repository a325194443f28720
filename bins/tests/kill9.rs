//! Durability (SPEC §3.1): `kill -9` of `monitor-server` during a stream of
//! order submissions. After a restart every order that was answered 2xx is
//! there with its events, and the account equals a replay of its event log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ordermon_domain::account::Account;
use ordermon_domain::event::{AccountEvent, DomainEvent, EventPayload};
use ordermon_domain::ids::UserId;
use ordermon_domain::user::Role;
use ordermon_tests::{Backend, provision};
use parking_lot::Mutex;
use serde_json::{Value, json};

mod common;

use common::{ready, token};

struct Server {
    process: common::Server,
    base: String,
}

fn start(db: &str, logs: &std::path::Path, port: u16) -> Server {
    Server {
        process: common::serve(db, logs, port, &[]),
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    common::call(http.post(url).bearer_auth(token).json(&body)).await
}

async fn get(http: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    common::call(http.get(url).bearer_auth(token)).await
}

async fn kill_during_submissions(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let logs =
        std::env::temp_dir().join(format!("ordermon-kill9-{}", uuid::Uuid::now_v7().simple()));
    let http = reqwest::Client::new();
    let port = common::free_port();
    let mut server = start(&db, &logs, port);
    ready(&http, &server.base).await;
    let admin = token("root", Role::Admin);
    let base = server.base.clone();
    let (s, b) = post(&http, format!("{base}/api/v1/instruments"), &admin,
        json!({"id": "ACME.SIM", "quote_currency": "USD", "tick_size": "0.01", "lot_size": "1", "min_quantity": "1"})).await;
    assert!(s < 300, "{b}");
    let (s, b) = post(
        &http,
        format!("{base}/api/v1/users"),
        &admin,
        json!({"id": "alice", "name": "Alice"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = post(
        &http,
        format!("{base}/api/v1/users/alice/cash"),
        &admin,
        json!({"currency": "USD", "amount": "100000", "reason": "initial"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let alice = token("alice", Role::Trader);

    // Eight clients submit as fast as they can; record every 2xx answer.
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (http, base, alice, answered, stop) = (
            http.clone(),
            base.clone(),
            alice.clone(),
            answered.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"client_order_id": format!("k-{w}-{n}"), "instrument_id": "ACME.SIM",
                    "side": "buy", "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"});
                match http.post(format!("{base}/api/v1/orders")).bearer_auth(&alice).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        if let Ok(v) = r.json::<Value>().await
                            && let Some(id) = v["id"].as_str() {
                                answered.lock().push(id.to_owned());
                            }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no shutdown hook runs.
    server.process.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let answered = answered.lock().clone();
    assert!(
        answered.len() > 20,
        "the stream ran before the kill ({} answers)",
        answered.len()
    );

    let mut server = start(&db, &logs, port);
    ready(&http, &server.base).await;
    for id in &answered {
        let (s, o) = get(&http, format!("{base}/api/v1/orders/{id}"), &alice).await;
        assert_eq!(
            s, 200,
            "order {id} answered 2xx before the kill is gone: {o}"
        );
        let (s, ev) = get(&http, format!("{base}/api/v1/orders/{id}/events"), &alice).await;
        assert_eq!(s, 200);
        let n = ev
            .as_array()
            .map_or_else(|| ev["items"].as_array().map_or(0, Vec::len), Vec::len);
        assert!(n >= 2, "order {id} has its events: {ev}");
    }

    // The account equals a replay of its event log.
    let mut events: Vec<AccountEvent> = Vec::new();
    let mut after = 0_i64;
    loop {
        let (s, page) = get(
            &http,
            format!("{base}/api/v1/events?after={after}&limit=500&user_id=alice"),
            &admin,
        )
        .await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"]
            .as_array()
            .cloned()
            .or_else(|| page.as_array().cloned())
            .unwrap_or_default();
        if items.is_empty() {
            break;
        }
        for item in &items {
            after = after.max(item["position"].as_i64().unwrap());
            let event: DomainEvent = serde_json::from_value(item["event"].clone()).unwrap();
            if let EventPayload::Account(a) = event.payload
                && event.aggregate_id == "alice"
            {
                events.push(a);
            }
        }
    }
    let replayed = Account::replay(&UserId::new("alice").unwrap(), &events).unwrap();
    let (s, account) = get(&http, format!("{base}/api/v1/account"), &alice).await;
    assert_eq!(s, 200);
    let usd = account["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == "USD")
        .unwrap()
        .clone();
    let b = replayed.balance(&ordermon_domain::values::Currency::new("USD").unwrap());
    let dec = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    assert_eq!(dec(&usd["total"]), b.total, "total equals the replay");
    assert_eq!(
        dec(&usd["reserved"]),
        b.reserved,
        "reserved equals the replay"
    );
    assert!(
        b.reserved > rust_decimal::Decimal::ZERO,
        "the orders' reservations survived"
    );
    // Every projection equals a replay of the event log.
    common::assert_replay_verifies(&db, &logs);

    server.process.kill9();
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_sqlite() {
    kill_during_submissions(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_postgres() {
    kill_during_submissions(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mysql() {
    kill_during_submissions(Backend::MySql).await;
}
