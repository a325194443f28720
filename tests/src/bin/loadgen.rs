//! ordermon's load generator: drives a running `monitor-server` over HTTP and
//! reports throughput, latency percentiles and success rate per scenario.
//!
//! Scenarios, run in this order in one invocation so their figures share the
//! same machine state:
//! - `health`: `GET /health/live`, the trivial-endpoint baseline;
//! - `submit`: `POST /api/v1/orders` (limit buys that rest), spread over users;
//! - `read`: `GET /api/v1/orders/{id}` over orders created by `submit`.
//!
//! ```text
//! ordermon-loadgen --url http://127.0.0.1:8080 --secret-file data/jwt_secret \
//!     --concurrency 100 --duration 10 --users 50 --scenarios health,submit,read
//! ```
//!
//! It sets up its users as the admin `loadgen-admin`, which the server must
//! admit: start it with `ORDERMON_AUTH__BOOTSTRAP_ADMIN=loadgen-admin` (the
//! bench scripts do).

#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "ordermon-loadgen",
    about = "Load generator for the ordermon HTTP API"
)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's JWT secret (HS256), to mint tokens.
    #[arg(long, env = "ORDERMON_AUTH__JWT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// A file holding the secret (e.g. `data/jwt_secret`).
    #[arg(long)]
    secret_file: Option<std::path::PathBuf>,
    /// Concurrent connections (workers).
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Trading users to spread submissions over.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Instrument to trade (created when missing).
    #[arg(long, default_value = "LOAD.SIM")]
    instrument: String,
    /// Comma-separated scenarios.
    #[arg(long, default_value = "health,submit,read")]
    scenarios: String,
    /// Print one JSON object per scenario instead of text.
    #[arg(long)]
    json: bool,
    /// After setup, write one `user_id token` line per trader to this file
    /// (for an external load generator such as wrk).
    #[arg(long)]
    tokens_out: Option<std::path::PathBuf>,
    /// After setup, place this many resting limit buys per trader.
    #[arg(long, default_value_t = 0)]
    resting: usize,
    /// Write one `token order_id` line per resting order to this file.
    #[arg(long)]
    orders_out: Option<std::path::PathBuf>,
}

#[derive(Debug, serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    exp: u64,
    iat: u64,
}

fn token(secret: &str, sub: &str, role: &str) -> anyhow::Result<String> {
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let exp = iat + 24 * 3600;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &Claims {
            sub,
            role,
            exp,
            iat,
        },
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

struct Stats {
    hist: Mutex<Histogram<u64>>,
    statuses: Mutex<BTreeMap<u16, u64>>,
    errors: AtomicU64,
}

impl Stats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            hist: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            statuses: Mutex::new(BTreeMap::new()),
            errors: AtomicU64::new(0),
        })
    }

    fn record(&self, started: Instant, status: Option<u16>) {
        let us = u64::try_from(started.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self.hist.lock().record(us.min(60_000_000));
        match status {
            Some(s) => *self.statuses.lock().entry(s).or_default() += 1,
            None => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct Report {
    scenario: String,
    concurrency: usize,
    seconds: f64,
    requests: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    success_rate: f64,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
}

fn report(
    name: &str,
    concurrency: usize,
    wall: f64,
    stats: &Stats,
    ok: impl Fn(u16) -> bool,
) -> Report {
    let h = stats.hist.lock();
    let statuses = stats.statuses.lock().clone();
    let errors = stats.errors.load(Ordering::Relaxed);
    let total = h.len();
    let good: u64 = statuses
        .iter()
        .filter(|(s, _)| ok(**s))
        .map(|(_, n)| n)
        .sum();
    Report {
        scenario: name.to_owned(),
        concurrency,
        seconds: wall,
        requests: total,
        per_second: total as f64 / wall,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: h.max() as f64 / 1000.0,
        success_rate: if total == 0 {
            0.0
        } else {
            good as f64 / total as f64
        },
        statuses,
        transport_errors: errors,
    }
}

struct Ctx {
    http: reqwest::Client,
    url: String,
    admin: String,
    traders: Vec<(String, String)>,
    instrument: String,
    run: String,
    order_ids: Mutex<Vec<(usize, String)>>,
}

async fn setup(args: &Args, secret: &str) -> anyhow::Result<Ctx> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = args.url.trim_end_matches('/').to_owned();
    let admin = token(secret, "loadgen-admin", "admin")?;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let r = http
        .post(format!("{url}/api/v1/instruments"))
        .bearer_auth(&admin)
        .json(&json!({"id": args.instrument, "quote_currency": "USD", "tick_size": "0.01", "lot_size": "1", "min_quantity": "1"}))
        .send()
        .await
        .context("is the server running?")?;
    if !(r.status().is_success() || r.status().as_u16() == 409) {
        bail!(
            "creating the instrument failed: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    let mut traders = Vec::new();
    for i in 0..args.users.max(1) {
        let id = format!("lg{run}-{i}");
        let r = http
            .post(format!("{url}/api/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({"id": id, "name": id, "status": "active", "role": "trader"}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "creating user {id} failed: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let r = http
            .post(format!("{url}/api/v1/users/{id}/cash"))
            .bearer_auth(&admin)
            .json(&json!({"currency": "USD", "amount": "1000000000", "reason": "load test"}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "funding {id} failed: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        traders.push((id.clone(), token(secret, &id, "trader")?));
    }
    Ok(Ctx {
        http,
        url,
        admin,
        traders,
        instrument: args.instrument.clone(),
        run,
        order_ids: Mutex::new(Vec::new()),
    })
}

async fn scenario(
    ctx: &Arc<Ctx>,
    name: &str,
    concurrency: usize,
    secs: u64,
) -> anyhow::Result<Report> {
    let stats = Arc::new(Stats::new()?);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let reads: Arc<Vec<(usize, String)>> = Arc::new(ctx.order_ids.lock().clone());
    if name == "read" && reads.is_empty() {
        bail!("the read scenario needs orders: run submit first");
    }
    for w in 0..concurrency {
        let ctx = ctx.clone();
        let stats = stats.clone();
        let name = name.to_owned();
        let reads = reads.clone();
        tasks.push(tokio::spawn(async move {
            let mut n: usize = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let result = match name.as_str() {
                    "health" => {
                        ctx.http
                            .get(format!("{}/health/live", ctx.url))
                            .send()
                            .await
                    }
                    "submit" => {
                        let u = (w + n) % ctx.traders.len();
                        let (_, tok) = &ctx.traders[u];
                        let body = json!({
                            "client_order_id": format!("{}-{w}-{n}", ctx.run),
                            "instrument_id": ctx.instrument, "side": "buy", "type": "limit",
                            "quantity": "1", "price": "1.00", "time_in_force": "gtc"
                        });
                        let r = ctx
                            .http
                            .post(format!("{}/api/v1/orders", ctx.url))
                            .bearer_auth(tok)
                            .json(&body)
                            .send()
                            .await;
                        match r {
                            Ok(resp) if resp.status().as_u16() == 201 => {
                                let status = resp.status();
                                if n.is_multiple_of(4)
                                    && let Ok(v) = resp.json::<serde_json::Value>().await
                                    && let Some(id) = v.get("id").and_then(|i| i.as_str())
                                {
                                    ctx.order_ids.lock().push((u, id.to_owned()));
                                }
                                stats.record(t, Some(status.as_u16()));
                                n += 1;
                                continue;
                            }
                            other => other,
                        }
                    }
                    _ => {
                        let (u, id) = &reads[(w * 7919 + n) % reads.len()];
                        let (_, tok) = &ctx.traders[*u];
                        ctx.http
                            .get(format!("{}/api/v1/orders/{id}", ctx.url))
                            .bearer_auth(tok)
                            .send()
                            .await
                    }
                };
                match result {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        // Read the body so the connection is reused.
                        let _ = resp.bytes().await;
                        stats.record(t, Some(s));
                    }
                    Err(_) => stats.record(t, None),
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed().as_secs_f64();
    let ok: fn(u16) -> bool = match name {
        "submit" => |s| s == 201,
        _ => |s| s == 200,
    };
    Ok(report(name, concurrency, wall, &stats, ok))
}

/// Places `per_user` resting limit buys for every trader, `concurrency` at a
/// time; fails on the first refused order.
async fn place_resting(
    ctx: &Arc<Ctx>,
    per_user: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<(usize, String)>> {
    let total = per_user * ctx.traders.len();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.clamp(1, 64) {
        let ctx = ctx.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut placed = Vec::new();
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed))?;
                if i >= total {
                    return anyhow::Ok(placed);
                }
                let u = i % ctx.traders.len();
                let body = json!({
                    "client_order_id": format!("{}-rest-{i}", ctx.run),
                    "instrument_id": ctx.instrument, "side": "buy", "type": "limit",
                    "quantity": "1", "price": "1.00", "time_in_force": "gtc"
                });
                let r = ctx
                    .http
                    .post(format!("{}/api/v1/orders", ctx.url))
                    .bearer_auth(&ctx.traders[u].1)
                    .json(&body)
                    .send()
                    .await?;
                if r.status().as_u16() != 201 {
                    bail!(
                        "resting order refused: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
                let v: serde_json::Value = r.json().await?;
                let id = v
                    .get("id")
                    .and_then(|i| i.as_str())
                    .context("order without id")?;
                placed.push((u, id.to_owned()));
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secret = match (&args.secret, &args.secret_file) {
        (Some(s), _) => s.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim()
            .to_owned(),
        (None, None) => bail!("give --secret, --secret-file or ORDERMON_AUTH__JWT_SECRET"),
    };
    let ctx = Arc::new(setup(&args, &secret).await?);
    let _ = &ctx.admin;
    if let Some(path) = &args.tokens_out {
        let lines: String = ctx
            .traders
            .iter()
            .map(|(id, tok)| format!("{id} {tok}\n"))
            .collect();
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.resting > 0 {
        let placed = place_resting(&ctx, args.resting, args.concurrency).await?;
        if let Some(path) = &args.orders_out {
            let lines: String = placed
                .iter()
                .map(|(u, id)| format!("{} {id}\n", ctx.traders[*u].1))
                .collect();
            std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
        }
        eprintln!("placed {} resting orders", placed.len());
    }
    for name in args
        .scenarios
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !matches!(name, "health" | "submit" | "read") {
            bail!("unknown scenario {name}");
        }
        let r = scenario(&ctx, name, args.concurrency, args.duration).await?;
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{:<7} c={:<4} {:>8} req in {:>5.1} s = {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  ok {:>6.2}%  statuses {:?}  errors {}",
                r.scenario,
                r.concurrency,
                r.requests,
                r.seconds,
                r.per_second,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.success_rate * 100.0,
                r.statuses,
                r.transport_errors
            );
        }
    }
    Ok(())
}
