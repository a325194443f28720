//! Two `monitor-server` instances over one PostgreSQL database and one broker,
//! as SPEC §8 deploys them: a WebSocket client connected to either instance
//! sees every event of its user (the stream fans out from the bus), and a read
//! on one instance never keeps showing what a write on the other changed —
//! through Redis's invalidations when the cache is shared, and through the
//! bus's events when each instance only has its in-process cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use ordermon::RunningApp;
use ordermon::config::{Config, ServiceUrl};
use ordermon_application::VenueMode;
use ordermon_domain::user::Role;
use ordermon_tests::bus::{BusKind, BusOptions, TestBus, provision_bus, redis_url};
use ordermon_tests::{Backend, TestStore, provision};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "instances-secret-0123456789abcdef0123";

struct Pair {
    a: RunningApp,
    b: RunningApp,
    http: reqwest::Client,
    _store: TestStore,
    _bus: TestBus,
    logs: std::path::PathBuf,
}

fn config(
    store: &TestStore,
    bus: &TestBus,
    name: &str,
    cache: &str,
    logs: &std::path::Path,
) -> Config {
    let mut c = Config::default();
    c.database.url = ServiceUrl::new(store.url.clone().unwrap());
    c.bus.url = ServiceUrl::new(bus.server_url());
    c.bus.topic = bus.server_topic();
    // Groups named through the test bus are removed with it.
    c.bus.instance = bus
        .group(name)
        .strip_prefix("instance-")
        .unwrap()
        .to_owned();
    c.bus.relay_poll_interval = Duration::from_millis(50);
    c.cache.url = ServiceUrl::new(cache);
    c.auth.jwt_secret = Some(SECRET.to_owned().into());
    c.logs.dir = logs.to_path_buf();
    c.engine.venue = VenueMode::External;
    c.demo.instruments = false;
    c.auth.bootstrap_admin = Some("root".into());
    c.shutdown.timeout = Duration::from_secs(5);
    // Instruments created on one instance reach the other's catalog by the scan.
    c.monitor.scan_interval = Duration::from_millis(200);
    c
}

async fn serve(config: Config) -> RunningApp {
    ordermon_telemetry::test_subscriber();
    let app = ordermon::build(config).await.expect("the app builds");
    app.spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap()
}

/// Instances `a` and `b`, both allowed to relay the shared outbox: they
/// compete for its lease and one relays at a time.
async fn pair(kind: BusKind, cache: &str) -> Option<Pair> {
    let store = provision(Backend::Postgres).await?;
    let bus = provision_bus(kind, BusOptions::default()).await?;
    let logs = std::env::temp_dir().join(format!(
        "ordermon-instances-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let a = serve(config(&store, &bus, "instance-a", cache, &logs)).await;
    let b = serve(config(&store, &bus, "instance-b", cache, &logs)).await;
    Some(Pair {
        a,
        b,
        http: reqwest::Client::new(),
        _store: store,
        _bus: bus,
        logs,
    })
}

impl Pair {
    fn token(&self, sub: &str, role: Role) -> String {
        self.a
            .mint_token(sub, role, Duration::from_secs(3600))
            .unwrap()
    }

    async fn call(
        &self,
        on: &RunningApp,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", on.base_url()))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Alice, funded, and an instrument, created through `on`. Without
    /// cluster ownership each instance runs its own owner of alice, loaded
    /// when it first sees her; orders go through the instance that funded her.
    async fn setup(&self, on: &RunningApp) -> String {
        let admin = self.token("root", Role::Admin);
        let (s, b) = self.call(on, reqwest::Method::POST, "/api/v1/instruments", &admin,
            Some(json!({"id": "ACME.SIM", "quote_currency": "USD", "tick_size": "0.01", "lot_size": "1", "min_quantity": "1"}))).await;
        assert!(s < 300, "{b}");
        let (s, b) = self
            .call(
                on,
                reqwest::Method::POST,
                "/api/v1/users",
                &admin,
                Some(json!({"id": "alice", "name": "Alice"})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = self
            .call(
                on,
                reqwest::Method::POST,
                "/api/v1/users/alice/cash",
                &admin,
                Some(json!({"currency": "USD", "amount": "10000", "reason": "initial"})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        self.token("alice", Role::Trader)
    }

    async fn submit(&self, on: &RunningApp, alice: &str, cid: &str) -> Value {
        let (s, order) = self
            .call(
                on,
                reqwest::Method::POST,
                "/api/v1/orders",
                alice,
                Some(
                    json!({"client_order_id": cid, "instrument_id": "ACME.SIM", "side": "buy",
                "type": "limit", "quantity": "1", "price": "10.00", "time_in_force": "gtc"}),
                ),
            )
            .await;
        assert_eq!(s, 201, "{order}");
        order
    }

    async fn stop(self) {
        self.b.stop().await.unwrap();
        self.a.stop().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

async fn streams_fan_out_across_instances(kind: BusKind) {
    let Some(p) = pair(kind, "memory").await else {
        return;
    };
    let alice = p.setup(&p.a).await;
    let ws_url = format!(
        "{}/api/v1/stream?token={alice}",
        p.b.base_url().replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    // Submitted on `a`; watched on `b`.
    let order = p.submit(&p.a, &alice, "fan-1").await;
    let id = order["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.iter().any(|t: &String| t == "order.submitted") {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{}: only {seen:?} arrived on b", kind.name()))
            .unwrap()
            .unwrap();
        if let Message::Text(t) = frame {
            let e: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(e["user_id"], "alice", "only alice's events: {e}");
            if e["aggregate_id"] == id.as_str() {
                seen.push(e["event_type"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("order.initialized"));
    drop(ws);
    p.stop().await;
}

async fn reads_follow_writes_across_instances(kind: BusKind, cache: &str, within: Duration) {
    let Some(p) = pair(kind, cache).await else {
        return;
    };
    let alice = p.setup(&p.a).await;
    let order = p.submit(&p.a, &alice, "inv-1").await;
    let id = order["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orders/{id}");
    // `b` reads the order twice, so it is cached there.
    for _ in 0..2 {
        let (s, o) = p
            .call(&p.b, reqwest::Method::GET, &path, &alice, None)
            .await;
        assert_eq!(s, 200, "{o}");
        assert_eq!(o["status"], "submitted", "{o}");
    }
    // The venue gateway acknowledges it through `a`.
    let gateway = p.token("root", Role::Admin);
    let report = json!({"order_id": id, "user_id": "alice", "type": "accepted",
        "ts_event": chrono::Utc::now()});
    let (s, o) = p
        .call(
            &p.a,
            reqwest::Method::POST,
            "/api/v1/executions",
            &gateway,
            Some(report),
        )
        .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["status"], "accepted", "{o}");
    let acked_at = Instant::now();
    loop {
        let (s, o) = p
            .call(&p.b, reqwest::Method::GET, &path, &alice, None)
            .await;
        assert_eq!(s, 200, "{o}");
        if o["status"] == "accepted" {
            break;
        }
        assert!(
            acked_at.elapsed() < within,
            "{} / cache {cache}: b still shows {} {:?} after the ack on a",
            kind.name(),
            o["status"],
            acked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "{} / cache {cache}: b saw the ack after {:?}",
        kind.name(),
        acked_at.elapsed()
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_streams_fan_out_across_instances() {
    streams_fan_out_across_instances(BusKind::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_fan_out_across_instances() {
    streams_fan_out_across_instances(BusKind::Redis).await;
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_streams_fan_out_across_instances() {
    streams_fan_out_across_instances(BusKind::Kafka).await;
}

/// In-process caches only: the bus's events evict `b`'s copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_caches_are_evicted_by_bus_events() {
    reads_follow_writes_across_instances(BusKind::RabbitMq, "memory", Duration::from_secs(5)).await;
}

/// Redis shared: its invalidation reaches `b` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_redis_cache_is_invalidated_across_instances() {
    reads_follow_writes_across_instances(BusKind::RabbitMq, &redis_url(), Duration::from_secs(2))
        .await;
}

impl Pair {
    async fn kill_switch(&self, on: &RunningApp, state: &str) -> Value {
        let admin = self.token("root", Role::Admin);
        let (s, body) = self
            .call(
                on,
                reqwest::Method::POST,
                "/api/v1/admin/kill-switch",
                &admin,
                Some(json!({"scope": "global", "state": state, "reason": "instances test"})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        body
    }

    async fn global_state(&self, on: &RunningApp) -> Value {
        let admin = self.token("root", Role::Admin);
        let (s, body) = self
            .call(on, reqwest::Method::GET, "/status", &admin, None)
            .await;
        assert_eq!(s, 200, "{body}");
        body["trading_state"].clone()
    }
}

/// The global kill switch engaged through `a` halts orders placed through `b`
/// within a second, and switches engaged on both at once never collide: the
/// last committed wins on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_reaches_every_instance() {
    let Some(p) = pair(BusKind::RabbitMq, "memory").await else {
        return;
    };
    let alice = p.setup(&p.b).await;
    let order = p.submit(&p.b, &alice, "before").await;
    assert_eq!(order["status"], "submitted", "{order}");

    p.kill_switch(&p.a, "halted").await;
    let engaged = Instant::now();
    let mut n = 0;
    let halted_after = loop {
        n += 1;
        let order = p.submit(&p.b, &alice, &format!("after-{n}")).await;
        if order["reason"] == "trading_halted" {
            break engaged.elapsed();
        }
        assert!(
            engaged.elapsed() < Duration::from_secs(1),
            "b still trades: {order}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(p.global_state(&p.b).await, "halted");

    // Both change it at once, b not yet knowing a's change: no collision.
    let (ra, rb) = tokio::join!(
        p.kill_switch(&p.a, "reducing"),
        p.kill_switch(&p.b, "active")
    );
    assert_eq!(
        (&ra["state"], &rb["state"]),
        (&json!("reducing"), &json!("active"))
    );
    // Both settle on one state, the last committed, within a second.
    let t0 = Instant::now();
    loop {
        let (sa, sb) = (p.global_state(&p.a).await, p.global_state(&p.b).await);
        if sa == sb {
            assert!(sa == "reducing" || sa == "active", "{sa}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "a says {sa}, b says {sb}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.kill_switch(&p.a, "active").await;
    let t0 = Instant::now();
    while p.global_state(&p.b).await != "active" {
        assert!(t0.elapsed() < Duration::from_secs(1), "b never resumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Alice's orders stay on b, whose owner holds her funds.
    let order = p.submit(&p.b, &alice, "resumed").await;
    assert_eq!(order["status"], "submitted", "{order}");
    eprintln!("orders through b halted {halted_after:?} after the switch on a");
    p.stop().await;
}
