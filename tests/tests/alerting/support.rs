//! The app under test over a store the test owns, alerting set to short
//! timings, and the polling every check waits with.
//!
//! The store is provisioned by the test and only borrowed here, so a second
//! server can be started over the same database after the first one stopped
//! (what a restart is).

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ordermon::RunningApp;
use ordermon::config::{AlertingSettings, Config, ServiceUrl};
use ordermon_application::VenueMode;
use ordermon_application::alerting::RouteConfig;
use ordermon_domain::user::Role;
use ordermon_notify::ReceiverConfig;
use ordermon_tests::TestStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How long anything the pipeline should do is waited for.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// The route timings every test runs with (`group_wait`, `group_interval`).
pub(crate) const GROUP_WAIT: Duration = Duration::from_millis(100);
pub(crate) const GROUP_INTERVAL: Duration = Duration::from_secs(1);
/// Long enough that a notification the pipeline would still send after a
/// change has been sent: one `group_interval`, a retry and some slack.
pub(crate) const SETTLE: Duration = Duration::from_millis(1500);

/// A receiver's settings from their JSON form (as in `[alerting.receivers.*]`).
pub(crate) fn receiver(settings: Value) -> ReceiverConfig {
    serde_json::from_value(settings.clone())
        .unwrap_or_else(|e| panic!("bad receiver settings {settings}: {e}"))
}

/// A webhook receiver posting to `url`.
pub(crate) fn webhook(url: &str) -> ReceiverConfig {
    receiver(json!({"kind": "webhook", "url": url, "timeout": "2s"}))
}

/// A routing tree from its JSON form (as in `[alerting.route]`).
pub(crate) fn route(tree: Value) -> RouteConfig {
    serde_json::from_value(tree.clone()).unwrap_or_else(|e| panic!("bad route {tree}: {e}"))
}

/// Alerting with fast timings: every rule evaluated each 100 ms, groups sent
/// after 100 ms then each second, retries from 100 ms to 500 ms; `receivers`
/// configured and the first one the default route.
pub(crate) fn fast_alerting(a: &mut AlertingSettings, receivers: Vec<(&str, ReceiverConfig)>) {
    a.evaluation_interval = Duration::from_millis(100);
    a.route.receiver = receivers.first().map(|(name, _)| (*name).to_owned());
    a.route.group_wait = Some(GROUP_WAIT);
    a.route.group_interval = Some(GROUP_INTERVAL);
    a.delivery.min_backoff = Duration::from_millis(100);
    a.delivery.max_backoff = Duration::from_millis(500);
    for (name, r) in receivers {
        a.receivers.insert(name.to_owned(), r);
    }
}

/// Turns the always-firing watchdog off, for tests that count notifications
/// of other alerts.
pub(crate) fn without_watchdog(a: &mut AlertingSettings) {
    a.builtin
        .get_mut("watchdog")
        .expect("the watchdog is a built-in rule")
        .enabled = Some(false);
}

/// The configuration of a server over `store` (external venue, no demo
/// data, a fixed JWT secret), alerting set by `alerting`.
pub(crate) fn config(
    store: &TestStore,
    logs: &std::path::Path,
    alerting: impl FnOnce(&mut AlertingSettings),
) -> Config {
    let mut config = Config::default();
    config.database.url = ServiceUrl::new(store.url.clone().unwrap_or_else(|| "memory".to_owned()));
    config.auth.jwt_secret = Some("alerting-harness-secret-0123456789abcdef".to_owned().into());
    config.logs.dir = logs.to_path_buf();
    config.engine.venue = VenueMode::External;
    config.demo.instruments = false;
    config.auth.bootstrap_admin = Some("root".into());
    alerting(&mut config.alerting);
    config
}

/// A running server and an admin client of it.
pub(crate) struct Server {
    running: Option<RunningApp>,
    http: reqwest::Client,
    base: String,
    admin: String,
    logs: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

impl Server {
    /// Starts the app over `store` with alerting set by `alerting`.
    pub(crate) async fn start(
        store: &TestStore,
        alerting: impl FnOnce(&mut AlertingSettings),
    ) -> Self {
        ordermon_telemetry::test_subscriber();
        let logs = std::env::temp_dir().join(format!(
            "ordermon-alerting-logs-{}",
            uuid::Uuid::now_v7().simple()
        ));
        Self::start_with(config(store, &logs, alerting), logs).await
    }

    async fn start_with(config: Config, logs: PathBuf) -> Self {
        let app = ordermon::build(config).await.expect("the app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = app.spawn(listener).expect("the app serves");
        let admin = running
            .mint_token("root", Role::Admin, Duration::from_secs(3600))
            .expect("token");
        Self {
            base: running.base_url(),
            running: Some(running),
            http: reqwest::Client::new(),
            admin,
            logs,
        }
    }

    /// Stops the server gracefully (what it decided is stored first).
    pub(crate) async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }

    /// The admin's WebSocket stream URL.
    pub(crate) fn stream_url(&self) -> String {
        format!(
            "{}/api/v1/stream?token={}",
            self.base.replacen("http", "ws", 1),
            self.admin
        )
    }

    /// Calls the API as the admin.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET path` as the admin; fails unless it answers 200.
    pub(crate) async fn get(&self, path: &str) -> Value {
        let (s, b) = self.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {b}");
        b
    }

    /// `POST path` as the admin; fails unless it answers 2xx.
    pub(crate) async fn post(&self, path: &str, body: Option<Value>) -> Value {
        let (s, b) = self.call(Method::POST, path, body).await;
        assert!(s.is_success(), "POST {path}: {s} {b}");
        b
    }

    /// Sets the global kill switch (`halted` or `active`).
    pub(crate) async fn global_kill_switch(&self, state: &str) {
        self.post(
            "/api/v1/admin/kill-switch",
            Some(json!({"scope": "global", "state": state, "reason": "alerting suite"})),
        )
        .await;
    }

    /// Creates trader `id` and halts its trading (`user_kill_switch_engaged`).
    pub(crate) async fn halted_trader(&self, id: &str) {
        self.post(
            "/api/v1/users",
            Some(json!({"id": id, "name": id, "status": "active", "role": "trader"})),
        )
        .await;
        self.post(
            "/api/v1/admin/kill-switch",
            Some(json!({"scope": "user", "user_id": id, "state": "halted", "reason": "alerting suite"})),
        )
        .await;
    }

    /// The alert of `rule` in `state`, if listed.
    pub(crate) async fn alert(&self, rule: &str, state: &str) -> Option<Value> {
        let page = self
            .get(&format!("/api/v1/alerts?rule={rule}&state={state}"))
            .await;
        page["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|a| a["rule"] == rule && a["state"] == state)
                .cloned()
        })
    }

    /// Waits for the alert of `rule` in `state`.
    pub(crate) async fn wait_alert(&self, rule: &str, state: &str) -> Value {
        eventually_async(&format!("a {state} {rule} alert"), WAIT, || {
            self.alert(rule, state)
        })
        .await
    }

    /// Acknowledges an alert.
    pub(crate) async fn ack(&self, alert: &Value) -> Value {
        let id = alert["id"].as_str().expect("an alert id");
        self.post(&format!("/api/v1/alerts/{id}/ack"), None).await
    }

    /// `/status` → `components.alerting`.
    pub(crate) async fn alerting_status(&self) -> Value {
        self.get("/status").await["components"]["alerting"].clone()
    }

    /// Waits until `components.alerting.{field}` reaches `at_least`.
    pub(crate) async fn wait_counter(&self, field: &str, at_least: u64) -> Value {
        eventually_async(&format!("{field} >= {at_least}"), WAIT, || async {
            let s = self.alerting_status().await;
            (s[field].as_u64().unwrap_or(0) >= at_least).then_some(s)
        })
        .await
    }
}

/// Polls `probe` every 20 ms until it gives a value; fails naming `what`
/// after `timeout`.
pub(crate) async fn eventually_async<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually_async`] for a synchronous probe (a receiver's records).
pub(crate) async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    eventually_async(what, timeout, || std::future::ready(probe())).await
}
