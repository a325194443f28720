//! Relay tests against the in-memory store and bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ordermon_domain::event::{DomainEvent, EventPayload, MonitorEvent};
use ordermon_domain::ids::{EventId, UserId};
use ordermon_domain::ports::{
    BusError, BusMessage, ChangeSet, DeadLetter, Outbox, Store, Subscription, SubscriptionSpec,
    SystemClock,
};
use ordermon_memory::MemoryStore;
use ordermon_memory::bus::MemoryBus;

use super::*;

pub(crate) fn event(user: &str, n: u64) -> DomainEvent {
    event_with_reason(user, n, n.to_string())
}

fn event_with_reason(user: &str, n: u64, reason: String) -> DomainEvent {
    DomainEvent::new(
        user,
        n,
        Some(UserId::new(user).unwrap()),
        Utc::now(),
        None,
        EventPayload::Monitor(MonitorEvent::Stopped { reason }),
    )
}

async fn commit(store: &MemoryStore, events: Vec<DomainEvent>) {
    let mut batch = ChangeSet::default();
    batch.push_events(events).unwrap();
    store.commit(batch).await.unwrap();
}

/// A bus that refuses the first `failures` publishes.
#[derive(Debug)]
struct Flaky {
    inner: MemoryBus,
    failures: AtomicU32,
}

#[async_trait]
impl MessageBus for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    async fn publish(&self, messages: &[BusMessage]) -> Result<(), BusError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(BusError::Unavailable("down".to_owned()));
        }
        self.inner.publish(messages).await
    }
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        self.inner.subscribe(spec).await
    }
    async fn dead_letters(&self, group: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        self.inner.dead_letters(group, limit).await
    }
    async fn replay_dead_letters(
        &self,
        group: &str,
        ids: Option<&[EventId]>,
    ) -> Result<usize, BusError> {
        self.inner.replay_dead_letters(group, ids).await
    }
    async fn health(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn backlog(&self, group: &str) -> Result<Option<u64>, BusError> {
        self.inner.backlog(group).await
    }
}

fn relay(store: &Arc<MemoryStore>, bus: Arc<dyn MessageBus>, config: RelayConfig) -> OutboxRelay {
    OutboxRelay::new(store.clone(), bus, Arc::new(SystemClock), config)
}

async fn received(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<BusMessage> {
    let mut out = Vec::new();
    while out.len() < n {
        let d = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("delivery in time")
            .unwrap()
            .unwrap();
        sub.ack(&d).await.unwrap();
        out.push(d.message);
    }
    out
}

#[tokio::test]
async fn committed_rows_are_published_in_commit_order_and_marked() {
    let store = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let mut sub = bus
        .subscribe(SubscriptionSpec::new("t", ["#"]))
        .await
        .unwrap();
    let events = [event("alice", 1), event("bob", 1), event("alice", 2)];
    commit(&store, events[..2].to_vec()).await;
    commit(&store, events[2..].to_vec()).await;
    let r = relay(&store, Arc::new(bus), RelayConfig::default());
    assert_eq!(r.relay_once().await.unwrap(), 3);
    assert_eq!(r.relay_once().await.unwrap(), 0);
    let got: Vec<EventId> = received(&mut sub, 3).await.iter().map(|m| m.id).collect();
    let want: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(got, want);
    assert_eq!(store.pending_count().await.unwrap(), 0);
    let status = r.handle().status();
    assert_eq!((status.published_total, status.pending), (3, 0));
}

#[tokio::test]
async fn a_refused_publish_marks_nothing_and_is_retried() {
    let store = Arc::new(MemoryStore::new());
    let inner = MemoryBus::new();
    let mut sub = inner
        .subscribe(SubscriptionSpec::new("t", ["#"]))
        .await
        .unwrap();
    let bus = Arc::new(Flaky {
        inner,
        failures: AtomicU32::new(2),
    });
    commit(&store, vec![event("alice", 1), event("alice", 2)]).await;
    let r = relay(
        &store,
        bus,
        RelayConfig {
            backoff_min: Duration::from_millis(5),
            ..RelayConfig::default()
        },
    );
    assert!(r.relay_once().await.is_err());
    assert_eq!(store.pending_count().await.unwrap(), 2);
    let handle = r.handle();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(r.run(cancel.clone()));
    let got = received(&mut sub, 2).await;
    assert_eq!(got.len(), 2);
    cancel.cancel();
    task.await.unwrap();
    let s = handle.status();
    assert_eq!((s.failures_total, s.published_total, s.pending), (2, 2, 0));
    assert_eq!(s.last_error, None);
    assert!(!s.running);
}

#[tokio::test]
async fn commits_wake_an_idle_relay_at_once() {
    let store = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let mut sub = bus
        .subscribe(SubscriptionSpec::new("t", ["#"]))
        .await
        .unwrap();
    let (tx, rx) = broadcast::channel(16);
    let r = relay(
        &store,
        Arc::new(bus),
        RelayConfig {
            poll_interval: Duration::from_secs(3600),
            ..RelayConfig::default()
        },
    )
    .with_commit_feed(rx);
    let waker = r.waker();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(r.run(cancel.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let e = event("alice", 1);
    commit(&store, vec![e.clone()]).await;
    tx.send(Arc::new(e)).unwrap();
    assert_eq!(received(&mut sub, 1).await.len(), 1);

    commit(&store, vec![event("alice", 2)]).await;
    waker.notify_one();
    assert_eq!(received(&mut sub, 1).await.len(), 1);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_drains_the_outbox() {
    let store = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let mut sub = bus
        .subscribe(SubscriptionSpec::new("t", ["#"]))
        .await
        .unwrap();
    let r = relay(
        &store,
        Arc::new(bus),
        RelayConfig {
            poll_interval: Duration::from_secs(3600),
            batch: 2,
            ..RelayConfig::default()
        },
    );
    let cancel = CancellationToken::new();
    cancel.cancel();
    commit(&store, (1..=5).map(|n| event("alice", n)).collect()).await;
    r.run(cancel).await;
    assert_eq!(store.pending_count().await.unwrap(), 0);
    assert_eq!(received(&mut sub, 5).await.len(), 5);
}

#[tokio::test]
async fn a_restarted_relay_sends_only_unsent_rows() {
    let store = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let mut sub = bus
        .subscribe(SubscriptionSpec::new("t", ["#"]))
        .await
        .unwrap();
    let bus: Arc<dyn MessageBus> = Arc::new(bus);
    let events: Vec<DomainEvent> = (1..=5).map(|n| event("alice", n)).collect();
    commit(&store, events.clone()).await;
    let config = RelayConfig {
        batch: 2,
        ..RelayConfig::default()
    };
    let first = relay(&store, bus.clone(), config);
    first.relay_once().await.unwrap();
    drop(first);
    let second = relay(&store, bus, config);
    while second.relay_once().await.unwrap() > 0 {}
    let got: Vec<EventId> = received(&mut sub, 5).await.iter().map(|m| m.id).collect();
    assert_eq!(got, events.iter().map(|e| e.event_id).collect::<Vec<_>>());
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap() {
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
    let d: Vec<Duration> = (0..4).map(|_| b.delay()).collect();
    assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
    assert!(d[1] >= Duration::from_millis(100) && d[1] <= Duration::from_millis(200));
    assert!(d[3] <= Duration::from_millis(300));
    b.reset();
    assert!(b.delay() <= Duration::from_millis(100));
}

#[tokio::test]
async fn purge_deletes_only_rows_sent_long_enough_ago() {
    use ordermon_domain::ports::ManualClock;
    let store = Arc::new(MemoryStore::new());
    commit(&store, (1..=3).map(|n| event("alice", n)).collect()).await;
    // The clock is a day and an hour ahead of the rows' real send time.
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let relay = OutboxRelay::new(
        store.clone(),
        Arc::new(MemoryBus::new()),
        clock.clone(),
        RelayConfig::default(),
    );
    assert_eq!(relay.relay_once().await.unwrap(), 3);
    assert_eq!(relay.purge_once().await.unwrap(), 0, "sent just now: kept");
    commit(&store, vec![event("alice", 4)]).await;
    clock.advance(chrono::Duration::hours(25));
    assert_eq!(
        relay.purge_once().await.unwrap(),
        3,
        "older than a day: gone"
    );
    assert_eq!(
        store.pending_count().await.unwrap(),
        1,
        "the unsent row stays"
    );
    let keep = OutboxRelay::new(
        store.clone(),
        Arc::new(MemoryBus::new()),
        clock,
        RelayConfig {
            retain_sent: None,
            ..RelayConfig::default()
        },
    );
    assert_eq!(keep.relay_once().await.unwrap(), 1);
    assert_eq!(
        keep.purge_once().await.unwrap(),
        0,
        "retention off: nothing goes"
    );
}

/// An event whose payload is padded to about `bytes`.
fn big_event(user: &str, n: u64, bytes: usize) -> DomainEvent {
    event_with_reason(user, n, "x".repeat(bytes))
}

#[tokio::test]
async fn a_row_the_broker_refuses_for_good_is_set_aside_and_the_rest_go_on() {
    let store = Arc::new(MemoryStore::new());
    let bus = MemoryBus::with_config(ordermon_memory::bus::MemoryBusConfig {
        max_payload_bytes: Some(4_096),
        ..Default::default()
    });
    let mut sub = bus
        .subscribe(SubscriptionSpec::new("t", ["#"]))
        .await
        .unwrap();
    let events = vec![
        event("alice", 1),
        big_event("alice", 2, 10_000),
        event("alice", 3),
        event("bob", 1),
    ];
    commit(&store, events.clone()).await;
    let r = relay(&store, Arc::new(bus), RelayConfig::default());
    // One step handles all four: three published in order, one set aside.
    assert_eq!(r.relay_once().await.unwrap(), 4);
    assert_eq!(store.pending_count().await.unwrap(), 0);
    let got: Vec<EventId> = received(&mut sub, 3).await.iter().map(|m| m.id).collect();
    assert_eq!(
        got,
        vec![events[0].event_id, events[2].event_id, events[3].event_id]
    );
    let status = r.handle().status();
    assert_eq!(status.set_aside_total, 1);
    let aside = status.last_set_aside.expect("the refused row");
    assert_eq!(aside.event_id, events[1].event_id.to_string());
    assert!(aside.error.contains("4096"), "{}", aside.error);
    // Later rows flow as usual, in batches again.
    commit(&store, vec![event("alice", 4), event("alice", 5)]).await;
    assert_eq!(r.relay_once().await.unwrap(), 2);
    assert_eq!(received(&mut sub, 2).await.len(), 2);
    assert_eq!(r.handle().status().set_aside_total, 1);
}
