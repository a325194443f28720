//! Order control from the database, as the system we replace allowed: an
//! operator's `UPDATE orders SET status = 'cancelled' WHERE …` on a working
//! order is carried out by the next monitoring scan as a real cancel through
//! the venue, with its events, and the reserved cash is released. Run on each
//! SQL database against the whole server (paper venue).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::time::{Duration, Instant};

use ordermon_domain::user::Role;
use ordermon_tests::{Backend, provision};
use serde_json::json;
use server_support::{call, order_until, seed, serve};

async fn cancel_asked_with_sql(backend: Backend, spelling: &str) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let logs = server_support::logs_dir("db-control");
    let app = serve(&store, &logs).await;
    let admin = app
        .mint_token("root", Role::Admin, Duration::from_secs(600))
        .unwrap();
    let alice = app
        .mint_token("alice", Role::Trader, Duration::from_secs(600))
        .unwrap();
    seed(&app, &admin, &["ACME.SIM"], "alice", "1000").await;
    let (s, order) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/orders",
        &alice,
        Some(
            json!({"client_order_id": "rest-1", "instrument_id": "ACME.SIM", "side": "buy",
            "type": "limit", "quantity": "10", "price": "5.00", "time_in_force": "gtc"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let get = reqwest::Method::GET;
    // Resting at the paper venue, its cash reserved.
    let status = order_until(&app, &alice, &id, Duration::from_secs(5), |o| {
        o["status"] == "accepted"
    })
    .await["status"]
        .clone();
    assert_eq!(status, "accepted");
    let (_, account) = call(&app, get.clone(), "/api/v1/account", &alice, None).await;
    assert_ne!(account["balances"][0]["reserved"], "0", "{account}");

    let n = store
        .operator_sql(&format!(
            "UPDATE orders SET status = '{spelling}' WHERE id = '{id}'"
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let marked = Instant::now();
    let order = order_until(&app, &alice, &id, Duration::from_secs(3), |o| {
        o["status"] == "canceled"
    })
    .await;
    assert_eq!(order["status"], "canceled", "not canceled: {order}");
    assert_eq!(order["leaves_qty"], "0", "{order}");
    // A real cancel: its event is in the log, and the cash is free again.
    let (s, events) = call(&app, get.clone(), "/api/v1/events?limit=1000", &admin, None).await;
    assert_eq!(s, 200, "{events}");
    let canceled = events["items"].as_array().unwrap().iter().any(|e| {
        e["event"]["aggregate_id"] == id.as_str() && e["event"]["event_type"] == "order.canceled"
    });
    assert!(canceled, "no canceled event for {id}: {events}");
    let (_, account) = call(&app, get, "/api/v1/account", &alice, None).await;
    let reserved: rust_decimal::Decimal = account["balances"][0]["reserved"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reserved.is_zero(), "{account}");
    eprintln!(
        "{}: canceled {:?} after the UPDATE",
        backend.name(),
        marked.elapsed()
    );
    app.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_cancel_on_sqlite() {
    cancel_asked_with_sql(Backend::Sqlite, "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_cancel_on_postgres() {
    cancel_asked_with_sql(Backend::Postgres, "canceled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_cancel_on_mysql() {
    cancel_asked_with_sql(Backend::MySql, "CANCELLED").await;
}
