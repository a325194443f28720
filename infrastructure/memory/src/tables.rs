//! The in-memory tables and how one batch is applied to them, all or nothing.
//!
//! Each write records how to undo itself; a batch that fails part-way runs its
//! undo log backwards, so nothing of it stays visible. This mirrors a SQL
//! transaction (and, for group commit, a savepoint per batch).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use chrono::{DateTime, Utc};
use ordermon_domain::account::Account;
use ordermon_domain::alert::{Alert, NotificationRecord, RuleOverride, Silence};
use ordermon_domain::credential::{Session, StoredPassword};
use ordermon_domain::event::{DomainEvent, position_aggregate_id};
use ordermon_domain::fill::Fill;
use ordermon_domain::high_water::HighWaterMark;
use ordermon_domain::ids::{
    AlertId, EventId, InstrumentId, NotificationId, OrderId, RuleName, SessionId, SilenceId,
    StrategyId, TradeId, UserId,
};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Bar;
use ordermon_domain::order::Order;
use ordermon_domain::ports::{
    ChangeSet, CommitReceipt, OutboxMessage, ReservationWrite, StateChange, StoreError,
};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;
use ordermon_domain::user::User;

use crate::log_rows::LogRows;

/// Key of one aggregate's event stream: aggregate type name and id.
pub(crate) type StreamKey = (&'static str, String);

/// Key of one bar: instrument, interval name, open time.
pub(crate) type BarKey = (InstrumentId, &'static str, DateTime<Utc>);

/// Every table of the store.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub(crate) orders: BTreeMap<OrderId, Order>,
    /// `(user, client_order_id)` → order, the unique index on orders.
    pub(crate) client_ids: BTreeMap<(UserId, String), OrderId>,
    /// Fills by their insertion position (the listing cursor).
    pub(crate) fills: BTreeMap<i64, Fill>,
    /// The unique index `(order_id, trade_id)` on fills.
    pub(crate) fill_keys: BTreeSet<(OrderId, TradeId)>,
    pub(crate) positions: BTreeMap<(UserId, InstrumentId), Position>,
    pub(crate) accounts: BTreeMap<UserId, Account>,
    pub(crate) users: BTreeMap<UserId, User>,
    /// By owner, then id: strategy ids are unique per user.
    pub(crate) strategies: BTreeMap<(UserId, StrategyId), Strategy>,
    pub(crate) instruments: BTreeMap<InstrumentId, Instrument>,
    pub(crate) alerts: BTreeMap<AlertId, Alert>,
    pub(crate) silences: BTreeMap<SilenceId, Silence>,
    /// Notification records by id (UUIDv7, so creation order).
    pub(crate) notifications: BTreeMap<NotificationId, NotificationRecord>,
    pub(crate) rule_overrides: BTreeMap<(RuleName, UserId), RuleOverride>,
    /// The event log by global position.
    pub(crate) events: LogRows<DomainEvent>,
    /// The unique index on event ids.
    pub(crate) event_ids: BTreeSet<EventId>,
    /// Per-aggregate streams: `(sequence, global position)` pairs ordered by
    /// sequence, unique per aggregate and sequence (a stream holds a few
    /// events: a short list, not a tree node per aggregate).
    pub(crate) streams: BTreeMap<StreamKey, Vec<(u64, i64)>>,
    /// Outbox rows by commit-order id, with their sent flag.
    pub(crate) outbox: BTreeMap<i64, (OutboxRow, Option<DateTime<Utc>>)>,
    /// The ids of the outbox rows not yet sent (the relay's index: a poll reads
    /// these, never the sent rows).
    pub(crate) outbox_pending: BTreeSet<i64>,
    pub(crate) bars: BTreeMap<BarKey, Bar>,
    pub(crate) high_water: BTreeMap<UserId, HighWaterMark>,
    /// Password hashes by user (written outside batches: no events).
    pub(crate) passwords: BTreeMap<UserId, StoredPassword>,
    /// Sign-in sessions by id (UUIDv7, so creation order).
    pub(crate) sessions: BTreeMap<SessionId, Session>,
    pub(crate) counters: Counters,
    /// Changes of a user's presence or status so far (the users' stamp for
    /// the monitoring scan: it moves whenever what the scan reads could have).
    pub(crate) user_status_changes: u64,
    /// Writes of strategies so far (the strategies' stamp).
    pub(crate) strategy_changes: u64,
}

/// An outbox row as held here.
///
/// Nearly every message relays an event of the same batch exactly as
/// [`OutboxMessage::for_event`] renders it; such a row names the event's log
/// position instead of holding a second copy of it as JSON (the copy was
/// most of the outbox's memory), and the message is rendered again when the
/// relay reads it. Any other message is kept as it came.
#[derive(Debug)]
pub(crate) enum OutboxRow {
    /// A message kept as it came (boxed: the rows that name an event, nearly
    /// all of them, stay small).
    Message(Box<OutboxMessage>),
    /// The rendering of the event at `position`, with the commit's trace.
    Event {
        position: i64,
        traceparent: Option<String>,
    },
}

impl OutboxRow {
    /// The row for `message`, whose batch appended `events` at `positions`.
    fn new(message: OutboxMessage, events: &[(i64, &DomainEvent)]) -> Self {
        let Some((position, event)) = events.iter().find(|(_, e)| e.event_id == message.event_id)
        else {
            return Self::Message(Box::new(message));
        };
        // Exact or not at all: the relay must publish what was written.
        let same = OutboxMessage::for_event(event).is_ok_and(|mut rendered| {
            rendered.traceparent.clone_from(&message.traceparent);
            rendered == message
        });
        if same {
            Self::Event {
                position: *position,
                traceparent: message.traceparent,
            }
        } else {
            Self::Message(Box::new(message))
        }
    }

    /// The message this row holds.
    pub(crate) fn message(
        &self,
        events: &LogRows<DomainEvent>,
    ) -> Result<OutboxMessage, StoreError> {
        match self {
            Self::Message(m) => Ok(OutboxMessage::clone(m)),
            Self::Event {
                position,
                traceparent,
            } => {
                // A row's event is removed only by undoing its batch, which
                // removes the row first.
                let event = events.get(*position).ok_or_else(|| {
                    StoreError::Corrupt(format!("outbox row of missing event {position}"))
                })?;
                let mut m = OutboxMessage::for_event(event)
                    .map_err(|e| StoreError::Corrupt(format!("outbox row: {e}")))?;
                m.traceparent.clone_from(traceparent);
                Ok(m)
            }
        }
    }
}

/// The autoincrement counters (last value handed out).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) fill: i64,
    pub(crate) event: i64,
    pub(crate) outbox: i64,
}

type UndoFn = Box<dyn FnOnce(&mut Tables) + Send>;

/// The undo log of the batch being applied.
struct Undo {
    steps: Vec<UndoFn>,
    counters: Counters,
}

impl Undo {
    fn push(&mut self, f: impl FnOnce(&mut Tables) + Send + 'static) {
        self.steps.push(Box::new(f));
    }
}

/// Restores a map entry to what it was before a write.
fn swap<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, prev: Option<V>) {
    match prev {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}

/// Checks an expected version against the stored one and the new value's.
fn check_version(
    entity: &'static str,
    id: impl Display,
    actual: Option<u64>,
    expected: u64,
    new_version: u64,
) -> Result<(), StoreError> {
    let ok_now = match actual {
        None => expected == 0,
        Some(v) => expected != 0 && v == expected,
    };
    if !ok_now || new_version != expected.saturating_add(1) {
        return Err(StoreError::Conflict {
            entity,
            id: id.to_string(),
            expected,
            actual,
        });
    }
    Ok(())
}

impl Tables {
    /// Applies one batch; on failure everything it did is undone.
    pub(crate) fn apply(&mut self, batch: ChangeSet) -> Result<CommitReceipt, StoreError> {
        let mut undo = Undo {
            steps: Vec::new(),
            counters: self.counters,
        };
        match self.apply_inner(batch, &mut undo) {
            Ok(receipt) => Ok(receipt),
            Err(e) => {
                while let Some(step) = undo.steps.pop() {
                    step(self);
                }
                self.counters = undo.counters;
                Err(e)
            }
        }
    }

    fn apply_inner(
        &mut self,
        batch: ChangeSet,
        undo: &mut Undo,
    ) -> Result<CommitReceipt, StoreError> {
        for change in batch.changes {
            self.apply_change(change, undo)?;
        }
        let mut event_positions = Vec::with_capacity(batch.events.len());
        for event in batch.events {
            event_positions.push(self.append_event(event, undo)?);
        }
        let appended: Vec<(i64, &DomainEvent)> = event_positions
            .iter()
            .filter_map(|p| self.events.get(*p).map(|e| (*p, e)))
            .collect();
        let rows: Vec<OutboxRow> = batch
            .outbox
            .into_iter()
            .map(|m| OutboxRow::new(m, &appended))
            .collect();
        for row in rows {
            self.counters.outbox += 1;
            let id = self.counters.outbox;
            self.outbox.insert(id, (row, None));
            self.outbox_pending.insert(id);
            undo.push(move |t| {
                t.outbox.remove(&id);
                t.outbox_pending.remove(&id);
            });
        }
        Ok(CommitReceipt { event_positions })
    }

    fn append_event(&mut self, event: DomainEvent, undo: &mut Undo) -> Result<i64, StoreError> {
        let stream: StreamKey = (event.aggregate_type.as_str(), event.aggregate_id.clone());
        if self.event_ids.contains(&event.event_id) {
            return Err(StoreError::Duplicate {
                entity: "event",
                id: event.event_id.to_string(),
            });
        }
        let at = match self.streams.get(&stream) {
            Some(s) => s.binary_search_by_key(&event.sequence, |(seq, _)| *seq),
            None => Err(0),
        };
        let Err(at) = at else {
            return Err(StoreError::Duplicate {
                entity: "event",
                id: format!("{}/{}#{}", stream.0, stream.1, event.sequence),
            });
        };
        self.counters.event += 1;
        let position = self.counters.event;
        let (event_id, sequence) = (event.event_id, event.sequence);
        if let Err(event) = self.events.insert(position, event) {
            return Err(StoreError::Corrupt(format!(
                "event {} at log position {position}",
                event.event_id
            )));
        }
        self.event_ids.insert(event_id);
        self.streams
            .entry(stream.clone())
            .or_default()
            .insert(at, (sequence, position));
        undo.push(move |t| {
            t.events.remove(position);
            t.event_ids.remove(&event_id);
            if let Some(s) = t.streams.get_mut(&stream) {
                s.retain(|(seq, _)| *seq != sequence);
                if s.is_empty() {
                    t.streams.remove(&stream);
                }
            }
        });
        Ok(position)
    }

    /// Writes an account. With [`ReservationWrite::Orders`] only the named
    /// orders' reservations are taken from `account`; the rest stay as
    /// stored, as the SQL store keeps them.
    fn put_account(
        &mut self,
        mut account: Account,
        expected: u64,
        reservations: ReservationWrite,
        undo: &mut Undo,
    ) -> Result<(), StoreError> {
        let key = account.user_id.clone();
        let actual = self.accounts.get(&key).map(|a| a.version);
        check_version("account", &key, actual, expected, account.version)?;
        let ReservationWrite::Orders(ids) = reservations else {
            let prev = self.accounts.insert(key.clone(), account);
            undo.push(move |t| swap(&mut t.accounts, key, prev));
            return Ok(());
        };
        // Move the stored map over and apply the named orders to it, so
        // that the cost follows the orders changed, not the orders open.
        let mut map = self
            .accounts
            .get_mut(&key)
            .map(|a| std::mem::take(&mut a.reservations))
            .unwrap_or_default();
        let mut old = Vec::with_capacity(ids.len());
        for id in ids {
            let prev = match account.reservations.remove(&id) {
                Some(r) => map.insert(id, r),
                None => map.remove(&id),
            };
            old.push((id, prev));
        }
        account.reservations = map;
        let prev = self.accounts.insert(key.clone(), account);
        undo.push(move |t| {
            let Some(mut current) = t.accounts.remove(&key) else {
                return;
            };
            let mut map = std::mem::take(&mut current.reservations);
            for (id, r) in old {
                match r {
                    Some(r) => map.insert(id, r),
                    None => map.remove(&id),
                };
            }
            if let Some(mut p) = prev {
                p.reservations = map;
                t.accounts.insert(key, p);
            }
        });
        Ok(())
    }

    fn apply_change(&mut self, change: StateChange, undo: &mut Undo) -> Result<(), StoreError> {
        match change {
            StateChange::Order { order, expected } => self.put_order(*order, expected, undo),
            StateChange::Fill(fill) => self.put_fill(*fill, undo),
            StateChange::Account {
                account,
                expected,
                reservations,
            } => self.put_account(*account, expected, reservations, undo),
            StateChange::Position { position, expected } => {
                let key = (position.user_id.clone(), position.instrument_id.clone());
                let actual = self.positions.get(&key).map(|p| p.version);
                let id = position_aggregate_id(&key.0, &key.1);
                check_version("position", id, actual, expected, position.version)?;
                let prev = self.positions.insert(key.clone(), *position);
                undo.push(move |t| swap(&mut t.positions, key, prev));
                Ok(())
            }
            StateChange::User { user, expected } => {
                let key = user.id.clone();
                let stored = self.users.get(&key).map(|u| (u.version, u.status));
                check_version("user", &key, stored.map(|s| s.0), expected, user.version)?;
                // Undone with the batch, the count stays moved: the scan then
                // reads the statuses once for nothing, never misses a change.
                if stored.map(|s| s.1) != Some(user.status) {
                    self.user_status_changes += 1;
                }
                let prev = self.users.insert(key.clone(), *user);
                undo.push(move |t| swap(&mut t.users, key, prev));
                Ok(())
            }
            StateChange::Strategy { strategy, expected } => {
                let key = (strategy.user_id.clone(), strategy.id.clone());
                let actual = self.strategies.get(&key).map(|s| s.version);
                check_version("strategy", &key.1, actual, expected, strategy.version)?;
                self.strategy_changes += 1;
                let prev = self.strategies.insert(key.clone(), *strategy);
                undo.push(move |t| swap(&mut t.strategies, key, prev));
                Ok(())
            }
            StateChange::DeleteStrategy {
                id,
                user_id,
                expected,
            } => {
                let key = (user_id, id);
                let actual = self.strategies.get(&key).map(|s| s.version);
                if actual.is_none() || actual != Some(expected) {
                    return Err(StoreError::Conflict {
                        entity: "strategy",
                        id: key.1.to_string(),
                        expected,
                        actual,
                    });
                }
                self.strategy_changes += 1;
                let prev = self.strategies.remove(&key);
                undo.push(move |t| swap(&mut t.strategies, key, prev));
                Ok(())
            }
            StateChange::Instrument {
                instrument,
                expected,
            } => {
                let key = instrument.id.clone();
                let actual = self.instruments.get(&key).map(|i| i.version);
                check_version("instrument", &key, actual, expected, instrument.version)?;
                let prev = self.instruments.insert(key.clone(), *instrument);
                undo.push(move |t| swap(&mut t.instruments, key, prev));
                Ok(())
            }
            StateChange::Alert { alert, expected } => {
                let key = alert.id;
                let actual = self.alerts.get(&key).map(|a| a.version);
                check_version("alert", key, actual, expected, alert.version)?;
                let prev = self.alerts.insert(key, *alert);
                undo.push(move |t| swap(&mut t.alerts, key, prev));
                Ok(())
            }
            StateChange::Silence { silence, expected } => {
                let key = silence.id;
                let actual = self.silences.get(&key).map(|s| s.version);
                check_version("silence", key, actual, expected, silence.version)?;
                let prev = self.silences.insert(key, *silence);
                undo.push(move |t| swap(&mut t.silences, key, prev));
                Ok(())
            }
            StateChange::Notification { record, expected } => {
                let key = record.id();
                let actual = self.notifications.get(&key).map(|r| r.version);
                check_version("notification", key, actual, expected, record.version)?;
                let prev = self.notifications.insert(key, *record);
                undo.push(move |t| swap(&mut t.notifications, key, prev));
                Ok(())
            }
            StateChange::RuleOverride {
                rule_override,
                expected,
            } => {
                let key = (rule_override.rule.clone(), rule_override.user_id.clone());
                let actual = self.rule_overrides.get(&key).map(|o| o.version);
                let id = format!("{}/{}", key.0, key.1);
                check_version("rule_override", id, actual, expected, rule_override.version)?;
                let prev = self.rule_overrides.insert(key.clone(), *rule_override);
                undo.push(move |t| swap(&mut t.rule_overrides, key, prev));
                Ok(())
            }
            StateChange::HighWater { mark, expected } => {
                let key = mark.user_id.clone();
                let actual = self.high_water.get(&key).map(|m| m.version);
                check_version("high_water_mark", &key, actual, expected, mark.version)?;
                let prev = self.high_water.insert(key.clone(), *mark);
                undo.push(move |t| swap(&mut t.high_water, key, prev));
                Ok(())
            }
            StateChange::DeleteRuleOverride {
                rule,
                user_id,
                expected,
            } => {
                let key = (rule, user_id);
                let actual = self.rule_overrides.get(&key).map(|o| o.version);
                if actual != Some(expected) {
                    return Err(StoreError::Conflict {
                        entity: "rule_override",
                        id: format!("{}/{}", key.0, key.1),
                        expected,
                        actual,
                    });
                }
                let prev = self.rule_overrides.remove(&key);
                undo.push(move |t| swap(&mut t.rule_overrides, key, prev));
                Ok(())
            }
        }
    }

    fn put_order(
        &mut self,
        order: Order,
        expected: u64,
        undo: &mut Undo,
    ) -> Result<(), StoreError> {
        let id = order.id;
        let current = self.orders.get(&id);
        check_version(
            "order",
            id,
            current.map(|o| o.version),
            expected,
            order.version,
        )?;
        let new_key = (
            order.user_id.clone(),
            order.client_order_id.as_str().to_owned(),
        );
        let old_key = current.map(|o| (o.user_id.clone(), o.client_order_id.as_str().to_owned()));
        if old_key.as_ref() != Some(&new_key) {
            if self
                .client_ids
                .get(&new_key)
                .is_some_and(|other| *other != id)
            {
                return Err(StoreError::Duplicate {
                    entity: "order",
                    id: format!("{}/{}", new_key.0, new_key.1),
                });
            }
            if let Some(old) = old_key.clone() {
                self.client_ids.remove(&old);
            }
            self.client_ids.insert(new_key.clone(), id);
            undo.push(move |t| {
                t.client_ids.remove(&new_key);
                if let Some(old) = old_key {
                    t.client_ids.insert(old, id);
                }
            });
        }
        let prev = self.orders.insert(id, order);
        undo.push(move |t| swap(&mut t.orders, id, prev));
        Ok(())
    }

    fn put_fill(&mut self, fill: Fill, undo: &mut Undo) -> Result<(), StoreError> {
        let key = (fill.order_id, fill.trade_id.clone());
        if self.fill_keys.contains(&key) {
            return Err(StoreError::Duplicate {
                entity: "fill",
                id: format!("{}/{}", key.0, key.1),
            });
        }
        self.counters.fill += 1;
        let seq = self.counters.fill;
        self.fills.insert(seq, fill);
        self.fill_keys.insert(key.clone());
        undo.push(move |t| {
            t.fills.remove(&seq);
            t.fill_keys.remove(&key);
        });
        Ok(())
    }
}
