//! Consumer framework tests against the in-memory bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use ordermon_domain::ids::EventId;
use ordermon_domain::ports::BusMessage;
use ordermon_memory::bus::{MemoryBus, MemoryBusConfig};

use super::*;
use crate::error::AppError;
use crate::relay::tests::event;

/// Counts events; fails the first `fail` calls (transiently, or permanently).
#[derive(Debug, Default)]
struct Counting {
    calls: AtomicU32,
    fail: u32,
    permanent: bool,
    seen: Mutex<Vec<EventId>>,
}

#[async_trait]
impl EventHandler for Counting {
    async fn handle(&self, event: &DomainEvent) -> Result<(), HandlerError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail {
            return Err(if self.permanent {
                HandlerError::Permanent("never".to_owned())
            } else {
                HandlerError::Transient("not yet".to_owned())
            });
        }
        self.seen.lock().push(event.event_id);
        Ok(())
    }
}

fn message(e: &DomainEvent) -> BusMessage {
    BusMessage {
        id: e.event_id,
        topic: format!("{}.alice", e.event_type),
        key: "alice".to_owned(),
        payload: serde_json::to_vec(e).unwrap(),
        headers: BTreeMap::new(),
    }
}

fn fast_bus() -> MemoryBus {
    MemoryBus::with_config(MemoryBusConfig {
        retry_delays: vec![Duration::from_millis(10)],
        ..MemoryBusConfig::default()
    })
}

/// Starts a consumer; returns its handle and cancel token.
async fn start(
    bus: &MemoryBus,
    handler: Arc<Counting>,
    processed: Option<Arc<dyn ProcessedEvents>>,
) -> (ConsumerHandle, CancellationToken, TaskTracker) {
    let mut config = ConsumerConfig::new("test", ["#"]);
    config.max_attempts = 3;
    let mut consumer = Consumer::new(Arc::new(bus.clone()), handler, config);
    if let Some(p) = processed {
        consumer = consumer.with_processed(p);
    }
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let handle = consumer.spawn(&tracker, cancel.clone());
    // Let it subscribe before anything is published.
    for _ in 0..100 {
        if handle.status().running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (handle, cancel, tracker)
}

async fn until(handle: &ConsumerHandle, done: impl Fn(&ConsumerStatus) -> bool) -> ConsumerStatus {
    for _ in 0..500 {
        let s = handle.status();
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("consumer did not get there: {:?}", handle.status());
}

async fn stop(cancel: CancellationToken, tracker: TaskTracker) {
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test]
async fn a_duplicate_delivery_has_no_second_effect() {
    let bus = fast_bus();
    let handler = Arc::new(Counting::default());
    let (handle, cancel, tracker) = start(&bus, handler.clone(), None).await;
    let e = event("alice", 1);
    bus.publish(&[message(&e), message(&e)]).await.unwrap();
    let s = until(&handle, |s| s.handled + s.duplicates == 2).await;
    assert_eq!((s.handled, s.duplicates), (1, 1));
    assert_eq!(handler.seen.lock().as_slice(), &[e.event_id]);
    stop(cancel, tracker).await;
}

#[tokio::test]
async fn a_transient_failure_is_retried_until_handled() {
    let bus = fast_bus();
    let handler = Arc::new(Counting {
        fail: 2,
        ..Counting::default()
    });
    let (handle, cancel, tracker) = start(&bus, handler.clone(), None).await;
    bus.publish(&[message(&event("alice", 1))]).await.unwrap();
    let s = until(&handle, |s| s.handled == 1).await;
    assert_eq!(s.retried, 2);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
    stop(cancel, tracker).await;
}

#[tokio::test]
async fn failures_past_max_attempts_end_in_the_dead_letters_and_replay_works() {
    let bus = fast_bus();
    let handler = Arc::new(Counting {
        fail: 3,
        ..Counting::default()
    });
    let (handle, cancel, tracker) = start(&bus, handler.clone(), None).await;
    let e = event("alice", 1);
    bus.publish(&[message(&e)]).await.unwrap();
    until(&handle, |s| s.retried == 3).await;
    let service = DeadLetters::new(Arc::new(bus.clone()));
    let dead = service.list("test", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].event_id, dead[0].attempts), (e.event_id, 3));
    assert_eq!(dead[0].payload["event_id"], e.event_id.to_string());
    let outcome = service.replay("test", Some(&[e.event_id])).await.unwrap();
    assert_eq!(outcome.replayed, 1);
    until(&handle, |s| s.handled == 1).await;
    assert!(service.list("test", 10).await.unwrap().is_empty());
    stop(cancel, tracker).await;
}

#[tokio::test]
async fn permanent_failures_and_undecodable_payloads_are_dead_lettered_at_once() {
    let bus = fast_bus();
    let handler = Arc::new(Counting {
        fail: 1,
        permanent: true,
        ..Counting::default()
    });
    let (handle, cancel, tracker) = start(&bus, handler.clone(), None).await;
    let mut junk = message(&event("alice", 2));
    junk.payload = b"not json".to_vec();
    bus.publish(&[message(&event("alice", 1)), junk])
        .await
        .unwrap();
    let s = until(&handle, |s| s.dead_lettered == 2).await;
    assert_eq!((s.retried, s.handled), (0, 0));
    let dead = bus.dead_letters("test", 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].attempts, 1);
    assert!(dead[1].error.starts_with("undecodable payload"));
    stop(cancel, tracker).await;
}

#[tokio::test]
async fn processed_ids_survive_a_consumer_restart() {
    let bus = fast_bus();
    let processed: Arc<dyn ProcessedEvents> = Arc::new(MemoryProcessedEvents::new());
    let handler = Arc::new(Counting::default());
    let e = event("alice", 1);

    let (handle, cancel, tracker) = start(&bus, handler.clone(), Some(processed.clone())).await;
    bus.publish(&[message(&e)]).await.unwrap();
    until(&handle, |s| s.handled == 1).await;
    stop(cancel, tracker).await;

    // A new process: empty recent ids, same persistent record.
    let (handle, cancel, tracker) = start(&bus, handler.clone(), Some(processed)).await;
    bus.publish(&[message(&e)]).await.unwrap();
    until(&handle, |s| s.duplicates == 1).await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
    stop(cancel, tracker).await;
}

#[tokio::test]
async fn dead_letter_requests_are_validated() {
    let service = DeadLetters::new(Arc::new(MemoryBus::new()));
    assert!(matches!(
        service.list("", 10).await,
        Err(AppError::Validation(_))
    ));
    assert!(matches!(
        service.list("g", 0).await,
        Err(AppError::Validation(_))
    ));
    assert!(matches!(
        service.replay("g", Some(&[])).await,
        Err(AppError::Validation(_))
    ));
    assert_eq!(service.replay("g", None).await.unwrap().replayed, 0);
}

#[test]
fn recent_ids_forget_the_oldest_first() {
    let mut r = RecentIds::new(2);
    let ids: Vec<EventId> = (0..3).map(|_| EventId::generate()).collect();
    for id in &ids {
        r.insert(*id);
    }
    assert_eq!(r.len(), 2);
    assert!(!r.contains(&ids[0]));
    assert!(r.contains(&ids[1]) && r.contains(&ids[2]));
}

/// Holds every event until a permit is added.
#[derive(Debug)]
struct Gate {
    permits: tokio::sync::Semaphore,
}

impl Gate {
    fn closed() -> Arc<Self> {
        Arc::new(Self {
            permits: tokio::sync::Semaphore::new(0),
        })
    }
}

#[async_trait]
impl EventHandler for Gate {
    async fn handle(&self, _event: &DomainEvent) -> Result<(), HandlerError> {
        self.permits
            .acquire()
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?
            .forget();
        Ok(())
    }
}

fn sampled_config() -> ConsumerConfig {
    let mut config = ConsumerConfig::new("test", ["#"]);
    config.backlog_interval = Duration::from_millis(10);
    config
}

#[tokio::test]
async fn the_backlog_is_read_while_the_handler_is_stuck() {
    let bus = fast_bus();
    bus.subscribe(SubscriptionSpec::new("test", ["#"]))
        .await
        .unwrap();
    let events: Vec<DomainEvent> = (1..=5).map(|n| event("alice", n)).collect();
    bus.publish(&events.iter().map(message).collect::<Vec<_>>())
        .await
        .unwrap();
    let gate = Gate::closed();
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let handle = Consumer::new(Arc::new(bus.clone()), gate.clone(), sampled_config())
        .spawn(&tracker, cancel.clone());
    // One in the stuck handler's hands, four waiting: five still to finish.
    let s = until(&handle, |s| s.backlog == Some(5)).await;
    assert_eq!(s.handled, 0);
    gate.permits.add_permits(2);
    until(&handle, |s| s.handled == 2 && s.backlog == Some(3)).await;
    gate.permits.add_permits(3);
    until(&handle, |s| s.handled == 5 && s.backlog == Some(0)).await;
    stop(cancel, tracker).await;
}

/// The in-memory bus, except that it cannot tell a backlog.
#[derive(Debug)]
struct Blind(MemoryBus);

#[async_trait]
impl MessageBus for Blind {
    fn name(&self) -> &'static str {
        "blind"
    }
    async fn publish(&self, messages: &[BusMessage]) -> Result<(), BusError> {
        self.0.publish(messages).await
    }
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        self.0.subscribe(spec).await
    }
    async fn dead_letters(
        &self,
        group: &str,
        limit: usize,
    ) -> Result<Vec<ordermon_domain::ports::DeadLetter>, BusError> {
        self.0.dead_letters(group, limit).await
    }
    async fn replay_dead_letters(
        &self,
        group: &str,
        ids: Option<&[EventId]>,
    ) -> Result<usize, BusError> {
        self.0.replay_dead_letters(group, ids).await
    }
    async fn health(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn backlog(&self, _group: &str) -> Result<Option<u64>, BusError> {
        Err(BusError::Unavailable("no backlog here".to_owned()))
    }
}

#[tokio::test]
async fn a_backlog_that_cannot_be_read_does_not_stop_consuming() {
    let bus = fast_bus();
    let handler = Arc::new(Counting::default());
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let handle = Consumer::new(Arc::new(Blind(bus.clone())), handler, sampled_config())
        .spawn(&tracker, cancel.clone());
    until(&handle, |s| s.running).await;
    // Several failed readings go by.
    tokio::time::sleep(Duration::from_millis(50)).await;
    bus.publish(&[message(&event("alice", 1)), message(&event("alice", 2))])
        .await
        .unwrap();
    let s = until(&handle, |s| s.handled == 2).await;
    assert_eq!((s.backlog, s.last_error), (None, None));
    stop(cancel, tracker).await;
}
