//! An independent consumer of everything a server publishes, counting how
//! often each event was applied, and the server's event log to compare it
//! with: the suites that kill servers under load check with these that every
//! committed event arrives exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ordermon_application::consume::{
    Consumer, ConsumerConfig, ConsumerHandle, EventHandler, HandlerError, MemoryProcessedEvents,
};
use ordermon_domain::event::DomainEvent;
use ordermon_domain::ids::EventId;
use ordermon_tests::bus::TestBus;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::call;

/// Counts how often each event was applied.
#[derive(Debug, Default)]
struct Applied(Mutex<HashMap<EventId, u32>>);

#[async_trait]
impl EventHandler for Applied {
    async fn handle(&self, event: &DomainEvent) -> Result<(), HandlerError> {
        *self.0.lock().entry(event.event_id).or_default() += 1;
        Ok(())
    }
}

/// The audit consumer, subscribed (deduplicating by event id, as the
/// consumer framework does).
pub(crate) struct Audit {
    applied: Arc<Applied>,
    pub(crate) consumer: ConsumerHandle,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Audit {
    /// Subscribes a group `audit` of `bus` to everything; returns once it runs.
    pub(crate) async fn start(bus: &TestBus) -> Self {
        let applied = Arc::new(Applied::default());
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let mut config = ConsumerConfig::new(bus.group("audit"), ["#"]);
        config.max_attempts = 10;
        let consumer = Consumer::new(bus.bus.clone(), applied.clone(), config)
            .with_processed(Arc::new(MemoryProcessedEvents::new()))
            .spawn(&tracker, cancel.clone());
        let t0 = Instant::now();
        while !consumer.status().running {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "consumer not running"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            applied,
            consumer,
            tracker,
            cancel,
        }
    }

    /// Waits until every event of `committed` arrived (at most `within`),
    /// then a little longer for late redeliveries; panics naming `what` if one
    /// is missing or any was applied twice.
    pub(crate) async fn every_one_once(
        &self,
        committed: &HashSet<EventId>,
        within: Duration,
        what: &str,
    ) {
        let deadline = Instant::now() + within;
        loop {
            let seen: HashSet<EventId> = self.applied.0.lock().keys().copied().collect();
            if committed.is_subset(&seen) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {} committed events never arrived",
                committed.difference(&seen).count(),
                committed.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let doubled = self.applied.0.lock().values().filter(|n| **n > 1).count();
        assert_eq!(doubled, 0, "{what}: events applied twice");
    }

    pub(crate) async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Every event id in the server's event log.
pub(crate) async fn logged_events(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
) -> HashSet<EventId> {
    let mut ids = HashSet::new();
    let mut after = 0_i64;
    loop {
        let (s, page) = call(
            http.get(format!("{base}/api/v1/events?after={after}&limit=1000"))
                .bearer_auth(admin),
        )
        .await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return ids;
        }
        for item in &items {
            after = after.max(item["position"].as_i64().unwrap());
            let event: DomainEvent = serde_json::from_value(item["event"].clone()).unwrap();
            ids.insert(event.event_id);
        }
    }
}
