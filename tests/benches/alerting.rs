//! Alerting latency and cost at scale: the real server (`ordermon::build`) on
//! SQLite (or another backend), 10,000 monitored users with funds and a
//! background order flow on the paper venue, every built-in rule evaluating
//! for all of them, and a webhook receiver on loopback.
//!
//! Measured:
//! - **condition → notification delivered**: a user's kill switch is engaged
//!   (the condition holds from that instant) and the time until the webhook
//!   receives the notification about that user's alert, for `triggers`
//!   users one after another, 100 ms apart;
//! - **evaluation cost**: the time the alerting worker spent evaluating rules
//!   (full evaluations every `alerting.evaluation_interval` and the
//!   event-driven ones), as a share of one core over the measured period;
//!   and the whole process's CPU for the same period;
//! - **same-run baselines**: a plain HTTP POST to the same receiver from the
//!   same process (the floor of any delivery), and the route's `group_wait`
//!   (the pipeline's designed floor).
//!
//! Run: `cargo bench -p ordermon-tests --bench alerting -- [users] [triggers] [backend]`
//! (defaults 10000, 200, sqlite; backends: memory, sqlite, postgres, mysql).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ordermon::config::{Config, ServiceUrl};
use ordermon_application::CreateUser;
use ordermon_domain::Decimal;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, UserId};
use ordermon_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use ordermon_domain::risk::TradingState;
use ordermon_domain::user::Role;
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_tests::receivers::HttpReceiver;
use ordermon_tests::{Backend, provision};

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

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
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

async fn status(http: &reqwest::Client, base: &str, token: &str) -> serde_json::Value {
    http.get(format!("{base}/status"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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
    rt.block_on(run(users, triggers, backend));
}

async fn run(users: usize, triggers: usize, backend: Backend) {
    let Some(store) = provision(backend).await else {
        eprintln!("{} unreachable; nothing measured", backend.name());
        return;
    };
    let receiver = HttpReceiver::start().await;
    let logs =
        std::env::temp_dir().join(format!("ordermon-bench-{}", uuid::Uuid::now_v7().simple()));
    let mut config = Config::default();
    config.database.url = ServiceUrl::new(store.url.clone().unwrap_or_else(|| "memory".to_owned()));
    config.auth.jwt_secret = Some("bench-secret-0123456789abcdef0123456789".to_owned().into());
    config.logs.dir = logs.clone();
    let hook = receiver.url("/hook");
    let alerting: ordermon::config::AlertingSettings = toml::from_str(&format!(
        "[route]\nreceiver = \"ops\"\n[receivers.ops]\nkind = \"webhook\"\nurl = \"{hook}\"\n"
    ))
    .unwrap();
    config.alerting.route = alerting.route;
    config.alerting.receivers = alerting.receivers;
    let group_wait = ordermon_application::alerting::route::DEFAULT_GROUP_WAIT;
    let evaluation = config.alerting.evaluation_interval;
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

    // 10,000 funded, monitored users.
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
                    .create_user(CreateUser {
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
        "seeded {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for _ in 0..600 {
        let s = status(&http, &base, &admin).await;
        let monitors = s["monitors"].as_u64().unwrap_or(0);
        if s["components"]["alerting"]["ready"] == true && monitors as usize >= users {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Background flow: 200 limit orders a second over the users (they rest or
    // fill on the paper venue), so their series are live while we measure.
    let stop = Arc::new(AtomicBool::new(false));
    let flow = {
        let engine = engine.clone();
        let ids = ids.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let instrument = InstrumentId::new("ACME.SIM").unwrap();
            let mut n = 0usize;
            let mut every = tokio::time::interval(Duration::from_millis(5));
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                n += 1;
                let user = &ids[(n * 7919) % ids.len()];
                let order = NewOrder {
                    client_order_id: ClientOrderId::new(format!("bg-{n}")).unwrap(),
                    user_id: user.clone(),
                    strategy_id: None,
                    instrument_id: instrument.clone(),
                    side: if n % 2 == 0 { Side::Buy } else { Side::Sell },
                    order_type: OrderType::Limit,
                    quantity: Quantity::new(d("1")).unwrap(),
                    price: Some(
                        Price::new(d(if n % 2 == 0 { "90.00" } else { "110.00" })).unwrap(),
                    ),
                    trigger_price: None,
                    time_in_force: TimeInForce::Gtc,
                    expire_at: None,
                    reduce_only: false,
                    post_only: false,
                };
                let _ = engine.submit(order).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_secs(10)).await;

    // Same-run baseline: a plain POST to the receiver.
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
    plain.sort();

    // The measured period.
    let s0 = status(&http, &base, &admin).await;
    let eval0 = s0["components"]["alerting"]["evaluation_seconds_total"]
        .as_f64()
        .unwrap_or(0.0);
    let (cpu0, wall0) = (cpu_secs(), Instant::now());
    let mut fired = Vec::with_capacity(triggers);
    for i in 0..triggers {
        let user = ids[(i * 104_729) % ids.len()].clone();
        let t0 = Instant::now();
        engine
            .kill_switch(
                Some(&user),
                TradingState::Halted,
                "bench".to_owned(),
                "bench".to_owned(),
            )
            .await
            .unwrap();
        fired.push((user, t0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait for the notifications (each user is its own group).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut latencies = Vec::new();
    let mut missing = 0;
    loop {
        let got = receiver.received();
        latencies.clear();
        missing = 0;
        for (user, t0) in &fired {
            let hit = got.iter().find(|r| {
                r.path == "/hook"
                    && r.json["alerts"].as_array().is_some_and(|a| {
                        a.iter().any(|x| {
                            x["labels"]["rule"] == "user_kill_switch_engaged"
                                && x["labels"]["user_id"] == user.as_str()
                                && x["status"] == "firing"
                        })
                    })
            });
            match hit {
                Some(r) => latencies.push(r.at.saturating_duration_since(*t0)),
                None => missing += 1,
            }
        }
        if missing == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let s1 = status(&http, &base, &admin).await;
    let eval1 = s1["components"]["alerting"]["evaluation_seconds_total"]
        .as_f64()
        .unwrap_or(0.0);
    stop.store(true, Ordering::Relaxed);
    let orders = flow.await.unwrap_or(0);
    latencies.sort();
    let a = &s1["components"]["alerting"];

    println!("\n## alerting at {users} users ({})\n", backend.name());
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| triggers (user kill switch engaged) | {triggers} |");
    println!(
        "| notifications matched / missing | {} / {missing} |",
        latencies.len()
    );
    println!(
        "| condition → delivered p50 / p99 / max (ms) | {} / {} / {} |",
        ms(pct(&latencies, 0.5)),
        ms(pct(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "| baseline: plain POST to the receiver p50 / p99 (ms) | {} / {} |",
        ms(pct(&plain, 0.5)),
        ms(pct(&plain, 0.99))
    );
    println!(
        "| baseline: route group_wait (ms) | {} |",
        group_wait.as_millis()
    );
    println!("| evaluation interval (ms) | {} |", evaluation.as_millis());
    println!(
        "| rule evaluation, share of one core | {:.1} % |",
        (eval1 - eval0) / wall * 100.0
    );
    println!(
        "| full evaluation of every rule: last / slowest (ms) | {} / {} |",
        a["last_evaluation_ms"], a["max_evaluation_ms"]
    );
    println!(
        "| process CPU over the period (all of the server, flow included) | {:.0} % of one core |",
        cpu / wall * 100.0
    );
    println!("| background orders sent | {orders} |");
    println!("| unresolved alerts at the end | {} |", a["active_alerts"]);
    println!("| events lagged | {} |", a["events_lagged"]);
    println!("| RSS (MB) | {:.0} |", rss_mb());
    running.stop().await.unwrap();
    drop(store);
    let _ = std::fs::remove_dir_all(logs);
}
