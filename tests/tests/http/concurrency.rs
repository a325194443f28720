//! 500 concurrent buys for one user whose cash covers exactly 100 of them.

use std::sync::Arc;

use ordermon_tests::Backend;
use reqwest::StatusCode;

use crate::support::{dec, spawn, tri};

crate::per_backend!(five_hundred_concurrent_buys);

async fn five_hundred_concurrent_buys(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.instrument().await;
    // 1 × 10.00 plus the 10 bp fee estimate = 10.01 per order.
    let alice = app.trader("alice", "1001.00").await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..500 {
        let app = app.clone();
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            app.limit(&alice, &format!("c-{i}"), "buy", "1", "10.00")
                .await
        }));
    }
    let (mut submitted, mut denied) = (0, 0);
    for t in tasks {
        let (s, o) = t.await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "every request is answered: {o}");
        match o["status"].as_str() {
            Some("submitted") => submitted += 1,
            Some("denied") => {
                assert_eq!(o["reason"], "insufficient_funds");
                denied += 1;
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!((submitted, denied), (100, 400));
    let b = app.usd(&alice).await;
    assert_eq!(tri(&b), (dec("1001.00"), dec("1001.00"), dec("0")));
    let (_, list) = app
        .get("/api/v1/orders?status=submitted&limit=500", &alice)
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(100));
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
}
