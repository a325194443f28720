//! Order enums: type, time in force, the twelve statuses and why pre-trade
//! risk denied an order (the side is
//! [`crate::side::Side`]).

use serde::{Deserialize, Serialize};

/// How an order is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// Execute at the best available price.
    Market,
    /// Execute at the limit price or better.
    Limit,
    /// Becomes a market order when the trigger price trades.
    StopMarket,
    /// Becomes a limit order when the trigger price trades.
    StopLimit,
}

impl OrderType {
    /// True for the types that carry a limit price.
    #[must_use]
    pub fn has_price(self) -> bool {
        matches!(self, Self::Limit | Self::StopLimit)
    }

    /// True for the types that carry a trigger price.
    #[must_use]
    pub fn has_trigger(self) -> bool {
        matches!(self, Self::StopMarket | Self::StopLimit)
    }

    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Market => "market",
            Self::Limit => "limit",
            Self::StopMarket => "stop_market",
            Self::StopLimit => "stop_limit",
        }
    }
}

impl std::fmt::Display for OrderType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long an order stays working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till canceled.
    Gtc,
    /// Immediate or cancel: fill what can be filled now, cancel the rest.
    Ioc,
    /// Fill or kill: fill completely now or cancel.
    Fok,
    /// Good for the trading day.
    Day,
    /// Good till the given date (`expire_at`).
    Gtd,
}

impl TimeInForce {
    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gtc => "gtc",
            Self::Ioc => "ioc",
            Self::Fok => "fok",
            Self::Day => "day",
            Self::Gtd => "gtd",
        }
    }
}

/// The twelve order statuses of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, not yet risk-checked or sent.
    Initialized,
    /// Refused by pre-trade risk (terminal).
    Denied,
    /// Sent to the venue, not yet acknowledged.
    Submitted,
    /// Acknowledged and working at the venue.
    Accepted,
    /// Refused by the venue (terminal).
    Rejected,
    /// Canceled (terminal, but a late fill is still accepted).
    Canceled,
    /// Expired by its time in force (terminal).
    Expired,
    /// A stop order whose trigger price traded.
    Triggered,
    /// A modify request is in flight.
    PendingUpdate,
    /// A cancel request is in flight.
    PendingCancel,
    /// Some quantity filled, the rest working.
    PartiallyFilled,
    /// Completely filled (terminal).
    Filled,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 12] = [
        Self::Initialized,
        Self::Denied,
        Self::Submitted,
        Self::Accepted,
        Self::Rejected,
        Self::Canceled,
        Self::Expired,
        Self::Triggered,
        Self::PendingUpdate,
        Self::PendingCancel,
        Self::PartiallyFilled,
        Self::Filled,
    ];

    /// True for statuses an order never leaves (but see the late-fill edge on
    /// `Canceled` and overfills on `Filled` in the transition table).
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Denied | Self::Rejected | Self::Canceled | Self::Expired | Self::Filled
        )
    }

    /// True while the order may still trade at the venue.
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Submitted
                | Self::Accepted
                | Self::Triggered
                | Self::PendingUpdate
                | Self::PendingCancel
                | Self::PartiallyFilled
        )
    }

    /// True for the two statuses that wait on a venue reply.
    #[must_use]
    pub fn is_pending(self) -> bool {
        matches!(self, Self::PendingUpdate | Self::PendingCancel)
    }

    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialized => "initialized",
            Self::Denied => "denied",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::Triggered => "triggered",
            Self::PendingUpdate => "pending_update",
            Self::PendingCancel => "pending_cancel",
            Self::PartiallyFilled => "partially_filled",
            Self::Filled => "filled",
        }
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of the twelve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

/// Why pre-trade risk refused an order. Serialized in snake_case as the order's
/// `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeniedReason {
    /// Not enough free cash for the order's reservation.
    InsufficientFunds,
    /// Not enough free position to sell (cash account).
    InsufficientPosition,
    /// The order's notional is above the user's limit (or beyond what a decimal
    /// can represent: an absurd size is denied, never a panic).
    MaxOrderNotional,
    /// The user already has the maximum number of open orders.
    MaxOpenOrders,
    /// The resulting position would exceed the per-instrument limit.
    MaxPosition,
    /// The user's loss today reached the limit; only reducing orders pass.
    MaxDailyLoss,
    /// Too many orders in the last second.
    RateLimited,
    /// Trading is halted (kill switch).
    TradingHalted,
    /// The order would increase exposure while only reductions are allowed.
    ReduceOnly,
    /// A market order with no last price to size its reservation.
    NoMarketPrice,
    /// The user is disabled.
    UserDisabled,
}

impl DeniedReason {
    /// The snake-case code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsufficientFunds => "insufficient_funds",
            Self::InsufficientPosition => "insufficient_position",
            Self::MaxOrderNotional => "max_order_notional",
            Self::MaxOpenOrders => "max_open_orders",
            Self::MaxPosition => "max_position",
            Self::MaxDailyLoss => "max_daily_loss",
            Self::RateLimited => "rate_limited",
            Self::TradingHalted => "trading_halted",
            Self::ReduceOnly => "reduce_only",
            Self::NoMarketPrice => "no_market_price",
            Self::UserDisabled => "user_disabled",
        }
    }
}

impl std::fmt::Display for DeniedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
