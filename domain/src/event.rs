//! The domain-event envelope and the payloads of every aggregate.
//!
//! The event log is the audit trail: replaying an aggregate's events rebuilds it,
//! and replaying all of them rebuilds every projection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::account::{Hold, ReservationRequest, Settlement};
use crate::alert::Alert;
use crate::ids::{EventId, InstrumentId, OrderId, StrategyId, TradeId, UserId};
use crate::instrument::Instrument;
use crate::order::{OrderEvent, Side};
use crate::position::PositionChange;
use crate::risk::{RiskLimits, TradingState};
use crate::strategy::{Strategy, StrategyStatus};
use crate::user::{Role, User, UserStatus};
use crate::values::{Currency, Money, Price, Quantity, decimal_string};

/// Which kind of aggregate an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateType {
    /// An order.
    Order,
    /// A user's account.
    Account,
    /// A position (id `user/instrument`).
    Position,
    /// A user.
    User,
    /// A strategy.
    Strategy,
    /// An instrument.
    Instrument,
    /// An alert.
    Alert,
    /// A user's monitor (id = user id).
    Monitor,
    /// The system as a whole (kill switch, …).
    System,
}

impl AggregateType {
    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Account => "account",
            Self::Position => "position",
            Self::User => "user",
            Self::Strategy => "strategy",
            Self::Instrument => "instrument",
            Self::Alert => "alert",
            Self::Monitor => "monitor",
            Self::System => "system",
        }
    }
}

impl std::str::FromStr for AggregateType {
    type Err = crate::user::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "order" => Self::Order,
            "account" => Self::Account,
            "position" => Self::Position,
            "user" => Self::User,
            "strategy" => Self::Strategy,
            "instrument" => Self::Instrument,
            "alert" => Self::Alert,
            "monitor" => Self::Monitor,
            "system" => Self::System,
            _ => return Err(crate::user::UnknownName(s.to_owned())),
        })
    }
}

/// Changes to an account (read through [`crate::tagged`], as [`OrderEvent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountEvent {
    /// The account was opened.
    Opened {
        /// Cash or margin.
        account_type: crate::account::AccountType,
    },
    /// An audited deposit or withdrawal.
    CashAdjusted {
        /// Signed amount.
        amount: Money,
        /// Why.
        reason: String,
    },
    /// Funds or position held for an accepted order.
    Reserved {
        /// The order.
        order_id: OrderId,
        /// What is held.
        request: ReservationRequest,
        /// Position quantity at the time (for replaying the check).
        #[serde(with = "decimal_string")]
        position_qty: rust_decimal::Decimal,
    },
    /// What was left of an order's reservation came back.
    Released {
        /// The order.
        order_id: OrderId,
        /// What was released.
        hold: Hold,
    },
    /// A fill moved cash and consumed reservation.
    FillSettled {
        /// The order.
        order_id: OrderId,
        /// Trade id.
        trade_id: TradeId,
        /// Side.
        side: Side,
        /// Quantity.
        quantity: Quantity,
        /// Price.
        price: Price,
        /// Contract multiplier.
        #[serde(with = "decimal_string")]
        multiplier: rust_decimal::Decimal,
        /// Quote currency.
        quote_currency: Currency,
        /// Commission.
        commission: Money,
        /// The outcome.
        settlement: Settlement,
    },
}

/// Changes to a position (read through [`crate::tagged`], as [`OrderEvent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PositionEvent {
    /// A fill changed the position.
    FillApplied {
        /// The order.
        order_id: OrderId,
        /// Trade id.
        trade_id: TradeId,
        /// Side.
        side: Side,
        /// Quantity.
        quantity: Quantity,
        /// Price.
        price: Price,
        /// Commission.
        commission: Money,
        /// What changed.
        change: PositionChange,
    },
}

impl AccountEvent {
    /// What settling `fill` did to the account, on `instrument`'s terms.
    #[must_use]
    pub fn fill_settled(
        fill: &crate::fill::Fill,
        instrument: &Instrument,
        settlement: Settlement,
    ) -> Self {
        Self::FillSettled {
            order_id: fill.order_id,
            trade_id: fill.trade_id.clone(),
            side: fill.side,
            quantity: fill.quantity,
            price: fill.price,
            multiplier: instrument.multiplier,
            quote_currency: instrument.quote_currency.clone(),
            commission: fill.commission.clone(),
            settlement,
        }
    }
}

impl PositionEvent {
    /// What applying `fill` did to the position.
    #[must_use]
    pub fn fill_applied(fill: &crate::fill::Fill, change: PositionChange) -> Self {
        Self::FillApplied {
            order_id: fill.order_id,
            trade_id: fill.trade_id.clone(),
            side: fill.side,
            quantity: fill.quantity,
            price: fill.price,
            commission: fill.commission.clone(),
            change,
        }
    }
}

impl<'de> Deserialize<'de> for AccountEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::tagged::read(d, "an account event")
    }
}

impl<'de> crate::tagged::Mirror<'de> for AccountEvent {
    fn external<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AccountEventDef::deserialize(d)
    }
}

/// [`AccountEvent`] externally tagged, for [`crate::tagged`] (see
/// `OrderEventDef`).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(remote = "AccountEvent", rename_all = "snake_case")]
enum AccountEventDef {
    Opened {
        account_type: crate::account::AccountType,
    },
    CashAdjusted {
        amount: Money,
        reason: String,
    },
    Reserved {
        order_id: OrderId,
        request: ReservationRequest,
        #[serde(with = "decimal_string")]
        position_qty: rust_decimal::Decimal,
    },
    Released {
        order_id: OrderId,
        hold: Hold,
    },
    FillSettled {
        order_id: OrderId,
        trade_id: TradeId,
        side: Side,
        quantity: Quantity,
        price: Price,
        #[serde(with = "decimal_string")]
        multiplier: rust_decimal::Decimal,
        quote_currency: Currency,
        commission: Money,
        settlement: Settlement,
    },
}

impl<'de> Deserialize<'de> for PositionEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::tagged::read(d, "a position event")
    }
}

impl<'de> crate::tagged::Mirror<'de> for PositionEvent {
    fn external<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PositionEventDef::deserialize(d)
    }
}

/// [`PositionEvent`] externally tagged, for [`crate::tagged`].
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(remote = "PositionEvent", rename_all = "snake_case")]
enum PositionEventDef {
    FillApplied {
        order_id: OrderId,
        trade_id: TradeId,
        side: Side,
        quantity: Quantity,
        price: Price,
        commission: Money,
        change: PositionChange,
    },
}

/// Changes to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserEvent {
    /// Created.
    Created {
        /// The user.
        user: Box<User>,
    },
    /// Enabled or disabled.
    StatusChanged {
        /// New status.
        status: UserStatus,
    },
    /// Limits changed.
    LimitsChanged {
        /// New limits.
        limits: RiskLimits,
    },
    /// Kill switch for the user.
    TradingStateChanged {
        /// New state.
        state: TradingState,
        /// Why.
        reason: String,
    },
    /// The API role changed.
    RoleChanged {
        /// New role.
        role: Role,
    },
    /// Every token issued before `at` stops acting for the user.
    TokensRevoked {
        /// Tokens issued before this moment are refused.
        at: DateTime<Utc>,
    },
}

/// Changes to a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StrategyEvent {
    /// Created.
    Created {
        /// The strategy.
        strategy: Box<Strategy>,
    },
    /// Parameters changed (hot).
    ParamsUpdated {
        /// New params.
        params: serde_json::Value,
    },
    /// Enabled or disabled.
    StatusChanged {
        /// New status.
        status: StrategyStatus,
    },
    /// Deleted.
    Deleted,
}

/// Changes to reference data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InstrumentEvent {
    /// Created or changed.
    Upserted {
        /// The instrument.
        instrument: Box<Instrument>,
    },
}

/// Changes to an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertEvent {
    /// Raised, promoted, acknowledged or resolved: the alert as it is now.
    Changed {
        /// The alert.
        alert: Box<Alert>,
    },
}

/// What a user's monitor noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MonitorEvent {
    /// The monitor started.
    Started,
    /// The monitor stopped.
    Stopped {
        /// Why.
        reason: String,
    },
    /// The monitor or one of its strategies failed and was restarted.
    Restarted {
        /// The strategy, when a strategy failed.
        strategy_id: Option<StrategyId>,
        /// What happened.
        error: String,
        /// Restarts so far.
        attempt: u32,
    },
    /// An order has waited too long for the venue.
    StuckOrder {
        /// The order.
        order_id: OrderId,
        /// Its status.
        status: crate::order::OrderStatus,
        /// Seconds waited.
        waited_secs: u64,
    },
    /// A strategy stopped heart-beating.
    StrategyHeartbeatMissing {
        /// The strategy.
        strategy_id: StrategyId,
        /// Seconds since the last beat.
        silent_secs: u64,
    },
    /// A strategy whose heartbeat was reported missing beats again.
    StrategyHeartbeatResumed {
        /// The strategy.
        strategy_id: StrategyId,
    },
    /// A strategy asked for an alert (e.g. a price level crossed).
    StrategyAlert {
        /// The strategy.
        strategy_id: StrategyId,
        /// The rule it names (e.g. `price_alert`).
        rule: crate::ids::RuleName,
        /// How bad it is.
        severity: crate::alert::Severity,
        /// One line for people.
        summary: String,
        /// Extra identifying labels.
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
    },
    /// Reconciliation with the venue, when the user's owner started (after
    /// a restart or a move), found the venue disagreeing with the store.
    ReconciliationMismatch {
        /// The order concerned.
        order_id: OrderId,
        /// What disagreed and what was done about it.
        detail: String,
    },
    /// An instrument's market data went stale.
    StaleMarketData {
        /// The instrument.
        instrument_id: InstrumentId,
        /// Seconds since the last quote.
        silent_secs: u64,
    },
}

/// Global kill switch changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SystemEvent {
    /// The global trading state changed.
    TradingStateChanged {
        /// New state.
        state: TradingState,
        /// Why.
        reason: String,
        /// Who.
        actor: String,
    },
    /// A supporting component of one instance (the cache, the bus) stopped
    /// working; the instance carries on without it (slower, never wrong).
    ComponentDegraded {
        /// `cache`, `bus`.
        component: String,
        /// The instance that noticed.
        instance: String,
        /// A short, non-secret reason.
        reason: String,
    },
    /// The component works again.
    ComponentRecovered {
        /// `cache`, `bus`.
        component: String,
        /// The instance that noticed.
        instance: String,
    },
}

/// Every event payload, by aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "aggregate", content = "data", rename_all = "snake_case")]
pub enum EventPayload {
    /// An order event.
    Order(OrderEvent),
    /// An account event.
    Account(AccountEvent),
    /// A position event.
    Position(PositionEvent),
    /// A user event.
    User(UserEvent),
    /// A strategy event.
    Strategy(StrategyEvent),
    /// An instrument event.
    Instrument(InstrumentEvent),
    /// An alert event.
    Alert(AlertEvent),
    /// A monitor event.
    Monitor(MonitorEvent),
    /// A system event.
    System(SystemEvent),
}

/// The snake-case name of an event variant (matches its serde `type` tag).
pub trait EventName {
    /// The name.
    fn name(&self) -> &'static str;
}

impl EventName for AccountEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "opened",
            Self::CashAdjusted { .. } => "cash_adjusted",
            Self::Reserved { .. } => "reserved",
            Self::Released { .. } => "released",
            Self::FillSettled { .. } => "fill_settled",
        }
    }
}

impl EventName for PositionEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::FillApplied { .. } => "fill_applied",
        }
    }
}

impl EventName for UserEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::StatusChanged { .. } => "status_changed",
            Self::LimitsChanged { .. } => "limits_changed",
            Self::TradingStateChanged { .. } => "trading_state_changed",
            Self::RoleChanged { .. } => "role_changed",
            Self::TokensRevoked { .. } => "tokens_revoked",
        }
    }
}

impl EventName for StrategyEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::ParamsUpdated { .. } => "params_updated",
            Self::StatusChanged { .. } => "status_changed",
            Self::Deleted => "deleted",
        }
    }
}

impl EventName for InstrumentEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Upserted { .. } => "upserted",
        }
    }
}

impl EventName for AlertEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Changed { .. } => "changed",
        }
    }
}

impl EventName for MonitorEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Stopped { .. } => "stopped",
            Self::Restarted { .. } => "restarted",
            Self::StuckOrder { .. } => "stuck_order",
            Self::StrategyHeartbeatMissing { .. } => "strategy_heartbeat_missing",
            Self::StrategyHeartbeatResumed { .. } => "strategy_heartbeat_resumed",
            Self::StrategyAlert { .. } => "strategy_alert",
            Self::StaleMarketData { .. } => "stale_market_data",
            Self::ReconciliationMismatch { .. } => "reconciliation_mismatch",
        }
    }
}

impl EventName for SystemEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::TradingStateChanged { .. } => "trading_state_changed",
            Self::ComponentDegraded { .. } => "component_degraded",
            Self::ComponentRecovered { .. } => "component_recovered",
        }
    }
}

impl EventName for OrderEvent {
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

impl EventPayload {
    /// The aggregate type this payload belongs to.
    #[must_use]
    pub fn aggregate_type(&self) -> AggregateType {
        match self {
            Self::Order(_) => AggregateType::Order,
            Self::Account(_) => AggregateType::Account,
            Self::Position(_) => AggregateType::Position,
            Self::User(_) => AggregateType::User,
            Self::Strategy(_) => AggregateType::Strategy,
            Self::Instrument(_) => AggregateType::Instrument,
            Self::Alert(_) => AggregateType::Alert,
            Self::Monitor(_) => AggregateType::Monitor,
            Self::System(_) => AggregateType::System,
        }
    }

    /// `aggregate.type`, e.g. `order.filled`, `account.cash_adjusted`.
    #[must_use]
    pub fn event_type(&self) -> String {
        let name = match self {
            Self::Order(e) => e.name(),
            Self::Account(e) => e.name(),
            Self::Position(e) => e.name(),
            Self::User(e) => e.name(),
            Self::Strategy(e) => e.name(),
            Self::Instrument(e) => e.name(),
            Self::Alert(e) => e.name(),
            Self::Monitor(e) => e.name(),
            Self::System(e) => e.name(),
        };
        let aggregate = self.aggregate_type().as_str();
        let mut out = String::with_capacity(aggregate.len() + 1 + name.len());
        out.push_str(aggregate);
        out.push('.');
        out.push_str(name);
        out
    }
}

/// One domain event with its envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Unique id (UUIDv7); consumers deduplicate on it.
    pub event_id: EventId,
    /// Aggregate kind.
    pub aggregate_type: AggregateType,
    /// Aggregate id (order id, user id, `user/instrument` for positions, …).
    pub aggregate_id: String,
    /// Position in the aggregate's own history, from 1.
    pub sequence: u64,
    /// `aggregate.type`.
    pub event_type: String,
    /// The user it concerns (tenant), if any.
    pub user_id: Option<UserId>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Ties together the events of one command.
    pub correlation_id: Option<Uuid>,
    /// What happened.
    pub payload: EventPayload,
}

impl DomainEvent {
    /// Wraps a payload in an envelope with a fresh id.
    #[must_use]
    pub fn new(
        aggregate_id: impl Into<String>,
        sequence: u64,
        user_id: Option<UserId>,
        occurred_at: DateTime<Utc>,
        correlation_id: Option<Uuid>,
        payload: EventPayload,
    ) -> Self {
        Self {
            event_id: EventId::generate(),
            aggregate_type: payload.aggregate_type(),
            aggregate_id: aggregate_id.into(),
            sequence,
            event_type: payload.event_type(),
            user_id,
            occurred_at,
            correlation_id,
            payload,
        }
    }
}

/// The aggregate id of a position.
#[must_use]
pub fn position_aggregate_id(user: &UserId, instrument: &InstrumentId) -> String {
    format!("{user}/{instrument}")
}

/// The aggregate id of a strategy: `user/id` (strategy ids are unique per
/// user, and neither id may contain `/`).
#[must_use]
pub fn strategy_aggregate_id(user: &UserId, id: &StrategyId) -> String {
    format!("{user}/{id}")
}

/// The owner and id of a strategy from its event's aggregate id: `user/id`,
/// or a bare `id` (events written before strategy ids were per user) owned by
/// `user` (the event's user).
#[must_use]
pub fn parse_strategy_aggregate(
    aggregate_id: &str,
    user: Option<&UserId>,
) -> Option<(UserId, StrategyId)> {
    match aggregate_id.split_once('/') {
        Some((u, id)) => Some((UserId::new(u).ok()?, StrategyId::new(id).ok()?)),
        None => Some((user?.clone(), StrategyId::new(aggregate_id).ok()?)),
    }
}

#[cfg(test)]
mod aggregate_tests {
    use super::*;

    #[test]
    fn strategy_aggregates_name_their_owner() {
        let alice = UserId::new("alice").unwrap();
        let id = StrategyId::new("mr-1").unwrap();
        let agg = strategy_aggregate_id(&alice, &id);
        assert_eq!(agg, "alice/mr-1");
        assert_eq!(
            parse_strategy_aggregate(&agg, None),
            Some((alice.clone(), id.clone()))
        );
        // Older events: a bare id, owned by the event's user.
        assert_eq!(
            parse_strategy_aggregate("mr-1", Some(&alice)),
            Some((alice, id))
        );
        assert_eq!(parse_strategy_aggregate("mr-1", None), None);
        assert_eq!(parse_strategy_aggregate("a/b/c", None), None);
        assert_eq!(parse_strategy_aggregate("/x", None), None);
    }
}

#[cfg(test)]
mod mirror_tests {
    use super::{AccountEventDef, PositionEventDef};

    #[test]
    fn the_mirrors_read_what_they_write() {
        for e in crate::tagged::tests::account_events() {
            let v = AccountEventDef::serialize(&e, serde_json::value::Serializer).unwrap();
            assert_eq!(AccountEventDef::deserialize(v).unwrap(), e);
        }
        for e in crate::tagged::tests::position_events() {
            let v = PositionEventDef::serialize(&e, serde_json::value::Serializer).unwrap();
            assert_eq!(PositionEventDef::deserialize(v).unwrap(), e);
        }
    }
}
