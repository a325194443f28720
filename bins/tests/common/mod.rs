//! What the process-level suites share: start `monitor-server` as a child
//! process on a free port, wait for readiness, mint tokens, call the API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod audit;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ordermon_domain::user::Role;
use serde_json::Value;

/// The JWT secret every child server is started with.
pub(crate) const SECRET: &str = "process-suite-secret-0123456789abcdef";

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `monitor-server` binary with the suites' environment (external venue,
/// no demo data, warnings only) plus `env`, running `args`.
pub(crate) fn command(
    db: &str,
    logs: &std::path::Path,
    port: u16,
    env: &[(&str, String)],
    args: &[&str],
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_monitor-server"));
    c.args(args)
        .env("ORDERMON_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("ORDERMON_DATABASE__URL", db)
        .env("ORDERMON_AUTH__JWT_SECRET", SECRET)
        .env("ORDERMON_ENGINE__VENUE", "external")
        .env("ORDERMON_DEMO__INSTRUMENTS", "false")
        .env("ORDERMON_AUTH__BOOTSTRAP_ADMIN", "root")
        .env("ORDERMON_LOGS__DIR", logs)
        .env("ORDERMON_LOGS__LEVEL", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// A child `monitor-server`, killed when dropped (so a failing test leaves
/// no server behind).
pub(crate) struct Server(Child);

impl Server {
    /// SIGTERM, then waits for the process to exit; how long that took and
    /// whether it exited successfully.
    pub(crate) fn terminate(&mut self) -> (Duration, bool) {
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM could not be sent");
        let status = self.0.wait().expect("wait");
        (started.elapsed(), status.success())
    }

    /// SIGKILL, and reap it: no shutdown hook runs.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    pub(crate) fn kill9(&mut self) {
        self.0.kill().expect("kill");
        self.0.wait().expect("wait");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already gone is fine.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `monitor-server serve` in the background.
/// The server's own log goes to `server-{port}.log` under `logs`, for a
/// failing test to be read.
pub(crate) fn serve(db: &str, logs: &std::path::Path, port: u16, env: &[(&str, String)]) -> Server {
    std::fs::create_dir_all(logs).expect("the logs directory");
    let log = std::fs::File::create(logs.join(format!("server-{port}.log")))
        .expect("the server's log file");
    Server(
        command(db, logs, port, env, &["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("monitor-server starts"),
    )
}

/// Waits until `/health/ready` answers 200 with the bus `ok`: the server's
/// consumer has subscribed, so what a test publishes from here on reaches it.
pub(crate) async fn ready(http: &reqwest::Client, base: &str) {
    let start = Instant::now();
    let mut last = Value::Null;
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
            let ok = r.status().is_success();
            last = r.json().await.unwrap_or(Value::Null);
            let bus = &last["components"]["bus"]["status"];
            if ok && (bus.is_null() || bus == "ok") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} not ready within 60 s: {last}");
}

/// A token signed with [`SECRET`].
pub(crate) fn token(sub: &str, role: Role) -> String {
    ordermon_http::mint_token(
        &ordermon_http::AuthConfig::new(SECRET.to_owned().into()),
        sub,
        role,
        Duration::from_secs(3600),
    )
    .unwrap()
}

/// Sends a request; the status and the JSON body (`Null` when not JSON).
pub(crate) async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A fresh folder for a child server's logs.
pub(crate) fn logs_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ordermon-{name}-{}", uuid::Uuid::now_v7().simple()))
}

/// Runs the built `backfill` against `db` with `args` (logs under `logs`).
pub(crate) fn backfill(db: &str, logs: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backfill"))
        .args(args)
        .env("ORDERMON_DATABASE__URL", db)
        .env("ORDERMON_LOGS__DIR", logs)
        .env_remove("ORDERMON_CONFIG")
        .output()
        .expect("backfill runs")
}

/// `backfill replay --verify` exits 0: the projections equal a replay of
/// the event log.
pub(crate) fn assert_replay_verifies(db: &str, logs: &std::path::Path) {
    let o = backfill(db, logs, &["replay", "--verify"]);
    assert!(
        o.status.success(),
        "backfill replay --verify: exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Lists `ACME.SIM` (USD, tick 0.01, lot 1) on the server at `base`.
pub(crate) async fn list_acme(http: &reqwest::Client, base: &str) {
    let (s, b) = call(
        http.post(format!("{base}/api/v1/instruments"))
            .bearer_auth(token("root", Role::Admin))
            .json(
                &serde_json::json!({"id": "ACME.SIM", "quote_currency": "USD",
                "tick_size": "0.01", "lot_size": "1", "min_quantity": "1"}),
            ),
    )
    .await;
    assert!(s < 300, "{b}");
}

/// Creates the trader `user` on the server at `base` with `usd` deposited.
pub(crate) async fn funded_user(http: &reqwest::Client, base: &str, user: &str, usd: &str) {
    let admin = token("root", Role::Admin);
    let (s, b) = call(
        http.post(format!("{base}/api/v1/users"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"id": user, "name": user})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        http.post(format!("{base}/api/v1/users/{user}/cash"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"currency": "USD", "amount": usd, "reason": "initial"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}
