//! Deduplication by event id: a bounded in-memory set of recent ids, and the
//! port of a persistent record of processed events.

use std::collections::{HashMap, HashSet, VecDeque};

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
/// state across restarts anyway), bounded: each consumer remembers its most
/// recent [`MemoryProcessedEvents::DEFAULT_CAPACITY`] ids (or the capacity
/// given), the oldest forgotten first, so a long-running process does not grow
/// without end.
#[derive(Debug)]
pub struct MemoryProcessedEvents {
    capacity: usize,
    seen: Mutex<HashMap<String, RecentIds>>,
}

impl Default for MemoryProcessedEvents {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl MemoryProcessedEvents {
    /// Ids remembered per consumer by [`MemoryProcessedEvents::new`].
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty record with the default capacity.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty record remembering at most `capacity` ids per consumer (at least 1).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// How many ids are remembered for `consumer`.
    #[must_use]
    pub fn len(&self, consumer: &str) -> usize {
        self.seen.lock().get(consumer).map_or(0, RecentIds::len)
    }
}

#[async_trait]
impl ProcessedEvents for MemoryProcessedEvents {
    async fn contains(&self, consumer: &str, id: EventId) -> Result<bool, StoreError> {
        Ok(self
            .seen
            .lock()
            .get(consumer)
            .is_some_and(|ids| ids.contains(&id)))
    }

    async fn insert(&self, consumer: &str, id: EventId) -> Result<(), StoreError> {
        let mut seen = self.seen.lock();
        match seen.get_mut(consumer) {
            Some(ids) => ids.insert(id),
            None => {
                let mut ids = RecentIds::new(self.capacity);
                ids.insert(id);
                seen.insert(consumer.to_owned(), ids);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_record_is_bounded_per_consumer() {
        let record = MemoryProcessedEvents::with_capacity(3);
        let ids: Vec<EventId> = (0..5).map(|_| EventId::generate()).collect();
        for id in &ids {
            record.insert("a", *id).await.unwrap();
        }
        record.insert("b", ids[0]).await.unwrap();
        assert_eq!(record.len("a"), 3);
        assert!(
            !record.contains("a", ids[0]).await.unwrap(),
            "oldest forgotten"
        );
        assert!(!record.contains("a", ids[1]).await.unwrap());
        assert!(record.contains("a", ids[4]).await.unwrap());
        assert!(record.contains("b", ids[0]).await.unwrap(), "per consumer");
        assert_eq!(record.len("b"), 1);
    }
}
