//! The order lifecycle through HTTP in external venue mode: submit, reserve,
//! cancel, idempotency, execution reports, positions and cash to the cent.

use axum::http::{Method, StatusCode};
use rust_decimal_macros::dec;
use serde_json::json;

use crate::common::{TestApp, assert_problem, dec, limit_buy, report};

#[tokio::test]
async fn submit_reserve_cancel_release_and_idempotency() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    assert_eq!(t.usd("alice", "total").await, dec!(10000));

    let r = t
        .post("/api/v1/orders", &alice, limit_buy("c-1", "10", "10.00"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(
        ["submitted", "accepted"].contains(&r.body["status"].as_str().unwrap()),
        "{}",
        r.text
    );
    assert_eq!(r.body["user_id"], "alice");
    assert_eq!(r.body["quantity"], "10");
    assert_eq!(r.body["leaves_qty"], "10");
    assert_eq!(r.body["filled_qty"], "0");
    assert_eq!(r.body["price"], "10.00");
    assert_eq!(r.body["type"], "limit");

    // 10 × 10.00 plus the estimated fee (10 bp).
    assert_eq!(t.usd("alice", "reserved").await, dec!(100.10));
    assert_eq!(t.usd("alice", "free").await, dec!(9899.90));

    // Same body again: the original order, 200.
    let again = t
        .post("/api/v1/orders", &alice, limit_buy("c-1", "10", "10.00"))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["id"], id.as_str());
    // Same client id, different body: 409.
    let other = t
        .post("/api/v1/orders", &alice, limit_buy("c-1", "11", "10.00"))
        .await;
    assert_problem(&other, 409, "idempotency_mismatch");
    assert_eq!(t.order_count().await, 1);

    // Cancel: pending until the venue confirms, then the reservation is released.
    let r = t
        .post(&format!("/api/v1/orders/{id}/cancel"), &alice, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(["pending_cancel", "canceled"].contains(&r.body["status"].as_str().unwrap()));
    let r = t
        .post(
            "/api/v1/executions",
            &t.admin(),
            report(&id, "alice", json!({"type": "canceled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "canceled");
    assert_eq!(r.body["leaves_qty"], "0");
    assert_eq!(t.usd("alice", "reserved").await, dec!(0));
    assert_eq!(t.usd("alice", "free").await, dec!(10000));
    // Canceling again is an illegal transition.
    let r = t
        .post(&format!("/api/v1/orders/{id}/cancel"), &alice, json!({}))
        .await;
    assert_problem(&r, 409, "invalid_transition");

    // The order's history.
    let r = t.get(&format!("/api/v1/orders/{id}/events"), &alice).await;
    assert_eq!(r.status, StatusCode::OK);
    let types: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"order.initialized"));
    assert_eq!(types.last(), Some(&"order.canceled"));
}

#[tokio::test]
async fn execution_reports_fill_to_the_cent() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    let admin = t.admin();
    let r = t
        .post("/api/v1/orders", &alice, limit_buy("c-2", "10", "10.00"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();

    let r = t
        .post(
            "/api/v1/executions",
            &admin,
            report(
                &id,
                "alice",
                json!({"type": "accepted", "venue_order_id": "V-1"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "accepted");
    assert_eq!(r.body["venue_order_id"], "V-1");

    let fill = |trade: &str, qty: &str, px: &str, fee: &str| {
        report(
            &id,
            "alice",
            json!({"type": "fill", "trade_id": trade, "quantity": qty, "price": px,
            "commission": {"amount": fee, "currency": "USD"}, "liquidity_side": "maker"}),
        )
    };
    let r = t
        .post(
            "/api/v1/executions",
            &admin,
            fill("T-1", "4", "10.00", "0.04"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "partially_filled");
    assert_eq!(dec(&r.body["filled_qty"]), dec!(4));
    assert_eq!(dec(&r.body["leaves_qty"]), dec!(6));
    // A repeated trade id changes nothing.
    let r = t
        .post(
            "/api/v1/executions",
            &admin,
            fill("T-1", "4", "10.00", "0.04"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(dec(&r.body["filled_qty"]), dec!(4));

    let r = t
        .post(
            "/api/v1/executions",
            &admin,
            fill("T-2", "6", "9.99", "0.06"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "filled");
    assert_eq!(dec(&r.body["avg_px"]), dec!(9.994));
    assert_eq!(r.body["leaves_qty"], "0");

    // Cash: 10000 - 40.00 - 0.04 - 59.94 - 0.06; nothing left reserved.
    assert_eq!(t.usd("alice", "total").await, dec!(9899.96));
    assert_eq!(t.usd("alice", "reserved").await, dec!(0));
    assert_eq!(t.usd("alice", "free").await, dec!(9899.96));

    let r = t.get("/api/v1/positions", &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = &r.body[0];
    assert_eq!(p["instrument_id"], "ACME.SIM");
    assert_eq!(p["side"], "long");
    assert_eq!(dec(&p["quantity"]), dec!(10));
    assert_eq!(dec(&p["avg_open_price"]), dec!(9.994));
    assert_eq!(dec(&p["commissions"]), dec!(0.10));

    let r = t.get("/api/v1/portfolio", &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["positions"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["account"]["user_id"], "alice");

    // Fills, paged one at a time.
    let r = t.get("/api/v1/fills?limit=1", &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["trade_id"], "T-2");
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = t
        .get(&format!("/api/v1/fills?limit=1&cursor={cursor}"), &alice)
        .await;
    assert_eq!(r.body["items"][0]["trade_id"], "T-1");
    assert!(r.body["next_cursor"].is_null(), "{}", r.text);

    // A report for an unknown order is 404; an illegal one 409.
    let other = ordermon_domain::ids::OrderId::generate().to_string();
    let r = t
        .post(
            "/api/v1/executions",
            &admin,
            report(&other, "alice", json!({"type": "canceled"})),
        )
        .await;
    assert_problem(&r, 404, "not_found");
    let r = t
        .post(
            "/api/v1/executions",
            &admin,
            report(&id, "alice", json!({"type": "accepted"})),
        )
        .await;
    assert_problem(&r, 409, "invalid_transition");
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    for i in 0..5 {
        let r = t
            .post(
                "/api/v1/orders",
                &alice,
                limit_buy(&format!("p-{i}"), "1", "10.00"),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let mut seen = Vec::new();
    let mut uri = "/api/v1/orders?limit=2".to_owned();
    loop {
        let r = t.get(&uri, &alice).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for o in r.body["items"].as_array().unwrap() {
            seen.push(o["client_order_id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/orders?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["p-4", "p-3", "p-2", "p-1", "p-0"]);
    let r = t.get("/api/v1/orders?status=filled,canceled", &alice).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = t
        .get(
            "/api/v1/orders?status=submitted,accepted&instrument_id=ACME.SIM",
            &alice,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5, "{}", r.text);
    let r = t
        .get(
            "/api/v1/orders?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z",
            &alice,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);

    // Cancel-all cancels the five.
    let r = t
        .call(
            Method::DELETE,
            "/api/v1/orders?instrument_id=ACME.SIM",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["canceled"], 5);
}
