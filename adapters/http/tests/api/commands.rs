//! Batches, modifications, the kill switch and user administration through HTTP.

use axum::http::{Method, StatusCode};
use ordermon_domain::user::Role;
use serde_json::json;

use crate::common::{TestApp, assert_problem, limit_buy, report};

#[tokio::test]
async fn batches_modify_and_kill_switch() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    // Non-atomic: per-item results.
    let bad = json!({"client_order_id": "b-2", "instrument_id": "NOPE.SIM", "side": "buy",
        "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"});
    let r = t
        .post(
            "/api/v1/orders/batch",
            &alice,
            json!({"orders": [limit_buy("b-1", "1", "10.00"), bad], "atomic": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["results"][0]["status"], 201);
    assert_eq!(r.body["results"][1]["status"], 422);
    assert_eq!(r.body["results"][1]["error"]["code"], "validation_failed");
    assert_eq!(t.order_count().await, 1);
    // Atomic: all or none.
    let r = t
        .post(
            "/api/v1/orders/batch",
            &alice,
            json!({"orders": [limit_buy("b-3", "1", "10.00"), bad], "atomic": true}),
        )
        .await;
    assert_problem(&r, 422, "validation_failed");
    assert_eq!(
        r.body["errors"][0]["field"], "orders[1].instrument_id",
        "{}",
        r.text
    );
    assert_eq!(t.order_count().await, 1);

    // Modify the open order.
    let id = t.get("/api/v1/orders/by-client-id/b-1", &alice).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .call(
            Method::PATCH,
            &format!("/api/v1/orders/{id}"),
            Some(&alice),
            Some(json!({"quantity": "3"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        ["pending_update", "submitted", "accepted"].contains(&r.body["status"].as_str().unwrap()),
        "{}",
        r.text
    );
    let r = t
        .post(
            "/api/v1/executions",
            &t.admin(),
            report(&id, "alice", json!({"type": "updated", "quantity": "3"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["quantity"], "3");

    // Global halt: new orders are denied with a reason; resume trades again.
    let admin = t.admin();
    let r = t
        .post(
            "/api/v1/admin/kill-switch",
            &admin,
            json!({"scope": "global", "state": "halted", "reason": "drill"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "halted");
    let r = t
        .post("/api/v1/orders", &alice, limit_buy("k-1", "1", "10.00"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "denied");
    assert_eq!(r.body["reason"], "trading_halted");
    let r = t
        .post(
            "/api/v1/admin/kill-switch",
            &admin,
            json!({"scope": "global", "state": "active", "reason": "drill over"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Per user.
    let r = t
        .post(
            "/api/v1/admin/kill-switch",
            &admin,
            json!({"scope": "user", "user_id": "alice", "state": "halted", "reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t.get("/api/v1/users/alice", &admin).await;
    assert_eq!(r.body["trading_state"], "halted");
    let r = t.get("/status", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["trading_state"], "active");
}

#[tokio::test]
async fn users_admin() {
    let t = TestApp::new().await;
    let admin = t.admin();
    t.user("u1", Role::Trader).await;
    t.user("u2", Role::Viewer).await;
    let r = t
        .post(
            "/api/v1/users",
            &admin,
            json!({"id": "u1", "name": "again"}),
        )
        .await;
    assert_problem(&r, 409, "user_exists");
    // The harness's own admin, `root`, sorts first.
    let r = t.get("/api/v1/users?limit=2", &admin).await;
    assert_eq!(r.body["items"][0]["id"], "root");
    assert_eq!(r.body["items"][1]["id"], "u1");
    let c = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = t
        .get(&format!("/api/v1/users?limit=1&cursor={c}"), &admin)
        .await;
    assert_eq!(r.body["items"][0]["id"], "u2");
    let r = t
        .call(Method::PATCH, "/api/v1/users/u1", Some(&admin),
            Some(json!({"status": "disabled", "limits": {"max_open_orders": 5, "max_order_notional": "1000"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "disabled");
    assert_eq!(r.body["limits"]["max_order_notional"], "1000");
    let r = t
        .post(
            "/api/v1/users/u1/cash",
            &admin,
            json!({"currency": "USD", "amount": "-5", "reason": "x"}),
        )
        .await;
    assert_problem(&r, 409, "insufficient_funds");
    let r = t
        .post(
            "/api/v1/users/nobody/cash",
            &admin,
            json!({"currency": "USD", "amount": "5", "reason": "x"}),
        )
        .await;
    assert_problem(&r, 404, "not_found");
}
