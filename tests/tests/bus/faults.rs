//! Fault tests: the broker connections break in the middle of a stream of
//! 10,000 events going through the outbox relay and the consumer framework;
//! every event must arrive and none may have a double effect.
//!
//! [`Stream`] is the fixture: `broker_restart.rs` runs the same stream through
//! a whole broker restart.

use std::sync::Arc;
use std::time::Duration;

use ordermon_application::consume::{
    Consumer, ConsumerConfig, ConsumerHandle, MemoryProcessedEvents, ProcessedEvents,
};
use ordermon_application::relay::{OutboxRelay, RelayConfig, RelayHandle};
use ordermon_domain::ports::{ChangeSet, Outbox, Store, SystemClock};
use ordermon_memory::MemoryStore;
use ordermon_tests::bus::{BusKind, TestBus};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::{Effects, event, eventually};

const EVENTS: u64 = 10_000;
const USERS: u64 = 20;

/// How a stream is paced and retried.
pub(crate) struct Pace {
    /// Pause between two commits of 50 events.
    pub(crate) between_commits: Duration,
    /// The relay's retry backoff after a failed publish (min, max).
    pub(crate) relay_backoff: (Duration, Duration),
    /// How long late redeliveries are waited for at the end.
    pub(crate) settle: Duration,
}

/// 10,000 events of 20 users committed in batches of 50 while the outbox relay
/// publishes them and a consumer (deduplicating by event id) applies them.
pub(crate) struct Stream {
    group: String,
    store: Arc<MemoryStore>,
    pub(crate) effects: Arc<Effects>,
    processed: Arc<dyn ProcessedEvents>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    consumer_cancel: CancellationToken,
    consumer: ConsumerHandle,
    relay: RelayHandle,
    committer: JoinHandle<()>,
    settle: Duration,
}

fn start_consumer(
    t: &TestBus,
    group: &str,
    effects: &Arc<Effects>,
    processed: &Arc<dyn ProcessedEvents>,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> ConsumerHandle {
    let mut config = ConsumerConfig::new(group, ["#"]);
    config.max_attempts = 10;
    Consumer::new(t.bus.clone(), effects.clone(), config)
        .with_processed(processed.clone())
        .spawn(tracker, cancel.clone())
}

impl Stream {
    /// Starts the consumer (waiting until it runs), the relay and the commits.
    pub(crate) async fn start(t: &TestBus, name: &str, pace: Pace) -> Self {
        let group = t.group(name);
        let store = Arc::new(MemoryStore::new());
        let effects = Effects::new();
        let processed: Arc<dyn ProcessedEvents> = Arc::new(MemoryProcessedEvents::new());
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let consumer_cancel = cancel.child_token();
        let consumer = start_consumer(t, &group, &effects, &processed, &tracker, &consumer_cancel);
        eventually("the consumer to start", Duration::from_secs(30), || {
            consumer.status().running
        })
        .await;
        let relay = OutboxRelay::new(
            store.clone(),
            t.bus.clone(),
            Arc::new(SystemClock),
            RelayConfig {
                poll_interval: Duration::from_millis(10),
                backoff_min: pace.relay_backoff.0,
                backoff_max: pace.relay_backoff.1,
                ..RelayConfig::default()
            },
        )
        .spawn(&tracker, cancel.clone());
        // Commits keep coming while the fault happens.
        let committer = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seq = vec![0u64; usize::try_from(USERS).unwrap()];
                for i in 0..EVENTS / 50 {
                    let mut batch = ChangeSet::default();
                    let events = (0..50).map(|j| {
                        let u = usize::try_from((i * 50 + j) % USERS).unwrap();
                        seq[u] += 1;
                        event(&format!("user{u}"), seq[u])
                    });
                    batch.push_events(events.collect::<Vec<_>>()).unwrap();
                    store.commit(batch).await.unwrap();
                    tokio::time::sleep(pace.between_commits).await;
                }
            })
        };
        Self {
            group,
            store,
            effects,
            processed,
            tracker,
            cancel,
            consumer_cancel,
            consumer,
            relay,
            committer,
            settle: pace.settle,
        }
    }

    /// Waits until `n` distinct events were applied.
    pub(crate) async fn handled(&self, n: usize, within: Duration) {
        let what = format!("{n} events handled");
        eventually(&what, within, || self.effects.distinct() >= n).await;
    }

    /// Stops the consumer and starts another in the same group (its in-flight
    /// messages are handed back; the persistent record stops repeats).
    async fn restart_consumer(&mut self, t: &TestBus) {
        self.consumer_cancel.cancel();
        eventually("the consumer to stop", Duration::from_secs(10), || {
            !self.consumer.status().running
        })
        .await;
        self.consumer_cancel = self.cancel.child_token();
        self.consumer = start_consumer(
            t,
            &self.group,
            &self.effects,
            &self.processed,
            &self.tracker,
            &self.consumer_cancel,
        );
    }

    /// Lets the commits finish, then checks that every event arrived once and
    /// the outbox drained; stops everything.
    pub(crate) async fn finish(self, t: &TestBus) {
        self.committer.await.unwrap();
        eventually("every event handled", Duration::from_secs(180), || {
            self.effects.distinct() == usize::try_from(EVENTS).unwrap()
        })
        .await;
        // Late redeliveries must be absorbed too.
        tokio::time::sleep(self.settle).await;
        assert!(
            self.effects.doubled().is_empty(),
            "{}: double effects {:?}",
            t.kind.name(),
            self.effects.doubled().len()
        );
        assert_eq!(self.store.pending_count().await.unwrap(), 0);
        let s = self.consumer.status();
        let r = self.relay.status();
        eprintln!(
            "{}: relay published {} (failed steps {}), consumer duplicates absorbed {}, retried {}",
            t.kind.name(),
            r.published_total,
            r.failures_total,
            s.duplicates,
            s.retried
        );
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

pub(crate) async fn connections_broken_mid_stream(t: &TestBus) {
    let mut stream = Stream::start(
        t,
        "faults",
        Pace {
            between_commits: Duration::from_millis(2),
            relay_backoff: (Duration::from_millis(20), Duration::from_millis(500)),
            settle: Duration::from_millis(500),
        },
    )
    .await;
    let patience = Duration::from_secs(if t.kind == BusKind::Kafka { 90 } else { 60 });
    stream.handled(3000, patience).await;
    if t.kind == BusKind::Memory {
        // No connection to break: restart the consumer instead.
        stream.restart_consumer(t).await;
    } else {
        let broken = t.break_connections().await;
        assert!(broken > 0, "{}: no connection was broken", t.kind.name());
        eprintln!("{}: broke {broken} connections", t.kind.name());
    }
    stream.finish(t).await;
}
