//! Password sign-in through the router called directly (no connect info, so
//! every attempt counts against one fixed address), and the routes without
//! the service.

use axum::http::{Method, StatusCode, header};
use ordermon_domain::user::Role;
use serde_json::json;

use crate::common::{TestApp, assert_problem};

const PASSWORD: &str = "a long enough password";

#[tokio::test]
async fn sign_in_works_without_a_peer_address() {
    let t = TestApp::new().await;
    t.user("alice", Role::Trader).await;
    let r = t
        .call(
            Method::PUT,
            "/api/v1/users/alice/password",
            Some(&t.admin()),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"user_id": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    assert_eq!(
        r.body["user"],
        json!({"id": "alice", "name": "alice", "role": "trader"})
    );
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let me = t.get("/api/v1/auth/me", &access).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], "alice");

    let out = t
        .call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = t.get("/api/v1/auth/me", &access).await;
    assert_problem(&after, 401, "unauthorized");
    assert!(after.body["detail"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn without_the_service_the_routes_answer_503() {
    let t = TestApp::without_sign_in().await;
    t.user("alice", Role::Trader).await;
    let login = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"user_id": "alice", "password": PASSWORD})),
        )
        .await;
    assert_problem(&login, 503, "unavailable");
    let refresh = t
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": "x.y"})),
        )
        .await;
    assert_problem(&refresh, 503, "unavailable");
    let set = t
        .call(
            Method::PUT,
            "/api/v1/users/alice/password",
            Some(&t.admin()),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(&set, 503, "unavailable");
    // Tokens minted with the secret still work, `me` included.
    let me = t.get("/api/v1/auth/me", &t.admin()).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(
        me.body,
        json!({"id": "root", "name": "Root", "role": "admin"})
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_sign_in_routes() {
    let t = TestApp::new().await;
    let r = t
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let paths = r.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/users/{id}/password", "put"),
    ] {
        assert!(paths[path][method].is_object(), "missing {method} {path}");
    }
    let schemas = &r.body["components"]["schemas"];
    assert_eq!(
        schemas["LoginRequest"]["properties"]["password"]["format"],
        "password"
    );
    assert!(schemas["TokenResponse"]["properties"]["refresh_token"].is_object());
}
