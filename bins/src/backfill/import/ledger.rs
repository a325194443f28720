//! The import's write model: users' accounts and positions and the orders a
//! batch touches, held in memory, changed only through the domain's own
//! methods, and recorded exactly as a user's owner records a cycle — each
//! entity's version bumped once per batch, every change an event with the
//! aggregate's next sequence, one outbox row per event — so that the event log
//! and the projections stay what the engine would have made of the same rows.
//!
//! A batch becomes one [`ChangeSet`]. The ledger keeps the newest state of
//! what the batch in flight wrote (its commit overlaps the next batch's
//! preparation), so the next batch never reads a stale copy from the store.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordermon_application::persistence::Persistence;
use ordermon_domain::account::Account;
use ordermon_domain::event::{
    AccountEvent, DomainEvent, EventPayload, PositionEvent, position_aggregate_id,
};
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{Order, OrderEvent};
use ordermon_domain::ports::{ChangeSet, ReservationWrite, StateChange, StoreError};
use ordermon_domain::position::Position;
use ordermon_domain::risk::RiskParams;
use uuid::Uuid;

/// Users whose state is cached before idle ones are dropped.
const MAX_USERS: usize = 50_000;

/// One user's state as the import holds it.
#[derive(Debug, Clone)]
pub(crate) struct UserBook {
    pub(crate) account: Account,
    pub(crate) positions: HashMap<InstrumentId, Position>,
    /// The last batch that changed it.
    batch: u64,
}

/// An order held in memory, and the last batch that loaded or changed it.
#[derive(Debug, Clone)]
struct Held {
    order: Order,
    batch: u64,
}

/// What a batch changed: expected versions, fills and events, in order.
#[derive(Debug, Default)]
struct Pending {
    orders: HashMap<OrderId, u64>,
    order_seq: Vec<OrderId>,
    accounts: HashMap<UserId, u64>,
    account_seq: Vec<UserId>,
    positions: HashMap<(UserId, InstrumentId), u64>,
    position_seq: Vec<(UserId, InstrumentId)>,
    fills: Vec<Fill>,
    events: Vec<DomainEvent>,
}

/// The import's write model.
pub(crate) struct Ledger {
    persistence: Persistence,
    pub(crate) risk: RiskParams,
    instruments: HashMap<InstrumentId, Arc<Instrument>>,
    /// `None`: known not to exist.
    users: HashMap<UserId, Option<UserBook>>,
    orders: HashMap<OrderId, Held>,
    by_client: HashMap<(UserId, ClientOrderId), OrderId>,
    /// Keep every order in memory (dry runs: the store never catches up).
    keep_all: bool,
    /// Whether events also go to the outbox (`--publish`).
    publish: bool,
    /// The batch being prepared.
    batch: u64,
    pending: Pending,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("users", &self.users.len())
            .field("orders", &self.orders.len())
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// A ledger over `persistence`, with the instrument catalog loaded.
    pub(crate) async fn new(
        persistence: Persistence,
        risk: RiskParams,
        keep_all: bool,
        publish: bool,
    ) -> Result<Self, StoreError> {
        let instruments = persistence
            .instruments
            .list_instruments()
            .await?
            .into_iter()
            .map(|i| (i.id.clone(), Arc::new(i)))
            .collect();
        Ok(Self {
            persistence,
            risk,
            instruments,
            users: HashMap::new(),
            orders: HashMap::new(),
            by_client: HashMap::new(),
            keep_all,
            publish,
            batch: 1,
            pending: Pending::default(),
        })
    }

    pub(crate) fn instrument(&self, id: &InstrumentId) -> Option<Arc<Instrument>> {
        self.instruments.get(id).cloned()
    }

    /// Loads the users not held yet (and remembers the unknown ones).
    pub(crate) async fn load_users(
        &mut self,
        ids: impl IntoIterator<Item = UserId>,
    ) -> Result<(), StoreError> {
        for id in ids {
            if self.users.contains_key(&id) {
                continue;
            }
            let p = &self.persistence;
            let book = match p.users.get_user(&id).await? {
                None => None,
                Some(user) => {
                    let account = p
                        .accounts
                        .get_account(&id)
                        .await?
                        .unwrap_or_else(|| Account::new(id.clone(), user.account_type));
                    let positions = p
                        .positions
                        .list_positions(&id)
                        .await?
                        .into_iter()
                        .map(|pos| (pos.instrument_id.clone(), pos))
                        .collect();
                    Some(UserBook {
                        account,
                        positions,
                        batch: self.batch,
                    })
                }
            };
            self.users.insert(id, book);
        }
        Ok(())
    }

    /// Loads the orders among `ids` and `keys` not held yet.
    pub(crate) async fn load_orders(
        &mut self,
        ids: Vec<OrderId>,
        keys: Vec<(UserId, ClientOrderId)>,
    ) -> Result<(), StoreError> {
        let ids: Vec<OrderId> = ids
            .into_iter()
            .filter(|id| !self.orders.contains_key(id))
            .collect();
        let keys: Vec<(UserId, ClientOrderId)> = keys
            .into_iter()
            .filter(|k| !self.by_client.contains_key(k))
            .collect();
        let mut found = Vec::new();
        if !ids.is_empty() {
            found.extend(self.persistence.orders.get_orders(&ids).await?);
        }
        if !keys.is_empty() {
            found.extend(
                self.persistence
                    .orders
                    .get_orders_by_client_ids(&keys)
                    .await?,
            );
        }
        for order in found {
            // A copy held already is newer than the store's.
            if !self.orders.contains_key(&order.id) {
                self.hold(order);
            }
        }
        Ok(())
    }

    fn hold(&mut self, order: Order) {
        self.by_client.insert(
            (order.user_id.clone(), order.client_order_id.clone()),
            order.id,
        );
        self.orders.insert(
            order.id,
            Held {
                order,
                batch: self.batch,
            },
        );
    }

    pub(crate) fn user(&self, id: &UserId) -> Option<&UserBook> {
        self.users.get(id).and_then(Option::as_ref)
    }

    pub(crate) fn order(&self, id: &OrderId) -> Option<&Order> {
        self.orders.get(id).map(|h| &h.order)
    }

    pub(crate) fn order_by_client(&self, user: &UserId, cid: &ClientOrderId) -> Option<&Order> {
        self.by_client
            .get(&(user.clone(), cid.clone()))
            .and_then(|id| self.order(id))
    }

    // ----- recording changes (as the owner's cycle does) -----

    fn event(
        aggregate_id: String,
        sequence: u64,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Uuid,
        payload: EventPayload,
    ) -> DomainEvent {
        DomainEvent::new(
            aggregate_id,
            sequence,
            Some(user.clone()),
            at,
            Some(correlation),
            payload,
        )
    }

    /// Adds a new order (status `initialized`) and its `Initialized` event.
    pub(crate) fn add_order(&mut self, order: Order, init: OrderEvent, correlation: Uuid) {
        let (id, at, user) = (order.id, order.created_at, order.user_id.clone());
        self.hold(order);
        self.touch_order(id);
        let e = Self::event(
            id.to_string(),
            1,
            &user,
            at,
            correlation,
            EventPayload::Order(init),
        );
        self.pending.events.push(e);
    }

    fn touch_order(&mut self, id: OrderId) {
        if let Some(held) = self.orders.get_mut(&id) {
            held.batch = self.batch;
            if let std::collections::hash_map::Entry::Vacant(e) = self.pending.orders.entry(id) {
                e.insert(held.order.version);
                held.order.version += 1;
                self.pending.order_seq.push(id);
            }
        }
    }

    /// Applies an event to a held order and records it. Nothing changes on error.
    pub(crate) fn order_event(
        &mut self,
        id: OrderId,
        event: OrderEvent,
        at: DateTime<Utc>,
        correlation: Uuid,
    ) -> Result<(), String> {
        let Some(held) = self.orders.get_mut(&id) else {
            return Err("unknown order".to_owned());
        };
        held.order.apply(&event, at).map_err(|e| e.to_string())?;
        let (seq, user) = (held.order.sequence, held.order.user_id.clone());
        self.touch_order(id);
        let e = Self::event(
            id.to_string(),
            seq,
            &user,
            at,
            correlation,
            EventPayload::Order(event),
        );
        self.pending.events.push(e);
        Ok(())
    }

    fn book<'a>(
        users: &'a mut HashMap<UserId, Option<UserBook>>,
        user: &UserId,
        batch: u64,
    ) -> Result<&'a mut UserBook, String> {
        let book = users
            .get_mut(user)
            .and_then(Option::as_mut)
            .ok_or_else(|| "user_id: unknown user".to_owned())?;
        book.batch = batch;
        Ok(book)
    }

    /// Changes a user's account and records the event `change` returns.
    pub(crate) fn account_event(
        &mut self,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Uuid,
        change: impl FnOnce(&mut Account) -> AccountEvent,
    ) -> Result<(), String> {
        let book = Self::book(&mut self.users, user, self.batch)?;
        let event = change(&mut book.account);
        if !self.pending.accounts.contains_key(user) {
            self.pending
                .accounts
                .insert(user.clone(), book.account.version);
            self.pending.account_seq.push(user.clone());
            book.account.version += 1;
        }
        book.account.sequence += 1;
        let e = Self::event(
            user.to_string(),
            book.account.sequence,
            user,
            at,
            correlation,
            EventPayload::Account(event),
        );
        self.pending.events.push(e);
        Ok(())
    }

    /// Changes a user's position in an instrument (flat when new) and records
    /// the event `change` returns.
    pub(crate) fn position_event(
        &mut self,
        user: &UserId,
        instrument: &Instrument,
        at: DateTime<Utc>,
        correlation: Uuid,
        change: impl FnOnce(&mut Position) -> PositionEvent,
    ) -> Result<(), String> {
        let book = Self::book(&mut self.users, user, self.batch)?;
        let position = book
            .positions
            .entry(instrument.id.clone())
            .or_insert_with(|| {
                Position::flat(
                    user.clone(),
                    instrument.id.clone(),
                    instrument.quote_currency.clone(),
                    instrument.multiplier,
                    at,
                )
            });
        let event = change(position);
        let key = (user.clone(), instrument.id.clone());
        if !self.pending.positions.contains_key(&key) {
            self.pending.positions.insert(key.clone(), position.version);
            self.pending.position_seq.push(key);
            position.version += 1;
        }
        position.sequence += 1;
        let e = Self::event(
            position_aggregate_id(user, &instrument.id),
            position.sequence,
            user,
            at,
            correlation,
            EventPayload::Position(event),
        );
        self.pending.events.push(e);
        Ok(())
    }

    pub(crate) fn add_fill(&mut self, fill: Fill) {
        self.pending.fills.push(fill);
    }

    /// Ends the batch being prepared: its writes as one change set (empty
    /// when it changed nothing). The next batch starts.
    pub(crate) fn take_batch(&mut self) -> Result<ChangeSet, String> {
        let pending = std::mem::take(&mut self.pending);
        let mut cs = ChangeSet::default();
        for id in &pending.order_seq {
            let (Some(expected), Some(held)) = (pending.orders.get(id), self.orders.get(id)) else {
                return Err(format!("order {id} left the batch"));
            };
            cs.changes.push(StateChange::Order {
                order: Box::new(held.order.clone()),
                expected: *expected,
            });
        }
        for fill in pending.fills {
            cs.changes.push(StateChange::Fill(Box::new(fill)));
        }
        for user in &pending.account_seq {
            if let (Some(expected), Some(book)) = (pending.accounts.get(user), self.user(user)) {
                cs.changes.push(StateChange::Account {
                    account: Box::new(book.account.clone()),
                    expected: *expected,
                    reservations: ReservationWrite::All,
                });
            }
        }
        for key in &pending.position_seq {
            let position = self.user(&key.0).and_then(|b| b.positions.get(&key.1));
            if let (Some(expected), Some(p)) = (pending.positions.get(key), position) {
                cs.changes.push(StateChange::Position {
                    position: Box::new(p.clone()),
                    expected: *expected,
                });
            }
        }
        if self.publish {
            cs.push_events(pending.events)
                .map_err(|e| format!("cannot serialize an event: {e}"))?;
        } else {
            cs.events = pending.events;
        }
        self.batch += 1;
        Ok(cs)
    }

    /// Called once every batch before the one being prepared is durable:
    /// drops what the store now holds anyway (unless keeping everything).
    pub(crate) fn committed_before_current(&mut self) {
        if self.keep_all {
            return;
        }
        // Orders and users last touched by a batch already committed.
        let current = self.batch;
        let last = current.saturating_sub(1);
        self.orders.retain(|_, h| h.batch >= last);
        let orders = &self.orders;
        self.by_client.retain(|_, id| orders.contains_key(id));
        if self.users.len() > MAX_USERS {
            self.users
                .retain(|_, b| b.as_ref().is_some_and(|b| b.batch >= last));
        }
    }

    /// Forgets everything held (after a failed commit: memory is ahead of the store).
    pub(crate) fn forget(&mut self) {
        self.users.clear();
        self.orders.clear();
        self.by_client.clear();
        self.pending = Pending::default();
    }
}
