//! Messaging benchmark: events per second from commit to consumer, and the
//! end-to-end latency (commit → outbox relay → broker with publisher confirms →
//! consumer framework → handler), per bus, with the in-process bus as the
//! same-run baseline.
//!
//! Each bus gets two runs over a fresh in-memory store:
//! - saturation: `ORDERMON_BENCH_EVENTS` events (default 50,000) committed as
//!   fast as the store takes them, in commits of 100 events for 50 users; the
//!   rate is events handled ÷ time from the first commit to the last handled;
//! - paced: the same number of events offered at `ORDERMON_BENCH_RATE` events/s
//!   (default 5,000), to show latency below saturation.
//!
//! Latency is measured per event from its `occurred_at` (set just before its
//! commit) to the moment the handler sees it; p50 / p99 / max in milliseconds.
//!
//! Run: `cargo bench -p ordermon-tests --bench messaging`
//! (`ORDERMON_BENCH_BUSES=memory,rabbitmq,kafka,redis` picks buses; broker
//! addresses as for the tests). Without `--bench` (as `cargo test` runs benches)
//! it only runs a short smoke pass on the in-process bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use hdrhistogram::Histogram;
use ordermon_application::consume::{Consumer, ConsumerConfig, EventHandler, HandlerError};
use ordermon_application::relay::{OutboxRelay, RelayConfig};
use ordermon_domain::event::{DomainEvent, EventPayload, MonitorEvent};
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{ChangeSet, Store, SystemClock};
use ordermon_memory::MemoryStore;
use ordermon_tests::bus::{BusKind, BusOptions, TestBus, provision_bus};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const COMMIT: u64 = 100;
const USERS: u64 = 50;

/// Records each event's commit-to-handler latency.
#[derive(Debug)]
struct Recorder {
    latency_us: Mutex<Histogram<u64>>,
    handled: AtomicU64,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()),
            handled: AtomicU64::new(0),
        })
    }

    fn reset(&self) {
        self.latency_us.lock().reset();
        self.handled.store(0, Ordering::SeqCst);
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &DomainEvent) -> Result<(), HandlerError> {
        let us = (Utc::now() - event.occurred_at)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .max(1);
        let _ = self
            .latency_us
            .lock()
            .record(u64::try_from(us).unwrap_or(u64::MAX));
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// What one run measured.
#[derive(Debug)]
struct Outcome {
    events: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn events(from: u64, n: u64) -> Vec<DomainEvent> {
    (from..from + n)
        .map(|i| {
            let user = format!("user{}", i % USERS);
            DomainEvent::new(
                user.clone(),
                i / USERS + 1,
                Some(UserId::new(user).unwrap()),
                Utc::now(),
                None,
                EventPayload::Monitor(MonitorEvent::Stopped {
                    reason: i.to_string(),
                }),
            )
        })
        .collect()
}

/// Commits `n` events (from `first`), paced at `rate` events/s if given.
async fn commit_all(
    store: &MemoryStore,
    relay: &ordermon_application::relay::RelayHandle,
    first: u64,
    n: u64,
    rate: Option<u64>,
) {
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(done as f64 / rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
        let k = COMMIT.min(n - done);
        let mut batch = ChangeSet::default();
        batch.push_events(events(first + done, k)).unwrap();
        store.commit(batch).await.unwrap();
        relay.wake();
        done += k;
    }
}

async fn wait_handled(recorder: &Recorder, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while recorder.handled.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "not every event arrived in time");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Commit → relay → bus → consumer for one bus; returns (saturation, paced).
async fn measure(t: &TestBus, n: u64, rate: u64) -> (Outcome, Outcome) {
    let store = Arc::new(MemoryStore::new());
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let relay = OutboxRelay::new(
        store.clone(),
        t.bus.clone(),
        Arc::new(SystemClock),
        RelayConfig {
            batch: 1000,
            poll_interval: Duration::from_millis(5),
            ..RelayConfig::default()
        },
    )
    .spawn(&tracker, cancel.clone());
    let recorder = Recorder::new();
    let mut config = ConsumerConfig::new(t.group("bench"), ["#"]);
    config.prefetch = 1000;
    config.recent_ids = 200_000;
    let consumer =
        Consumer::new(t.bus.clone(), recorder.clone(), config).spawn(&tracker, cancel.clone());
    while !consumer.status().running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Warm-up (connections, a Kafka group join), not measured.
    commit_all(&store, &relay, 0, 1000, None).await;
    wait_handled(&recorder, 1000, Duration::from_secs(120)).await;

    let mut next = 1000;
    let mut runs = Vec::new();
    for pace in [None, Some(rate)] {
        recorder.reset();
        let started = Instant::now();
        commit_all(&store, &relay, next, n, pace).await;
        wait_handled(&recorder, n, Duration::from_secs(600)).await;
        let seconds = started.elapsed().as_secs_f64();
        next += n;
        let h = recorder.latency_us.lock();
        runs.push(Outcome {
            events: n,
            seconds,
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        });
    }
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    let paced = runs.pop().unwrap();
    let saturation = runs.pop().unwrap();
    (saturation, paced)
}

/// The same-run baseline: the bus alone, without ordermon's outbox, relay or
/// consumer framework — `n` messages of the same size published with
/// `bus.publish` in batches of 1,000 (confirms on), then drained by a plain
/// subscription that acks each. Returns (published/s, consumed/s).
async fn raw_bus(t: &TestBus, n: u64) -> (f64, f64) {
    let mut sub = t
        .bus
        .subscribe(ordermon_domain::ports::SubscriptionSpec {
            group: t.group("raw"),
            topics: vec!["#".to_owned()],
            max_attempts: 5,
            prefetch: 1000,
        })
        .await
        .unwrap();
    let messages: Vec<ordermon_domain::ports::BusMessage> = events(0, n)
        .iter()
        .map(|e| {
            let m = ordermon_domain::ports::OutboxMessage::for_event(e).unwrap();
            ordermon_domain::ports::BusMessage {
                id: m.event_id,
                topic: m.topic,
                key: m.key,
                payload: m.payload.into_bytes(),
                headers: std::collections::BTreeMap::new(),
            }
        })
        .collect();
    let started = Instant::now();
    for chunk in messages.chunks(1000) {
        t.bus.publish(chunk).await.unwrap();
    }
    let published = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..n {
        let d = sub.next().await.unwrap().unwrap();
        sub.ack(&d).await.unwrap();
    }
    let consumed = n as f64 / started.elapsed().as_secs_f64();
    (published, consumed)
}

fn kinds() -> Vec<BusKind> {
    let wanted = std::env::var("ORDERMON_BENCH_BUSES")
        .unwrap_or_else(|_| "memory,rabbitmq,kafka,redis".to_owned());
    BusKind::ALL
        .into_iter()
        .filter(|k| wanted.split(',').any(|w| w.trim() == k.name()))
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (n, rate, kinds) = if bench {
        (
            env_u64("ORDERMON_BENCH_EVENTS", 50_000),
            env_u64("ORDERMON_BENCH_RATE", 5_000),
            kinds(),
        )
    } else {
        (500, 5_000, vec![BusKind::Memory])
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("messaging: {n} events per run, paced run at {rate} events/s");
        println!(
            "| bus | saturation events/s | p50 ms | p99 ms | max ms | paced events/s | p50 ms | p99 ms | max ms | raw bus publish msgs/s | raw bus consume msgs/s | saturation ÷ raw publish |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for kind in kinds {
            let Some(t) = provision_bus(kind, BusOptions::default()).await else {
                continue;
            };
            let (s, p) = measure(&t, n, rate).await;
            let (raw_pub, raw_con) = raw_bus(&t, n).await;
            println!(
                "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} |",
                kind.name(),
                s.events as f64 / s.seconds,
                s.p50_ms,
                s.p99_ms,
                s.max_ms,
                p.events as f64 / p.seconds,
                p.p50_ms,
                p.p99_ms,
                p.max_ms,
                raw_pub,
                raw_con,
                (s.events as f64 / s.seconds) / raw_pub,
            );
        }
    });
}
