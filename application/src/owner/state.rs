//! One user's state as its owner holds it in memory, and a cycle's pending writes.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, NaiveDate, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::account::Account;
use ordermon_domain::event::DomainEvent;
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId};
use ordermon_domain::order::Order;
use ordermon_domain::position::Position;
use ordermon_domain::user::User;

use crate::error::AppError;
use crate::state_loads::UserRecords;

use super::session_cids::SessionCids;

/// The user's state, authoritative while the owner runs.
#[derive(Debug, Clone)]
pub(crate) struct UserState {
    pub(crate) user: User,
    pub(crate) account: Account,
    /// Open orders, plus any touched in the current cycle.
    pub(crate) orders: HashMap<OrderId, Order>,
    /// Client ids of the orders this owner created most recently (the store
    /// answers for older ones).
    pub(crate) session_cids: SessionCids,
    pub(crate) positions: HashMap<InstrumentId, Position>,
    /// Submission times within the last second (rate limit).
    pub(crate) recent_submits: VecDeque<DateTime<Utc>>,
    pub(crate) day: NaiveDate,
    pub(crate) day_realized: Decimal,
}

impl UserState {
    /// A user's state from its records (see [`crate::state_loads`]).
    pub(crate) fn from_records(r: UserRecords, now: DateTime<Utc>) -> Self {
        let account = r
            .account
            .unwrap_or_else(|| Account::new(r.user.id.clone(), r.user.account_type));
        Self {
            user: r.user,
            account,
            orders: r.open_orders.into_iter().map(|o| (o.id, o)).collect(),
            session_cids: SessionCids::default(),
            positions: r
                .positions
                .into_iter()
                .map(|pos| (pos.instrument_id.clone(), pos))
                .collect(),
            recent_submits: VecDeque::new(),
            day: now.date_naive(),
            day_realized: Decimal::ZERO,
        }
    }

    /// Open orders right now.
    pub(crate) fn open_order_count(&self) -> u32 {
        u32::try_from(self.orders.values().filter(|o| o.is_open()).count()).unwrap_or(u32::MAX)
    }
}

/// A caller's answer, sent once the cycle's commit outcome is known.
pub(crate) type PendingReply = Box<dyn FnOnce(Result<(), AppError>) + Send>;

/// Writes collected during one cycle, committed together.
///
/// Versions are bumped when an entity is first touched in the cycle, so replies
/// built during the cycle already carry the version the commit will store.
#[derive(Default)]
pub(crate) struct Cycle {
    pub(crate) orders: HashMap<OrderId, u64>,
    pub(crate) order_seq: Vec<OrderId>,
    pub(crate) account: Option<u64>,
    /// Orders whose reservation the cycle reserved, resized or released.
    pub(crate) reservations: Vec<OrderId>,
    pub(crate) positions: HashMap<InstrumentId, u64>,
    pub(crate) user: Option<u64>,
    pub(crate) fills: Vec<Fill>,
    pub(crate) events: Vec<DomainEvent>,
    pub(crate) new_cids: Vec<ClientOrderId>,
    /// Strategies written this cycle (expected version); absent from the
    /// owner's map means deleted.
    pub(crate) strategies: HashMap<ordermon_domain::ids::StrategyId, u64>,
    /// Order events for strategies, fed after the command that caused them.
    pub(crate) strategy_events: Vec<(OrderId, ordermon_domain::order::OrderEvent)>,
    pub(crate) replies: Vec<PendingReply>,
    /// Commands run within a trace: their span and the events they added.
    pub(crate) traced: Vec<(tracing::Span, std::ops::Range<usize>)>,
}

impl std::fmt::Debug for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cycle")
            .field("orders", &self.orders.len())
            .field("events", &self.events.len())
            .field("replies", &self.replies.len())
            .finish_non_exhaustive()
    }
}

impl Cycle {
    /// True when nothing needs writing.
    pub(crate) fn has_writes(&self) -> bool {
        !self.orders.is_empty()
            || self.account.is_some()
            || !self.positions.is_empty()
            || self.user.is_some()
            || !self.fills.is_empty()
            || !self.events.is_empty()
            || !self.strategies.is_empty()
    }
}
