//! The dashboard's files as the server sends them (types, security headers,
//! revalidation, unknown files), the stream's quote frames the dashboard asks
//! for, and the strategy figures it shows. What the page does in a browser is
//! `tests/browser.rs`.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ordermon_tests::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::spawn;

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let app = spawn(Backend::Memory, |_| {})
        .await
        .expect("memory needs nothing");
    let http = &app.http;
    let page = http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<script type=\"module\" src=\"/ui/js/main.js\">"),
        "{html}"
    );

    // Every file the page and its modules name is there, with its type.
    let mut files = vec!["app.css".to_owned(), "js/main.js".to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(f) = files.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let r = http
            .get(format!("{}/ui/{f}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "/ui/{f}");
        let ty = r.headers()["content-type"].to_str().unwrap().to_owned();
        let body = r.text().await.unwrap();
        if f.ends_with(".js") {
            assert_eq!(ty, "text/javascript; charset=utf-8", "{f}");
            let dir = f.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            for spec in body
                .lines()
                .filter(|l| l.starts_with("import "))
                .filter_map(|l| l.split('"').nth(1))
            {
                let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => drop(parts.pop()),
                        s => parts.push(s),
                    }
                }
                files.push(parts.join("/"));
            }
        } else {
            assert_eq!(ty, "text/css; charset=utf-8", "{f}");
        }
    }
    assert!(seen.len() >= 10, "the page's modules: {seen:?}");

    // Revalidation: the ETag answers 304 with no body.
    let r = http
        .get(format!("{}/ui/js/main.js", app.base))
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let again = http
        .get(format!("{}/ui/js/main.js", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.text().await.unwrap().is_empty());

    // Unknown files and paths are problems, not the page.
    for path in ["/ui/nope.js", "/ui/../Cargo.toml", "/ui/js/../../secret"] {
        let r = http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
}

/// The next text frame that `keep` accepts, within `wait`.
async fn next_frame<S>(ws: &mut S, wait: Duration, keep: impl Fn(&Value) -> bool) -> Option<Value>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ws.next()).await.ok()??.ok()?;
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            if keep(&v) {
                return Some(v);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_sends_quotes_only_for_the_instruments_asked_for() {
    let app = spawn(Backend::Memory, |c| {
        c.demo.instruments = true;
        c.demo.users = false;
    })
    .await
    .expect("memory needs nothing");
    let token = app.trader("alice", "1000").await;
    let url = format!(
        "{}/api/v1/stream?token={token}",
        app.base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    // Nothing asked: no quotes, though the simulated feed quotes every 250 ms.
    let quote = |v: &Value| v["type"] == "quote";
    assert!(
        next_frame(&mut ws, Duration::from_millis(1200), quote)
            .await
            .is_none()
    );

    // Garbage and bad ids are ignored; the stream goes on.
    ws.send(Message::Text("not json".into())).await.unwrap();
    ws.send(Message::Text(
        json!({"quotes": ["bad id!", "ACME.SIM"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let q = next_frame(&mut ws, Duration::from_secs(5), quote)
        .await
        .expect("a quote of ACME.SIM");
    assert_eq!(q["instrument_id"], "ACME.SIM", "{q}");
    for key in ["bid", "ask", "mid", "bid_size", "ask_size"] {
        assert!(q[key].is_string(), "{key} is an exact decimal string: {q}");
    }
    // Only what was asked for, and at most one per instrument per 250 ms.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if let Some(q) = next_frame(&mut ws, Duration::from_millis(300), quote).await {
            assert_eq!(q["instrument_id"], "ACME.SIM", "{q}");
            n += 1;
        }
    }
    assert!((2..=10).contains(&n), "{n} quotes in 2 s");

    // An empty list stops them.
    ws.send(Message::Text(json!({"quotes": []}).to_string().into()))
        .await
        .unwrap();
    // One frame may already be on its way.
    drop(next_frame(&mut ws, Duration::from_millis(300), quote).await);
    assert!(
        next_frame(&mut ws, Duration::from_millis(1200), quote)
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn strategies_show_restarts_and_last_error() {
    let app = spawn(Backend::Memory, |_| {})
        .await
        .expect("memory needs nothing");
    app.instrument().await;
    let alice = app.trader("alice", "1000").await;
    let (s, b) = app
        .post(
            "/api/v1/strategies",
            &alice,
            json!({"id": "mr-1", "type": "mean_reversion", "name": "MR", "instruments": ["ACME.SIM"],
                   "params": {"window": 5, "threshold_pct": "0.01", "quantity": "1", "max_position": "1"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["restarts"], 0, "{b}");
    assert!(b["last_error"].is_null(), "{b}");
    let (s, list) = app.get("/api/v1/strategies", &alice).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"][0]["restarts"], 0, "{list}");
}
