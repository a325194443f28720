//! The database is authoritative over tokens: an unknown or disabled user is
//! 401, the database's role wins over the token's, an admin can revoke a
//! user's tokens, and a live stream ends when its user no longer may act.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use futures::StreamExt;
use ordermon_domain::user::Role;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{TestApp, assert_problem, limit_buy};

#[tokio::test]
async fn a_token_for_an_unknown_user_is_401() {
    let t = TestApp::new().await;
    t.alice().await;
    // Correctly signed, but nobody called `ghost` exists — not even as admin.
    let ghost = t.token("ghost", Role::Admin);
    for uri in ["/api/v1/orders", "/api/v1/users", "/api/v1/auth/me"] {
        assert_problem(&t.get(uri, &ghost).await, 401, "unauthorized");
    }
    let r = t
        .post("/api/v1/orders", &ghost, limit_buy("g-1", "1", "10.00"))
        .await;
    assert_problem(&r, 401, "unauthorized");
    assert_eq!(t.order_count().await, 0);
}

#[tokio::test]
async fn a_disabled_user_is_401_at_once_and_enabled_again_works() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    let ops = t.user("ops", Role::Admin).await;
    assert_eq!(t.get("/api/v1/users", &ops).await.status, StatusCode::OK);
    for user in ["alice", "ops"] {
        let r = t
            .call(
                Method::PATCH,
                &format!("/api/v1/users/{user}"),
                Some(&t.admin()),
                Some(json!({"status": "disabled"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // A disabled admin keeps no admin power, a disabled trader cannot trade.
    assert_problem(&t.get("/api/v1/users", &ops).await, 401, "unauthorized");
    let r = t
        .post("/api/v1/orders", &alice, limit_buy("a-1", "1", "10.00"))
        .await;
    assert_problem(&r, 401, "unauthorized");
    assert_eq!(t.order_count().await, 0);
    // Enabled again, the same token works.
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(&t.admin()),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .post("/api/v1/orders", &alice, limit_buy("a-2", "1", "10.00"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn the_databases_role_wins_over_the_tokens() {
    let t = TestApp::new().await;
    t.alice().await;
    // A token claiming admin for a trader acts as a trader.
    let claims_admin = t.token("alice", Role::Admin);
    assert_problem(
        &t.get("/api/v1/users", &claims_admin).await,
        403,
        "forbidden",
    );
    let me = t.get("/api/v1/auth/me", &claims_admin).await;
    assert_eq!(me.body["role"], "trader", "{}", me.text);
    // An admin demoted to viewer loses admin and writing at once.
    let ops = t.user("ops", Role::Admin).await;
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/users/ops",
            Some(&t.admin()),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["role"], "viewer");
    assert_problem(&t.get("/api/v1/users", &ops).await, 403, "forbidden");
    // Promoted back, the token (minted as admin) is an admin's again.
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/users/ops",
            Some(&t.admin()),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(t.get("/api/v1/users", &ops).await.status, StatusCode::OK);
    // A bad role is a 422 and changes nothing.
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/users/ops",
            Some(&t.admin()),
            Some(json!({"role": "superuser"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    assert_eq!(
        t.get("/api/v1/users/ops", &t.admin()).await.body["role"],
        "admin"
    );
}

#[tokio::test]
async fn revoking_a_users_tokens_refuses_those_issued_before() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    assert_eq!(t.get("/api/v1/orders", &alice).await.status, StatusCode::OK);
    // Only admins revoke.
    let r = t
        .call(
            Method::POST,
            "/api/v1/users/alice/revoke-tokens",
            Some(&alice),
            None,
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = t
        .call(
            Method::POST,
            "/api/v1/users/nobody/revoke-tokens",
            Some(&t.admin()),
            None,
        )
        .await;
    assert_problem(&r, 404, "not_found");
    let r = t
        .call(
            Method::POST,
            "/api/v1/users/alice/revoke-tokens",
            Some(&t.admin()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["tokens_valid_after"].is_string(), "{}", r.text);
    assert_problem(&t.get("/api/v1/orders", &alice).await, 401, "unauthorized");
    // Other users are untouched.
    assert_eq!(
        t.get("/api/v1/users", &t.admin()).await.status,
        StatusCode::OK
    );
    // A token issued after the revocation's second works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = t.token("alice", Role::Trader);
    let r = t.get("/api/v1/orders", &fresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Serves `t`'s app on a real listener.
async fn listen(t: &TestApp) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    (
        addr,
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }),
    )
}

/// The close code the server ends `ws` with, waiting at most `within`.
async fn close_code(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    within: Duration,
) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_stream_closes_when_its_user_is_disabled_or_revoked() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    let bob = t.user("bob", Role::Trader).await;
    let (addr, server) = listen(&t).await;
    let open = |token: String| async move {
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?token={token}"))
            .await
            .map(|(ws, _)| ws)
    };
    let mut alice_ws = open(alice.clone()).await.unwrap();
    let mut bob_ws = open(bob.clone()).await.unwrap();
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(&t.admin()),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .call(
            Method::POST,
            "/api/v1/users/bob/revoke-tokens",
            Some(&t.admin()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        close_code(&mut alice_ws, Duration::from_secs(8)).await,
        Some(1008)
    );
    assert_eq!(
        close_code(&mut bob_ws, Duration::from_secs(8)).await,
        Some(1008)
    );
    // Neither can open a new one.
    assert!(open(alice).await.is_err());
    assert!(open(bob).await.is_err());
    server.abort();
}
