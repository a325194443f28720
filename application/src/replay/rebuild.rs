//! Rebuilding the projections in memory from the event log, one event at a
//! time in log order: orders from their own events, accounts and positions
//! through the domain's replay steps, strategies from their lifecycle events,
//! and strategy statistics from the fills of their orders.
//!
//! Nothing here does I/O, so the rules are tested on hand-made histories.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ordermon_domain::account::Account;
use ordermon_domain::event::{
    AccountEvent, DomainEvent, EventPayload, InstrumentEvent, PositionEvent, StrategyEvent,
    parse_strategy_aggregate,
};
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{Applied, Order, OrderEvent};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::{Strategy, StrategyStats};
use rust_decimal::Decimal;

/// A problem with the log itself: an aggregate's history the domain refuses
/// (or whose sequence numbers skip), found while replaying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogProblem {
    /// `order`, `account`, `position`, `strategy`.
    pub aggregate: &'static str,
    /// The aggregate id.
    pub id: String,
    /// The event's per-aggregate sequence.
    pub sequence: u64,
    /// What went wrong.
    pub reason: String,
}

/// What the log says about one strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedStrategy {
    /// The strategy as created (configuration events applied).
    pub strategy: Strategy,
    /// Deleted since.
    pub deleted: bool,
    /// Statistics rebuilt from the fills of its orders.
    pub stats: StrategyStats,
    /// Last event sequence.
    pub sequence: u64,
}

/// The projections rebuilt so far.
#[derive(Debug, Default)]
pub struct Rebuilt {
    /// Orders by id.
    pub orders: HashMap<OrderId, Order>,
    /// Accounts by user.
    pub accounts: HashMap<UserId, Account>,
    /// Positions by user and instrument.
    pub positions: HashMap<(UserId, InstrumentId), Position>,
    /// Strategies by id (deleted ones kept, flagged).
    /// By user and id (strategy ids are unique per user).
    pub strategies: HashMap<(UserId, StrategyId), ReplayedStrategy>,
    /// Aggregates whose history was refused: not compared field by field,
    /// never rewritten.
    pub broken: HashMap<(&'static str, String), LogProblem>,
    /// Events applied.
    pub events: u64,
    /// Instruments as the log last upserted them (positions take currency and
    /// multiplier from the instrument as it was at their first fill).
    instruments: HashMap<InstrumentId, Instrument>,
    /// Instruments known from the store, for those the log never upserted.
    catalog: HashMap<InstrumentId, Instrument>,
}

impl Rebuilt {
    /// An empty rebuild that falls back on `catalog` for instruments the log
    /// does not define.
    #[must_use]
    pub fn new(catalog: Vec<Instrument>) -> Self {
        Self {
            catalog: catalog.into_iter().map(|i| (i.id.clone(), i)).collect(),
            ..Self::default()
        }
    }

    fn refuse(&mut self, aggregate: &'static str, e: &DomainEvent, reason: impl Into<String>) {
        let key = (aggregate, e.aggregate_id.clone());
        self.broken.entry(key).or_insert_with(|| LogProblem {
            aggregate,
            id: e.aggregate_id.clone(),
            sequence: e.sequence,
            reason: reason.into(),
        });
    }

    /// Whether the aggregate's history was refused. Checked for every event
    /// and row: the key is only built when some history was refused.
    pub(crate) fn is_broken(&self, aggregate: &'static str, id: impl std::fmt::Display) -> bool {
        !self.broken.is_empty() && self.broken.contains_key(&(aggregate, id.to_string()))
    }

    /// Applies the next event of the log.
    pub fn apply(&mut self, e: &DomainEvent) {
        self.events += 1;
        match &e.payload {
            EventPayload::Order(o) => self.order(e, o),
            EventPayload::Account(a) => self.account(e, a),
            EventPayload::Position(p) => self.position(e, p),
            EventPayload::Strategy(s) => self.strategy(e, s),
            EventPayload::Instrument(InstrumentEvent::Upserted { instrument }) => {
                self.instruments
                    .insert(instrument.id.clone(), (**instrument).clone());
            }
            // Users are not rebuilt: their status is flipped with plain SQL,
            // which writes no event (SPEC §3.4). Alerts, monitors and system
            // events change no trading projection.
            EventPayload::User(_)
            | EventPayload::Alert(_)
            | EventPayload::Monitor(_)
            | EventPayload::System(_) => {}
        }
    }

    fn order(&mut self, e: &DomainEvent, event: &OrderEvent) {
        if self.is_broken("order", &e.aggregate_id) {
            return;
        }
        if let OrderEvent::Initialized { order } = event {
            if self.orders.contains_key(&order.id) {
                return self.refuse("order", e, "initialized twice");
            }
            if order.id.to_string() != e.aggregate_id || e.sequence != 1 {
                return self.refuse("order", e, "initialized out of place");
            }
            let mut order = (**order).clone();
            order.sequence = 1;
            self.orders.insert(order.id, order);
            return;
        }
        let Some(order) = e
            .aggregate_id
            .parse::<OrderId>()
            .ok()
            .and_then(|id| self.orders.get_mut(&id))
        else {
            return self.refuse("order", e, "event before initialized");
        };
        if e.sequence != order.sequence + 1 {
            let reason = format!("sequence {} after {}", e.sequence, order.sequence);
            return self.refuse("order", e, reason);
        }
        match order.apply(event, e.occurred_at) {
            Ok(Applied::Changed) => {}
            // The engine records only changes; a recorded repeat still counts.
            Ok(Applied::Duplicate) => order.sequence += 1,
            Err(err) => self.refuse("order", e, err.to_string()),
        }
    }

    fn account(&mut self, e: &DomainEvent, event: &AccountEvent) {
        if self.is_broken("account", &e.aggregate_id) {
            return;
        }
        let Ok(user) = e.aggregate_id.parse::<UserId>() else {
            return self.refuse("account", e, "not a user id");
        };
        if let AccountEvent::Opened { account_type } = event {
            if self.accounts.contains_key(&user) || e.sequence != 1 {
                return self.refuse("account", e, "opened twice or out of place");
            }
            let mut account = Account::new(user.clone(), *account_type);
            account.sequence = 1;
            self.accounts.insert(user, account);
            return;
        }
        let Some(account) = self.accounts.get_mut(&user) else {
            return self.refuse("account", e, "event before opened");
        };
        if e.sequence != account.sequence + 1 {
            let reason = format!("sequence {} after {}", e.sequence, account.sequence);
            return self.refuse("account", e, reason);
        }
        if let Err(reason) = account.apply_event(event) {
            self.refuse("account", e, reason);
        }
    }

    fn position(&mut self, e: &DomainEvent, event: &PositionEvent) {
        if self.is_broken("position", &e.aggregate_id) {
            return;
        }
        let key = e
            .aggregate_id
            .split_once('/')
            .and_then(|(u, i)| Some((u.parse::<UserId>().ok()?, i.parse::<InstrumentId>().ok()?)));
        let Some(key) = key else {
            return self.refuse("position", e, "not a user/instrument id");
        };
        let PositionEvent::FillApplied {
            order_id,
            side,
            quantity,
            price,
            commission,
            ..
        } = event;
        if !self.positions.contains_key(&key) {
            let Some(instrument) = self
                .instruments
                .get(&key.1)
                .or_else(|| self.catalog.get(&key.1))
            else {
                return self.refuse("position", e, "unknown instrument");
            };
            let flat = Position::flat(
                key.0.clone(),
                key.1.clone(),
                instrument.quote_currency.clone(),
                instrument.multiplier,
                e.occurred_at,
            );
            self.positions.insert(key.clone(), flat);
        }
        let Some(position) = self.positions.get_mut(&key) else {
            return;
        };
        if e.sequence != position.sequence + 1 {
            let reason = format!("sequence {} after {}", e.sequence, position.sequence);
            return self.refuse("position", e, reason);
        }
        let change = position.apply_fill(*side, *quantity, *price, commission, e.occurred_at);
        position.sequence += 1;
        // The strategy's result, as the engine counts it: what its fills
        // realized net of commission; a fill that closes exposure is a win or
        // a loss.
        let strategy = self
            .orders
            .get(order_id)
            .and_then(|o| Some((o.user_id.clone(), o.strategy_id.clone()?)));
        if let Some(s) = strategy.and_then(|key| self.strategies.get_mut(&key)) {
            s.stats.fills += 1;
            s.stats.realized_pnl += change.realized;
            if !change.closed_qty.is_zero() {
                if change.realized > Decimal::ZERO {
                    s.stats.wins += 1;
                } else {
                    s.stats.losses += 1;
                }
            }
        }
    }

    fn strategy(&mut self, e: &DomainEvent, event: &StrategyEvent) {
        if self.is_broken("strategy", &e.aggregate_id) {
            return;
        }
        let Some(id) = parse_strategy_aggregate(&e.aggregate_id, e.user_id.as_ref()) else {
            return self.refuse("strategy", e, "not a strategy id");
        };
        if let StrategyEvent::Created { strategy } = event {
            // A strategy id may be created again after it was deleted.
            if self.strategies.get(&id).is_some_and(|s| !s.deleted) {
                return self.refuse("strategy", e, "created twice");
            }
            self.strategies.insert(
                id,
                ReplayedStrategy {
                    strategy: (**strategy).clone(),
                    deleted: false,
                    stats: StrategyStats::default(),
                    sequence: e.sequence,
                },
            );
            return;
        }
        let Some(s) = self.strategies.get_mut(&id) else {
            return self.refuse("strategy", e, "event before created");
        };
        s.sequence = e.sequence;
        match event {
            StrategyEvent::Created { .. } => {}
            StrategyEvent::ParamsUpdated { params } => s.strategy.params = params.clone(),
            StrategyEvent::StatusChanged { status } => s.strategy.status = *status,
            StrategyEvent::Deleted => s.deleted = true,
        }
    }

    /// Counts each strategy's orders, once the whole log is applied.
    pub fn finish(&mut self) {
        let mut counts: HashMap<(UserId, StrategyId), u64> = HashMap::new();
        for o in self.orders.values() {
            if let Some(s) = &o.strategy_id {
                *counts.entry((o.user_id.clone(), s.clone())).or_default() += 1;
            }
        }
        for (id, s) in &mut self.strategies {
            s.stats.orders = counts.get(id).copied().unwrap_or(0);
        }
    }
}

/// True when two instants are the same for replay: the engine stamps a
/// state change and its event with separate reads of one clock within the
/// same command, and MySQL keeps microseconds only.
#[must_use]
pub fn same_instant(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_milliseconds().abs() <= TOLERANCE_MS
}

/// How far apart a state's timestamp and its event's may be (see [`same_instant`]).
pub const TOLERANCE_MS: i64 = 1_000;
