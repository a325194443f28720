//! The composition root end to end: build the app from configuration, serve it
//! on port 0, trade through HTTP against the paper venue, shut down, restart on
//! the same SQLite file.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use ordermon::client::{self, Response};
use ordermon::config::{Config, ServiceUrl};
use ordermon::{RunningApp, build};
use ordermon_domain::user::Role;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(10);
const SECRET: &str = "test-secret-0123456789abcdef";

fn config(database_url: &str) -> Config {
    let mut c = Config::from_sources(
        None,
        [("ORDERMON_AUTH__JWT_SECRET".to_owned(), SECRET.to_owned())],
    )
    .unwrap();
    c.database.url = ServiceUrl::new(database_url);
    c.feed.interval_ms = 20;
    c.shutdown.timeout = Duration::from_secs(5);
    c
}

async fn start(config: Config) -> RunningApp {
    ordermon_telemetry::test_subscriber();
    let app = build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    app.spawn(listener).unwrap()
}

struct Api<'a> {
    app: &'a RunningApp,
}

impl Api<'_> {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let url = format!("{}{path}", self.app.base_url());
        let Response { status, body } =
            client::send(method, &url, Some(token), body.as_deref(), TIMEOUT)
                .await
                .unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ordermon-bins-{name}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_app_serves_health_metrics_and_demo_instruments() {
    let app = start(config("memory")).await;
    let live = client::get(&format!("{}/health/live", app.base_url()), None, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(live.status, 200, "{}", live.body);
    // The feed publishes at once, so readiness (store + market data) follows quickly.
    let mut ready = None;
    for _ in 0..50 {
        let r = client::get(&format!("{}/health/ready", app.base_url()), None, TIMEOUT)
            .await
            .unwrap();
        if r.status == 200 {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = ready.expect("ready within 2.5 s");
    assert!(ready.body.contains("market_data"), "{}", ready.body);
    let metrics = client::get(&format!("{}/metrics", app.base_url()), None, TIMEOUT)
        .await
        .unwrap();
    assert!(
        metrics.body.contains("ordermon_build_info"),
        "{}",
        metrics.body
    );

    let admin = app
        .mint_token("admin", Role::Admin, Duration::from_secs(60))
        .unwrap();
    let api = Api { app: &app };
    let (status, instruments) = api.call("GET", "/api/v1/instruments", &admin, None).await;
    assert_eq!(status, 200, "{instruments}");
    let text = instruments.to_string();
    for id in ["ACME.SIM", "AAPL.XNAS", "0700.HKEX", "BTCUSDT.BINANCE"] {
        assert!(text.contains(id), "{id} missing from {text}");
    }
    let (status, quote) = api
        .call("GET", "/api/v1/quotes/0700.HKEX", &admin, None)
        .await;
    assert_eq!(status, 200, "{quote}");
    let (status, report) = api.call("GET", "/status", &admin, None).await;
    assert_eq!(status, 200, "{report}");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_app_trades_on_paper_and_keeps_state_across_restarts() {
    let dir = temp_dir("sqlite");
    let url = format!("sqlite://{}/ordermon.db", dir.join("data").display());
    let app = start(config(&url)).await;
    let admin = app
        .mint_token("admin", Role::Admin, Duration::from_secs(60))
        .unwrap();
    let alice = app
        .mint_token("alice", Role::Trader, Duration::from_secs(60))
        .unwrap();
    let api = Api { app: &app };
    let (s, body) = api
        .call(
            "POST",
            "/api/v1/users",
            &admin,
            Some(json!({"id": "alice", "name": "Alice"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = api
        .call(
            "POST",
            "/api/v1/users/alice/cash",
            &admin,
            Some(json!({"currency": "USD", "amount": "100000", "reason": "initial deposit"})),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {body}");
    // A marketable limit buy fills against the simulated quote at once.
    let (s, order) = api
        .call(
            "POST",
            "/api/v1/orders",
            &alice,
            Some(json!({"client_order_id": "c-1", "instrument_id": "ACME.SIM", "side": "buy",
                        "type": "limit", "quantity": "10", "price": "150.00", "time_in_force": "gtc"})),
        )
        .await;
    assert_eq!(s, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let mut status = order["status"].as_str().unwrap_or_default().to_owned();
    for _ in 0..50 {
        if status == "filled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, o) = api
            .call("GET", &format!("/api/v1/orders/{id}"), &alice, None)
            .await;
        status = o["status"].as_str().unwrap_or_default().to_owned();
    }
    assert_eq!(status, "filled");
    app.stop().await.unwrap();

    // Same file, new process state: the order and the position are still there.
    let app = start(config(&url)).await;
    let api = Api { app: &app };
    let (s, o) = api
        .call("GET", &format!("/api/v1/orders/{id}"), &alice, None)
        .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["status"], "filled");
    let (s, positions) = api.call("GET", "/api/v1/positions", &alice, None).await;
    assert_eq!(s, 200, "{positions}");
    assert!(positions.to_string().contains("ACME.SIM"), "{positions}");
    app.stop().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn unsupported_backends_are_refused_by_name() {
    let mut c = config("memory");
    c.cache.url = ServiceUrl::new("memcached://:pw@localhost:11211");
    let e = format!("{:#}", build(c).await.unwrap_err());
    assert!(e.contains("cache.url"), "{e}");
    assert!(!e.contains(":pw@"), "{e}");

    let mut c = config("memory");
    c.bus.url = ServiceUrl::new("nats://user:pw@localhost:4222");
    let e = format!("{:#}", build(c).await.unwrap_err());
    assert!(e.contains("bus.url"), "{e}");
    assert!(!e.contains(":pw@"), "{e}");
}

#[tokio::test]
async fn an_unreachable_broker_is_named_without_its_password() {
    let mut c = config("memory");
    // Nothing listens on port 1.
    c.bus.url = ServiceUrl::new("amqp://guest:secretpw@127.0.0.1:1/%2f");
    c.bus.connect_timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let e = format!("{:#}", build(c).await.unwrap_err());
    assert!(e.contains("rabbitmq"), "{e}");
    assert!(!e.contains("secretpw"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up too late"
    );
}

/// Reads from `stream` until it closes (`true`) or `within` passes (`false`).
async fn closes_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_cut_off_and_connections_are_capped() {
    use tokio::io::AsyncWriteExt;
    let mut c = config("memory");
    c.http.header_read_timeout = Duration::from_secs(1);
    c.http.max_connections = 2;
    let app = start(c).await;
    let addr = app.base_url().trim_start_matches("http://").to_owned();

    // Slowloris: a header byte every 200 ms never completes a request; the
    // connection is closed once the header-read timeout passes.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(5) {
        if slow.write_all(b"X").await.is_err() {
            cut = true;
            break;
        }
        if closes_within(&mut slow, Duration::from_millis(200)).await {
            cut = true;
            break;
        }
    }
    assert!(cut, "a slow-header client kept its connection for 5 s");

    // Two idle connections take both slots: a third client's request waits
    // until one of them is cut off, then it is answered.
    let mut idle_a = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut idle_b = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let early = tokio::time::timeout(Duration::from_millis(500), async {
        use tokio::io::AsyncReadExt;
        third.read_buf(&mut answer).await
    })
    .await;
    assert!(
        early.is_err(),
        "answered beyond the connection cap: {answer:?}"
    );
    assert!(closes_within(&mut idle_a, Duration::from_secs(3)).await);
    assert!(closes_within(&mut idle_b, Duration::from_secs(3)).await);
    let answered = tokio::time::timeout(Duration::from_secs(3), async {
        use tokio::io::AsyncReadExt;
        third.read_to_end(&mut answer).await
    })
    .await;
    assert!(answered.is_ok(), "never answered");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    app.stop().await.unwrap();
}
