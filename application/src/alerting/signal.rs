//! The signals rules are written over: what the alerting service measures, per
//! user, per user and instrument, per user and venue, per strategy, per
//! instrument, per venue, or for the whole instance.
//!
//! A *windowed* signal is computed over the rule's `window` (counts, ratios and
//! rates of the user's order flow); the others are read as they are now.

use serde::{Deserialize, Serialize};

/// What a series is about; decides the labels an alert carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalScope {
    /// One user (`user_id`).
    User,
    /// One user's position in one instrument (`user_id`, `instrument_id`, `venue`).
    UserInstrument,
    /// One user's orders at one venue (`user_id`, `venue`).
    UserVenue,
    /// One strategy (`user_id`, `strategy_id`).
    Strategy,
    /// One instrument's market data (`instrument_id`, `venue`).
    Instrument,
    /// One venue across users (`venue`).
    Venue,
    /// This instance (`instance`).
    System,
}

impl SignalScope {
    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::UserInstrument => "user_instrument",
            Self::UserVenue => "user_venue",
            Self::Strategy => "strategy",
            Self::Instrument => "instrument",
            Self::Venue => "venue",
            Self::System => "system",
        }
    }

    /// True for the scopes that belong to one user (tenant).
    #[must_use]
    pub fn is_user(self) -> bool {
        matches!(
            self,
            Self::User | Self::UserInstrument | Self::UserVenue | Self::Strategy
        )
    }
}

/// Every signal a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Orders submitted in the window.
    Orders,
    /// Orders submitted per second over the window.
    OrderRate,
    /// Orders denied by pre-trade risk or rejected by the venue in the window.
    Rejects,
    /// Rejects ÷ orders in the window.
    RejectRatio,
    /// Cancels ÷ orders in the window.
    CancelRatio,
    /// Orders that got a first fill ÷ orders submitted, in the window.
    FillRatio,
    /// Orders identical (instrument, side, type, quantity, price) to one the
    /// user sent less than 10 s before, in the window.
    DuplicateOrders,
    /// Orders denied for the user's orders-per-second limit, in the window.
    ThrottledOrders,
    /// Mean notional of the orders submitted in the window.
    NotionalPerOrder,
    /// Slowest venue acknowledgement (submitted → accepted) in the window, ms.
    AckLatencyMs,
    /// Disagreements with the venue in the window: fills beyond an order's
    /// quantity, execution reports the engine refused, open orders the venue
    /// no longer knew when the owner started.
    ReconMismatches,
    /// Open orders now.
    OpenOrders,
    /// 1 while the user's own kill switch halts trading, else 0.
    TradingHalted,
    /// High-water mark − equity, in the user's first currency.
    Drawdown,
    /// Drawdown ÷ high-water mark.
    DrawdownRatio,
    /// Equity lost over the window ÷ equity at the window's start (positive
    /// when losing).
    LossVelocity,
    /// Today's loss ÷ the user's `max_daily_loss` (0 without a limit).
    DailyLossUtilization,
    /// |position| ÷ the user's `max_position` (0 without a limit).
    PositionUtilization,
    /// Seconds the oldest order at the venue has waited for its acknowledgement.
    OldestUnackedSecs,
    /// Seconds the oldest cancel at the venue has waited for its confirmation.
    OldestPendingCancelSecs,
    /// 1 while the strategy's heartbeat is missing, else 0.
    HeartbeatMissing,
    /// Strategy failures (restarts) in the window.
    StrategyRestarts,
    /// Seconds since the instrument's last quote.
    QuoteAgeSecs,
    /// Orders at the venue (all users) waiting longer than
    /// `alerting.venue_stuck_after` for an acknowledgement or a cancel.
    VenueStuckOrders,
    /// Always 1: the alert pipeline's dead-man switch.
    Watchdog,
    /// 1 while the global kill switch halts trading, else 0.
    GlobalTradingHalted,
    /// Outbox rows not yet relayed to the bus.
    OutboxPending,
    /// Dead letters of this instance's consumer group.
    DeadLetters,
    /// Outbox rows the broker refused for good, set aside by this instance's
    /// relay since it started.
    OutboxSetAside,
    /// Commands queued in the users' owners.
    QueuedCommands,
    /// The user's order flow as a feature vector (order rate, reject ratio,
    /// cancel ratio, notional per order, fill ratio), for the isolation forest.
    OrderFlow,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Self; 31] = [
        Self::Orders,
        Self::OrderRate,
        Self::Rejects,
        Self::RejectRatio,
        Self::CancelRatio,
        Self::FillRatio,
        Self::DuplicateOrders,
        Self::ThrottledOrders,
        Self::NotionalPerOrder,
        Self::AckLatencyMs,
        Self::ReconMismatches,
        Self::OpenOrders,
        Self::TradingHalted,
        Self::Drawdown,
        Self::DrawdownRatio,
        Self::LossVelocity,
        Self::DailyLossUtilization,
        Self::PositionUtilization,
        Self::OldestUnackedSecs,
        Self::OldestPendingCancelSecs,
        Self::HeartbeatMissing,
        Self::StrategyRestarts,
        Self::QuoteAgeSecs,
        Self::VenueStuckOrders,
        Self::Watchdog,
        Self::GlobalTradingHalted,
        Self::OutboxPending,
        Self::DeadLetters,
        Self::OutboxSetAside,
        Self::QueuedCommands,
        Self::OrderFlow,
    ];

    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::OrderRate => "order_rate",
            Self::Rejects => "rejects",
            Self::RejectRatio => "reject_ratio",
            Self::CancelRatio => "cancel_ratio",
            Self::FillRatio => "fill_ratio",
            Self::DuplicateOrders => "duplicate_orders",
            Self::ThrottledOrders => "throttled_orders",
            Self::NotionalPerOrder => "notional_per_order",
            Self::AckLatencyMs => "ack_latency_ms",
            Self::ReconMismatches => "recon_mismatches",
            Self::OpenOrders => "open_orders",
            Self::TradingHalted => "trading_halted",
            Self::Drawdown => "drawdown",
            Self::DrawdownRatio => "drawdown_ratio",
            Self::LossVelocity => "loss_velocity",
            Self::DailyLossUtilization => "daily_loss_utilization",
            Self::PositionUtilization => "position_utilization",
            Self::OldestUnackedSecs => "oldest_unacked_secs",
            Self::OldestPendingCancelSecs => "oldest_pending_cancel_secs",
            Self::HeartbeatMissing => "heartbeat_missing",
            Self::StrategyRestarts => "strategy_restarts",
            Self::QuoteAgeSecs => "quote_age_secs",
            Self::VenueStuckOrders => "venue_stuck_orders",
            Self::Watchdog => "watchdog",
            Self::GlobalTradingHalted => "global_trading_halted",
            Self::OutboxPending => "outbox_pending",
            Self::DeadLetters => "dead_letters",
            Self::OutboxSetAside => "outbox_set_aside",
            Self::QueuedCommands => "queued_commands",
            Self::OrderFlow => "order_flow",
        }
    }

    /// The scope of the signal's series.
    #[must_use]
    pub fn scope(self) -> SignalScope {
        match self {
            Self::Orders
            | Self::OrderRate
            | Self::Rejects
            | Self::RejectRatio
            | Self::CancelRatio
            | Self::FillRatio
            | Self::DuplicateOrders
            | Self::ThrottledOrders
            | Self::NotionalPerOrder
            | Self::AckLatencyMs
            | Self::ReconMismatches
            | Self::OpenOrders
            | Self::TradingHalted
            | Self::Drawdown
            | Self::DrawdownRatio
            | Self::LossVelocity
            | Self::DailyLossUtilization
            | Self::OrderFlow => SignalScope::User,
            Self::PositionUtilization => SignalScope::UserInstrument,
            Self::OldestUnackedSecs | Self::OldestPendingCancelSecs => SignalScope::UserVenue,
            Self::HeartbeatMissing | Self::StrategyRestarts => SignalScope::Strategy,
            Self::QuoteAgeSecs => SignalScope::Instrument,
            Self::VenueStuckOrders => SignalScope::Venue,
            Self::Watchdog
            | Self::GlobalTradingHalted
            | Self::OutboxPending
            | Self::DeadLetters
            | Self::OutboxSetAside
            | Self::QueuedCommands => SignalScope::System,
        }
    }

    /// True when the signal is computed over the rule's window.
    #[must_use]
    pub fn windowed(self) -> bool {
        matches!(
            self,
            Self::Orders
                | Self::OrderRate
                | Self::Rejects
                | Self::RejectRatio
                | Self::CancelRatio
                | Self::FillRatio
                | Self::DuplicateOrders
                | Self::ThrottledOrders
                | Self::NotionalPerOrder
                | Self::AckLatencyMs
                | Self::ReconMismatches
                | Self::StrategyRestarts
                | Self::LossVelocity
                | Self::OrderFlow
        )
    }

    /// True for ratios over the window's orders, which mean nothing over a
    /// handful of orders: their rules take a `min_count` of orders.
    #[must_use]
    pub fn per_order(self) -> bool {
        matches!(
            self,
            Self::RejectRatio | Self::CancelRatio | Self::FillRatio | Self::NotionalPerOrder
        )
    }

    /// True for the multivariate order-flow vector (isolation forest only).
    #[must_use]
    pub fn multivariate(self) -> bool {
        self == Self::OrderFlow
    }

    /// One line for the rule listing.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Orders => "orders submitted in the window",
            Self::OrderRate => "orders submitted per second over the window",
            Self::Rejects => "orders denied or rejected in the window",
            Self::RejectRatio => "rejects / orders in the window",
            Self::CancelRatio => "cancels / orders in the window",
            Self::FillRatio => "orders with a first fill / orders in the window",
            Self::DuplicateOrders => "orders repeating one sent less than 10 s before",
            Self::ThrottledOrders => "orders denied for the orders-per-second limit",
            Self::NotionalPerOrder => "mean notional of the window's orders",
            Self::AckLatencyMs => "slowest venue acknowledgement in the window (ms)",
            Self::ReconMismatches => {
                "overfills, refused execution reports and orders the venue forgot, in the window"
            }
            Self::OpenOrders => "open orders now",
            Self::TradingHalted => "1 while the user's kill switch halts trading",
            Self::Drawdown => "high-water mark - equity (first currency)",
            Self::DrawdownRatio => "drawdown / high-water mark",
            Self::LossVelocity => "equity lost over the window / equity at its start",
            Self::DailyLossUtilization => "today's loss / max_daily_loss",
            Self::PositionUtilization => "|position| / max_position",
            Self::OldestUnackedSecs => "seconds the oldest order has waited for its ack",
            Self::OldestPendingCancelSecs => "seconds the oldest cancel has waited",
            Self::HeartbeatMissing => "1 while the strategy's heartbeat is missing",
            Self::StrategyRestarts => "strategy failures in the window",
            Self::QuoteAgeSecs => "seconds since the instrument's last quote",
            Self::VenueStuckOrders => "orders at the venue waiting past venue_stuck_after",
            Self::Watchdog => "always 1 (dead-man switch)",
            Self::GlobalTradingHalted => "1 while the global kill switch halts trading",
            Self::OutboxPending => "outbox rows not yet relayed",
            Self::DeadLetters => "dead letters of this instance's consumer group",
            Self::OutboxSetAside => {
                "outbox rows the broker refused for good, set aside by the relay"
            }
            Self::QueuedCommands => "commands queued in owners",
            Self::OrderFlow => "order-flow feature vector (isolation forest)",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_all_is_complete() {
        let mut seen = std::collections::BTreeSet::new();
        for s in Signal::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            let back: Signal = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
            assert!(seen.insert(s.as_str()));
            assert!(!s.describe().is_empty());
            if s.per_order() {
                assert!(s.windowed(), "{s}");
            }
        }
    }
}
