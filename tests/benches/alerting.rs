//! Alerting latency and cost at scale: the real server (`ordermon::build`) on
//! SQLite (or another backend), 10,000 monitored users with funds, a
//! background order flow acknowledged and filled by a gateway (external venue
//! mode: the bench answers with execution reports), every built-in rule
//! evaluating for every user, and a webhook receiver on loopback.
//!
//! Two phases run the same load in the same process: first with alerting
//! **off** (the same-run baseline for CPU), then **on**. In each, for the same
//! 45 s window:
//! - `triggers` users get their kill switch engaged, 100 ms apart: an
//!   event-driven condition that holds from that instant;
//! - `triggers / 2` other users get an order the venue never acknowledges: a
//!   time-driven condition (`stuck_order`) that holds 30 s after the submit.
//!
//! Measured with alerting on: for each condition, the time from the instant it
//! holds to the webhook receiving the notification about it; the time the
//! alerting worker spent evaluating rules; the process CPU against the
//! alerting-off phase. Same-run floors: a plain POST to the receiver, and the
//! route's `group_wait`.
//!
//! Run: `cargo bench -p ordermon-tests --bench alerting -- [users] [triggers] [backend]`
//! (defaults 10000, 200, sqlite; backends: memory, sqlite, postgres, mysql).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ordermon::config::{Config, ServiceUrl};
use ordermon_application::{CreateUser, Engine, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, TradeId, UserId};
use ordermon_domain::order::{NewOrder, OrderStatus, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind};
use ordermon_domain::risk::TradingState;
use ordermon_domain::user::Role;
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_tests::receivers::HttpReceiver;
use ordermon_tests::{Backend, provision};

/// The measured window of each phase.
const WINDOW: Duration = Duration::from_secs(45);
/// `stuck_order`'s default threshold.
const STUCK_AFTER: Duration = Duration::from_secs(30);

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn cpu_secs() -> f64 {
    // utime + stime from /proc/self/stat, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn order(user: &UserId, cid: String, side: Side, px: &str) -> NewOrder {
    NewOrder {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        user_id: user.clone(),
        strategy_id: None,
        instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
        side,
        order_type: OrderType::Limit,
        quantity: Quantity::new(d("1")).unwrap(),
        price: Some(Price::new(d(px)).unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    }
}

async fn report(
    engine: &Engine,
    user: &UserId,
    id: ordermon_domain::ids::OrderId,
    kind: ExecutionReportKind,
) {
    let _ = engine
        .orders
        .execution_report(ExecutionReport {
            order_id: id,
            user_id: user.clone(),
            kind,
            ts_event: chrono::Utc::now(),
        })
        .await;
}

struct Phase {
    cpu: f64,
    wall: f64,
    evaluation: f64,
    event_latency: Vec<Duration>,
    time_latency: Vec<Duration>,
    missing: usize,
    plain: Vec<Duration>,
    orders: usize,
    status: serde_json::Value,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let users: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let triggers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let backend = match args.get(2).map(String::as_str).unwrap_or("sqlite") {
        "memory" => Backend::Memory,
        "postgres" => Backend::Postgres,
        "mysql" => Backend::MySql,
        _ => Backend::Sqlite,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let off = rt.block_on(phase(users, triggers, backend, false));
    let on = rt.block_on(phase(users, triggers, backend, true));
    let (Some(off), Some(on)) = (off, on) else {
        eprintln!("{} unreachable; nothing measured", backend.name());
        return;
    };
    let mut ev = on.event_latency.clone();
    ev.sort();
    let mut tl = on.time_latency.clone();
    tl.sort();
    let mut plain = on.plain.clone();
    plain.sort();
    let a = &on.status["components"]["alerting"];
    println!("\n## alerting at {users} users ({})\n", backend.name());
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| event-driven: kill switch engaged → delivered, p50 / p99 / max (ms), {} conditions | {} / {} / {} |",
        ev.len(),
        ms(pct(&ev, 0.5)),
        ms(pct(&ev, 0.99)),
        ms(ev.last().copied().unwrap_or_default())
    );
    println!(
        "| time-driven: order unacknowledged 30 s → delivered, p50 / p99 / max (ms), {} conditions | {} / {} / {} |",
        tl.len(),
        ms(pct(&tl, 0.5)),
        ms(pct(&tl, 0.99)),
        ms(tl.last().copied().unwrap_or_default())
    );
    println!("| conditions without a notification | {} |", on.missing);
    println!(
        "| floor: plain POST to the receiver, p50 / p99 (ms) | {} / {} |",
        ms(pct(&plain, 0.5)),
        ms(pct(&plain, 0.99))
    );
    println!(
        "| floor: route group_wait (ms) | {} |",
        ordermon_application::alerting::route::DEFAULT_GROUP_WAIT.as_millis()
    );
    println!(
        "| rule evaluation (worker time), share of one core | {:.1} % |",
        on.evaluation / on.wall * 100.0
    );
    println!(
        "| full evaluation of every rule for every user: last / slowest (ms) | {} / {} |",
        a["last_evaluation_ms"], a["max_evaluation_ms"]
    );
    println!(
        "| process CPU, alerting off / on (% of one core) | {:.0} / {:.0} |",
        off.cpu / off.wall * 100.0,
        on.cpu / on.wall * 100.0
    );
    println!(
        "| orders sent by the background flow, off / on | {} / {} |",
        off.orders, on.orders
    );
    println!("| events lagged | {} |", a["events_lagged"]);
    println!("| notifications sent | {} |", a["notifications_sent"]);
}

async fn phase(users: usize, triggers: usize, backend: Backend, alerting: bool) -> Option<Phase> {
    let store = provision(backend).await?;
    let receiver = HttpReceiver::start().await;
    let logs =
        std::env::temp_dir().join(format!("ordermon-bench-{}", uuid::Uuid::now_v7().simple()));
    let mut config = Config::default();
    config.database.url = ServiceUrl::new(store.url.clone().unwrap_or_else(|| "memory".to_owned()));
    config.auth.jwt_secret = Some("bench-secret-0123456789abcdef0123456789".to_owned().into());
    config.logs.dir = logs.clone();
    config.engine.venue = VenueMode::External;
    config.auth.bootstrap_admin = Some("root".into());
    let hook = receiver.url("/hook");
    let settings: ordermon::config::AlertingSettings = toml::from_str(&format!(
        "[route]\nreceiver = \"ops\"\n[receivers.ops]\nkind = \"webhook\"\nurl = \"{hook}\"\n"
    ))
    .unwrap();
    config.alerting.route = settings.route;
    config.alerting.receivers = settings.receivers;
    config.alerting.enabled = alerting;
    // A hundred orders waiting at one venue would be `venue_down`, which
    // inhibits their `stuck_order` alerts: here each is measured on its own.
    if let Some(v) = config.alerting.builtin.get_mut("venue_down") {
        v.threshold = Some(d("100000"));
    }
    let app = ordermon::build(config).await.expect("the app builds");
    let running = app
        .spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let base = running.base_url();
    let admin = running
        .mint_token("root", Role::Admin, Duration::from_secs(3600))
        .unwrap();
    let http = reqwest::Client::new();
    let engine = running.engine().clone();
    let status = || async {
        http.get(format!("{base}/status"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };

    let started = Instant::now();
    let usd = Currency::new("USD").unwrap();
    let ids: Vec<UserId> = (0..users)
        .map(|i| UserId::new(format!("u{i:05}")).unwrap())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(users.div_ceil(16).max(1)) {
        let engine = engine.clone();
        let chunk = chunk.to_vec();
        let usd = usd.clone();
        tasks.spawn(async move {
            for id in chunk {
                engine
                    .users
                    .create(CreateUser {
                        id: id.clone(),
                        name: id.to_string(),
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
                        Money::new(d("100000"), usd.clone()).unwrap(),
                        "bench".to_owned(),
                    )
                    .await
                    .unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    eprintln!(
        "alerting {}: seeded {users} users in {:.1} s",
        if alerting { "on" } else { "off" },
        started.elapsed().as_secs_f64()
    );
    for _ in 0..600 {
        let s = status().await;
        let monitors = s["monitors"].as_u64().unwrap_or(0) as usize;
        let ready = !alerting || s["components"]["alerting"]["ready"] == true;
        if ready && monitors >= users {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Background flow: 200 limit orders a second, each acknowledged at once
    // and every other one filled, as a gateway would report them.
    let stop = Arc::new(AtomicBool::new(false));
    let flow = {
        let engine = engine.clone();
        let ids = ids.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            let mut every = tokio::time::interval(Duration::from_millis(5));
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                n += 1;
                let user = &ids[(n * 7919) % ids.len()];
                let side = if n.is_multiple_of(2) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let Ok(out) = engine
                    .orders
                    .submit(order(user, format!("bg-{n}"), side, "100.00"))
                    .await
                else {
                    continue;
                };
                if out.order.status != OrderStatus::Submitted {
                    continue;
                }
                report(
                    &engine,
                    user,
                    out.order.id,
                    ExecutionReportKind::Accepted {
                        venue_order_id: None,
                    },
                )
                .await;
                if n.is_multiple_of(2) {
                    let fill = ExecutionReportKind::Fill {
                        trade_id: TradeId::new(format!("t-{n}")).unwrap(),
                        quantity: Quantity::new(d("1")).unwrap(),
                        price: Price::new(d("100.00")).unwrap(),
                        commission: Money::new(d("0.01"), Currency::new("USD").unwrap()).unwrap(),
                        liquidity_side: ordermon_domain::fill::LiquiditySide::Taker,
                    };
                    report(&engine, user, out.order.id, fill).await;
                }
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_secs(10)).await;

    let mut plain = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        http.post(receiver.url("/baseline"))
            .body("{}")
            .send()
            .await
            .unwrap();
        plain.push(t.elapsed());
    }

    let s0 = status().await;
    let eval0 = s0["components"]["alerting"]["evaluation_seconds_total"]
        .as_f64()
        .unwrap_or(0.0);
    let (cpu0, wall0) = (cpu_secs(), Instant::now());
    // Time-driven conditions: orders nobody acknowledges (users from the
    // other end of the list), started first because they take 30 s to hold.
    let mut stuck = Vec::new();
    for i in 0..triggers / 2 {
        let user = ids[ids.len() - 1 - (i * 7) % (ids.len() / 2)].clone();
        let t0 = Instant::now();
        let out = engine
            .orders
            .submit(order(&user, format!("stuck-{i}"), Side::Buy, "50.00"))
            .await
            .unwrap();
        if out.order.status == OrderStatus::Submitted {
            stuck.push((user, t0 + STUCK_AFTER));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Event-driven conditions.
    let mut killed = Vec::new();
    for i in 0..triggers {
        let user = ids[(i * 104_729) % (ids.len() / 2)].clone();
        let t0 = Instant::now();
        engine
            .admin
            .kill_switch(
                Some(&user),
                TradingState::Halted,
                "bench".to_owned(),
                "bench".to_owned(),
            )
            .await
            .unwrap();
        killed.push((user, t0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = WINDOW.saturating_sub(wall0.elapsed());
    tokio::time::sleep(left).await;
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let s1 = status().await;
    let eval1 = s1["components"]["alerting"]["evaluation_seconds_total"]
        .as_f64()
        .unwrap_or(0.0);
    // Give the last notifications a moment, then match them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.received();
    let find = |rule: &str, user: &UserId| {
        got.iter()
            .find(|r| {
                r.path == "/hook"
                    && r.json["alerts"].as_array().is_some_and(|a| {
                        a.iter().any(|x| {
                            x["labels"]["rule"] == rule
                                && x["labels"]["user_id"] == user.as_str()
                                && x["status"] == "firing"
                        })
                    })
            })
            .map(|r| r.at)
    };
    let (mut event_latency, mut time_latency, mut missing) = (Vec::new(), Vec::new(), 0);
    if alerting {
        for (user, t0) in &killed {
            match find("user_kill_switch_engaged", user) {
                Some(at) => event_latency.push(at.saturating_duration_since(*t0)),
                None => missing += 1,
            }
        }
        for (user, t0) in &stuck {
            match find("stuck_order", user) {
                Some(at) => time_latency.push(at.saturating_duration_since(*t0)),
                None => missing += 1,
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let orders = flow.await.unwrap_or(0);
    running.stop().await.unwrap();
    drop(store);
    let _ = std::fs::remove_dir_all(logs);
    Some(Phase {
        cpu,
        wall,
        evaluation: eval1 - eval0,
        event_latency,
        time_latency,
        missing,
        plain,
        orders,
        status: s1,
    })
}
