//! Deduplication by event id: a bounded in-memory set of recent ids, and the
//! port of a persistent record of processed events.

use std::collections::{HashSet, VecDeque};

use async_trait::async_trait;
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::StoreError;
use parking_lot::Mutex;

/// The most recently handled event ids, up to a capacity; the oldest is
/// forgotten first. Duplicates from a broker usually arrive soon after the
/// original (a redelivery after a lost ack, a relay resend), so recent ids catch
/// nearly all of them without a store round trip.
#[derive(Debug)]
pub struct RecentIds {
    capacity: usize,
    set: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl RecentIds {
    /// An empty set holding at most `capacity` ids (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `id` was handled recently.
    #[must_use]
    pub fn contains(&self, id: &EventId) -> bool {
        self.set.contains(id)
    }

    /// Remembers `id`, forgetting the oldest id when full.
    pub fn insert(&mut self, id: EventId) {
        if !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// How many ids are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Which events each consumer has processed, kept across restarts (a table
/// `processed_events(consumer, event_id, processed_at)` with primary key
/// `(consumer, event_id)` in SQL stores).
#[async_trait]
pub trait ProcessedEvents: Send + Sync + std::fmt::Debug {
    /// Whether `consumer` has processed `id`.
    ///
    /// # Errors
    /// Store failures.
    async fn contains(&self, consumer: &str, id: EventId) -> Result<bool, StoreError>;
    /// Records that `consumer` processed `id` (recording twice is harmless).
    ///
    /// # Errors
    /// Store failures.
    async fn insert(&self, consumer: &str, id: EventId) -> Result<(), StoreError>;
}

/// [`ProcessedEvents`] in memory (tests, and processes whose consumers keep no
/// state across restarts anyway).
#[derive(Debug, Default)]
pub struct MemoryProcessedEvents {
    seen: Mutex<HashSet<(String, EventId)>>,
}

impl MemoryProcessedEvents {
    /// An empty record.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ProcessedEvents for MemoryProcessedEvents {
    async fn contains(&self, consumer: &str, id: EventId) -> Result<bool, StoreError> {
        Ok(self.seen.lock().contains(&(consumer.to_owned(), id)))
    }

    async fn insert(&self, consumer: &str, id: EventId) -> Result<(), StoreError> {
        self.seen.lock().insert((consumer.to_owned(), id));
        Ok(())
    }
}
