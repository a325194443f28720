//! Rewriting projection rows from the replay, through the store's ordinary
//! version-checked writes, a batch of rows per transaction. A row someone
//! else changes meanwhile fails its version check and stops the rewrite
//! (rewrite with the server stopped).
//!
//! What the log cannot determine is kept from the stored row: versions
//! (bumped by one), the account's legacy `high_water_mark` field, and a
//! strategy's name, instruments, params and status.

use std::sync::Arc;

use ordermon_domain::account::Account;
use ordermon_domain::order::Order;
use ordermon_domain::ports::{ChangeSet, ReservationWrite, StateChange, Store, StoreError};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;

use super::rebuild::ReplayedStrategy;

/// Rows waiting to be written, and how many were.
pub(super) struct Rewrite {
    store: Arc<dyn Store>,
    batch: usize,
    pending: Vec<StateChange>,
    written: u64,
}

impl Rewrite {
    pub(super) fn new(store: Arc<dyn Store>, batch: usize) -> Self {
        Self {
            store,
            batch: batch.clamp(1, 10_000),
            pending: Vec::new(),
            written: 0,
        }
    }

    pub(super) fn written(&self) -> u64 {
        self.written
    }

    fn push(&mut self, change: StateChange) -> bool {
        self.pending.push(change);
        true
    }

    /// Writes the queued rows when a batch is full.
    pub(super) async fn flush_if_full(&mut self) -> Result<(), StoreError> {
        if self.pending.len() >= self.batch {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes every queued row, `batch` rows per transaction.
    pub(super) async fn flush(&mut self) -> Result<(), StoreError> {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(self.batch);
            let changes: Vec<StateChange> = self.pending.drain(..n).collect();
            self.store
                .commit(ChangeSet {
                    changes,
                    ..ChangeSet::default()
                })
                .await?;
            self.written += n as u64;
        }
        Ok(())
    }

    /// An order as replayed, over the stored version (`0`: a missing row).
    pub(super) fn order(&mut self, mut order: Order, stored_version: u64) -> bool {
        order.version = stored_version + 1;
        self.push(StateChange::Order {
            order: Box::new(order),
            expected: stored_version,
        })
    }

    /// An account as replayed, keeping the stored row's version and its
    /// legacy high-water field.
    pub(super) fn account(&mut self, mut account: Account, stored: &Account, version: u64) -> bool {
        account.high_water_mark = stored.high_water_mark;
        account.version = version + 1;
        self.push(StateChange::Account {
            account: Box::new(account),
            expected: version,
            reservations: ReservationWrite::All,
        })
    }

    /// An account the store does not have.
    pub(super) fn new_account(&mut self, mut account: Account) -> bool {
        account.version = 1;
        self.push(StateChange::Account {
            account: Box::new(account),
            expected: 0,
            reservations: ReservationWrite::All,
        })
    }

    /// A position as replayed, over the stored version (`0`: a missing row).
    pub(super) fn position(&mut self, mut position: Position, stored_version: u64) -> bool {
        position.version = stored_version + 1;
        self.push(StateChange::Position {
            position: Box::new(position),
            expected: stored_version,
        })
    }

    /// The stored strategy with what the log determines (user, type) and the
    /// rebuilt statistics.
    pub(super) fn strategy(&mut self, stored: &Strategy, replayed: &ReplayedStrategy) -> bool {
        let mut s = stored.clone();
        s.user_id = replayed.strategy.user_id.clone();
        s.strategy_type = replayed.strategy.strategy_type.clone();
        s.stats = replayed.stats.clone();
        s.sequence = replayed.sequence;
        s.version = stored.version + 1;
        self.push(StateChange::Strategy {
            strategy: Box::new(s),
            expected: stored.version,
        })
    }

    /// Writes the rebuilt statistics when they differ from the stored ones.
    pub(super) fn strategy_stats(&mut self, stored: &Strategy, replayed: &ReplayedStrategy) {
        if stored.stats != replayed.stats {
            self.strategy(stored, replayed);
        }
    }

    /// A strategy the log created and did not delete, missing from the store.
    pub(super) fn new_strategy(&mut self, replayed: &ReplayedStrategy) -> bool {
        let mut s = replayed.strategy.clone();
        s.stats = replayed.stats.clone();
        s.sequence = replayed.sequence;
        s.version = 1;
        self.push(StateChange::Strategy {
            strategy: Box::new(s),
            expected: 0,
        })
    }

    /// A strategy the log deleted that the store still has.
    pub(super) fn delete_strategy(&mut self, stored: &Strategy) -> bool {
        self.push(StateChange::DeleteStrategy {
            id: stored.id.clone(),
            user_id: stored.user_id.clone(),
            expected: stored.version,
        })
    }
}
