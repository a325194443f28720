//! Request checks that need reference data: order shape against the instrument,
//! modifications, and the idempotency comparison.

use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, Order};
use ordermon_domain::ports::OrderChange;

use crate::error::{AppError, FieldError};

/// Checks a new order against its instrument: quantity on lot and within
/// bounds, prices on tick, minimum notional at the order's own price.
///
/// # Errors
/// [`AppError::Validation`] listing every field at fault.
pub fn check_new_order(new: &NewOrder, instrument: &Instrument) -> Result<(), AppError> {
    let mut errors = Vec::new();
    if let Err(e) = instrument.check_quantity(new.quantity) {
        errors.push(FieldError::new("quantity", e));
    }
    if let Some(p) = new.price {
        if let Err(e) = instrument.check_price(p) {
            errors.push(FieldError::new("price", e));
        }
        if let Err(e) = instrument.check_notional(new.quantity, p) {
            errors.push(FieldError::new("quantity", e));
        }
    }
    if let Some(p) = new.trigger_price
        && let Err(e) = instrument.check_price(p)
    {
        errors.push(FieldError::new("trigger_price", e));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Checks a modification of `order`.
///
/// # Errors
/// [`AppError::Validation`] for an empty change, a field the order type does
/// not have, off-tick prices, off-lot quantity or a quantity not above filled.
pub fn check_change(
    order: &Order,
    change: &OrderChange,
    instrument: &Instrument,
) -> Result<(), AppError> {
    let mut errors = Vec::new();
    if change.quantity.is_none() && change.price.is_none() && change.trigger_price.is_none() {
        errors.push(FieldError::new(
            "body",
            "nothing to modify: give quantity, price or trigger_price",
        ));
    }
    if let Some(q) = change.quantity {
        if let Err(e) = instrument.check_quantity(q) {
            errors.push(FieldError::new("quantity", e));
        } else if q <= order.filled_qty {
            errors.push(FieldError::new(
                "quantity",
                format!("must be above the filled quantity {}", order.filled_qty),
            ));
        }
    }
    if let Some(p) = change.price {
        if !order.order_type.has_price() {
            errors.push(FieldError::new(
                "price",
                format!("{} orders have no price", order.order_type),
            ));
        } else if let Err(e) = instrument.check_price(p) {
            errors.push(FieldError::new("price", e));
        }
    }
    if let Some(p) = change.trigger_price {
        if !order.order_type.has_trigger() {
            errors.push(FieldError::new(
                "trigger_price",
                format!("{} orders have no trigger_price", order.order_type),
            ));
        } else if let Err(e) = instrument.check_price(p) {
            errors.push(FieldError::new("trigger_price", e));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// True when `new` asks for the same order as `existing` (an idempotent repeat).
#[must_use]
pub fn same_request(existing: &Order, new: &NewOrder) -> bool {
    existing.client_order_id == new.client_order_id
        && existing.user_id == new.user_id
        && existing.strategy_id == new.strategy_id
        && existing.instrument_id == new.instrument_id
        && existing.side == new.side
        && existing.order_type == new.order_type
        && existing.time_in_force == new.time_in_force
        && existing.expire_at == new.expire_at
        && existing.reduce_only == new.reduce_only
        && existing.post_only == new.post_only
        && existing.quantity == new.quantity
        && existing.price == new.price
        && existing.trigger_price == new.trigger_price
}
