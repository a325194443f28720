//! Schema-only mirrors of the domain's enums, so the OpenAPI document lists
//! their allowed values. Handlers never build these: the domain types carry the
//! data and serialize to exactly these names, which the test below checks
//! variant by variant (a variant added on one side only does not compile).

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

#[cfg(test)]
mod tests {
    //! Each mirror against its domain enum: both matches below are
    //! exhaustive, so a variant added on either side without the other does
    //! not compile, and every variant's wire name is compared.

    use ordermon_domain::account::AccountType as DAccountType;
    use ordermon_domain::fill::LiquiditySide as DLiquiditySide;
    use ordermon_domain::order::{
        OrderStatus as DOrderStatus, OrderType as DOrderType, Side as DSide,
        TimeInForce as DTimeInForce,
    };
    use ordermon_domain::position::PositionSide as DPositionSide;
    use ordermon_domain::risk::TradingState as DTradingState;
    use ordermon_domain::user::{Role as DRole, UserStatus as DUserStatus};

    macro_rules! mirrors {
        ($mirror:ident, $domain:ident, [$($v:ident),+ $(,)?]) => {{
            fn to_domain(m: super::$mirror) -> $domain {
                match m {
                    $(super::$mirror::$v => $domain::$v,)+
                }
            }
            fn to_mirror(d: $domain) -> super::$mirror {
                match d {
                    $($domain::$v => super::$mirror::$v,)+
                }
            }
            for m in [$(super::$mirror::$v),+] {
                let d = to_domain(m);
                let (wire, schema) = (serde_json::to_value(d).unwrap(), serde_json::to_value(m).unwrap());
                assert_eq!(wire, schema, "{}::{m:?}", stringify!($mirror));
                assert_eq!(serde_json::to_value(to_mirror(d)).unwrap(), wire);
            }
        }};
    }

    #[test]
    fn every_mirror_lists_exactly_the_domain_enums_wire_names() {
        mirrors!(Side, DSide, [Buy, Sell]);
        mirrors!(
            OrderType,
            DOrderType,
            [Market, Limit, StopMarket, StopLimit]
        );
        mirrors!(TimeInForce, DTimeInForce, [Gtc, Ioc, Fok, Day, Gtd]);
        mirrors!(
            OrderStatus,
            DOrderStatus,
            [
                Initialized,
                Denied,
                Submitted,
                Accepted,
                Rejected,
                Canceled,
                Expired,
                Triggered,
                PendingUpdate,
                PendingCancel,
                PartiallyFilled,
                Filled,
            ]
        );
        mirrors!(Role, DRole, [Admin, Trader, Viewer]);
        mirrors!(UserStatus, DUserStatus, [Active, Disabled]);
        mirrors!(TradingState, DTradingState, [Active, Reducing, Halted]);
        mirrors!(AccountType, DAccountType, [Cash, Margin]);
        mirrors!(LiquiditySide, DLiquiditySide, [Maker, Taker, None]);
        mirrors!(PositionSide, DPositionSide, [Long, Short, Flat]);
    }
}
