//! Tokens and roles: missing, expired, forged, `alg: none` and malformed tokens
//! are 401; viewers cannot write; traders cannot administer; another user's
//! data is 404.

use axum::http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ordermon_domain::user::Role;
use serde_json::json;

use crate::common::{SECRET, TestApp, assert_problem, b64url, limit_buy};

fn hs256(claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn exp(offset: i64) -> i64 {
    chrono::Utc::now().timestamp() + offset
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let t = TestApp::new().await;
    t.alice().await;
    let none_header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let claims =
        b64url(format!(r#"{{"sub":"alice","role":"admin","exp":{}}}"#, exp(600)).as_bytes());
    let alg_none = format!("{none_header}.{claims}.");
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &json!({"sub": "alice", "role": "admin", "exp": exp(600)}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let cases = [
        (
            "expired",
            hs256(
                &json!({"sub": "alice", "role": "trader", "exp": exp(-120)}),
                SECRET,
            ),
        ),
        (
            "forged",
            hs256(
                &json!({"sub": "alice", "role": "admin", "exp": exp(600)}),
                "another-secret",
            ),
        ),
        ("alg none", alg_none),
        ("hs512", hs512),
        ("garbage", "abc.def.ghi".to_owned()),
        ("not a jwt", "hello".to_owned()),
        (
            "no role",
            hs256(&json!({"sub": "alice", "exp": exp(600)}), SECRET),
        ),
        (
            "unknown role",
            hs256(
                &json!({"sub": "alice", "role": "god", "exp": exp(600)}),
                SECRET,
            ),
        ),
        (
            "no exp",
            hs256(&json!({"sub": "alice", "role": "trader"}), SECRET),
        ),
        (
            "no sub",
            hs256(&json!({"role": "trader", "exp": exp(600)}), SECRET),
        ),
        (
            "bad sub",
            hs256(
                &json!({"sub": "bad id!", "role": "trader", "exp": exp(600)}),
                SECRET,
            ),
        ),
    ];
    for (name, token) in cases {
        let r = t.get("/api/v1/orders", &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.text);
        assert_problem(&r, 401, "unauthorized");
    }
    // No header at all, and the wrong scheme.
    let r = t.call(Method::GET, "/api/v1/orders", None, None).await;
    assert_problem(&r, 401, "unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let req = axum::http::Request::builder()
        .uri("/api/v1/orders")
        .header("authorization", "Basic YWxpY2U6cHc=")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_problem(&t.send(req).await, 401, "unauthorized");
    // State did not change.
    assert_eq!(t.order_count().await, 0);
}

#[tokio::test]
async fn roles_are_enforced() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    let viewer = t.user("vera", Role::Viewer).await;
    // Viewers read their own data but cannot write.
    let r = t
        .post("/api/v1/orders", &viewer, limit_buy("v-1", "1", "10.00"))
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = t.get("/api/v1/orders", &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t.get("/api/v1/account", &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .call(Method::DELETE, "/api/v1/orders", Some(&viewer), None)
        .await;
    assert_problem(&r, 403, "forbidden");
    // Traders cannot administer.
    for (method, uri) in [
        (Method::GET, "/api/v1/users"),
        (Method::GET, "/status"),
        (Method::POST, "/api/v1/users"),
        (Method::POST, "/api/v1/instruments"),
        (Method::POST, "/api/v1/executions"),
        (Method::POST, "/api/v1/admin/kill-switch"),
        (Method::POST, "/api/v1/users/alice/cash"),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        let r = t.call(method.clone(), uri, Some(&alice), body).await;
        assert_problem(&r, 403, "forbidden");
    }
    assert_eq!(t.order_count().await, 0);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    let bob = t.user("bob", Role::Trader).await;
    let r = t
        .post("/api/v1/orders", &alice, limit_buy("c-1", "1", "10.00"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Bob sees nothing of alice's: 404, not 403.
    assert_problem(
        &t.get(&format!("/api/v1/orders/{id}"), &bob).await,
        404,
        "not_found",
    );
    assert_problem(
        &t.get(&format!("/api/v1/orders/{id}/events"), &bob).await,
        404,
        "not_found",
    );
    assert_problem(
        &t.post(&format!("/api/v1/orders/{id}/cancel"), &bob, json!({}))
            .await,
        404,
        "not_found",
    );
    let r = t
        .call(
            Method::PATCH,
            &format!("/api/v1/orders/{id}"),
            Some(&bob),
            Some(json!({"quantity": "2"})),
        )
        .await;
    assert_problem(&r, 404, "not_found");
    assert_problem(
        &t.get("/api/v1/orders/by-client-id/c-1", &bob).await,
        404,
        "not_found",
    );
    assert_problem(
        &t.get("/api/v1/account?user_id=alice", &bob).await,
        404,
        "not_found",
    );
    assert_problem(&t.get("/api/v1/users/alice", &bob).await, 404, "not_found");
    let r = t.get("/api/v1/orders", &bob).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = t.get("/api/v1/events", &bob).await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"]["user_id"] == "bob")
    );

    // Alice and the admin do see it.
    let r = t.get(&format!("/api/v1/orders/{id}"), &alice).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.get(&format!("/api/v1/orders/{id}"), &t.admin()).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.get("/api/v1/orders/by-client-id/c-1", &alice).await;
    assert_eq!(r.body["id"], id.as_str());
    // The order is untouched.
    assert_eq!(r.body["quantity"], "1");
    assert_ne!(r.body["status"], "canceled");
}
