//! Ports for maintenance tools: bulk scans of the projections (for replaying
//! the event log against them), the high-water marks, and retention.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::StoreError;
use crate::account::Account;
use crate::high_water::HighWaterMark;
use crate::ids::{InstrumentId, OrderId, StrategyId, UserId};
use crate::order::Order;
use crate::position::Position;
use crate::strategy::Strategy;

/// A projection row as stored. SQL rows keep the queried fields twice: in
/// real columns (which operators may change with plain SQL) and in the
/// entity's `data` JSON (what the application reads). `columns` is the
/// entity with every column laid over the JSON; `data` is the JSON alone.
/// A store without that split returns the same value twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow<T> {
    /// The entity with the row's columns taking precedence.
    pub columns: T,
    /// The entity as its `data` JSON holds it.
    pub data: T,
}

impl<T: Clone> StoredRow<T> {
    /// A row whose columns and data agree.
    #[must_use]
    pub fn same(value: T) -> Self {
        Self {
            columns: value.clone(),
            data: value,
        }
    }
}

/// Bulk, key-ordered scans of the projections, a page at a time. Each call
/// returns up to `limit` rows (1–10,000) with keys strictly after `after`.
#[async_trait]
pub trait ProjectionScan: Send + Sync {
    /// Orders by id.
    ///
    /// # Errors
    /// Store failures; [`StoreError::Corrupt`] for a row that cannot be decoded.
    async fn scan_orders(
        &self,
        after: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Order>>, StoreError>;
    /// Accounts with their balances, by user.
    ///
    /// # Errors
    /// Store failures.
    async fn scan_accounts(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Account>>, StoreError>;
    /// Positions by user and instrument.
    ///
    /// # Errors
    /// Store failures.
    async fn scan_positions(
        &self,
        after: Option<(&UserId, &InstrumentId)>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Position>>, StoreError>;
    /// Strategies by user, then id (strategy ids are unique per user).
    ///
    /// # Errors
    /// Store failures.
    async fn scan_strategies(
        &self,
        after: Option<&(UserId, StrategyId)>,
        limit: u32,
    ) -> Result<Vec<StoredRow<Strategy>>, StoreError>;
}

/// The stored high-water marks (written through the store as
/// [`StateChange::HighWater`](super::StateChange::HighWater)).
#[async_trait]
pub trait HighWaterRepository: Send + Sync {
    /// A user's mark.
    ///
    /// # Errors
    /// Store failures.
    async fn get_high_water(&self, user: &UserId) -> Result<Option<HighWaterMark>, StoreError>;
    /// Marks by user, after a cursor.
    ///
    /// # Errors
    /// Store failures.
    async fn list_high_water(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<HighWaterMark>, StoreError>;
}

/// What a purge with a cutoff would delete (or deleted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Bars that opened before the cutoff.
    pub bars: u64,
    /// Outbox rows sent before the cutoff (below the oldest unsent row).
    pub outbox: u64,
    /// Delivered or failed notification records created before the cutoff
    /// (the newest of each group is kept).
    pub notifications: u64,
    /// Sign-in sessions that expired before the cutoff, revoked or not.
    pub sessions: u64,
}

/// Retention: what may be deleted once it is old. The event log is never
/// touched; sent outbox rows, notification records and expired sign-in
/// sessions go through [`Outbox::purge_sent`](super::Outbox::purge_sent),
/// [`NotificationLog::purge_notifications`](super::NotificationLog::purge_notifications)
/// and [`CredentialRepository::purge_sessions`](super::CredentialRepository::purge_sessions).
#[async_trait]
pub trait Retention: Send + Sync {
    /// Counts what a purge at `before` would delete, deleting nothing (with
    /// the same rules as the purges themselves).
    ///
    /// # Errors
    /// Store failures.
    async fn purgeable(&self, before: DateTime<Utc>) -> Result<PurgeCounts, StoreError>;
    /// Deletes bars that opened before `before`; returns how many went.
    ///
    /// # Errors
    /// Store failures.
    async fn purge_bars(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
