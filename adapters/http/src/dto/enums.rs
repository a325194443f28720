//! Schema-only mirrors of the domain's enums, so the OpenAPI document lists
//! their allowed values. Handlers never build these: the domain types carry the
//! data and serialize to exactly these names.

use serde::Serialize;
use utoipa::ToSchema;

/// Buy or sell.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// How an order is priced.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// At the best available price.
    Market,
    /// At the limit price or better.
    Limit,
    /// A market order once the trigger price trades.
    StopMarket,
    /// A limit order once the trigger price trades.
    StopLimit,
}

/// How long an order stays working.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till canceled.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
    /// Good for the day.
    Day,
    /// Good till `expire_at`.
    Gtd,
}

/// An order's status.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, not yet checked.
    Initialized,
    /// Refused by pre-trade risk (terminal; see `reason`).
    Denied,
    /// Sent to the venue.
    Submitted,
    /// Acknowledged by the venue.
    Accepted,
    /// Refused by the venue (terminal).
    Rejected,
    /// Canceled (terminal, except for a late fill).
    Canceled,
    /// Expired (terminal).
    Expired,
    /// A stop order whose trigger traded.
    Triggered,
    /// A modification is in flight.
    PendingUpdate,
    /// A cancel is in flight.
    PendingCancel,
    /// Partly filled.
    PartiallyFilled,
    /// Completely filled (terminal).
    Filled,
}

/// An API role.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, for every user.
    Admin,
    /// Trade and read their own data.
    Trader,
    /// Read their own data.
    Viewer,
}

/// Whether a user is monitored.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Monitored and trading.
    Active,
    /// Not monitored; new orders are denied.
    Disabled,
}

/// The kill switch.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    /// Normal trading.
    Active,
    /// Only position-reducing orders.
    Reducing,
    /// No new orders.
    Halted,
}

/// Cash or margin account.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// No shorting.
    Cash,
    /// Shorting against collateral.
    Margin,
}

/// Maker or taker.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiquiditySide {
    /// Resting order was hit.
    Maker,
    /// Crossed the spread.
    Taker,
    /// Not reported.
    None,
}

/// Long, short or flat.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PositionSide {
    /// Positive quantity.
    Long,
    /// Negative quantity.
    Short,
    /// Zero.
    Flat,
}
