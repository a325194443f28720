//! The message bus port: at-least-once delivery with acks, retries and dead letters.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::EventId;

/// A message on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusMessage {
    /// The event id; consumers deduplicate on it.
    pub id: EventId,
    /// Topic / routing key, `aggregate.event.user` (e.g. `order.filled.alice`).
    pub topic: String,
    /// Ordering key (the user): messages with one key arrive in publish order.
    pub key: String,
    /// The body (JSON of the domain event).
    pub payload: Vec<u8>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message.
    pub message: BusMessage,
    /// 1 for the first delivery, then 2, 3, …
    pub attempt: u32,
    /// Opaque receipt the implementation uses to ack or nack.
    pub receipt: String,
}

/// What to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSpec {
    /// Consumer group: members share the work; each group gets every message.
    pub group: String,
    /// Topic patterns (`*` = one word, `#` = any words, AMQP style).
    pub topics: Vec<String>,
    /// Deliveries before a message goes to the dead letters.
    pub max_attempts: u32,
    /// Unacknowledged messages in flight per consumer.
    pub prefetch: u16,
}

impl SubscriptionSpec {
    /// A subscription of `group` to `topics` with 5 attempts and a prefetch of 64.
    #[must_use]
    pub fn new(
        group: impl Into<String>,
        topics: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            group: group.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            max_attempts: 5,
            prefetch: 64,
        }
    }

    /// True when `topic` matches one of the patterns.
    #[must_use]
    pub fn matches(&self, topic: &str) -> bool {
        self.topics.iter().any(|p| topic_matches(p, topic))
    }
}

/// AMQP topic matching: words are separated by `.`, `*` stands for exactly one
/// word and `#` for zero or more words (`order.#` matches `order.filled.alice`).
///
/// Brokers without topic routing (Kafka, Redis Streams, the in-process bus) filter
/// with this function so every bus routes the same way.
#[must_use]
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let topic: Vec<&str> = topic.split('.').collect();
    words_match(&pattern, &topic)
}

fn words_match(pattern: &[&str], topic: &[&str]) -> bool {
    match pattern.split_first() {
        None => topic.is_empty(),
        // `#` absorbs zero words, or one word and tries again.
        Some((&"#", rest)) => {
            words_match(rest, topic) || (!topic.is_empty() && words_match(pattern, &topic[1..]))
        }
        Some((&word, rest)) => match topic.split_first() {
            Some((&t, topic_rest)) => (word == "*" || word == t) && words_match(rest, topic_rest),
            None => false,
        },
    }
}

/// A dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The message.
    pub message: BusMessage,
    /// The group that gave up on it.
    pub group: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
}

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The broker cannot be reached (transient).
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The broker refused a publish (not confirmed).
    #[error("publish not confirmed: {0}")]
    NotConfirmed(String),
    /// The broker refused a message for good (too large, malformed): sending
    /// it again fails again.
    #[error("message refused by the broker: {0}")]
    Rejected(String),
    /// The subscription is closed.
    #[error("subscription closed")]
    Closed,
    /// Anything else.
    #[error("unexpected bus error: {0}")]
    Unexpected(String),
}

/// One consumer's stream of deliveries.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` when the subscription ends.
    ///
    /// # Errors
    /// Broker failures.
    async fn next(&mut self) -> Result<Option<Delivery>, BusError>;
    /// Handled: do not deliver again.
    ///
    /// # Errors
    /// Broker failures.
    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError>;
    /// Failed: deliver again later, or dead-letter after `max_attempts`.
    ///
    /// # Errors
    /// Broker failures.
    async fn nack(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError>;
    /// Hopeless (e.g. a payload that cannot be decoded): dead-letter it now,
    /// whatever attempts remain.
    ///
    /// # Errors
    /// Broker failures.
    async fn dead_letter(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError>;
}

/// The bus.
#[async_trait]
pub trait MessageBus: Send + Sync + std::fmt::Debug {
    /// A short name for logs and `/status` (`memory`, `rabbitmq`, …).
    fn name(&self) -> &'static str;
    /// Publishes messages; returns once the broker has confirmed all of them.
    ///
    /// # Errors
    /// [`BusError::NotConfirmed`] or [`BusError::Unavailable`]; the caller retries.
    async fn publish(&self, messages: &[BusMessage]) -> Result<(), BusError>;
    /// Starts consuming.
    ///
    /// # Errors
    /// Broker failures.
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError>;
    /// Dead letters of a group, oldest first.
    ///
    /// # Errors
    /// Broker failures.
    async fn dead_letters(&self, group: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError>;
    /// Sends dead letters of a group back for another try (all, or the given ids);
    /// returns how many were replayed.
    ///
    /// # Errors
    /// Broker failures.
    async fn replay_dead_letters(
        &self,
        group: &str,
        ids: Option<&[EventId]>,
    ) -> Result<usize, BusError>;
    /// Checks the broker can be reached.
    ///
    /// # Errors
    /// [`BusError::Unavailable`].
    async fn health(&self) -> Result<(), BusError>;
    /// How many messages `group` still has to receive or acknowledge, as the
    /// broker counts them (the `ordermon_consumer_lag_messages` gauge). It is
    /// the group's backlog, not one member's: every member of the group reads
    /// the same number. `None` when the broker cannot tell (a group it does not
    /// know). What each broker counts at the edges (unacknowledged deliveries,
    /// messages of other patterns, retries waiting) is in `docs/messaging.md`.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the broker cannot be reached.
    async fn backlog(&self, group: &str) -> Result<Option<u64>, BusError>;
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn amqp_patterns_match_like_a_topic_exchange() {
        let cases = [
            ("order.filled.alice", "order.filled.alice", true),
            ("order.*.alice", "order.filled.alice", true),
            ("order.*", "order.filled.alice", false),
            ("order.#", "order.filled.alice", true),
            ("order.#", "order", true),
            ("#", "order.filled.alice", true),
            ("#.alice", "order.filled.alice", true),
            ("#.bob", "order.filled.alice", false),
            ("*.*.alice", "account.reserved.alice", true),
            ("order.#.alice", "order.alice", true),
            ("order.#.alice", "order.filled.partly.alice", true),
            ("account.#", "order.filled.alice", false),
            ("*", "order.filled", false),
        ];
        for (pattern, topic, expected) in cases {
            assert_eq!(
                topic_matches(pattern, topic),
                expected,
                "{pattern} vs {topic}"
            );
        }
    }
}
