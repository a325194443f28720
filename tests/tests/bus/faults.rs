//! Fault tests: the broker connections break in the middle of a stream of
//! 10,000 events going through the outbox relay and the consumer framework;
//! every event must arrive and none may have a double effect.

use std::sync::Arc;
use std::time::Duration;

use ordermon_application::consume::{
    Consumer, ConsumerConfig, ConsumerHandle, MemoryProcessedEvents, ProcessedEvents,
};
use ordermon_application::relay::{OutboxRelay, RelayConfig};
use ordermon_domain::ports::{ChangeSet, Outbox, Store, SystemClock};
use ordermon_memory::MemoryStore;
use ordermon_tests::bus::{BusKind, TestBus};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::{Effects, event, eventually};

const EVENTS: u64 = 10_000;
const USERS: u64 = 20;

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

pub(crate) async fn connections_broken_mid_stream(t: &TestBus) {
    let group = t.group("faults");
    let store = Arc::new(MemoryStore::new());
    let effects = Effects::new();
    let processed: Arc<dyn ProcessedEvents> = Arc::new(MemoryProcessedEvents::new());
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();

    let first_cancel = cancel.child_token();
    let first = start_consumer(t, &group, &effects, &processed, &tracker, &first_cancel);
    eventually("the consumer to start", Duration::from_secs(30), || {
        first.status().running
    })
    .await;
    let relay = OutboxRelay::new(
        store.clone(),
        t.bus.clone(),
        Arc::new(SystemClock),
        RelayConfig {
            poll_interval: Duration::from_millis(10),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
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
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let patience = Duration::from_secs(if t.kind == BusKind::Kafka { 90 } else { 60 });
    eventually("3,000 events handled", patience, || {
        effects.distinct() >= 3000
    })
    .await;
    let mut consumer = first;
    if t.kind == BusKind::Memory {
        // No connection to break: restart the consumer instead (its in-flight
        // messages are handed back; the persistent record stops repeats).
        first_cancel.cancel();
        eventually("the consumer to stop", Duration::from_secs(10), || {
            !consumer.status().running
        })
        .await;
        consumer = start_consumer(t, &group, &effects, &processed, &tracker, &cancel);
    } else {
        let broken = t.break_connections().await;
        assert!(broken > 0, "{}: no connection was broken", t.kind.name());
        eprintln!("{}: broke {broken} connections", t.kind.name());
    }

    committer.await.unwrap();
    eventually("every event handled", Duration::from_secs(180), || {
        effects.distinct() == usize::try_from(EVENTS).unwrap()
    })
    .await;
    // Late redeliveries must be absorbed too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        effects.doubled().is_empty(),
        "{}: double effects {:?}",
        t.kind.name(),
        effects.doubled().len()
    );
    assert_eq!(store.pending_count().await.unwrap(), 0);
    let s = consumer.status();
    eprintln!(
        "{}: relay published {}, consumer duplicates absorbed {}, retried {}",
        t.kind.name(),
        relay.status().published_total,
        s.duplicates,
        s.retried
    );
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
