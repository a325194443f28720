//! `backfill bars` as a process against a local server speaking Binance's
//! klines format: killed half way (SIGKILL), run again, and the bars table
//! holds every bar of the window once — no gap, no duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use chrono::{DateTime, TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::BarInterval;
use ordermon_domain::ports::BarRepository as _;
use ordermon_tests::{Backend, provision};
use serde_json::{Value, json};

/// Minutes of history the exchange holds, from [`start`].
const MINUTES: i64 = 3_000;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().unwrap()
}

#[derive(Default)]
struct Klines {
    requests: AtomicU32,
}

/// `GET /api/v3/klines`: up to `limit` one-minute bars from `startTime`,
/// answered slowly so that the test can kill the backfill between pages.
async fn klines(
    State(k): State<Arc<Klines>>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    k.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let from: i64 = q["startTime"].parse().unwrap();
    let to: i64 = q.get("endTime").map_or(i64::MAX, |t| t.parse().unwrap());
    let limit: usize = q.get("limit").map_or(500, |l| l.parse().unwrap());
    let first = start().timestamp_millis();
    let last = first + MINUTES * 60_000;
    let mut t = from.max(first);
    // Align to the minute, as the exchange does.
    t = first + (t - first + 59_999) / 60_000 * 60_000;
    let mut rows = Vec::new();
    while t < last && t <= to && rows.len() < limit {
        let price = format!("{}.50000000", 60_000 + (t / 60_000) % 500);
        rows.push(json!([
            t,
            price,
            price,
            price,
            price,
            "1.25000000",
            t + 59_999,
            "75000.00000000",
            12,
            "0.6",
            "37000.0",
            "0"
        ]));
        t += 60_000;
    }
    axum::Json(Value::Array(rows))
}

async fn exchange() -> (String, Arc<Klines>) {
    let k = Arc::new(Klines::default());
    let app = Router::new()
        .route("/api/v3/klines", get(klines))
        .with_state(k.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), k)
}

fn bars_command(db: &str, dir: &std::path::Path, exchange: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backfill"));
    c.args([
        "bars",
        "--provider",
        "binance",
        "--instrument",
        "BTCUSDT.BINANCE",
        "--interval",
        "1m",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-03T02:00:00Z",
        "--checkpoint",
    ])
    .arg(dir.join("bars.checkpoint.json"))
    .env("ORDERMON_DATABASE__URL", db)
    .env("ORDERMON_LOGS__DIR", dir)
    .env("ORDERMON_MARKET_DATA__BINANCE__KIND", "binance")
    .env("ORDERMON_MARKET_DATA__BINANCE__BASE_URL", exchange)
    .env_remove("ORDERMON_CONFIG");
    c
}

async fn killed_half_way_and_resumed(backend: Backend) {
    let Some(store) = provision(backend).await else {
        return;
    };
    let db = store.url.clone().unwrap();
    let dir = std::env::temp_dir().join(format!("ordermon-bars-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let checkpoint = dir.join("bars.checkpoint.json");
    let (url, k) = exchange().await;

    // First run: killed once a page is stored.
    let mut child = bars_command(&db, &dir, &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !checkpoint.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no page stored within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    let written_first = saved["written"].as_u64().unwrap();
    assert!(
        (1..MINUTES as u64).contains(&written_first),
        "killed half way: {saved}"
    );
    let requests_first = k.requests.load(Ordering::SeqCst);

    // Second run: resumes and completes.
    let out = bars_command(&db, &dir, &url).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("resumed at"), "{stdout}");
    assert!(
        !checkpoint.exists(),
        "a finished job removes its checkpoint"
    );
    // It did not start over: three pages in all, at most one asked twice.
    let requests_second = k.requests.load(Ordering::SeqCst) - requests_first;
    assert!(requests_second <= 3, "{requests_second} requests to resume");

    // Every minute once, in order, with the exchange's prices.
    let sql = store.sql.clone().unwrap();
    let btc = InstrumentId::new("BTCUSDT.BINANCE").unwrap();
    let mut got = Vec::new();
    let mut from = start();
    let end = start() + chrono::Duration::days(3);
    loop {
        let page = sql
            .bars(&btc, BarInterval::M1, from, end, 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        from = last.open_time + chrono::Duration::minutes(1);
        got.extend(page);
    }
    assert_eq!(got.len(), MINUTES as usize, "no gap, no duplicate");
    for (i, bar) in got.iter().enumerate() {
        let t = start() + chrono::Duration::minutes(i as i64);
        assert_eq!(bar.open_time, t);
        let expected = format!("{}.5", 60_000 + (t.timestamp_millis() / 60_000) % 500);
        assert_eq!(bar.close.get().to_string(), expected);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_resume_after_kill_9_sqlite() {
    killed_half_way_and_resumed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_resume_after_kill_9_postgres() {
    killed_half_way_and_resumed(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_arguments_fail_clearly_and_change_nothing() {
    let dir = std::env::temp_dir().join(format!("ordermon-bars-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("t.db").display());
    for (args, needle) in [
        (
            vec![
                "--provider",
                "nope",
                "--instrument",
                "BTCUSDT.BINANCE",
                "--from",
                "2026-11-01",
            ],
            "no market data provider `nope`",
        ),
        (
            vec![
                "--provider",
                "binance",
                "--instrument",
                "BTCUSDT",
                "--from",
                "2026-11-01",
            ],
            "--instrument",
        ),
        (
            vec![
                "--provider",
                "binance",
                "--instrument",
                "BTCUSDT.BINANCE",
                "--interval",
                "7m",
                "--from",
                "2026-11-01",
            ],
            "--interval",
        ),
        (
            vec![
                "--provider",
                "binance",
                "--instrument",
                "BTCUSDT.BINANCE",
                "--from",
                "soon",
            ],
            "--from",
        ),
        (
            vec![
                "--provider",
                "binance",
                "--instrument",
                "BTCUSDT.BINANCE",
                "--from",
                "2026-11-02",
                "--to",
                "2026-11-01",
            ],
            "before --to",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_backfill"))
            .arg("bars")
            .args(&args)
            .env("ORDERMON_DATABASE__URL", &db)
            .env("ORDERMON_LOGS__DIR", &dir)
            .env_remove("ORDERMON_CONFIG")
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!dir.join("t.db").exists(), "nothing was created");
    let _ = std::fs::remove_dir_all(&dir);
}
