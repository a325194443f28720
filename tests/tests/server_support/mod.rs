//! Shared by the suites that run the whole server in-process on a provisioned
//! store with the paper venue (database control, venue restart): start it,
//! and call its API.

#![allow(dead_code)]

use std::time::Duration;

use ordermon::RunningApp;
use ordermon::config::{Config, ServiceUrl};
use ordermon_application::VenueMode;
use ordermon_tests::TestStore;
use serde_json::Value;

const SECRET: &str = "server-support-secret-0123456789abcdef01";

/// The server on `store`, paper venue, bootstrap admin `root`, scanning the
/// database every 200 ms, serving on a free loopback port.
pub(crate) async fn serve(store: &TestStore, logs: &std::path::Path) -> RunningApp {
    let mut c = Config::default();
    c.database.url = ServiceUrl::new(store.url.clone().unwrap());
    c.auth.jwt_secret = Some(SECRET.to_owned().into());
    c.auth.bootstrap_admin = Some("root".into());
    c.logs.dir = logs.to_path_buf();
    c.engine.venue = VenueMode::Paper;
    c.demo.instruments = false;
    c.monitor.scan_interval = Duration::from_millis(200);
    ordermon_telemetry::test_subscriber();
    ordermon::build(c)
        .await
        .unwrap()
        .spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap()
}

/// `method path` on `app` with `token`, and an optional JSON body: the status
/// and the JSON answer (`Null` when there is none).
pub(crate) async fn call(
    app: &RunningApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", app.base_url()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A temporary directory for the server's logs.
pub(crate) fn logs_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ordermon-{name}-{}", uuid::Uuid::now_v7().simple()))
}

/// Through `admin`: the instruments `instruments` (USD, tick 0.01, lot 1)
/// and the user `user`, funded with `usd` dollars.
pub(crate) async fn seed(
    app: &RunningApp,
    admin: &str,
    instruments: &[&str],
    user: &str,
    usd: &str,
) {
    let post = reqwest::Method::POST;
    for id in instruments {
        let (s, b) = call(app, post.clone(), "/api/v1/instruments", admin,
            Some(serde_json::json!({"id": id, "quote_currency": "USD", "tick_size": "0.01", "lot_size": "1", "min_quantity": "1"}))).await;
        assert!(s < 300, "{b}");
    }
    let (s, b) = call(
        app,
        post.clone(),
        "/api/v1/users",
        admin,
        Some(serde_json::json!({"id": user, "name": user})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        app,
        post,
        &format!("/api/v1/users/{user}/cash"),
        admin,
        Some(serde_json::json!({"currency": "USD", "amount": usd, "reason": "initial"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

/// The order `id` as `token` reads it.
pub(crate) async fn get_order(app: &RunningApp, token: &str, id: &str) -> Value {
    call(
        app,
        reqwest::Method::GET,
        &format!("/api/v1/orders/{id}"),
        token,
        None,
    )
    .await
    .1
}

/// Reads the order `id` every 20 ms until `done` holds or `within` has
/// passed; the last read.
pub(crate) async fn order_until(
    app: &RunningApp,
    token: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let t0 = std::time::Instant::now();
    loop {
        let o = get_order(app, token, id).await;
        if done(&o) || t0.elapsed() > within {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
