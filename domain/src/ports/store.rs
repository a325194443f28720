//! The transactional store: commits a batch of state changes, their events and
//! their outbox rows atomically, checking expected versions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::alert::{Alert, NotificationRecord, RuleOverride, Silence};
use crate::event::DomainEvent;
use crate::fill::Fill;
use crate::high_water::HighWaterMark;
use crate::ids::{EventId, OrderId, RuleName, StrategyId, UserId};
use crate::instrument::Instrument;
use crate::order::Order;
use crate::position::Position;
use crate::strategy::Strategy;
use crate::user::User;

/// Which of an account's reservations a [`StateChange::Account`] writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReservationWrite {
    /// Every one: the stored reservations become exactly the account's.
    #[default]
    All,
    /// Only these orders': each is stored as the account holds it, or removed
    /// when the account holds none for it; every other stays as stored (so
    /// the account given need carry only these, see
    /// [`Account::with_reservations_of`]).
    Orders(Vec<OrderId>),
}

/// One state row to write. `expected` is the version the row must have in the
/// store now (0 = the row must not exist yet); the row is written with the
/// version carried by the value, which must be `expected + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    /// Insert or update an order.
    Order {
        /// New state.
        order: Box<Order>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert a fill (insert-only; a repeated `(order_id, trade_id)` is a duplicate).
    Fill(Box<Fill>),
    /// Insert or update an account, its balances and its reservations.
    Account {
        /// New state.
        account: Box<Account>,
        /// Version it must have now.
        expected: u64,
        /// Which of its reservations to write: all of them, or only those
        /// of the orders the change touched (so that writing an account
        /// costs the same however many orders it has open).
        reservations: ReservationWrite,
    },
    /// Insert or update a position.
    Position {
        /// New state.
        position: Box<Position>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or update a user.
    User {
        /// New state.
        user: Box<User>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or update a strategy.
    Strategy {
        /// New state.
        strategy: Box<Strategy>,
        /// Version it must have now.
        expected: u64,
    },
    /// Delete a strategy.
    DeleteStrategy {
        /// Which.
        id: StrategyId,
        /// Its user.
        user_id: UserId,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or update an instrument.
    Instrument {
        /// New state.
        instrument: Box<Instrument>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or update an alert.
    Alert {
        /// New state.
        alert: Box<Alert>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or update a silence.
    Silence {
        /// New state.
        silence: Box<Silence>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or update a notification's delivery record (a claim is an
    /// update with a version check, so one instance wins it).
    Notification {
        /// New state.
        record: Box<NotificationRecord>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or update a user's override of an alert rule.
    RuleOverride {
        /// New state.
        rule_override: Box<RuleOverride>,
        /// Version it must have now.
        expected: u64,
    },
    /// Insert or raise a user's portfolio high-water mark.
    HighWater {
        /// New state.
        mark: Box<HighWaterMark>,
        /// Version it must have now.
        expected: u64,
    },
    /// Delete a user's override of an alert rule.
    DeleteRuleOverride {
        /// The rule.
        rule: RuleName,
        /// The user.
        user_id: UserId,
        /// Version it must have now.
        expected: u64,
    },
}

/// A message to relay to the bus once the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// The event it carries (consumers deduplicate on it).
    pub event_id: EventId,
    /// Routing key / topic, e.g. `order.filled.alice`.
    pub topic: String,
    /// Partition / ordering key (the user id).
    pub key: String,
    /// The serialized event (JSON).
    pub payload: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// The W3C `traceparent` of the commit that wrote it, when traces are
    /// recorded: the relay publishes the message as a child of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl OutboxMessage {
    /// The outbox row for a domain event: topic `aggregate.event.user`, keyed by user.
    ///
    /// # Errors
    /// Fails only if the event cannot be serialized.
    pub fn for_event(event: &DomainEvent) -> Result<Self, serde_json::Error> {
        let user = event.user_id.as_ref().map_or("_", UserId::as_str);
        Ok(Self {
            event_id: event.event_id,
            topic: format!("{}.{user}", event.event_type),
            key: user.to_owned(),
            payload: serde_json::to_string(event)?,
            created_at: event.occurred_at,
            traceparent: None,
        })
    }
}

/// Everything one command writes, committed all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// State rows with their version checks.
    pub changes: Vec<StateChange>,
    /// Events appended to the log.
    pub events: Vec<DomainEvent>,
    /// Messages for the relay.
    pub outbox: Vec<OutboxMessage>,
    /// Written only if the writer still holds this lease at this epoch (a
    /// user's owner when instances share users); refused with
    /// [`StoreError::Conflict`] on entity `lease` otherwise.
    pub fence: Option<super::Fence>,
}

impl ChangeSet {
    /// True when there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.events.is_empty() && self.outbox.is_empty()
    }

    /// Adds events and an outbox row for each.
    ///
    /// # Errors
    /// Fails only if an event cannot be serialized.
    pub fn push_events(
        &mut self,
        events: impl IntoIterator<Item = DomainEvent>,
    ) -> Result<(), serde_json::Error> {
        for e in events {
            self.outbox.push(OutboxMessage::for_event(&e)?);
            self.events.push(e);
        }
        Ok(())
    }
}

/// What a successful commit reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    /// Global log positions of the appended events, in order.
    pub event_positions: Vec<i64>,
}

/// Why a commit failed. Nothing of the batch was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A row's version was not the expected one (someone else wrote it).
    #[error("version conflict on {entity} {id}: expected {expected}, found {actual:?}")]
    Conflict {
        /// Table / entity.
        entity: &'static str,
        /// Row id.
        id: String,
        /// Expected version.
        expected: u64,
        /// Version found (None = row missing).
        actual: Option<u64>,
    },
    /// A unique key already exists (e.g. client order id, trade id, event id).
    #[error("duplicate {entity} {id}")]
    Duplicate {
        /// Table / entity.
        entity: &'static str,
        /// The key.
        id: String,
    },
    /// The row does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Table / entity.
        entity: &'static str,
        /// The key.
        id: String,
    },
    /// The database could not be reached, even after retries (transient).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Anything else.
    #[error("unexpected store error: {0}")]
    Unexpected(String),
}

/// The transactional write side.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Commits one batch atomically.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] or [`StoreError::Duplicate`] when a check fails
    /// (nothing written); [`StoreError::Unavailable`] after transient failures
    /// exhausted their retries.
    async fn commit(&self, batch: ChangeSet) -> Result<CommitReceipt, StoreError>;

    /// Commits many callers' batches in one transaction (group commit). Each
    /// batch succeeds or fails on its own: one caller's conflict does not fail
    /// the others. Results are in the order of `batches`.
    async fn commit_group(&self, batches: Vec<ChangeSet>)
    -> Vec<Result<CommitReceipt, StoreError>>;

    /// Checks the store can be reached.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it cannot.
    async fn health(&self) -> Result<(), StoreError>;
}
