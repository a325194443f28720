//! The order aggregate: its data, how it is created, and how events change it.

mod event;
mod status;
mod transition;

pub use crate::side::Side;
pub use event::{OrderEvent, OrderEventKind, TimedOrderEvent};
pub use status::{DeniedReason, OrderStatus, OrderType, TimeInForce, UnknownStatus};
pub use transition::{Transition, transition};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{ClientOrderId, InstrumentId, OrderId, StrategyId, TradeId, UserId};
use crate::values::{Price, Quantity, opt_decimal_string, round_amount};

/// Why an order could not be created or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The event is not allowed in the order's current status.
    #[error("order in status {from} cannot take event {event}")]
    InvalidTransition {
        /// The order's status.
        from: OrderStatus,
        /// The refused event.
        event: OrderEventKind,
    },
    /// A limit or stop-limit order needs a price.
    #[error("{0} orders need a price")]
    MissingPrice(OrderType),
    /// Market and stop-market orders must not carry a price.
    #[error("{0} orders must not have a price")]
    UnexpectedPrice(OrderType),
    /// A stop order needs a trigger price.
    #[error("{0} orders need a trigger_price")]
    MissingTrigger(OrderType),
    /// Only stop orders carry a trigger price.
    #[error("{0} orders must not have a trigger_price")]
    UnexpectedTrigger(OrderType),
    /// GTD orders need `expire_at`; others must not have it.
    #[error("expire_at is required for gtd and only allowed for gtd")]
    ExpireAt,
    /// `expire_at` is already in the past.
    #[error("expire_at is in the past")]
    ExpireAtPast,
    /// Post-only applies to resting limit orders only.
    #[error("post_only requires a limit order that is not ioc/fok")]
    PostOnly,
    /// The order quantity must be positive.
    #[error("quantity must be positive")]
    ZeroQuantity,
    /// A modification would leave the order smaller than what already filled.
    #[error("new quantity {new} is not above the filled quantity {filled}")]
    QuantityBelowFilled {
        /// Requested quantity.
        new: Decimal,
        /// Already filled.
        filled: Decimal,
    },
    /// A modification asks to change nothing, or a field the type does not have.
    #[error("invalid modification: {0}")]
    InvalidUpdate(&'static str),
    /// A fill belongs to another order or instrument.
    #[error("fill does not belong to this order")]
    ForeignFill,
    /// A fill too large to account for: its quantity × price × multiplier, or
    /// the order's filled quantity with it, reaches 1e20.
    #[error(
        "fill quantity × price × multiplier must stay below 1e20, and so must the order's filled quantity"
    )]
    FillTooLarge,
}

/// What a client asks for when it submits an order (already shape-checked types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The client's id for the order.
    pub client_order_id: ClientOrderId,
    /// The owner.
    pub user_id: UserId,
    /// The strategy that placed it, if any.
    #[serde(default)]
    pub strategy_id: Option<StrategyId>,
    /// What to trade.
    pub instrument_id: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Pricing type.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Total quantity.
    pub quantity: Quantity,
    /// Limit price.
    #[serde(default)]
    pub price: Option<Price>,
    /// Stop trigger price.
    #[serde(default)]
    pub trigger_price: Option<Price>,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Expiry for GTD.
    #[serde(default)]
    pub expire_at: Option<DateTime<Utc>>,
    /// Only reduce an existing position.
    #[serde(default)]
    pub reduce_only: bool,
    /// Only add liquidity.
    #[serde(default)]
    pub post_only: bool,
}

impl NewOrder {
    /// Checks the combination of type, prices, time in force and flags.
    ///
    /// # Errors
    /// Returns the first [`OrderError`] that applies.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), OrderError> {
        let t = self.order_type;
        if self.quantity.is_zero() {
            return Err(OrderError::ZeroQuantity);
        }
        match (t.has_price(), self.price.is_some()) {
            (true, false) => return Err(OrderError::MissingPrice(t)),
            (false, true) => return Err(OrderError::UnexpectedPrice(t)),
            _ => {}
        }
        match (t.has_trigger(), self.trigger_price.is_some()) {
            (true, false) => return Err(OrderError::MissingTrigger(t)),
            (false, true) => return Err(OrderError::UnexpectedTrigger(t)),
            _ => {}
        }
        match (self.time_in_force, self.expire_at) {
            (TimeInForce::Gtd, Some(at)) if at <= now => return Err(OrderError::ExpireAtPast),
            (TimeInForce::Gtd, Some(_)) => {}
            (TimeInForce::Gtd, None) | (_, Some(_)) => return Err(OrderError::ExpireAt),
            _ => {}
        }
        if self.post_only
            && (t != OrderType::Limit
                || matches!(self.time_in_force, TimeInForce::Ioc | TimeInForce::Fok))
        {
            return Err(OrderError::PostOnly);
        }
        Ok(())
    }
}

/// An order and everything that has happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// ordermon's id (UUIDv7).
    pub id: OrderId,
    /// The client's id, unique per user.
    pub client_order_id: ClientOrderId,
    /// The owner.
    pub user_id: UserId,
    /// The strategy that placed it, if any.
    pub strategy_id: Option<StrategyId>,
    /// What is traded.
    pub instrument_id: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Pricing type.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Total quantity.
    pub quantity: Quantity,
    /// Limit price.
    pub price: Option<Price>,
    /// Stop trigger price.
    pub trigger_price: Option<Price>,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Expiry for GTD.
    pub expire_at: Option<DateTime<Utc>>,
    /// Only reduce an existing position.
    pub reduce_only: bool,
    /// Only add liquidity.
    pub post_only: bool,
    /// Current status.
    pub status: OrderStatus,
    /// The status a pending order returns to when its request is refused.
    pub previous_status: Option<OrderStatus>,
    /// Quantity filled so far (may exceed `quantity` only with an overfill).
    pub filled_qty: Quantity,
    /// Quantity filled beyond `quantity`, recorded and alerted, never hidden.
    pub overfill_qty: Quantity,
    /// Volume-weighted average fill price.
    #[serde(with = "opt_decimal_string")]
    pub avg_px: Option<Decimal>,
    /// Why the order was denied or rejected (or the last refused request).
    pub reason: Option<String>,
    /// The venue's own id, once acknowledged.
    pub venue_order_id: Option<String>,
    /// Trade ids already applied, so a repeated execution is a no-op.
    pub trade_ids: Vec<TradeId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Time of the last change.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency; bumped on every committed change.
    pub version: u64,
    /// Sequence number of the last event applied (the event log's per-aggregate sequence).
    pub sequence: u64,
}

/// The result of applying an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The order changed.
    Changed,
    /// The event was a repeat (same trade id) and changed nothing.
    Duplicate,
}

impl Order {
    /// Creates an order in status `initialized` and its `Initialized` event.
    ///
    /// # Errors
    /// Returns an [`OrderError`] when the request's shape is invalid.
    pub fn create(
        id: OrderId,
        new: NewOrder,
        now: DateTime<Utc>,
    ) -> Result<(Self, OrderEvent), OrderError> {
        new.validate(now)?;
        let order = Self {
            id,
            client_order_id: new.client_order_id,
            user_id: new.user_id,
            strategy_id: new.strategy_id,
            instrument_id: new.instrument_id,
            side: new.side,
            order_type: new.order_type,
            quantity: new.quantity,
            price: new.price,
            trigger_price: new.trigger_price,
            time_in_force: new.time_in_force,
            expire_at: new.expire_at,
            reduce_only: new.reduce_only,
            post_only: new.post_only,
            status: OrderStatus::Initialized,
            previous_status: None,
            filled_qty: Quantity::ZERO,
            overfill_qty: Quantity::ZERO,
            avg_px: None,
            reason: None,
            venue_order_id: None,
            trade_ids: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
            sequence: 1,
        };
        let event = OrderEvent::Initialized {
            order: Box::new(order.clone()),
        };
        Ok((order, event))
    }

    /// Rebuilds an order from its event history (the first event must be
    /// `Initialized`). Returns `None` for an empty or malformed history.
    #[must_use]
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a TimedOrderEvent>) -> Option<Self> {
        let mut iter = events.into_iter();
        let first = iter.next()?;
        let OrderEvent::Initialized { order } = &first.event else {
            return None;
        };
        let mut order = (**order).clone();
        for e in iter {
            order.apply(&e.event, e.at).ok()?;
        }
        Some(order)
    }

    /// Quantity still working: zero once the order is terminal.
    #[must_use]
    pub fn leaves_qty(&self) -> Quantity {
        match self.status {
            OrderStatus::Initialized => self.quantity,
            s if s.is_terminal() => Quantity::ZERO,
            _ => self.quantity.saturating_sub(self.filled_qty),
        }
    }

    /// True for stop-market and stop-limit orders.
    #[must_use]
    pub fn is_stop(&self) -> bool {
        self.order_type.has_trigger()
    }

    /// True while the order can still trade.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }

    /// Checks whether `event` is allowed now, without changing anything.
    ///
    /// # Errors
    /// [`OrderError::InvalidTransition`] when the table refuses it.
    pub fn can_apply(&self, event: OrderEventKind) -> Result<Transition, OrderError> {
        match transition(self.status, self.previous_status, event, self.is_stop()) {
            Transition::Refused => Err(OrderError::InvalidTransition {
                from: self.status,
                event,
            }),
            t => Ok(t),
        }
    }

    /// Applies an event, following the transition table.
    ///
    /// A fill whose trade id was already applied returns [`Applied::Duplicate`]
    /// and changes nothing. On error nothing changes.
    ///
    /// # Errors
    /// [`OrderError::InvalidTransition`] for an event the table refuses, or a
    /// data error for an update or fill that does not fit the order.
    pub fn apply(&mut self, event: &OrderEvent, at: DateTime<Utc>) -> Result<Applied, OrderError> {
        if let OrderEvent::Filled { fill } = event {
            if self.trade_ids.contains(&fill.trade_id) {
                return Ok(Applied::Duplicate);
            }
            if fill.order_id != self.id || fill.instrument_id != self.instrument_id {
                return Err(OrderError::ForeignFill);
            }
            self.fill_fits(fill.quantity, fill.price)?;
        }
        let step = self.can_apply(event.kind())?;
        // Validate the payload before touching state so an error changes nothing.
        if let OrderEvent::Updated {
            quantity,
            price,
            trigger_price,
        } = event
        {
            self.check_update(*quantity, *price, *trigger_price)?;
        }

        match step {
            Transition::To(s) => {
                self.status = s;
                self.previous_status = None;
            }
            Transition::Pending(s) => {
                // Entering PendingCancel from PendingUpdate keeps the older memory.
                if !self.status.is_pending() {
                    self.previous_status = Some(self.status);
                }
                self.status = s;
            }
            Transition::Back => {
                self.status = self.previous_status.unwrap_or(OrderStatus::Accepted);
                self.previous_status = None;
            }
            Transition::Remember(s) => self.previous_status = Some(s),
            Transition::Stay | Transition::Fill | Transition::Refused => {}
        }

        match event {
            OrderEvent::Denied { reason } => self.reason = Some(reason.as_str().to_owned()),
            OrderEvent::Rejected { reason } => self.reason = Some(reason.clone()),
            OrderEvent::ModifyRejected { reason } | OrderEvent::CancelRejected { reason } => {
                self.reason = Some(reason.clone());
            }
            OrderEvent::Accepted { venue_order_id } if venue_order_id.is_some() => {
                self.venue_order_id.clone_from(venue_order_id);
            }
            OrderEvent::Updated {
                quantity,
                price,
                trigger_price,
            } => {
                if let Some(q) = quantity {
                    self.quantity = *q;
                }
                if price.is_some() {
                    self.price = *price;
                }
                if trigger_price.is_some() {
                    self.trigger_price = *trigger_price;
                }
            }
            OrderEvent::Filled { fill } => {
                self.apply_fill(fill.quantity, fill.price, &fill.trade_id)
            }
            _ => {}
        }
        self.updated_at = at;
        self.sequence += 1;
        Ok(Applied::Changed)
    }

    fn check_update(
        &self,
        quantity: Option<Quantity>,
        price: Option<Price>,
        trigger_price: Option<Price>,
    ) -> Result<(), OrderError> {
        if price.is_some() && !self.order_type.has_price() {
            return Err(OrderError::InvalidUpdate("this order type has no price"));
        }
        if trigger_price.is_some() && !self.order_type.has_trigger() {
            return Err(OrderError::InvalidUpdate(
                "this order type has no trigger_price",
            ));
        }
        if let Some(q) = quantity
            && (q <= self.filled_qty || q.is_zero())
        {
            return Err(OrderError::QuantityBelowFilled {
                new: q.get(),
                filled: self.filled_qty.get(),
            });
        }
        Ok(())
    }

    /// The filled quantity and average price after a fill of `qty` at `px`, or
    /// [`OrderError::FillTooLarge`] when they cannot be represented.
    fn filled_after(&self, qty: Quantity, px: Price) -> Result<(Quantity, Decimal), OrderError> {
        let before = self.filled_qty.get();
        let after = before
            .checked_add(qty.get())
            .and_then(|a| Quantity::new(a).ok())
            .ok_or(OrderError::FillTooLarge)?;
        let avg = self.avg_px.unwrap_or(Decimal::ZERO);
        // The average of what filled: Σ price × quantity ÷ Σ quantity.
        let value = avg
            .checked_mul(before)
            .zip(px.get().checked_mul(qty.get()))
            .and_then(|(a, b)| a.checked_add(b))
            .ok_or(OrderError::FillTooLarge)?;
        let avg_after = if after.is_zero() {
            avg
        } else {
            round_amount(value / after.get())
        };
        Ok((after, avg_after))
    }

    /// Whether a fill of `qty` at `px` can be applied (see [`Self::filled_after`]).
    fn fill_fits(&self, qty: Quantity, px: Price) -> Result<(), OrderError> {
        if qty
            .get()
            .checked_mul(px.get())
            .is_none_or(|n| n.abs() >= crate::values::MAX_ABS)
        {
            return Err(OrderError::FillTooLarge);
        }
        self.filled_after(qty, px).map(|_| ())
    }

    fn apply_fill(&mut self, qty: Quantity, px: Price, trade_id: &TradeId) {
        // Checked by `fill_fits` before anything changed.
        let Ok((filled, avg)) = self.filled_after(qty, px) else {
            return;
        };
        let after = filled.get();
        if !after.is_zero() {
            self.avg_px = Some(avg);
        }
        self.filled_qty = filled;
        self.trade_ids.push(trade_id.clone());
        let quantity = self.quantity.get();
        if after > quantity {
            self.overfill_qty = Quantity::new(after - quantity).unwrap_or(self.overfill_qty);
        }
        let complete = after >= quantity;
        match self.status {
            // Late fill after cancel: the order stays canceled unless it completed.
            OrderStatus::Canceled if !complete => {}
            OrderStatus::PendingUpdate | OrderStatus::PendingCancel if !complete => {
                self.previous_status = Some(OrderStatus::PartiallyFilled);
            }
            _ if complete => {
                self.status = OrderStatus::Filled;
                self.previous_status = None;
            }
            _ => self.status = OrderStatus::PartiallyFilled,
        }
    }
}

#[cfg(test)]
mod tests;
