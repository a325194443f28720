//! Helpers shared by the bus suites: messages carrying real domain events,
//! receiving with deadlines, and a handler that counts effects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ordermon_application::consume::{EventHandler, HandlerError};
use ordermon_domain::event::{DomainEvent, EventPayload, MonitorEvent};
use ordermon_domain::ids::{EventId, UserId};
use ordermon_domain::ports::{BusMessage, Delivery, Subscription, SubscriptionSpec};
use ordermon_tests::bus::{BusKind, TestBus};
use parking_lot::Mutex;

/// A domain event of `user` with sequence `seq`.
pub(crate) fn event(user: &str, seq: u64) -> DomainEvent {
    DomainEvent::new(
        user,
        seq,
        Some(UserId::new(user).unwrap()),
        Utc::now(),
        None,
        EventPayload::Monitor(MonitorEvent::Stopped {
            reason: seq.to_string(),
        }),
    )
}

/// A bus message on `topic` keyed by `key`, carrying a real event.
pub(crate) fn message(topic: &str, key: &str, seq: u64) -> BusMessage {
    let e = event(key, seq);
    BusMessage {
        id: e.event_id,
        topic: topic.to_owned(),
        key: key.to_owned(),
        payload: serde_json::to_vec(&e).unwrap(),
        headers: BTreeMap::new(),
    }
}

/// The sequence number a message's event carries.
pub(crate) fn seq_of(m: &BusMessage) -> u64 {
    let e: DomainEvent = serde_json::from_slice(&m.payload).unwrap();
    e.sequence
}

/// A subscription spec.
pub(crate) fn spec(group: &str, topics: &[&str], max_attempts: u32) -> SubscriptionSpec {
    let mut s = SubscriptionSpec::new(group, topics.iter().copied());
    s.max_attempts = max_attempts;
    s.prefetch = 64;
    s
}

/// How long the first delivery may take (a Kafka group join takes seconds).
pub(crate) fn patience(t: &TestBus) -> Duration {
    match t.kind {
        BusKind::Kafka => Duration::from_secs(60),
        _ => Duration::from_secs(15),
    }
}

/// The next delivery within `within`, or `None`.
pub(crate) async fn next_within(
    sub: &mut Box<dyn Subscription>,
    within: Duration,
) -> Option<Delivery> {
    match tokio::time::timeout(within, sub.next()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => panic!("subscription failed: {e}"),
        Err(_) => None,
    }
}

/// The next delivery; panics if none arrives in time.
pub(crate) async fn expect_next(t: &TestBus, sub: &mut Box<dyn Subscription>) -> Delivery {
    next_within(sub, patience(t))
        .await
        .unwrap_or_else(|| panic!("{}: no delivery in time", t.kind.name()))
}

/// `n` deliveries, each acked.
pub(crate) async fn collect(
    t: &TestBus,
    sub: &mut Box<dyn Subscription>,
    n: usize,
) -> Vec<BusMessage> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let d = expect_next(t, sub).await;
        sub.ack(&d).await.unwrap();
        out.push(d.message);
    }
    out
}

/// Asserts nothing is delivered for `quiet`.
pub(crate) async fn expect_quiet(t: &TestBus, sub: &mut Box<dyn Subscription>, quiet: Duration) {
    if let Some(d) = next_within(sub, quiet).await {
        panic!(
            "{}: unexpected delivery {} ({}, attempt {})",
            t.kind.name(),
            d.message.id,
            d.message.topic,
            d.attempt
        );
    }
}

/// Counts each event's effects (how often the handler applied it).
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) applied: Mutex<HashMap<EventId, u32>>,
    pub(crate) order: Mutex<Vec<(String, u64)>>,
}

impl Effects {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Distinct events applied.
    pub(crate) fn distinct(&self) -> usize {
        self.applied.lock().len()
    }

    /// Events applied more than once.
    pub(crate) fn doubled(&self) -> Vec<(EventId, u32)> {
        self.applied
            .lock()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (*id, *n))
            .collect()
    }
}

#[async_trait]
impl EventHandler for Effects {
    async fn handle(&self, event: &DomainEvent) -> Result<(), HandlerError> {
        *self.applied.lock().entry(event.event_id).or_default() += 1;
        let user = event.user_id.as_ref().map(|u| u.as_str().to_owned());
        self.order
            .lock()
            .push((user.unwrap_or_default(), event.sequence));
        Ok(())
    }
}

/// Waits until `done` holds, checking every 20 ms; panics after `within`.
pub(crate) async fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
