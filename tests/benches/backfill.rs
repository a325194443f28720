//! Backfill import benchmark: generates a file of N fills (and the file of the
//! orders they belong to), imports both into a fresh PostgreSQL database with
//! `backfill`'s import, and reports rows per second — beside a same-run
//! baseline: PostgreSQL `COPY` of the same fill file into a plain table.
//!
//! Run: `cargo bench -p ordermon-tests --bench backfill`
//! (`ORDERMON_BENCH_FILLS` sets N, default 1,000,000; `ORDERMON_BENCH_USERS`
//! the users, default 1,000; `ORDERMON_BENCH_BATCH` the import's batch size;
//! the PostgreSQL server URL as for the tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ordermon::backfill::import::{
    DEFAULT_BATCH, ImportContext, ImportKind, ImportOptions, ImportSummary, file_size, import,
};
use ordermon::backfill::progress::{Mode, Progress, Unit};
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::{CreateUser, Engine, EngineConfig, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{InstrumentId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::ports::SystemClock;
use ordermon_domain::risk::RiskParams;
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_tests::{Backend, TestStore, provision};
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

const FILLS_PER_ORDER: usize = 5;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn persistence(t: &TestStore) -> Persistence {
    t.persistence()
}

/// Users with cash, and the instrument, created through the engine.
async fn reference_data(p: Persistence, users: usize) {
    let engine = Engine::start(
        p,
        Arc::new(QuoteBook::new(1024)),
        Arc::new(SystemClock),
        EngineConfig {
            venue_mode: VenueMode::External,
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let usd = Currency::new("USD").unwrap();
    engine
        .instruments
        .upsert(Instrument {
            id: InstrumentId::new("ACME.SIM").unwrap(),
            quote_currency: usd.clone(),
            tick_size: Price::new(Decimal::new(1, 2)).unwrap(),
            lot_size: Quantity::new(Decimal::ONE).unwrap(),
            min_quantity: Quantity::new(Decimal::ONE).unwrap(),
            max_quantity: None,
            min_notional: None,
            multiplier: Decimal::ONE,
            version: 0,
        })
        .await
        .unwrap();
    for u in 0..users {
        let id = UserId::new(format!("u{u}")).unwrap();
        engine
            .users
            .create(CreateUser {
                id: id.clone(),
                name: format!("user {u}"),
                status: Default::default(),
                role: Default::default(),
                account_type: Default::default(),
                limits: Default::default(),
            })
            .await
            .unwrap();
        engine
            .accounts
            .adjust_cash(
                &id,
                Money::new(Decimal::from(10_000_000), usd.clone()).unwrap(),
                "bench".into(),
            )
            .await
            .unwrap();
    }
    engine.shutdown().await;
}

/// Writes `orders.csv` and `fills.csv`: order `i` belongs to user `i % users`,
/// buys or sells 50 at 100.00, and fills in five trades of 10 a minute apart.
fn generate(dir: &Path, fills: usize, users: usize) {
    let orders = fills.div_ceil(FILLS_PER_ORDER);
    let base = chrono::DateTime::parse_from_rfc3339("2025-01-02T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let ts = |s: usize| {
        (base + chrono::Duration::seconds(s as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut o = std::io::BufWriter::new(std::fs::File::create(dir.join("orders.csv")).unwrap());
    writeln!(o, "user_id,client_order_id,instrument_id,side,type,quantity,price,time_in_force,status,created_at").unwrap();
    for i in 0..orders {
        let side = if (i / users).is_multiple_of(2) {
            "buy"
        } else {
            "sell"
        };
        writeln!(
            o,
            "u{},o{i},ACME.SIM,{side},limit,50,100.00,gtc,filled,{}",
            i % users,
            ts(i)
        )
        .unwrap();
    }
    o.flush().unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("fills.csv")).unwrap());
    writeln!(
        f,
        "user_id,client_order_id,trade_id,quantity,price,commission,liquidity_side,ts_event"
    )
    .unwrap();
    for n in 0..fills {
        let (i, k) = (n / FILLS_PER_ORDER, n % FILLS_PER_ORDER);
        let px = 99.95 + 0.02 * k as f64;
        writeln!(
            f,
            "u{},o{i},t{k},10,{px:.2},0.10,taker,{}",
            i % users,
            ts(i + 60 * (k + 1))
        )
        .unwrap();
    }
    f.flush().unwrap();
}

async fn run(kind: ImportKind, file: &Path, ctx: &ImportContext, batch: usize) -> ImportSummary {
    let progress = Progress::new(
        format!("backfill {}", kind.as_str()),
        file_size(file),
        Unit::Bytes,
        Mode::Auto,
    );
    let opts = ImportOptions {
        batch_size: batch,
        ..ImportOptions::default()
    };
    let s = import(kind, file, &opts, ctx, &progress).await.unwrap();
    let _ = progress.finish();
    s
}

/// `COPY … FROM STDIN (FORMAT csv)` of the fill file into a plain table; rows per second.
async fn copy_baseline(t: &TestStore, file: &Path, rows: usize) -> f64 {
    t.operator_sql(
        "CREATE TABLE bench_copy (user_id TEXT, client_order_id TEXT, trade_id TEXT, \
         quantity NUMERIC, price NUMERIC, commission NUMERIC, liquidity_side TEXT, \
         ts_event TIMESTAMPTZ)",
    )
    .await;
    let mut c = sqlx::PgConnection::connect(t.url.as_deref().unwrap())
        .await
        .unwrap();
    let bytes = std::fs::read(file).unwrap();
    let start = Instant::now();
    let mut copy = c
        .copy_in_raw("COPY bench_copy FROM STDIN (FORMAT csv, HEADER true)")
        .await
        .unwrap();
    for chunk in bytes.chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    let n = copy.finish().await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n as usize, rows);
    rows as f64 / secs
}

/// The most recent event position.
async fn last_position(t: &TestStore) -> i64 {
    let mut c = sqlx::PgConnection::connect(t.url.as_deref().unwrap())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

/// An upper bound on what any importer can reach on this database: the
/// server copies the event rows and fill rows the fill import wrote (events
/// after `after`) into empty tables with the same columns, constraints and
/// indexes — `INSERT … SELECT`, in one transaction, so nothing is sent,
/// parsed or checked by a client, and the orders, positions and accounts the
/// import also updates are left out. Returns (events, seconds).
async fn ingest_bound(t: &TestStore, after: i64) -> (i64, f64) {
    let mut c = sqlx::PgConnection::connect(t.url.as_deref().unwrap())
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE bound_events (LIKE events INCLUDING ALL)",
        "CREATE TABLE bound_fills (LIKE fills INCLUDING ALL)",
        "CHECKPOINT",
    ] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    let start = Instant::now();
    let mut tx = c.begin().await.unwrap();
    let events = sqlx::query("INSERT INTO bound_events SELECT * FROM events WHERE position > $1")
        .bind(after)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    sqlx::query("INSERT INTO bound_fills SELECT * FROM fills")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (events as i64, start.elapsed().as_secs_f64())
}

/// What the import wrote, per fill: the tables' sizes on disk.
async fn table_sizes(t: &TestStore, fills: usize) {
    let mut c = sqlx::PgConnection::connect(t.url.as_deref().unwrap())
        .await
        .unwrap();
    let mut parts = Vec::new();
    for table in [
        "events",
        "outbox",
        "fills",
        "orders",
        "positions",
        "accounts",
    ] {
        let bytes: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT pg_total_relation_size('{table}')"
        )))
        .fetch_one(&mut c)
        .await
        .unwrap();
        parts.push(format!(
            "{table} {:.0} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        ));
        if table == "events" {
            let avg: Option<f64> = sqlx::query_scalar(
                "SELECT avg(octet_length(data))::float8 FROM events WHERE event_type <> 'order.initialized'",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            parts.push(format!("(avg event JSON {:.0} B)", avg.unwrap_or(0.0)));
        }
    }
    println!(
        "database after import ({fills} fills): {}",
        parts.join(", ")
    );
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fills = env("ORDERMON_BENCH_FILLS", 1_000_000);
    let users = env("ORDERMON_BENCH_USERS", 1_000);
    let batch = env("ORDERMON_BENCH_BATCH", DEFAULT_BATCH);
    let Some(t) = provision(Backend::Postgres).await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "ordermon-bench-backfill-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    generate(&dir, fills, users);
    let size = file_size(&dir.join("fills.csv")).unwrap_or(0);
    println!(
        "generated {fills} fills of {} orders for {users} users ({:.0} MiB) in {:.1} s",
        fills.div_ceil(FILLS_PER_ORDER),
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    let p = persistence(&t);
    let started = Instant::now();
    reference_data(p.clone(), users).await;
    println!(
        "created {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ctx = ImportContext::new(p, RiskParams::default());

    let orders = run(ImportKind::Orders, &dir.join("orders.csv"), &ctx, batch).await;
    println!("{orders}");
    let rss_before = peak_rss_mib();
    let logged = last_position(&t).await;
    let imported = run(ImportKind::Fills, &dir.join("fills.csv"), &ctx, batch).await;
    println!("{imported}");
    assert_eq!(imported.written as usize, fills);
    let rss_after = peak_rss_mib();
    table_sizes(&t, fills).await;
    let copy = copy_baseline(&t, &dir.join("fills.csv"), fills).await;
    println!("baseline: COPY of the same {fills} rows into a plain table: {copy:.0} rows/s");
    println!(
        "ratio import/COPY: {:.3} (import {:.0} rows/s, batch {batch})",
        imported.rows_per_second() / copy,
        imported.rows_per_second()
    );
    let (events, secs) = ingest_bound(&t, logged).await;
    let bound = fills as f64 / secs;
    println!(
        "bound: the server copying the fill import's {events} event rows and {fills} fill rows \
         into identical empty tables (INSERT … SELECT): {secs:.1} s, {bound:.0} fills/s; \
         import/bound = {:.2}",
        imported.rows_per_second() / bound
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!("peak RSS: {before:.0} MiB after the orders, {after:.0} MiB after the fills");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
