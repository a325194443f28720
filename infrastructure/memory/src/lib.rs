//! ordermon's in-process store: the [`Store`] and every query repository port,
//! kept in memory with the same semantics as the SQL backends (expected-version
//! checks, unique keys, an ordered event log and a transactional outbox).
//! An outbox row that relays an event of its batch exactly as
//! `OutboxMessage::for_event` renders it holds the event's log position, not a
//! second copy of the event as JSON; the relay gets the rendering again. The
//! event log is kept densely by position (a slot per position in fixed-size
//! chunks), not as a tree of events.
//!
//! It backs the embedded default when nothing should touch disk, and makes
//! application-layer unit tests fast. One [`MemoryStore`] implements every trait;
//! share it as `Arc<MemoryStore>` and hand out `Arc<dyn Port>` views of it.
//!
//! ```
//! # use ordermon_memory::MemoryStore;
//! let store = std::sync::Arc::new(MemoryStore::new());
//! let _as_store: std::sync::Arc<dyn ordermon_domain::ports::Store> = store.clone();
//! ```

mod alerting;
pub mod bus;
pub mod cache;
mod credentials;
mod leases;
mod log_rows;
mod repos;
mod scan;
mod tables;

use async_trait::async_trait;
use ordermon_domain::ports::{ChangeSet, CommitReceipt, Store, StoreError};
use parking_lot::Mutex;

use tables::Tables;

/// The page size used when a query asks for `limit = 0`.
pub const DEFAULT_LIMIT: u32 = 100;

/// The largest page any listing returns.
pub const MAX_LIMIT: u32 = 10_000;

/// The page size a query's `limit` stands for: 0 means [`DEFAULT_LIMIT`], and
/// nothing above [`MAX_LIMIT`]. The SQL backends use the same rule.
#[must_use]
pub fn page_size(limit: u32) -> usize {
    let n = if limit == 0 {
        DEFAULT_LIMIT
    } else {
        limit.min(MAX_LIMIT)
    };
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The in-memory store. Every operation takes one short, synchronous lock (never
/// held across an `.await`), so batches are serialized exactly like transactions
/// on a single-writer database.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    leases: Mutex<leases::Leases>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a closure to the tables under the lock.
    fn with<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> R {
        f(&mut self.tables.lock())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, batch: ChangeSet) -> Result<CommitReceipt, StoreError> {
        // The lease lock is held through the write, as a row lock would be.
        let leases = self.leases.lock();
        if let Some(fence) = &batch.fence {
            leases.check(fence)?;
        }
        self.with(|t| t.apply(batch))
    }

    async fn commit_group(
        &self,
        batches: Vec<ChangeSet>,
    ) -> Vec<Result<CommitReceipt, StoreError>> {
        // One lock for the whole group (one "transaction"); each batch is undone on
        // its own failure, like a savepoint, so the others still commit.
        let leases = self.leases.lock();
        self.with(|t| {
            batches
                .into_iter()
                .map(|b| match &b.fence {
                    Some(fence) => leases.check(fence).and_then(|()| t.apply(b)),
                    None => t.apply(b),
                })
                .collect()
        })
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
