//! Query repositories: the read side of the store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::store::{OutboxMessage, StoreError};
use crate::account::Account;
use crate::alert::{
    Alert, AlertState, Fingerprint, NotificationRecord, RuleOverride, Severity, Silence,
};
use crate::credential::{PasswordHash, RefreshHash, Session, StoredPassword};
use crate::event::{AggregateType, DomainEvent};
use crate::fill::Fill;
use crate::ids::{
    AlertId, ClientOrderId, InstrumentId, NotificationId, OrderId, RuleName, SessionId, SilenceId,
    StrategyId, UserId,
};
use crate::instrument::Instrument;
use crate::market::{Bar, BarInterval};
use crate::order::{Order, OrderStatus};
use crate::position::Position;
use crate::strategy::{Strategy, StrategyStatus};
use crate::user::{User, UserStatus};

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Filters for listing orders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderQuery {
    /// Only this user's orders (`None` = every user, admin only).
    pub user_id: Option<UserId>,
    /// Only these statuses (empty = any).
    pub statuses: Vec<OrderStatus>,
    /// Only this instrument.
    pub instrument_id: Option<InstrumentId>,
    /// Only this strategy.
    pub strategy_id: Option<StrategyId>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Orders older than this id (ids are UUIDv7, so this is time order).
    pub before: Option<OrderId>,
    /// Page size.
    pub limit: u32,
}

/// Filters for listing fills.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillQuery {
    /// Owner.
    pub user_id: Option<UserId>,
    /// One order's fills.
    pub order_id: Option<OrderId>,
    /// One instrument.
    pub instrument_id: Option<InstrumentId>,
    /// Fills with a log position before this (cursor).
    pub before: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// Filters for listing alerts. Label filters are applied by the caller (labels
/// live in the alert's JSON), the others by the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// Only this user's alerts.
    pub user_id: Option<UserId>,
    /// Only these states (empty = any).
    pub states: Vec<AlertState>,
    /// Only these severities (empty = any).
    pub severities: Vec<Severity>,
    /// Only this rule's alerts.
    pub rule: Option<RuleName>,
    /// Alerts older than this id (ids are UUIDv7, so this is time order).
    pub before: Option<AlertId>,
    /// Page size.
    pub limit: u32,
}

/// Filters for listing silences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SilenceQuery {
    /// Only this tenant's silences (`None` = every silence, admin only).
    pub user_id: Option<UserId>,
    /// Only silences whose window has not ended by this time.
    pub ending_after: Option<DateTime<Utc>>,
    /// Silences older than this id.
    pub before: Option<SilenceId>,
    /// Page size.
    pub limit: u32,
}

/// Orders.
#[async_trait]
pub trait OrderRepository: Send + Sync {
    /// One order.
    ///
    /// # Errors
    /// Store failures.
    async fn get_order(&self, id: OrderId) -> Result<Option<Order>, StoreError>;
    /// One order by the client's id.
    ///
    /// # Errors
    /// Store failures.
    async fn get_order_by_client_id(
        &self,
        user: &UserId,
        client_order_id: &str,
    ) -> Result<Option<Order>, StoreError>;
    /// A page of orders, newest first.
    ///
    /// # Errors
    /// Store failures.
    async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, StoreError>;
    /// Every open order (of one user, or of all).
    ///
    /// # Errors
    /// Store failures.
    async fn open_orders(&self, user: Option<&UserId>) -> Result<Vec<Order>, StoreError>;
    /// Open orders an operator marked canceled with plain SQL (`UPDATE
    /// orders SET status = 'cancelled'` or `'canceled'`, any case, on a row
    /// still working), oldest first, at most `limit`: the monitoring scan
    /// carries each out as a real cancel. Stores without operator SQL (in
    /// memory) have none.
    ///
    /// # Errors
    /// Store failures.
    async fn cancels_requested(&self, limit: u32) -> Result<Vec<(OrderId, UserId)>, StoreError> {
        let _ = limit;
        Ok(Vec::new())
    }
    /// The orders among `ids` that exist, in no particular order (bulk
    /// lookups of imports; the default asks one id at a time).
    ///
    /// # Errors
    /// Store failures.
    async fn get_orders(&self, ids: &[OrderId]) -> Result<Vec<Order>, StoreError> {
        let mut found = Vec::new();
        for id in ids {
            found.extend(self.get_order(*id).await?);
        }
        Ok(found)
    }
    /// The orders among `keys` (user, client order id) that exist, in no
    /// particular order (the default asks one key at a time).
    ///
    /// # Errors
    /// Store failures.
    async fn get_orders_by_client_ids(
        &self,
        keys: &[(UserId, ClientOrderId)],
    ) -> Result<Vec<Order>, StoreError> {
        let mut found = Vec::new();
        for (user, cid) in keys {
            found.extend(self.get_order_by_client_id(user, cid.as_str()).await?);
        }
        Ok(found)
    }
    /// The open orders of every user in `users`, in no particular order
    /// (owners starting together load in bulk; the default asks one user at
    /// a time).
    ///
    /// # Errors
    /// Store failures.
    async fn open_orders_of(&self, users: &[UserId]) -> Result<Vec<Order>, StoreError> {
        let mut found = Vec::new();
        for user in users {
            found.extend(self.open_orders(Some(user)).await?);
        }
        Ok(found)
    }
}

/// Fills.
#[async_trait]
pub trait FillRepository: Send + Sync {
    /// A page of fills, newest first, with the cursor of each.
    ///
    /// # Errors
    /// Store failures.
    async fn list_fills(&self, query: &FillQuery) -> Result<Vec<(i64, Fill)>, StoreError>;
}

/// Positions.
#[async_trait]
pub trait PositionRepository: Send + Sync {
    /// One position.
    ///
    /// # Errors
    /// Store failures.
    async fn get_position(
        &self,
        user: &UserId,
        instrument: &InstrumentId,
    ) -> Result<Option<Position>, StoreError>;
    /// A user's positions (open and closed).
    ///
    /// # Errors
    /// Store failures.
    async fn list_positions(&self, user: &UserId) -> Result<Vec<Position>, StoreError>;
    /// The positions of every user in `users`, in no particular order (the
    /// default asks one user at a time).
    ///
    /// # Errors
    /// Store failures.
    async fn positions_of(&self, users: &[UserId]) -> Result<Vec<Position>, StoreError> {
        let mut found = Vec::new();
        for user in users {
            found.extend(self.list_positions(user).await?);
        }
        Ok(found)
    }
}

/// Accounts.
#[async_trait]
pub trait AccountRepository: Send + Sync {
    /// A user's account.
    ///
    /// # Errors
    /// Store failures.
    async fn get_account(&self, user: &UserId) -> Result<Option<Account>, StoreError>;
    /// The accounts among `users` that exist, in no particular order (the
    /// default asks one user at a time).
    ///
    /// # Errors
    /// Store failures.
    async fn get_accounts(&self, users: &[UserId]) -> Result<Vec<Account>, StoreError> {
        let mut found = Vec::new();
        for user in users {
            found.extend(self.get_account(user).await?);
        }
        Ok(found)
    }
}

/// Users.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// One user.
    ///
    /// # Errors
    /// Store failures.
    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError>;
    /// Users after a cursor id, by id.
    ///
    /// # Errors
    /// Store failures.
    async fn list_users(&self, after: Option<&UserId>, limit: u32)
    -> Result<Vec<User>, StoreError>;
    /// Every user's id and status (the monitoring scan; cheap).
    ///
    /// # Errors
    /// Store failures.
    async fn user_statuses(&self) -> Result<Vec<(UserId, UserStatus)>, StoreError>;
    /// A stamp of what [`user_statuses`](Self::user_statuses) would return:
    /// two reads give the same stamp only if no user was added, removed or
    /// changed status between them (a change counter, or a 64-bit hash of
    /// the rows where changes can come from outside the store, such as plain
    /// SQL). `None` (the default): this store keeps none; read the statuses.
    /// Read before the statuses it stands for, so a change in between shows
    /// as a new stamp next time.
    ///
    /// # Errors
    /// Store failures.
    async fn user_status_stamp(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// The users among `ids` that exist, in no particular order (the default
    /// asks one id at a time).
    ///
    /// # Errors
    /// Store failures.
    async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let mut found = Vec::new();
        for id in ids {
            found.extend(self.get_user(id).await?);
        }
        Ok(found)
    }
}

/// Strategies.
#[async_trait]
pub trait StrategyRepository: Send + Sync {
    /// One of a user's strategies (strategy ids are unique per user).
    ///
    /// # Errors
    /// Store failures.
    async fn get_strategy(
        &self,
        user: &UserId,
        id: &StrategyId,
    ) -> Result<Option<Strategy>, StoreError>;
    /// A user's strategies.
    ///
    /// # Errors
    /// Store failures.
    async fn list_strategies(&self, user: &UserId) -> Result<Vec<Strategy>, StoreError>;
    /// The strategies of every user in `users`, in no particular order (the
    /// default asks one user at a time).
    ///
    /// # Errors
    /// Store failures.
    async fn strategies_of(&self, users: &[UserId]) -> Result<Vec<Strategy>, StoreError> {
        let mut found = Vec::new();
        for user in users {
            found.extend(self.list_strategies(user).await?);
        }
        Ok(found)
    }
    /// Every strategy's id, user, status and version (the monitoring scan; cheap).
    ///
    /// # Errors
    /// Store failures.
    async fn strategy_statuses(
        &self,
    ) -> Result<Vec<(StrategyId, UserId, StrategyStatus, u64)>, StoreError>;
    /// A stamp of what [`strategy_statuses`](Self::strategy_statuses) would
    /// return, as [`UserRepository::user_status_stamp`] is of the users'.
    ///
    /// # Errors
    /// Store failures.
    async fn strategy_stamp(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}

/// Instruments.
#[async_trait]
pub trait InstrumentRepository: Send + Sync {
    /// One instrument.
    ///
    /// # Errors
    /// Store failures.
    async fn get_instrument(&self, id: &InstrumentId) -> Result<Option<Instrument>, StoreError>;
    /// All instruments.
    ///
    /// # Errors
    /// Store failures.
    async fn list_instruments(&self) -> Result<Vec<Instrument>, StoreError>;
}

/// An event as stored, with its global position in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Global, strictly increasing position.
    pub position: i64,
    /// The event.
    pub event: DomainEvent,
}

/// The event log (audit trail).
#[async_trait]
pub trait EventLog: Send + Sync {
    /// One aggregate's events in sequence order.
    ///
    /// # Errors
    /// Store failures.
    async fn aggregate_events(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Events after a global position, optionally one user's only.
    ///
    /// # Errors
    /// Store failures.
    async fn events_after(
        &self,
        after: i64,
        user: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
}

/// A row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Commit-order id.
    pub id: i64,
    /// The message.
    pub message: OutboxMessage,
}

/// The outbox the relay drains.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Unsent rows in commit order.
    ///
    /// # Errors
    /// Store failures.
    async fn pending(&self, limit: u32) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Marks rows sent; returns how many were still unsent (each row is marked
    /// exactly once, so a second call for the same ids returns 0).
    ///
    /// # Errors
    /// Store failures.
    async fn mark_sent(&self, ids: &[i64]) -> Result<u64, StoreError>;
    /// Number of unsent rows.
    ///
    /// # Errors
    /// Store failures.
    async fn pending_count(&self) -> Result<u64, StoreError>;
    /// Deletes rows that were marked sent before `sent_before` and lie before
    /// the oldest unsent row (an unsent row is never deleted, whatever its
    /// age); returns how many went. The event log keeps every event: the
    /// outbox is only the relay's queue.
    ///
    /// # Errors
    /// Store failures.
    async fn purge_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Alerts.
#[async_trait]
pub trait AlertRepository: Send + Sync {
    /// One alert.
    ///
    /// # Errors
    /// Store failures.
    async fn get_alert(&self, id: AlertId) -> Result<Option<Alert>, StoreError>;
    /// The latest unresolved alert with a fingerprint.
    ///
    /// # Errors
    /// Store failures.
    async fn active_by_fingerprint(&self, fp: Fingerprint) -> Result<Option<Alert>, StoreError>;
    /// A listing, newest first.
    ///
    /// # Errors
    /// Store failures.
    async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError>;
}

/// Silences.
#[async_trait]
pub trait SilenceRepository: Send + Sync {
    /// One silence.
    ///
    /// # Errors
    /// Store failures.
    async fn get_silence(&self, id: SilenceId) -> Result<Option<Silence>, StoreError>;
    /// A listing, newest first.
    ///
    /// # Errors
    /// Store failures.
    async fn list_silences(&self, query: &SilenceQuery) -> Result<Vec<Silence>, StoreError>;
}

/// Notifications and their delivery records: the queue the senders work
/// through, and the log of what each group was last told.
#[async_trait]
pub trait NotificationLog: Send + Sync {
    /// One record.
    ///
    /// # Errors
    /// Store failures.
    async fn get_notification(
        &self,
        id: NotificationId,
    ) -> Result<Option<NotificationRecord>, StoreError>;
    /// Pending records due at `now` (next attempt reached, no running claim),
    /// oldest first, leaving out any record with an older pending record of
    /// the same receiver and group (notifications of a group go out in order).
    ///
    /// # Errors
    /// Store failures.
    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;
    /// The newest record of each group (receiver and group id), whatever its
    /// status: what each group was last told.
    ///
    /// # Errors
    /// Store failures.
    async fn latest_per_group(&self) -> Result<Vec<NotificationRecord>, StoreError>;
    /// Records newest first, optionally of one receiver.
    ///
    /// # Errors
    /// Store failures.
    async fn list_notifications(
        &self,
        receiver: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;
    /// Deletes delivered or failed records created before `before`, except the
    /// newest record of each group (which [`Self::latest_per_group`] needs);
    /// returns how many went.
    ///
    /// # Errors
    /// Store failures.
    async fn purge_notifications(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Per-user overrides of alert rules.
#[async_trait]
pub trait AlertRuleRepository: Send + Sync {
    /// Every override, or one user's.
    ///
    /// # Errors
    /// Store failures.
    async fn list_rule_overrides(
        &self,
        user: Option<&UserId>,
    ) -> Result<Vec<RuleOverride>, StoreError>;
    /// One override.
    ///
    /// # Errors
    /// Store failures.
    async fn get_rule_override(
        &self,
        rule: &RuleName,
        user: &UserId,
    ) -> Result<Option<RuleOverride>, StoreError>;
}

/// Market bars (reference data, not transactional with orders).
#[async_trait]
pub trait BarRepository: Send + Sync {
    /// Inserts or replaces bars; returns how many were written.
    ///
    /// # Errors
    /// Store failures.
    async fn upsert_bars(&self, bars: &[Bar]) -> Result<u64, StoreError>;
    /// Bars in `[from, to)`, oldest first.
    ///
    /// # Errors
    /// Store failures.
    async fn bars(
        &self,
        instrument: &InstrumentId,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, StoreError>;
}

/// Password sign-in: one password hash per user and the sign-in sessions
/// (written directly, outside the event-sourced batches: credentials are not
/// trading state and have no events). Nothing here sees a password or a
/// refresh secret, only their hashes.
#[async_trait]
pub trait CredentialRepository: Send + Sync {
    /// Stores (inserts or replaces) a user's password hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (entity `user`) for an unknown user; store
    /// failures.
    async fn set_password_hash(
        &self,
        user: &UserId,
        hash: &PasswordHash,
        updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A user's password hash, if one was set.
    ///
    /// # Errors
    /// Store failures.
    async fn password_hash(&self, user: &UserId) -> Result<Option<StoredPassword>, StoreError>;
    /// Records a new session.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (entity `user`) for an unknown user,
    /// [`StoreError::Duplicate`] for an id in use; store failures.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    /// One session, revoked or expired ones included.
    ///
    /// # Errors
    /// Store failures.
    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// Replaces the refresh hash of an unrevoked session if it is still `old`
    /// (compare-and-swap, so of two refreshes with the same secret only one
    /// wins), setting `last_used_at`; false when the session is unknown,
    /// revoked, or its hash is no longer `old`.
    ///
    /// # Errors
    /// Store failures.
    async fn rotate_refresh_hash(
        &self,
        id: SessionId,
        old: &RefreshHash,
        new: &RefreshHash,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Revokes one session; false when it is unknown or was already revoked
    /// (its first revocation time is kept).
    ///
    /// # Errors
    /// Store failures.
    async fn revoke_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Revokes every unrevoked session of a user; returns how many.
    ///
    /// # Errors
    /// Store failures.
    async fn revoke_user_sessions(
        &self,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// A user's sessions that are live at `at` (unrevoked, expiring after
    /// it), newest first.
    ///
    /// # Errors
    /// Store failures.
    async fn live_sessions(
        &self,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError>;
    /// Deletes sessions that expired before `before`, revoked or not;
    /// returns how many went.
    ///
    /// # Errors
    /// Store failures.
    async fn purge_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
