//! Spawning the app over a provisioned backend, and a small HTTP client.

use std::time::Duration;

use ordermon::RunningApp;
use ordermon::config::{Config, ServiceUrl};
use ordermon_application::VenueMode;
use ordermon_domain::user::Role;
use ordermon_tests::{Backend, TestStore, provision};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) struct TestApp {
    pub(crate) running: Option<RunningApp>,
    pub(crate) store: TestStore,
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) admin: String,
    _logs: tempdir::Dir,
}

/// A temporary folder removed on drop (the logs of one test app).
pub(crate) mod tempdir {
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The app over a fresh backend, in external venue mode unless `tweak` says
/// otherwise; `None` when the backend's service is unreachable (and not required).
pub(crate) async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let store = provision(backend).await?;
    let logs = std::env::temp_dir().join(format!(
        "ordermon-http-logs-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let mut config = Config::default();
    config.database.url = ServiceUrl::new(store.url.clone().unwrap_or_else(|| "memory".to_owned()));
    config.auth.jwt_secret = Some(
        "harness-secret-0123456789abcdef0123456789"
            .to_owned()
            .into(),
    );
    config.logs.dir = logs.clone();
    config.engine.venue = VenueMode::External;
    config.demo.instruments = false;
    config.auth.bootstrap_admin = Some("root".into());
    tweak(&mut config);
    let app = ordermon::build(config).await.expect("the app builds");
    let running = app
        .spawn(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        )
        .expect("the app serves");
    let admin = running
        .mint_token("root", Role::Admin, Duration::from_secs(3600))
        .expect("token");
    let base = running.base_url();
    Some(TestApp {
        running: Some(running),
        store,
        http: reqwest::Client::new(),
        base,
        admin,
        _logs: tempdir::Dir(logs),
    })
}

impl TestApp {
    pub(crate) fn running(&self) -> &RunningApp {
        self.running.as_ref().expect("running")
    }

    pub(crate) fn token(&self, sub: &str, role: Role) -> String {
        self.running()
            .mint_token(sub, role, Duration::from_secs(3600))
            .expect("token")
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates the `ACME.SIM` instrument (USD, tick 0.01, lot 1).
    pub(crate) async fn instrument(&self) {
        let (s, b) = self
            .post(
                "/api/v1/instruments",
                &self.admin,
                json!({"id": "ACME.SIM", "quote_currency": "USD", "tick_size": "0.01", "lot_size": "1", "min_quantity": "1"}),
            )
            .await;
        assert!(s.is_success(), "instrument: {s} {b}");
    }

    /// Creates a funded trader and returns its token.
    pub(crate) async fn trader(&self, id: &str, cash: &str) -> String {
        let (s, b) = self
            .post(
                "/api/v1/users",
                &self.admin,
                json!({"id": id, "name": id, "status": "active", "role": "trader"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create user: {b}");
        let (s, b) = self
            .post(
                &format!("/api/v1/users/{id}/cash"),
                &self.admin,
                json!({"currency": "USD", "amount": cash, "reason": "initial deposit"}),
            )
            .await;
        assert!(s.is_success(), "cash: {s} {b}");
        self.token(id, Role::Trader)
    }

    /// Submits a limit order.
    pub(crate) async fn limit(
        &self,
        token: &str,
        cid: &str,
        side: &str,
        qty: &str,
        px: &str,
    ) -> (StatusCode, Value) {
        self.post(
            "/api/v1/orders",
            token,
            json!({"client_order_id": cid, "instrument_id": "ACME.SIM", "side": side, "type": "limit", "quantity": qty, "price": px, "time_in_force": "gtc"}),
        )
        .await
    }

    /// The USD balance of the caller.
    pub(crate) async fn usd(&self, token: &str) -> Value {
        let (s, b) = self.get("/api/v1/account", token).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["balances"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["currency"] == "USD").cloned())
            .unwrap_or(Value::Null)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }
}

/// An execution report body for `POST /api/v1/executions`.
pub(crate) fn report(order: &str, user: &str, kind: Value) -> Value {
    let mut v = json!({"order_id": order, "user_id": user, "ts_event": chrono::Utc::now()});
    if let (Some(o), Some(k)) = (v.as_object_mut(), kind.as_object()) {
        for (key, val) in k {
            o.insert(key.clone(), val.clone());
        }
    }
    v
}

pub(crate) fn fill(trade: &str, qty: &str, px: &str, fee: &str) -> Value {
    json!({"type": "fill", "trade_id": trade, "quantity": qty, "price": px,
           "commission": {"amount": fee, "currency": "USD"}, "liquidity_side": "taker"})
}

/// A decimal field of a JSON body, compared by value (`"0"` equals `"0.00"`).
pub(crate) fn num(v: &Value) -> rust_decimal::Decimal {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
}

/// `(total, reserved, free)` of a balance, by value.
pub(crate) fn tri(
    b: &Value,
) -> (
    rust_decimal::Decimal,
    rust_decimal::Decimal,
    rust_decimal::Decimal,
) {
    (num(&b["total"]), num(&b["reserved"]), num(&b["free"]))
}

pub(crate) fn dec(s: &str) -> rust_decimal::Decimal {
    s.parse().unwrap_or_else(|_| panic!("bad decimal {s}"))
}
