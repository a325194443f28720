//! The full order lifecycle through HTTP, to the cent.

use ordermon_tests::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{dec, fill, num, report, spawn, tri};

crate::per_backend!(
    lifecycle_in_external_mode,
    cancel_modify_and_cancel_all,
    paper_venue_fills_a_market_order
);

async fn lifecycle_in_external_mode(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.instrument().await;
    let alice = app.trader("alice", "10000").await;

    let (s, o) = app.limit(&alice, "c-1", "buy", "10", "10.00").await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["status"], "submitted");
    let id = o["id"].as_str().unwrap().to_owned();
    let b = app.usd(&alice).await;
    assert_eq!(tri(&b), (dec("10000"), dec("100.10"), dec("9899.90")));

    let steps = [
        (
            json!({"type": "accepted", "venue_order_id": "V-1"}),
            "accepted",
        ),
        (fill("t1", "4", "9.99", "0.04"), "partially_filled"),
        (fill("t2", "6", "10.00", "0.06"), "filled"),
    ];
    for (kind, status) in steps {
        let (s, o) = app
            .post("/api/v1/executions", &app.admin, report(&id, "alice", kind))
            .await;
        assert_eq!(s, StatusCode::OK, "{o}");
        assert_eq!(o["status"], status);
    }
    // A repeated fill changes nothing.
    let (s, o) = app
        .post(
            "/api/v1/executions",
            &app.admin,
            report(&id, "alice", fill("t2", "6", "10.00", "0.06")),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(num(&o["filled_qty"]), dec("10"));

    let b = app.usd(&alice).await;
    assert_eq!(
        num(&b["total"]),
        dec("9899.94"),
        "10000 - 39.96 - 60.00 - 0.10"
    );
    assert_eq!(num(&b["reserved"]), dec("0"));
    let (_, positions) = app.get("/api/v1/positions", &alice).await;
    let p = positions
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    assert_eq!(num(&p["quantity"]), dec("10"));
    assert_eq!(num(&p["avg_open_price"]), dec("9.996"));
    assert_eq!(num(&p["realized_pnl"]), dec("-0.10"));
    let (_, events) = app
        .get(&format!("/api/v1/orders/{id}/events"), &alice)
        .await;
    let n = events
        .as_array()
        .map_or_else(|| events["items"].as_array().map_or(0, Vec::len), Vec::len);
    assert_eq!(
        n, 5,
        "initialized, submitted, accepted, filled, filled: {events}"
    );
    let (_, fills) = app.get("/api/v1/fills", &alice).await;
    assert_eq!(fills["items"].as_array().map(Vec::len), Some(2), "{fills}");
    app.stop().await;
}

async fn cancel_modify_and_cancel_all(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.instrument().await;
    let alice = app.trader("alice", "1000").await;
    let (_, o) = app.limit(&alice, "c-1", "buy", "10", "10.00").await;
    let id = o["id"].as_str().unwrap().to_owned();
    app.post(
        "/api/v1/executions",
        &app.admin,
        report(&id, "alice", json!({"type": "accepted"})),
    )
    .await;

    // Modify: pending until the venue confirms, then the reservation follows.
    let (s, o) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/orders/{id}"),
            Some(&alice),
            Some(json!({"price": "20.00"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["status"], "pending_update");
    let (s, o) = app
        .post(
            "/api/v1/executions",
            &app.admin,
            report(&id, "alice", json!({"type": "updated", "price": "20.00"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["price"], "20.00");
    assert_eq!(num(&app.usd(&alice).await["reserved"]), dec("200.20"));

    // Cancel releases everything.
    let (s, o) = app
        .post(&format!("/api/v1/orders/{id}/cancel"), &alice, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["status"], "pending_cancel");
    app.post(
        "/api/v1/executions",
        &app.admin,
        report(&id, "alice", json!({"type": "canceled"})),
    )
    .await;
    let b = app.usd(&alice).await;
    assert_eq!(tri(&b), (dec("1000"), dec("0"), dec("1000")));
    // A terminal order cannot be canceled again: 409.
    let (s, e) = app
        .post(&format!("/api/v1/orders/{id}/cancel"), &alice, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");

    // Cancel-all.
    for i in 0..3 {
        app.limit(&alice, &format!("all-{i}"), "buy", "1", "10.00")
            .await;
    }
    let (s, out) = app
        .call(
            Method::DELETE,
            "/api/v1/orders?instrument_id=ACME.SIM",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["canceled"], 3, "{out}");
    let items = out["orders"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 3, "{out}");
    assert!(items.iter().all(|o| o["status"] == "pending_cancel"));
    app.stop().await;
}

async fn paper_venue_fills_a_market_order(backend: Backend) {
    let Some(app) = spawn(backend, |c| {
        c.engine.venue = ordermon_application::VenueMode::Paper;
        c.demo.instruments = true;
        c.demo.users = false;
    })
    .await
    else {
        return;
    };
    let alice = app.trader("alice", "100000").await;
    // Wait for the simulated feed's first quote of the demo instrument.
    let mut quoted = false;
    for _ in 0..100 {
        if app.get("/api/v1/quotes/ACME.SIM", &alice).await.0 == StatusCode::OK {
            quoted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(quoted, "the simulated feed quotes ACME.SIM");
    let (s, o) = app
        .post("/api/v1/orders", &alice, json!({"client_order_id": "m-1", "instrument_id": "ACME.SIM", "side": "buy", "type": "market", "quantity": "5", "time_in_force": "ioc"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(
        o["status"], "filled",
        "the paper venue fills at the quote: {o}"
    );
    let (_, positions) = app.get("/api/v1/positions", &alice).await;
    assert_eq!(num(&positions[0]["quantity"]), dec("5"), "{positions}");
    let b = app.usd(&alice).await;
    assert_eq!(num(&b["reserved"]), dec("0"), "{b}");
    app.stop().await;
}
