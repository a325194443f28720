//! Scale benchmark of monitoring (not a CI test):
//! N active users × 2 strategies on M instruments, fed Q quotes per second by a
//! simulated feed. Reports quote-to-strategy-decision latency (p50/p99/max),
//! CPU time, resident memory and start-up time, beside a same-run baseline: the
//! latency of the raw quote broadcast to one plain subscriber.
//!
//! `cargo bench -p ordermon-application --bench monitor_scale -- [users] [instruments] [quotes_per_sec] [seconds] [burst] [lane_nice]`
//! (defaults 10000 100 1000 20 10, and `monitor.lane_nice`'s default; the
//! lanes take a nice value below the process's only with the privilege for
//! it, see `monitor.lane_nice`). Quotes are published `burst` at a time,
//! `quotes_per_sec / burst` times a second: 10 every 10 ms by default; a burst
//! of every instrument at once is what the simulated feed does (one step of
//! every walk per `interval_ms`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hdrhistogram::Histogram;
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::strategy::{
    Strategy, StrategyCommand, StrategyContext, StrategyFactory, StrategyRegistry,
};
use ordermon_application::{
    CreateUser, Engine, EngineConfig, FieldError, MonitorConfig, Monitoring, VenueMode,
};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::ports::SystemClock;
use ordermon_domain::strategy::{Strategy as StrategyConfig, StrategyStatus};
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_memory::MemoryStore;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

// The allocator `monitor-server` runs on, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Hist = Arc<Mutex<Histogram<u64>>>;

/// The decision latencies recorded on each thread, merged at the end: one
/// histogram shared by every lane would make the probes contend for its lock
/// and bounce its cache line between the cores, a cost of the measurement
/// rather than of monitoring.
#[derive(Debug, Default)]
struct Recorders(Mutex<Vec<Hist>>);

impl Recorders {
    fn record(&self, us: u64) {
        thread_local! {
            static MINE: std::cell::OnceCell<Hist> = const { std::cell::OnceCell::new() };
        }
        MINE.with(|cell| {
            let h = cell.get_or_init(|| {
                let h: Hist = Arc::new(Mutex::new(Histogram::new(3).unwrap()));
                self.0.lock().push(h.clone());
                h
            });
            let _ = h.lock().record(us);
        });
    }

    fn reset(&self) {
        for h in self.0.lock().iter() {
            h.lock().reset();
        }
    }

    /// What was recorded since the last take, merged; the recorders start
    /// again from nothing.
    fn take(&self) -> Histogram<u64> {
        let mut all = Histogram::new(3).unwrap();
        for h in self.0.lock().iter() {
            let mut h = h.lock();
            all.add(&*h).unwrap();
            h.reset();
        }
        all
    }
}

/// Records quote age (µs) when the strategy sees it: the decision point.
#[derive(Debug)]
struct Probe(Arc<Recorders>);

impl Strategy for Probe {
    fn on_quote(&mut self, _: &StrategyContext<'_>, q: &Quote) -> Vec<StrategyCommand> {
        let us = (Utc::now() - q.ts).num_microseconds().unwrap_or(0).max(0);
        self.0.record(u64::try_from(us).unwrap_or(0));
        Vec::new()
    }
    // Like the built-in quote strategies, it takes no timer callbacks.
    fn uses_timer(&self) -> bool {
        false
    }
    fn update_params(&mut self, _: &serde_json::Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

#[derive(Debug)]
struct ProbeFactory(Arc<Recorders>);

impl StrategyFactory for ProbeFactory {
    fn type_name(&self) -> &'static str {
        "probe"
    }
    fn description(&self) -> &'static str {
        "records quote-to-decision latency"
    }
    fn validate(&self, _: &serde_json::Value, _: &[InstrumentId]) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
    fn create(&self, _: &StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>> {
        Ok(Box::new(Probe(self.0.clone())))
    }
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The process's CPU time, to the nanosecond.
#[cfg(target_os = "linux")]
fn cpu_secs() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

#[cfg(not(target_os = "linux"))]
fn cpu_secs() -> f64 {
    // utime + stime from /proc/self/stat, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Whether the lane threads run at `nice` (read from /proc, Linux).
fn lane_nice_taken(nice: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    let mut lanes = 0;
    let mut at = 0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("ordermon-lane-") {
            continue;
        }
        lanes += 1;
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        if after
            .split_whitespace()
            .nth(16)
            .and_then(|v| v.parse::<i32>().ok())
            == Some(nice)
        {
            at += 1;
        }
    }
    lanes > 0 && at == lanes
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn main() {
    // The numbers among the arguments (cargo adds a `--bench` of its own).
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, default: u64| {
        args.get(i)
            .and_then(|v| u64::try_from(*v).ok())
            .unwrap_or(default)
    };
    let users = arg(0, 10_000);
    let instruments = arg(1, 100);
    let qps = arg(2, 1000);
    let secs = arg(3, 20);
    let burst = arg(4, 10).max(1);
    let lane_nice = args
        .get(5)
        .and_then(|v| i32::try_from(*v).ok())
        .unwrap_or(MonitorConfig::default().lane_nice);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(users, instruments, qps, secs, burst, lane_nice));
}

async fn run(users: u64, instruments: u64, qps: u64, secs: u64, burst: u64, lane_nice: i32) {
    let decisions = Arc::new(Recorders::default());
    let baseline: Hist = Arc::new(Mutex::new(Histogram::new(3).unwrap()));
    let mut registry = StrategyRegistry::with_builtins();
    registry.register(Arc::new(ProbeFactory(decisions.clone())));
    let store = Arc::new(MemoryStore::new());
    let book = Arc::new(QuoteBook::new(65_536));
    let cancel = CancellationToken::new();
    let engine = Engine::start_with_registry(
        Persistence::from_backend(store),
        book.clone(),
        Arc::new(SystemClock),
        EngineConfig {
            venue_mode: VenueMode::External,
            monitor: MonitorConfig {
                scan_interval: Duration::from_secs(2),
                lane_nice,
                ..MonitorConfig::default()
            },
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        cancel.child_token(),
        registry,
    )
    .await
    .unwrap();
    let usd = Currency::new("USD").unwrap();
    let ids: Vec<InstrumentId> = (0..instruments)
        .map(|i| InstrumentId::new(format!("I{i}.SIM")).unwrap())
        .collect();
    for id in &ids {
        engine
            .instruments
            .upsert(Instrument {
                id: id.clone(),
                quote_currency: usd.clone(),
                tick_size: Price::new(d("0.01")).unwrap(),
                lot_size: Quantity::new(d("1")).unwrap(),
                min_quantity: Quantity::new(d("1")).unwrap(),
                max_quantity: None,
                min_notional: None,
                multiplier: Decimal::ONE,
                version: 0,
            })
            .await
            .unwrap();
    }
    // Seed a quote per instrument so market orders can be priced.
    let publish = |book: &QuoteBook, id: &InstrumentId, mid: Decimal| {
        book.publish(Quote {
            instrument_id: id.clone(),
            bid: Price::new(mid - d("0.01")).unwrap(),
            ask: Price::new(mid + d("0.01")).unwrap(),
            bid_size: Quantity::new(d("1000")).unwrap(),
            ask_size: Quantity::new(d("1000")).unwrap(),
            ts: Utc::now(),
        });
    };
    for id in &ids {
        publish(&book, id, d("100"));
    }

    let rss_before = rss_mb();
    let setup = Instant::now();
    for u in 0..users {
        let user = UserId::new(format!("u{u}")).unwrap();
        engine
            .users
            .create(CreateUser {
                id: user.clone(),
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
                &user,
                Money::new(d("100000"), usd.clone()).unwrap(),
                "seed".into(),
            )
            .await
            .unwrap();
        let inst = |k: u64| ids[usize::try_from((u * 7 + k * 13) % instruments).unwrap()].clone();
        for (k, (kind, params)) in [
            ("probe", serde_json::json!({})),
            ("mean_reversion", serde_json::json!({"window": 20, "threshold_pct": "0.002", "quantity": "1", "max_position": "5"})),
        ]
        .into_iter()
        .enumerate()
        {
            let now = Utc::now();
            engine
                .strategies.create(StrategyConfig {
                    id: StrategyId::new(format!("u{u}-s{k}")).unwrap(),
                    user_id: user.clone(),
                    strategy_type: kind.to_owned(),
                    name: kind.to_owned(),
                    instruments: vec![inst(k as u64)],
                    params,
                    status: StrategyStatus::Enabled,
                    stats: Default::default(),
                    created_at: now,
                    updated_at: now,
                    version: 0,
                    sequence: 0,
                })
                .await
                .unwrap();
        }
    }
    let seeded = setup.elapsed();
    let rss_seeded = rss_mb();
    // Seeding went through each user's owner, which stays: counted here.
    let owners_seeded = engine.status().owners;
    // Start-up: from starting monitoring to every monitor running.
    // Its CPU time too: on a shared machine the wall time of a start-up
    // that takes a tenth of a second moves with whatever else runs.
    let started = Instant::now();
    let startup_cpu0 = cpu_secs();
    let monitoring = Monitoring::spawn(engine.clone(), &cancel);
    while engine.monitored_users() < usize::try_from(users).unwrap() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let startup = started.elapsed();
    let startup_cpu = cpu_secs() - startup_cpu0;
    let rss_running = rss_mb();
    let nice_taken = lane_nice_taken(lane_nice);
    // Every monitor runs once it is in the monitored set; its start's commit
    // may still be in flight. The first scan returns once all are committed:
    // the memory then is what the running monitors keep, before any quote.
    while monitoring.status().scans == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let committed = started.elapsed();
    let committed_cpu = cpu_secs() - startup_cpu0;
    let rss_committed = rss_mb();

    // Baseline: one plain subscriber's receive latency on the same broadcast.
    let mut rx = book.subscribe();
    let base = baseline.clone();
    let base_task = tokio::spawn(async move {
        while let Ok(q) = rx.recv().await {
            let us = (Utc::now() - q.ts).num_microseconds().unwrap_or(0).max(0);
            let _ = base.lock().record(u64::try_from(us).unwrap_or(0));
        }
    });

    decisions.reset();
    baseline.lock().reset();
    let mut base_total: Histogram<u64> = Histogram::new(3).unwrap();
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let mut mids: Vec<Decimal> = vec![d("100"); ids.len()];
    let per_tick = burst;
    let every_us = (burst * 1_000_000 / qps.max(1)).max(1);
    let mut tick = tokio::time::interval(Duration::from_micros(every_us));
    let mut sent = 0_u64;
    let mut n = 0_usize;
    // The run second by second: when a lane falls behind, and whether the
    // baseline did too.
    let mut total: Histogram<u64> = Histogram::new(3).unwrap();
    let mut seconds: Vec<(u64, u64)> = Vec::new();
    let mut next_second = Duration::from_secs(1);
    while t0.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        if t0.elapsed() >= next_second {
            next_second += Duration::from_secs(1);
            let second = decisions.take();
            total.add(&second).unwrap();
            let base = {
                let mut b = baseline.lock();
                let p99 = b.value_at_quantile(0.99);
                base_total.add(&*b).unwrap();
                b.reset();
                p99
            };
            seconds.push((second.value_at_quantile(0.99), base));
        }
        for _ in 0..per_tick {
            let i = n % ids.len();
            n = n.wrapping_add(7919);
            // A deterministic zig-zag walk so mean reversion trades sometimes.
            let step = if (sent / 3).is_multiple_of(2) {
                d("0.05")
            } else {
                d("-0.05")
            };
            mids[i] = (mids[i] + step).max(d("1"));
            publish(&book, &ids[i], mids[i]);
            sent += 1;
        }
    }
    // Let the last quotes drain.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let status = monitoring.status();
    base_task.abort();
    // A scan alone (reconciling every user and strategy with the store),
    // with no quotes flowing: what each `scan_interval` costs.
    let mut scans: Vec<f64> = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        monitoring.scan().await.unwrap();
        scans.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    total.add(decisions.take()).unwrap();
    base_total.add(&*baseline.lock()).unwrap();
    let h = total;
    let b = base_total;
    cancel.cancel();

    println!(
        "monitor scale: {users} users x 2 strategies, {instruments} instruments, {qps} quotes/s ({burst} every {:.1} ms) for {secs} s",
        every_us as f64 / 1000.0
    );
    println!("  lanes' nice value asked: {lane_nice} (taken: {nice_taken})");
    println!("  seeding users+strategies: {:.2} s", seeded.as_secs_f64());
    println!(
        "  start-up (all monitors running): {:.3} s, every start committed: {:.3} s",
        startup.as_secs_f64(),
        committed.as_secs_f64()
    );
    println!(
        "  start-up CPU: {startup_cpu:.2} s to all running, {committed_cpu:.2} s to every start committed ({:.1} us a monitor)",
        committed_cpu * 1e6 / users.max(1) as f64
    );
    println!("  quotes published: {sent} ({:.0}/s)", sent as f64 / wall);
    println!(
        "  strategy decisions observed: {} ({:.0}/s)",
        h.len(),
        h.len() as f64 / wall
    );
    println!(
        "  quote->decision latency: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    println!(
        "  baseline (raw broadcast to one subscriber): p50 {:.3} ms, p99 {:.3} ms",
        b.value_at_quantile(0.5) as f64 / 1000.0,
        b.value_at_quantile(0.99) as f64 / 1000.0
    );
    println!(
        "  p99 second by second, decisions / baseline (ms): {}",
        seconds
            .iter()
            .map(|(d, b)| format!("{:.1}/{:.1}", *d as f64 / 1000.0, *b as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  CPU: {cpu:.1} s over {wall:.1} s wall = {:.0}% of one core",
        cpu / wall * 100.0
    );
    println!(
        "  RSS: {rss_before:.0} MB before users, {rss_seeded:.0} MB seeded (the in-memory store's rows and log, and {owners_seeded} idle owners), {rss_running:.0} MB with monitors running, {rss_committed:.0} MB once every start committed, {:.0} MB at end",
        rss_mb()
    );
    println!(
        "  a scan alone: {} ms",
        scans
            .iter()
            .map(|ms| format!("{ms:.3}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "  quotes missed by lanes that fell behind: {}, lanes: {}, restarts: {}",
        status.dropped_quotes, status.lanes, status.restarts
    );
}
