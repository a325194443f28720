//! The in-process message bus: the embedded default, with the same semantics as
//! the broker-backed buses (groups, AMQP topic patterns, per-key order, redelivery
//! with attempts and increasing delay, dead letters and their replay).
//!
//! Each consumer group has one queue. Publishing appends a message to the queue
//! of every group with a matching pattern; the members of a group share its queue.
//! A key with a message in flight is skipped until that message is settled, so
//! messages with one key are handled in publish order even by several members.
//! A nacked message waits for its retry delay and goes to the back of the queue;
//! after `max_attempts` it becomes a dead letter. A subscription dropped with
//! messages in flight hands them back (like a consumer whose connection died).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{
    BusError, BusMessage, DeadLetter, Delivery, MessageBus, Subscription, SubscriptionSpec,
    topic_matches,
};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Settings of the in-process bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBusConfig {
    /// Delay before the n-th redelivery (the last one repeats).
    pub retry_delays: Vec<Duration>,
    /// Most messages waiting in one group's queue. When a group is full, publish
    /// fails with [`BusError::Unavailable`] and the caller (the relay) retries:
    /// backpressure instead of unbounded memory.
    pub capacity: usize,
    /// Largest payload accepted, in bytes (`None`: any); a larger message is
    /// refused for good ([`BusError::Rejected`]), the way a broker refuses one
    /// over its message size limit.
    pub max_payload_bytes: Option<usize>,
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        Self {
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            capacity: 1_000_000,
            max_payload_bytes: None,
        }
    }
}

/// The in-process bus. Cheap to clone; clones share the queues.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    config: MemoryBusConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<String, Group>,
    next_id: u64,
}

#[derive(Debug)]
struct Entry {
    message: BusMessage,
    attempt: u32,
}

#[derive(Debug)]
struct InFlight {
    subscriber: u64,
    entry: Entry,
}

#[derive(Debug, Default)]
struct Group {
    patterns: Vec<String>,
    max_attempts: u32,
    ready: VecDeque<Entry>,
    /// Nacked messages waiting for their retry time (few; scanned linearly).
    delayed: Vec<(Instant, Entry)>,
    in_flight: HashMap<u64, InFlight>,
    /// Keys with a message in flight, and how many.
    busy_keys: HashMap<String, u32>,
    dead: VecDeque<DeadLetter>,
    notify: Arc<Notify>,
}

impl Group {
    fn matches(&self, topic: &str) -> bool {
        self.patterns.iter().any(|p| topic_matches(p, topic))
    }

    /// Moves due retries to the back of the queue; returns the next due time.
    fn promote_due(&mut self, now: Instant) -> Option<Instant> {
        let mut next = None::<Instant>;
        let mut i = 0;
        while i < self.delayed.len() {
            let due = self.delayed[i].0;
            if due <= now {
                let (_, entry) = self.delayed.remove(i);
                self.ready.push_back(entry);
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
                i += 1;
            }
        }
        next
    }

    /// Takes the first ready message whose key is not in flight.
    fn take_ready(&mut self) -> Option<Entry> {
        let pos = self
            .ready
            .iter()
            .position(|e| !self.busy_keys.contains_key(&e.message.key))?;
        let entry = self.ready.remove(pos)?;
        *self.busy_keys.entry(entry.message.key.clone()).or_default() += 1;
        Some(entry)
    }

    fn settle(&mut self, receipt: u64) -> Option<InFlight> {
        let flight = self.in_flight.remove(&receipt)?;
        if let Some(n) = self.busy_keys.get_mut(&flight.entry.message.key) {
            *n -= 1;
            if *n == 0 {
                self.busy_keys.remove(&flight.entry.message.key);
            }
        }
        Some(flight)
    }

    fn bury(&mut self, group: &str, entry: Entry, error: &str) {
        self.dead.push_back(DeadLetter {
            message: entry.message,
            group: group.to_owned(),
            attempts: entry.attempt,
            error: error.to_owned(),
            dead_at: Utc::now(),
        });
        metrics::counter!("ordermon_bus_dead_letters_total", "bus" => "memory").increment(1);
    }
}

impl MemoryBus {
    /// A bus with the default settings.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus with the given settings.
    #[must_use]
    pub fn with_config(config: MemoryBusConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::default(),
            }),
        }
    }

    /// Messages waiting (ready or delayed) in a group's queue, for `/status`.
    #[must_use]
    pub fn depth(&self, group: &str) -> usize {
        let state = self.inner.state.lock();
        state
            .groups
            .get(group)
            .map_or(0, |g| g.ready.len() + g.delayed.len())
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        let delays = &self.inner.config.retry_delays;
        let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        delays
            .get(i)
            .or_else(|| delays.last())
            .copied()
            .unwrap_or_default()
    }
}

#[async_trait]
impl MessageBus for MemoryBus {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, messages: &[BusMessage]) -> Result<(), BusError> {
        if let Some(max) = self.inner.config.max_payload_bytes
            && let Some(m) = messages.iter().find(|m| m.payload.len() > max)
        {
            return Err(BusError::Rejected(format!(
                "message {} has {} bytes; at most {max}",
                m.id,
                m.payload.len()
            )));
        }
        let mut wake = Vec::new();
        {
            let mut state = self.inner.state.lock();
            let capacity = self.inner.config.capacity;
            // All or nothing: refuse the whole batch if any target group is full.
            for group in state.groups.values() {
                let incoming = messages.iter().filter(|m| group.matches(&m.topic)).count();
                if incoming > 0 && group.ready.len() + incoming > capacity {
                    return Err(BusError::Unavailable("in-process queue full".to_owned()));
                }
            }
            for group in state.groups.values_mut() {
                let matching: Vec<BusMessage> = messages
                    .iter()
                    .filter(|m| group.matches(&m.topic))
                    .cloned()
                    .collect();
                let any = !matching.is_empty();
                group
                    .ready
                    .extend(matching.into_iter().map(|message| Entry {
                        message,
                        attempt: 1,
                    }));
                if any {
                    wake.push(group.notify.clone());
                }
            }
        }
        for n in wake {
            n.notify_waiters();
        }
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        let subscriber = {
            let mut state = self.inner.state.lock();
            state.next_id += 1;
            let id = state.next_id;
            let group = state.groups.entry(spec.group.clone()).or_default();
            for p in &spec.topics {
                if !group.patterns.contains(p) {
                    group.patterns.push(p.clone());
                }
            }
            group.max_attempts = spec.max_attempts.max(1);
            id
        };
        Ok(Box::new(MemorySubscription {
            bus: self.clone(),
            group: spec.group,
            subscriber,
        }))
    }

    async fn dead_letters(&self, group: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let state = self.inner.state.lock();
        Ok(state
            .groups
            .get(group)
            .map(|g| g.dead.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn replay_dead_letters(
        &self,
        group: &str,
        ids: Option<&[EventId]>,
    ) -> Result<usize, BusError> {
        let notify = {
            let mut state = self.inner.state.lock();
            let Some(g) = state.groups.get_mut(group) else {
                return Ok(0);
            };
            let (replay, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut g.dead)
                .into_iter()
                .partition(|d| ids.is_none_or(|ids| ids.contains(&d.message.id)));
            g.dead = keep;
            let n = replay.len();
            for d in replay {
                g.ready.push_back(Entry {
                    message: d.message,
                    attempt: 1,
                });
            }
            (n, g.notify.clone())
        };
        notify.1.notify_waiters();
        Ok(notify.0)
    }

    async fn health(&self) -> Result<(), BusError> {
        Ok(())
    }

    /// Everything the group has not acknowledged: waiting, waiting out a
    /// retry delay, and delivered but not yet settled. Counts only messages a
    /// pattern of the group matched (the bus routes before queueing).
    async fn backlog(&self, group: &str) -> Result<Option<u64>, BusError> {
        let state = self.inner.state.lock();
        Ok(state.groups.get(group).map(|g| {
            let n = g.ready.len() + g.delayed.len() + g.in_flight.len();
            u64::try_from(n).unwrap_or(u64::MAX)
        }))
    }
}

/// A member of a group on the in-process bus.
#[derive(Debug)]
struct MemorySubscription {
    bus: MemoryBus,
    group: String,
    subscriber: u64,
}

impl MemorySubscription {
    fn parse_receipt(delivery: &Delivery) -> Result<u64, BusError> {
        delivery
            .receipt
            .parse()
            .map_err(|_| BusError::Unexpected(format!("bad receipt {}", delivery.receipt)))
    }

    /// Settles a delivery with `f` and wakes the group's other members (the
    /// message's key is free again).
    fn settle(
        &self,
        delivery: &Delivery,
        f: impl FnOnce(&mut Group, Entry),
    ) -> Result<(), BusError> {
        let receipt = Self::parse_receipt(delivery)?;
        let notify = {
            let mut state = self.bus.inner.state.lock();
            let group = state.groups.get_mut(&self.group).ok_or(BusError::Closed)?;
            // Unknown receipt: already settled; settling twice changes nothing.
            if let Some(flight) = group.settle(receipt) {
                f(group, flight.entry);
            }
            group.notify.clone()
        };
        notify.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        loop {
            let notify = {
                let state = self.bus.inner.state.lock();
                state
                    .groups
                    .get(&self.group)
                    .ok_or(BusError::Closed)?
                    .notify
                    .clone()
            };
            // Register for wake-ups before looking, so a publish between the look
            // and the wait is not missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut state = self.bus.inner.state.lock();
                state.next_id += 1;
                let receipt = state.next_id;
                let group = state.groups.get_mut(&self.group).ok_or(BusError::Closed)?;
                let next_due = group.promote_due(Instant::now());
                if let Some(entry) = group.take_ready() {
                    let delivery = Delivery {
                        message: entry.message.clone(),
                        attempt: entry.attempt,
                        receipt: receipt.to_string(),
                    };
                    group.in_flight.insert(
                        receipt,
                        InFlight {
                            subscriber: self.subscriber,
                            entry,
                        },
                    );
                    return Ok(Some(delivery));
                }
                next_due
            };
            match next_due {
                Some(due) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        self.settle(delivery, |_, _| {})
    }

    async fn nack(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        let delay = self.bus.retry_delay(delivery.attempt);
        let group_name = self.group.clone();
        self.settle(delivery, |group, mut entry| {
            if entry.attempt >= group.max_attempts {
                group.bury(&group_name, entry, error);
            } else {
                entry.attempt += 1;
                group.delayed.push((Instant::now() + delay, entry));
            }
        })
    }

    async fn dead_letter(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        let group_name = self.group.clone();
        self.settle(delivery, |group, entry| {
            group.bury(&group_name, entry, error)
        })
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        // Like a consumer whose connection died: its unsettled messages go back to
        // the front of the queue, in the order they were delivered.
        let notify = {
            let mut state = self.bus.inner.state.lock();
            let Some(group) = state.groups.get_mut(&self.group) else {
                return;
            };
            let mut mine: Vec<u64> = group
                .in_flight
                .iter()
                .filter(|(_, f)| f.subscriber == self.subscriber)
                .map(|(r, _)| *r)
                .collect();
            mine.sort_unstable();
            for receipt in mine.into_iter().rev() {
                if let Some(mut flight) = group.settle(receipt) {
                    flight.entry.attempt += 1;
                    group.ready.push_front(flight.entry);
                }
            }
            group.notify.clone()
        };
        notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, key: &str) -> BusMessage {
        BusMessage {
            id: EventId::generate(),
            topic: topic.to_owned(),
            key: key.to_owned(),
            payload: b"{}".to_vec(),
            headers: std::collections::BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn a_key_in_flight_is_held_back_for_the_other_members() {
        let bus = MemoryBus::new();
        let mut a = bus
            .subscribe(SubscriptionSpec::new("g", ["order.#"]))
            .await
            .unwrap();
        let mut b = bus
            .subscribe(SubscriptionSpec::new("g", ["order.#"]))
            .await
            .unwrap();
        let m1 = msg("order.a.alice", "alice");
        let m2 = msg("order.b.alice", "alice");
        let m3 = msg("order.a.bob", "bob");
        bus.publish(&[m1.clone(), m2.clone(), m3.clone()])
            .await
            .unwrap();
        let d1 = a.next().await.unwrap().unwrap();
        assert_eq!(d1.message.id, m1.id);
        // alice's second message waits for the first; bob's goes ahead.
        let d3 = b.next().await.unwrap().unwrap();
        assert_eq!(d3.message.id, m3.id);
        b.ack(&d3).await.unwrap();
        a.ack(&d1).await.unwrap();
        let d2 = b.next().await.unwrap().unwrap();
        assert_eq!(d2.message.id, m2.id);
    }

    #[tokio::test]
    async fn a_dropped_member_hands_its_messages_back() {
        let bus = MemoryBus::new();
        let mut a = bus
            .subscribe(SubscriptionSpec::new("g", ["#"]))
            .await
            .unwrap();
        let m = msg("x.y.z", "k");
        bus.publish(std::slice::from_ref(&m)).await.unwrap();
        let d = a.next().await.unwrap().unwrap();
        assert_eq!(d.attempt, 1);
        drop(a);
        let mut b = bus
            .subscribe(SubscriptionSpec::new("g", ["#"]))
            .await
            .unwrap();
        let d = b.next().await.unwrap().unwrap();
        assert_eq!((d.message.id, d.attempt), (m.id, 2));
    }

    #[tokio::test]
    async fn nacks_wait_longer_each_time_then_dead_letter() {
        let bus = MemoryBus::with_config(MemoryBusConfig {
            retry_delays: vec![Duration::from_millis(20), Duration::from_millis(100)],
            ..MemoryBusConfig::default()
        });
        let mut spec = SubscriptionSpec::new("g", ["#"]);
        spec.max_attempts = 3;
        let mut s = bus.subscribe(spec).await.unwrap();
        bus.publish(&[msg("a.b", "k")]).await.unwrap();
        let start = Instant::now();
        for attempt in 1..=3 {
            let d = s.next().await.unwrap().unwrap();
            assert_eq!(d.attempt, attempt);
            s.nack(&d, "boom").await.unwrap();
        }
        // 20 ms before the second try, 100 ms before the third.
        assert!(start.elapsed() >= Duration::from_millis(120));
        let dead = bus.dead_letters("g", 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].attempts, dead[0].error.as_str()), (3, "boom"));
        assert_eq!(bus.replay_dead_letters("g", None).await.unwrap(), 1);
        let d = s.next().await.unwrap().unwrap();
        assert_eq!(d.attempt, 1);
    }

    #[tokio::test]
    async fn the_backlog_counts_waiting_delayed_and_unsettled_messages() {
        let bus = MemoryBus::with_config(MemoryBusConfig {
            retry_delays: vec![Duration::from_secs(60)],
            ..MemoryBusConfig::default()
        });
        assert_eq!(bus.backlog("g").await.unwrap(), None);
        let mut s = bus
            .subscribe(SubscriptionSpec::new("g", ["a.#"]))
            .await
            .unwrap();
        bus.publish(&[msg("a.x", "k1"), msg("a.y", "k2"), msg("b.z", "k3")])
            .await
            .unwrap();
        // `b.z` matches no pattern of the group: never its backlog.
        assert_eq!(bus.backlog("g").await.unwrap(), Some(2));
        let first = s.next().await.unwrap().unwrap();
        assert_eq!(bus.backlog("g").await.unwrap(), Some(2), "in flight");
        s.nack(&first, "later").await.unwrap();
        assert_eq!(bus.backlog("g").await.unwrap(), Some(2), "delayed");
        let second = s.next().await.unwrap().unwrap();
        s.ack(&second).await.unwrap();
        assert_eq!(bus.backlog("g").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn a_full_group_refuses_the_batch() {
        let bus = MemoryBus::with_config(MemoryBusConfig {
            capacity: 2,
            ..MemoryBusConfig::default()
        });
        let _s = bus
            .subscribe(SubscriptionSpec::new("g", ["#"]))
            .await
            .unwrap();
        let batch = [msg("a", "k"), msg("a", "k"), msg("a", "k")];
        assert!(matches!(
            bus.publish(&batch).await,
            Err(BusError::Unavailable(_))
        ));
        assert_eq!(bus.depth("g"), 0);
    }
}
