//! The forwarding layer over real loopback HTTP: a request refused because
//! another instance owns its user is sent, unchanged, to that instance's
//! published address, and its answer comes back marked with who served it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use ordermon_http::ApiError;
use ordermon_http::forward::{FORWARDED_BY, Forwarder, SERVED_BY, forward_owned_elsewhere};
use serde_json::{Value, json};

/// The owner: echoes what it received.
async fn echo(request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
        .collect();
    (
        StatusCode::CREATED,
        [("x-owner-said", "hello")],
        axum::Json(json!({
            "method": parts.method.as_str(),
            "uri": parts.uri.to_string(),
            "body": String::from_utf8_lossy(&body),
            "headers": headers,
        })),
    )
}

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A front instance whose every route is refused, naming the owner in the
/// `x-test-owner` header (as the engine refuses a user owned elsewhere).
async fn front(owner_url: String, dead_url: String) -> String {
    async fn refuse(headers: HeaderMap) -> ApiError {
        let owner = headers
            .get("x-test-owner")
            .map(|v| v.to_str().unwrap().to_owned());
        ApiError {
            owner,
            retry_after_secs: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "owned_elsewhere",
                "owned elsewhere",
            )
        }
    }
    let book = move |holder: &str| match holder {
        "b/1" => Some(owner_url.clone()),
        "d/1" => Some(dead_url.clone()),
        _ => None,
    };
    let f = Forwarder::new("a/1", Arc::new(book), Duration::from_secs(5), 1024).unwrap();
    listen(Router::new().route("/{*path}", any(refuse)).layer(
        axum::middleware::from_fn_with_state(Arc::new(f), forward_owned_elsewhere),
    ))
    .await
}

#[tokio::test]
async fn refused_requests_reach_the_owner_unchanged_and_only_once() {
    let owner = listen(Router::new().route("/{*path}", any(echo))).await;
    // An address nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let front = front(owner, dead).await;
    let http = reqwest::Client::new();

    let r = http
        .post(format!("{front}/api/v1/orders?dry=1"))
        .header("x-test-owner", "b/1")
        .bearer_auth("tok")
        .header("idempotency-key", "k1")
        .json(&json!({"client_order_id": "c1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()[SERVED_BY], "b/1");
    assert_eq!(r.headers()["x-owner-said"], "hello");
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/api/v1/orders?dry=1");
    assert_eq!(seen["body"], r#"{"client_order_id":"c1"}"#);
    let h = &seen["headers"];
    assert_eq!(h["authorization"], "Bearer tok");
    assert_eq!(h["idempotency-key"], "k1");
    assert_eq!(h[FORWARDED_BY], "a/1");
    assert_ne!(h["host"], Value::Null);
    assert_ne!(
        h["host"].as_str().unwrap(),
        front.trim_start_matches("http://")
    );

    // Refusals that stand: an owner without an address, an owner that
    // cannot be reached, a request already forwarded once, a read.
    for (method, owner, forwarded) in [
        (reqwest::Method::POST, "c/1", false),
        (reqwest::Method::DELETE, "d/1", false),
        (reqwest::Method::POST, "b/1", true),
        (reqwest::Method::GET, "b/1", false),
    ] {
        let mut req = http
            .request(method.clone(), format!("{front}/api/v1/x"))
            .header("x-test-owner", owner);
        if forwarded {
            req = req.header(FORWARDED_BY, "z/9");
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 503, "{method} {owner} {forwarded}");
        assert!(r.headers().get(SERVED_BY).is_none());
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "owned_elsewhere");
    }

    // A body over the limit is refused before anything runs.
    let r = http
        .post(format!("{front}/api/v1/orders"))
        .header("x-test-owner", "b/1")
        .body(Bytes::from(vec![b'x'; 4096]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}
