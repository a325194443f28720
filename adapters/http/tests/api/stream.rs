//! The WebSocket stream over a real listener: the caller's events arrive as
//! JSON frames, other users' do not, and a missing token is refused.

use std::time::Duration;

use futures::StreamExt;
use ordermon_domain::user::Role;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{TestApp, limit_buy};

async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Option<serde_json::Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).ok();
        }
    }
}

/// Serves `t`'s app on a real listener: its address, and the task to abort.
async fn listen(
    t: &TestApp,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = t.app.clone();
    (
        addr,
        tokio::spawn(async move { axum::serve(listener, app).await }),
    )
}

#[tokio::test]
async fn stream_carries_the_callers_events() {
    let t = TestApp::new().await;
    let alice = t.alice().await;
    let bob = t.user("bob", Role::Trader).await;
    let (addr, server) = listen(&t).await;

    // Without a token the handshake is refused.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream")).await;
    assert!(refused.is_err());

    let (mut alice_ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?token={alice}"))
            .await
            .unwrap();
    let (mut bob_ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?token={bob}"))
            .await
            .unwrap();
    // Let the upgrades finish subscribing before committing.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let r = t
        .post("/api/v1/orders", &alice, limit_buy("s-1", "1", "10.00"))
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let ev = next_json(&mut alice_ws).await.expect("an event");
    assert_eq!(ev["user_id"], "alice");
    assert!(ev["event_type"].as_str().unwrap().contains('.'));

    // Bob's stream has nothing of alice's.
    let bobs = tokio::time::timeout(Duration::from_millis(300), bob_ws.next()).await;
    assert!(bobs.is_err(), "bob received {bobs:?}");

    alice_ws.close(None).await.unwrap();

    // Engine shutdown closes the remaining streams with 1001 (going away).
    t.engine.shutdown().await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), bob_ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed.map(|f| u16::from(f.code)), Some(1001));
    server.abort();
}

#[tokio::test]
async fn an_oversized_client_message_closes_the_stream() {
    use futures::SinkExt;
    let t = TestApp::new().await;
    let alice = t.alice().await;
    let (addr, server) = listen(&t).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?token={alice}"))
            .await
            .unwrap();
    // A quote request of a sane size is fine and answered by nothing.
    ws.send(Message::Text(r#"{"quotes":["ACME.SIM"]}"#.into()))
        .await
        .unwrap();
    // 1 MiB in one message: the server closes the stream instead of buffering it.
    let big = format!(r#"{{"quotes":["{}"]}}"#, "A".repeat(1 << 20));
    let _ = ws.send(Message::Text(big.into())).await;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => break None,
            Err(_) => panic!("the stream stayed open"),
        }
    };
    assert!(
        ended.is_none_or(|code| code == 1009 || code == 1002),
        "{ended:?}"
    );
    server.abort();
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
async fn a_stream_ends_when_its_token_expires_or_its_session_is_revoked() {
    use axum::http::Method;
    let t = TestApp::new().await;
    t.alice().await;
    let (addr, server) = listen(&t).await;

    // A token good for two seconds: the stream closes with 1008 once it expires.
    let short =
        ordermon_http::mint_token(&t.auth, "alice", Role::Trader, Duration::from_secs(2)).unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?token={short}"))
            .await
            .unwrap();
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(6)).await,
        Some(1008)
    );

    // A signed-in session: logging out closes its stream within the check period.
    let password = "a long enough password";
    let r = t
        .call(
            Method::PUT,
            "/api/v1/users/alice/password",
            Some(&t.admin()),
            Some(serde_json::json!({"password": password})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let r = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(serde_json::json!({"user_id": "alice", "password": password})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?token={access}"))
            .await
            .unwrap();
    let out = t
        .call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status.as_u16(), 204);
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(8)).await,
        Some(1008)
    );
    server.abort();
}

#[tokio::test]
async fn live_streams_are_capped_per_user() {
    let t = TestApp::new().await; // two streams per user
    let alice = t.alice().await;
    let bob = t.user("bob", Role::Trader).await;
    let (addr, server) = listen(&t).await;
    let open = |token: String| async move {
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/stream?token={token}")).await
    };
    let (mut first, _) = open(alice.clone()).await.unwrap();
    let (_second, _) = open(alice.clone()).await.unwrap();
    match open(alice.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 429);
        }
        other => panic!("a third stream of one user opened: {other:?}"),
    }
    assert!(open(bob).await.is_ok(), "another user has its own slots");
    // Closing one frees its slot.
    first.close(None).await.unwrap();
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(ws) = open(alice.clone()).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some(), "the slot never came back");
    server.abort();
}
