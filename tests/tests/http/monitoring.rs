//! Monitoring control from the database (SPEC §3.4): with a 1 s scan,
//! `UPDATE users SET status=...` stops and starts monitors within 2 s, and the
//! same for strategies; the API path takes effect in under 1 s.

use std::time::{Duration, Instant};

use ordermon_domain::ids::UserId;
use ordermon_tests::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, spawn};

crate::per_backend!(database_and_api_control_of_monitors);

async fn within(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within {limit:?}");
}

async fn operator(app: &TestApp, sql: &str) {
    // In memory there is no SQL: the store is changed through its port instead.
    if app.store.operator_sql(sql).await.is_none() {
        unreachable!("only called for SQL backends");
    }
}

async fn database_and_api_control_of_monitors(backend: Backend) {
    let Some(app) = spawn(backend, |c| {
        c.monitor.scan_interval = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    app.instrument().await;
    let alice_token = app.trader("alice", "1000").await;
    let alice = UserId::new("alice").unwrap();
    let engine = app.running().engine().clone();
    within("alice's monitor starts", Duration::from_secs(3), || {
        engine.is_monitored(&alice)
    })
    .await;

    // A strategy through the API runs at once.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/strategies",
            Some(&alice_token),
            Some(json!({"id": "watch", "type": "price_alert", "name": "watch", "instruments": ["ACME.SIM"], "params": {"level": "100"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    within("strategy runs", Duration::from_secs(1), || {
        engine.running_strategies() == 1
    })
    .await;

    if backend != Backend::Memory {
        operator(
            &app,
            "UPDATE strategies SET status = 'disabled' WHERE id = 'watch'",
        )
        .await;
        within("strategy stopped by SQL", Duration::from_secs(2), || {
            engine.running_strategies() == 0
        })
        .await;
        operator(
            &app,
            "UPDATE strategies SET status = 'enabled' WHERE id = 'watch'",
        )
        .await;
        within("strategy started by SQL", Duration::from_secs(2), || {
            engine.running_strategies() == 1
        })
        .await;

        operator(
            &app,
            "UPDATE users SET status = 'disabled' WHERE id = 'alice'",
        )
        .await;
        let t = within("monitor stopped by SQL", Duration::from_secs(2), || {
            !engine.is_monitored(&alice)
        })
        .await;
        assert!(t < Duration::from_secs(2));
        assert_eq!(
            engine.running_strategies(),
            0,
            "its strategies stopped with it"
        );
        operator(
            &app,
            "UPDATE users SET status = 'active' WHERE id = 'alice'",
        )
        .await;
        within("monitor started by SQL", Duration::from_secs(2), || {
            engine.is_monitored(&alice)
        })
        .await;
        within("its strategy again", Duration::from_secs(1), || {
            engine.running_strategies() == 1
        })
        .await;
    }

    // The API path: under one second, without waiting for a scan.
    let start = Instant::now();
    let (s, body) = app
        .call(
            Method::PATCH,
            "/api/v1/strategies/watch",
            Some(&alice_token),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    within("strategy stopped by API", Duration::from_secs(1), || {
        engine.running_strategies() == 0
    })
    .await;
    let (s, body) = app
        .call(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(&app.admin),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    within("monitor stopped by API", Duration::from_secs(1), || {
        !engine.is_monitored(&alice)
    })
    .await;
    assert!(start.elapsed() < Duration::from_secs(2));
    app.stop().await;
}
