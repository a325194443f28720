//! Restart reconciliation with the paper venue (SPEC §3.8): a resting paper
//! order survives a restart of the whole server. After the restart it is still
//! open, reserves the same cash, and fills when the price crosses it: the
//! owner hands the venue its open orders when it starts, and the venue, which
//! lost its book with the process, takes them back. An open order in an
//! instrument the venue no longer trades after the restart is expired, and
//! recorded as a `reconciliation_mismatch` event naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

mod server_support;

use ordermon::RunningApp;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::Quote;
use ordermon_domain::user::Role;
use ordermon_domain::values::{Price, Quantity};
use ordermon_tests::{Backend, provision};
use rust_decimal::Decimal;
use serde_json::json;
use server_support::{call, get_order, order_until, seed, serve};

fn quote(app: &RunningApp, bid: &str, ask: &str) {
    quote_for(app, "REST.SIM", bid, ask);
}

fn quote_for(app: &RunningApp, instrument: &str, bid: &str, ask: &str) {
    app.engine().instruments.quotes().publish(Quote {
        instrument_id: InstrumentId::new(instrument).unwrap(),
        bid: Price::new(bid.parse().unwrap()).unwrap(),
        ask: Price::new(ask.parse().unwrap()).unwrap(),
        bid_size: Quantity::new(Decimal::from(100)).unwrap(),
        ask_size: Quantity::new(Decimal::from(100)).unwrap(),
        ts: chrono::Utc::now(),
    });
}

async fn reserved(app: &RunningApp, alice: &str) -> String {
    let (s, account) = call(app, reqwest::Method::GET, "/api/v1/account", alice, None).await;
    assert_eq!(s, 200, "{account}");
    account["balances"][0]["reserved"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn resting_order_survives_a_restart(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let logs = server_support::logs_dir("venue-restart");
    let app = serve(&store, &logs).await;
    let admin = app
        .mint_token("root", Role::Admin, Duration::from_secs(600))
        .unwrap();
    let alice = app
        .mint_token("alice", Role::Trader, Duration::from_secs(600))
        .unwrap();
    let post = reqwest::Method::POST;
    seed(&app, &admin, &["REST.SIM", "GONE.SIM"], "alice", "1000").await;
    // Far from the market: it rests.
    quote(&app, "9.90", "10.00");
    quote_for(&app, "GONE.SIM", "9.90", "10.00");
    let (s, gone) = call(
        &app,
        post.clone(),
        "/api/v1/orders",
        &alice,
        Some(
            json!({"client_order_id": "gone-1", "instrument_id": "GONE.SIM", "side": "buy",
            "type": "limit", "quantity": "1", "price": "5.00", "time_in_force": "gtc"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{gone}");
    let gone = gone["id"].as_str().unwrap().to_owned();
    let o = order_until(&app, &alice, &gone, Duration::from_secs(5), |o| {
        o["status"] == "accepted"
    })
    .await;
    assert_eq!(o["status"], "accepted", "GONE.SIM order never accepted");
    let for_gone: Decimal = reserved(&app, &alice).await.parse().unwrap();
    assert_ne!(for_gone, Decimal::ZERO);
    let (s, order) = call(
        &app,
        post,
        "/api/v1/orders",
        &alice,
        Some(
            json!({"client_order_id": "rest-1", "instrument_id": "REST.SIM", "side": "buy",
            "type": "limit", "quantity": "10", "price": "5.00", "time_in_force": "gtc"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{order}");
    assert_eq!(order["status"], "accepted", "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let held = reserved(&app, &alice).await.parse::<Decimal>().unwrap() - for_gone;
    assert_ne!(held, Decimal::ZERO);

    let app = {
        app.stop().await.unwrap();
        // While it is down, an operator retires GONE.SIM.
        let n = store
            .operator_sql("DELETE FROM instruments WHERE id = 'GONE.SIM'")
            .await
            .unwrap();
        assert_eq!(n, 1);
        serve(&store, &logs).await
    };
    // The venue cannot work the GONE.SIM order: expired, and the mismatch
    // is in alice's event log.
    let o = order_until(&app, &alice, &gone, Duration::from_secs(5), |o| {
        o["status"] == "expired"
    })
    .await;
    assert_eq!(o["status"], "expired", "not expired: {o}");
    let (s, events) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/events?limit=1000",
        &alice,
        None,
    )
    .await;
    assert_eq!(s, 200, "{events}");
    let mismatch = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e.to_string().contains("reconciliation_mismatch"))
        .unwrap_or_else(|| panic!("no reconciliation_mismatch event: {events}"));
    assert!(mismatch.to_string().contains(&gone), "{mismatch}");
    assert!(mismatch.to_string().contains("GONE.SIM"), "{mismatch}");
    // The REST.SIM order still open, the same cash reserved for it.
    let o = get_order(&app, &alice, &id).await;
    assert_eq!(o["status"], "accepted", "{o}");
    assert_eq!(
        reserved(&app, &alice).await.parse::<Decimal>().unwrap(),
        held
    );
    // The price comes down through the limit: the venue, which took the
    // order back when alice's owner started, fills it.
    let t0 = Instant::now();
    let filled = loop {
        quote(&app, "4.80", "4.90");
        let o = get_order(&app, &alice, &id).await;
        if o["status"] == "filled" {
            break o;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "not filled after the restart: {o}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(filled["filled_qty"], "10", "{filled}");
    assert_eq!(
        reserved(&app, &alice).await.parse::<Decimal>().unwrap(),
        Decimal::ZERO
    );
    eprintln!(
        "{}: resting order filled {:?} after the restart's first quote",
        backend.name(),
        t0.elapsed()
    );
    app.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resting_paper_order_survives_a_restart_on_sqlite() {
    resting_order_survives_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resting_paper_order_survives_a_restart_on_postgres() {
    resting_order_survives_a_restart(Backend::Postgres).await;
}
