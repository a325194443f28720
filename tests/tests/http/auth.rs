//! Idempotency, tenant isolation, roles and token checks.

use ordermon_domain::user::Role;
use ordermon_tests::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{dec, num, spawn};

crate::per_backend!(idempotency_isolation_and_roles, bad_tokens_are_401);

async fn idempotency_isolation_and_roles(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    app.instrument().await;
    let alice = app.trader("alice", "1000").await;
    let bob = app.trader("bob", "1000").await;

    let (s, first) = app.limit(&alice, "same", "buy", "1", "10.00").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, again) = app.limit(&alice, "same", "buy", "1", "10.00").await;
    assert_eq!(s, StatusCode::OK, "a repeat is 200 with the original order");
    assert_eq!(again["id"], first["id"]);
    let (s, e) = app.limit(&alice, "same", "buy", "2", "10.00").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["code"], "idempotency_mismatch");
    assert_eq!(
        num(&app.usd(&alice).await["reserved"]),
        dec("10.01"),
        "one reservation only"
    );

    let id = first["id"].as_str().unwrap();
    let (s, e) = app.get(&format!("/api/v1/orders/{id}"), &bob).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another user's order is 404: {e}");
    let (s, _) = app
        .post(&format!("/api/v1/orders/{id}/cancel"), &bob, json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, list) = app.get("/api/v1/orders", &bob).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    // The same client order id is free for another user.
    let (s, _) = app.limit(&bob, "same", "buy", "1", "10.00").await;
    assert_eq!(s, StatusCode::CREATED);

    let viewer = app.token("alice", Role::Viewer);
    let (s, _) = app.get(&format!("/api/v1/orders/{id}"), &viewer).await;
    assert_eq!(s, StatusCode::OK, "a viewer reads its own data");
    let (s, e) = app.limit(&viewer, "v-1", "buy", "1", "10.00").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, _) = app
        .post("/api/v1/users", &alice, json!({"id": "eve", "name": "eve"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "traders cannot create users");
    let (s, _) = app.get("/status", &alice).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.stop().await;
}

fn b64(v: &serde_json::Value) -> String {
    use base64_engine::encode;
    encode(serde_json::to_vec(v).unwrap())
}

/// Minimal URL-safe base64 without padding, to forge tokens by hand.
mod base64_engine {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    pub(super) fn encode(bytes: Vec<u8>) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

async fn bad_tokens_are_401(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": "root", "role": "admin", "exp": now + 3600});
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    let forged = {
        let good = app.token("root", Role::Admin);
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[2] = "AAAA".repeat(10);
        parts.join(".")
    };
    let expired = {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let key =
            jsonwebtoken::EncodingKey::from_secret(b"harness-secret-0123456789abcdef0123456789");
        jsonwebtoken::encode(
            &header,
            &json!({"sub": "root", "role": "admin", "exp": now - 600}),
            &key,
        )
        .unwrap()
    };
    let other_secret = {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let key = jsonwebtoken::EncodingKey::from_secret(b"not-the-server-secret");
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    for (name, token) in [
        ("none", None),
        ("garbage", Some("not-a-jwt".to_owned())),
        ("alg none", Some(none)),
        ("forged signature", Some(forged)),
        ("expired", Some(expired)),
        ("other secret", Some(other_secret)),
    ] {
        let (s, body) = app
            .call(Method::GET, "/api/v1/users", token.as_deref(), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["code"], "unauthorized", "{name}");
    }
    let (s, _) = app.get("/api/v1/users", &app.admin).await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}
