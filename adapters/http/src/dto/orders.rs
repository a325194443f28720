//! Order requests and responses: submit, batch, modify, the order view with its
//! computed `leaves_qty`, and pages.

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::order::{NewOrder, Order, OrderStatus, OrderType, Side, TimeInForce};
use ordermon_domain::ports::OrderChange;
use ordermon_domain::values::{Price, Quantity, opt_decimal_string};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Problem;

/// `POST /api/v1/orders`: a new order. Decimals are JSON strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitOrderRequest {
    /// The client's id for the order, 1–64 printable ASCII, unique per user;
    /// resending the same body with it returns the original order.
    #[schema(value_type = crate::dto::formats::ClientOrderId, example = "c-1")]
    pub client_order_id: ClientOrderId,
    /// `SYMBOL.VENUE`.
    #[schema(value_type = crate::dto::formats::InstrumentId, example = "ACME.SIM")]
    pub instrument_id: InstrumentId,
    /// Buy or sell.
    #[schema(value_type = crate::dto::enums::Side)]
    pub side: Side,
    /// Pricing type.
    #[serde(rename = "type")]
    #[schema(value_type = crate::dto::enums::OrderType)]
    pub order_type: OrderType,
    /// Quantity, on the instrument's lot.
    #[serde(deserialize_with = "crate::dto::wire::text")]
    #[schema(value_type = crate::dto::formats::PositiveDecimal, example = "10")]
    pub quantity: Quantity,
    /// Limit price (limit and stop-limit only), on tick.
    #[serde(default, deserialize_with = "crate::dto::wire::opt_text")]
    #[schema(value_type = Option<crate::dto::formats::PositiveDecimal>, example = "10.00")]
    pub price: Option<Price>,
    /// Trigger price (stop orders only), on tick.
    #[serde(default, deserialize_with = "crate::dto::wire::opt_text")]
    #[schema(value_type = Option<crate::dto::formats::PositiveDecimal>)]
    pub trigger_price: Option<Price>,
    /// Time in force.
    #[schema(value_type = crate::dto::enums::TimeInForce)]
    pub time_in_force: TimeInForce,
    /// Expiry, required for `gtd` and only allowed there.
    #[serde(default)]
    pub expire_at: Option<DateTime<Utc>>,
    /// Only reduce an existing position.
    #[serde(default)]
    pub reduce_only: bool,
    /// Only add liquidity (resting limit orders).
    #[serde(default)]
    pub post_only: bool,
    /// The strategy placing it.
    #[serde(default)]
    #[schema(value_type = Option<crate::dto::formats::StrategyId>)]
    pub strategy_id: Option<StrategyId>,
}

impl SubmitOrderRequest {
    /// The application's command for `user`.
    #[must_use]
    pub fn into_new_order(self, user_id: UserId) -> NewOrder {
        NewOrder {
            client_order_id: self.client_order_id,
            user_id,
            strategy_id: self.strategy_id,
            instrument_id: self.instrument_id,
            side: self.side,
            order_type: self.order_type,
            quantity: self.quantity,
            price: self.price,
            trigger_price: self.trigger_price,
            time_in_force: self.time_in_force,
            expire_at: self.expire_at,
            reduce_only: self.reduce_only,
            post_only: self.post_only,
        }
    }
}

/// `POST /api/v1/orders/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1–500 orders.
    #[schema(min_items = 1, max_items = 500)]
    #[serde(deserialize_with = "crate::dto::wire::objects")]
    pub orders: Vec<SubmitOrderRequest>,
    /// All or none (`true`), or per-item results (`false`, the default).
    #[serde(default)]
    pub atomic: bool,
}

/// One item of a batch answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    /// The status this order alone would have been answered with (201, 200, 409, 422…).
    pub status: u16,
    /// The order, when it was created or repeated (the original order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderView>,
    /// The problem, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// The answer to a batch, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// Per-item results.
    pub results: Vec<BatchItem>,
}

/// `PATCH /api/v1/orders/{id}`: give at least one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifyOrderRequest {
    /// New total quantity (above what already filled).
    #[serde(default, deserialize_with = "crate::dto::wire::opt_text")]
    #[schema(value_type = Option<crate::dto::formats::PositiveDecimal>)]
    pub quantity: Option<Quantity>,
    /// New limit price.
    #[serde(default, deserialize_with = "crate::dto::wire::opt_text")]
    #[schema(value_type = Option<crate::dto::formats::PositiveDecimal>)]
    pub price: Option<Price>,
    /// New trigger price.
    #[serde(default, deserialize_with = "crate::dto::wire::opt_text")]
    #[schema(value_type = Option<crate::dto::formats::PositiveDecimal>)]
    pub trigger_price: Option<Price>,
}

impl From<ModifyOrderRequest> for OrderChange {
    fn from(r: ModifyOrderRequest) -> Self {
        Self {
            quantity: r.quantity,
            price: r.price,
            trigger_price: r.trigger_price,
        }
    }
}

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    /// ordermon's id (UUIDv7).
    #[schema(value_type = String, format = Uuid)]
    pub id: OrderId,
    /// The client's id.
    #[schema(value_type = String)]
    pub client_order_id: ClientOrderId,
    /// Owner.
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// Strategy.
    #[schema(value_type = Option<String>)]
    pub strategy_id: Option<StrategyId>,
    /// Instrument.
    #[schema(value_type = String)]
    pub instrument_id: InstrumentId,
    /// Side.
    #[schema(value_type = crate::dto::enums::Side)]
    pub side: Side,
    /// Type.
    #[serde(rename = "type")]
    #[schema(value_type = crate::dto::enums::OrderType)]
    pub order_type: OrderType,
    /// Total quantity.
    #[schema(value_type = String)]
    pub quantity: Quantity,
    /// Limit price.
    #[schema(value_type = Option<String>)]
    pub price: Option<Price>,
    /// Trigger price.
    #[schema(value_type = Option<String>)]
    pub trigger_price: Option<Price>,
    /// Time in force.
    #[schema(value_type = crate::dto::enums::TimeInForce)]
    pub time_in_force: TimeInForce,
    /// GTD expiry.
    pub expire_at: Option<DateTime<Utc>>,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Post-only.
    pub post_only: bool,
    /// Status.
    #[schema(value_type = crate::dto::enums::OrderStatus)]
    pub status: OrderStatus,
    /// Filled so far.
    #[schema(value_type = String)]
    pub filled_qty: Quantity,
    /// Still working (zero once terminal).
    #[schema(value_type = String)]
    pub leaves_qty: Quantity,
    /// Filled beyond the quantity (recorded and alerted).
    #[schema(value_type = String)]
    pub overfill_qty: Quantity,
    /// Average fill price.
    #[serde(with = "opt_decimal_string")]
    #[schema(value_type = Option<String>)]
    pub avg_px: Option<Decimal>,
    /// Why it was denied or rejected (or the last refused request).
    pub reason: Option<String>,
    /// The venue's id.
    pub venue_order_id: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version (bumped on every change).
    pub version: u64,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        let leaves_qty = o.leaves_qty();
        Self {
            id: o.id,
            client_order_id: o.client_order_id,
            user_id: o.user_id,
            strategy_id: o.strategy_id,
            instrument_id: o.instrument_id,
            side: o.side,
            order_type: o.order_type,
            quantity: o.quantity,
            price: o.price,
            trigger_price: o.trigger_price,
            time_in_force: o.time_in_force,
            expire_at: o.expire_at,
            reduce_only: o.reduce_only,
            post_only: o.post_only,
            status: o.status,
            filled_qty: o.filled_qty,
            leaves_qty,
            overfill_qty: o.overfill_qty,
            avg_px: o.avg_px,
            reason: o.reason,
            venue_order_id: o.venue_order_id,
            created_at: o.created_at,
            updated_at: o.updated_at,
            version: o.version,
        }
    }
}

/// A page of orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    /// The orders.
    pub items: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The answer to cancel-all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CancelAllResponse {
    /// How many orders were canceled (or asked to cancel at the venue).
    pub canceled: usize,
    /// Those orders as they are now.
    pub orders: Vec<OrderView>,
}
