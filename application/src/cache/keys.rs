//! Namespaces and keys, and the keys a committed change set makes stale.
//!
//! Keys carry the user as tenant (`ordermon:order:alice:<id>`). Lookups that do
//! not know the user yet (an admin reading any order) use the shared tenant
//! `_`; a change invalidates both forms.

use std::collections::HashSet;

use ordermon_domain::event::{DomainEvent, EventPayload, parse_strategy_aggregate};
use ordermon_domain::ids::{InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::order::OrderEvent;
use ordermon_domain::ports::{CacheKey, ChangeSet, StateChange};

/// Orders by id.
pub const ORDER: &str = "order";
/// Client order id → order id (never changes once the order exists).
pub const ORDER_CID: &str = "order_cid";
/// Account and portfolio state per user.
pub const PORTFOLIO: &str = "portfolio";
/// Users.
pub const USER: &str = "user";
/// Strategies.
pub const STRATEGY: &str = "strategy";
/// Instruments.
pub const INSTRUMENT: &str = "instrument";
/// Latest quotes.
pub const QUOTE: &str = "quote";
/// Bars.
pub const BAR: &str = "bar";
/// Sessions.
pub const SESSION: &str = "session";

/// Every namespace.
pub const ALL: [&str; 9] = [
    ORDER, ORDER_CID, PORTFOLIO, USER, STRATEGY, INSTRUMENT, QUOTE, BAR, SESSION,
];

/// The tenant of data that is not one user's, or looked up without knowing whose.
pub const SHARED: &str = "_";

fn tenant(user: Option<&UserId>) -> &str {
    user.map_or(SHARED, UserId::as_str)
}

/// An order by id, as seen by `viewer` (`None` = any user).
#[must_use]
pub fn order(viewer: Option<&UserId>, id: OrderId) -> CacheKey {
    CacheKey::new(ORDER, tenant(viewer), id.to_string())
}

/// A user's client order id.
#[must_use]
pub fn order_cid(user: &UserId, cid: &str) -> CacheKey {
    CacheKey::new(ORDER_CID, user.as_str(), cid)
}

/// A user's account and portfolio state.
#[must_use]
pub fn portfolio(user: &UserId) -> CacheKey {
    CacheKey::new(PORTFOLIO, user.as_str(), "state")
}

/// A user.
#[must_use]
pub fn user(user: &UserId) -> CacheKey {
    CacheKey::new(USER, user.as_str(), "profile")
}

/// One of `user`'s strategies (strategy ids are unique per user).
#[must_use]
pub fn strategy(user: &UserId, id: &StrategyId) -> CacheKey {
    CacheKey::new(STRATEGY, user.as_str(), id.as_str())
}

/// An instrument.
#[must_use]
pub fn instrument(id: &InstrumentId) -> CacheKey {
    CacheKey::new(INSTRUMENT, SHARED, id.as_str())
}

/// An instrument's latest quote.
#[must_use]
pub fn quote(id: &InstrumentId) -> CacheKey {
    CacheKey::new(QUOTE, SHARED, id.as_str())
}

/// Every key a change set makes stale, each once.
#[must_use]
pub fn stale_after(batch: &ChangeSet) -> Vec<CacheKey> {
    stale_after_all(std::iter::once(batch))
}

/// Every key some change sets make stale, each once.
#[must_use]
pub fn stale_after_all<'a>(batches: impl IntoIterator<Item = &'a ChangeSet>) -> Vec<CacheKey> {
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |k: CacheKey| {
        if seen.insert(k.render()) {
            keys.push(k);
        }
    };
    for change in batches.into_iter().flat_map(|b| &b.changes) {
        match change {
            StateChange::Order { order: o, expected } => {
                add(order(Some(&o.user_id), o.id));
                add(order(None, o.id));
                if *expected == 0 {
                    // A new order: drop a cached "not found" of its client id.
                    add(order_cid(&o.user_id, o.client_order_id.as_str()));
                }
                add(portfolio(&o.user_id));
            }
            StateChange::Fill(fill) => add(portfolio(&fill.user_id)),
            StateChange::Account { account, .. } => add(portfolio(&account.user_id)),
            StateChange::Position { position, .. } => add(portfolio(&position.user_id)),
            StateChange::User { user: u, .. } => {
                add(user(&u.id));
                add(portfolio(&u.id));
            }
            StateChange::Strategy { strategy: s, .. } => add(strategy(&s.user_id, &s.id)),
            StateChange::DeleteStrategy { id, user_id, .. } => add(strategy(user_id, id)),
            StateChange::Instrument { instrument: i, .. } => add(instrument(&i.id)),
            // Alerting state is not cached.
            StateChange::Alert { .. }
            | StateChange::Silence { .. }
            | StateChange::Notification { .. }
            | StateChange::RuleOverride { .. }
            | StateChange::DeleteRuleOverride { .. } => {}
            // Read through the engine's own copy, never from the cache.
            StateChange::HighWater { .. } => {}
        }
    }
    keys
}

/// Every key an event committed anywhere makes stale, for evicting this
/// instance's own copies when the event arrives over the bus. It mirrors
/// [`stale_after_all`] from the event's side: the committer of the change has
/// already invalidated the shared tier; this only reaches in-process copies.
#[must_use]
pub fn stale_after_event(event: &DomainEvent) -> Vec<CacheKey> {
    let user_id = event.user_id.as_ref();
    let mut keys = Vec::new();
    match (&event.payload, user_id) {
        (EventPayload::Order(e), Some(u)) => {
            if let Ok(id) = event.aggregate_id.parse::<OrderId>() {
                keys.push(order(Some(u), id));
                keys.push(order(None, id));
            }
            if let OrderEvent::Initialized { order: o } = e {
                keys.push(order_cid(u, o.client_order_id.as_str()));
            }
            keys.push(portfolio(u));
        }
        (EventPayload::Account(_) | EventPayload::Position(_), Some(u)) => keys.push(portfolio(u)),
        (EventPayload::User(_), _) => {
            if let Ok(id) = event.aggregate_id.parse::<UserId>() {
                keys.push(user(&id));
                keys.push(portfolio(&id));
            }
        }
        (EventPayload::Strategy(_), _) => {
            if let Some((u, id)) = parse_strategy_aggregate(&event.aggregate_id, user_id) {
                keys.push(strategy(&u, &id));
            }
        }
        (EventPayload::Instrument(_), _) => {
            if let Ok(id) = event.aggregate_id.parse::<InstrumentId>() {
                keys.push(instrument(&id));
            }
        }
        // Nothing cached is derived from these (or they carry no user).
        (
            EventPayload::Order(_)
            | EventPayload::Account(_)
            | EventPayload::Position(_)
            | EventPayload::Alert(_)
            | EventPayload::Monitor(_)
            | EventPayload::System(_),
            _,
        ) => {}
    }
    keys
}
