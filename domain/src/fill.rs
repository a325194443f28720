//! A fill (trade): one execution of part of an order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{InstrumentId, OrderId, TradeId, UserId};
use crate::side::Side;
use crate::values::{Money, Price, Quantity};

/// Whether the fill added or took liquidity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquiditySide {
    /// Resting order was hit.
    Maker,
    /// Order crossed the spread.
    Taker,
    /// Not reported by the venue.
    None,
}

/// One execution of an order at the venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// The venue's execution id, unique per order.
    pub trade_id: TradeId,
    /// The order that traded.
    pub order_id: OrderId,
    /// The order's owner.
    pub user_id: UserId,
    /// The instrument traded.
    pub instrument_id: InstrumentId,
    /// The order's side.
    pub side: Side,
    /// Quantity executed (positive).
    pub quantity: Quantity,
    /// Execution price.
    pub price: Price,
    /// Commission charged (positive = paid).
    pub commission: Money,
    /// Maker or taker.
    pub liquidity_side: LiquiditySide,
    /// When the execution happened at the venue.
    pub ts_event: DateTime<Utc>,
}
