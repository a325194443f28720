//! Pre-trade risk: a pure function from an order and its context to either the
//! reservation it needs or a machine-readable reason to deny it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountError, AccountType, Hold, ReservationRequest};
use crate::instrument::Instrument;
pub use crate::order::DeniedReason;
use crate::order::{Order, OrderType, Side};
use crate::position::Position;
use crate::values::{Price, decimal_string, opt_decimal_string, round_amount_up};

impl From<&AccountError> for DeniedReason {
    fn from(e: &AccountError) -> Self {
        match e {
            AccountError::InsufficientPosition { .. } => Self::InsufficientPosition,
            _ => Self::InsufficientFunds,
        }
    }
}

/// Trading state of a user (or of the whole system): the kill switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    /// Normal trading.
    #[default]
    Active,
    /// Only orders that reduce a position are allowed.
    Reducing,
    /// No new orders.
    Halted,
}

impl TradingState {
    /// The stricter of two states (user-level and global).
    #[must_use]
    pub fn stricter(self, other: Self) -> Self {
        use TradingState::*;
        match (self, other) {
            (Halted, _) | (_, Halted) => Halted,
            (Reducing, _) | (_, Reducing) => Reducing,
            _ => Active,
        }
    }
}

/// Per-user risk limits; `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RiskLimits {
    /// Largest notional of one order, in its quote currency.
    #[serde(default, with = "opt_decimal_string")]
    pub max_order_notional: Option<Decimal>,
    /// Most open orders at once.
    #[serde(default)]
    pub max_open_orders: Option<u32>,
    /// Largest absolute position per instrument.
    #[serde(default, with = "opt_decimal_string")]
    pub max_position: Option<Decimal>,
    /// Largest loss in a day (positive number).
    #[serde(default, with = "opt_decimal_string")]
    pub max_daily_loss: Option<Decimal>,
    /// Most orders per second.
    #[serde(default)]
    pub max_orders_per_second: Option<u32>,
}

/// System-wide pricing parameters for reservations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskParams {
    /// Band over the last price used to size market-order reservations (0.05 = 5 %).
    #[serde(with = "decimal_string")]
    pub market_band: Decimal,
    /// Fee rate used to estimate fees in reservations (0.001 = 10 bp).
    #[serde(with = "decimal_string")]
    pub fee_rate: Decimal,
    /// Cash collateral per unit of short notional on margin accounts (1 = fully collateralized).
    #[serde(with = "decimal_string")]
    pub margin_ratio: Decimal,
}

impl Default for RiskParams {
    fn default() -> Self {
        Self {
            market_band: Decimal::new(5, 2),
            fee_rate: Decimal::new(1, 3),
            margin_ratio: Decimal::ONE,
        }
    }
}

/// Everything pre-trade risk looks at.
#[derive(Debug, Clone, Copy)]
pub struct RiskContext<'a> {
    /// The order being checked (status `initialized`).
    pub order: &'a Order,
    /// Its instrument.
    pub instrument: &'a Instrument,
    /// The owner's account.
    pub account: &'a Account,
    /// The owner's position in the instrument, if any.
    pub position: Option<&'a Position>,
    /// The owner's limits.
    pub limits: &'a RiskLimits,
    /// Pricing parameters.
    pub params: &'a RiskParams,
    /// Last traded / mid price of the instrument.
    pub last_price: Option<Price>,
    /// Effective trading state (stricter of the user's and the global one).
    pub trading_state: TradingState,
    /// The owner's open orders right now.
    pub open_orders: u32,
    /// The owner's orders in the last second, this one excluded.
    pub orders_last_second: u32,
    /// The owner's PnL today (realized + unrealized), negative for a loss.
    pub daily_pnl: Decimal,
}

/// Checks an order against limits, trading state and free funds.
///
/// On success returns the reservation the order needs when it is accepted.
///
/// # Errors
/// The first [`DeniedReason`] that applies.
pub fn check_order(ctx: &RiskContext<'_>) -> Result<ReservationRequest, DeniedReason> {
    let o = ctx.order;
    let limits = ctx.limits;
    let pos_qty = ctx.position.map_or(Decimal::ZERO, |p| p.quantity);
    let signed = o.side.sign() * o.quantity.get();
    let after = pos_qty + signed;
    // Reducing: opposite side to the position and not beyond flat.
    let reduces = !pos_qty.is_zero()
        && pos_qty.is_sign_positive() != signed.is_sign_positive()
        && o.quantity.get() <= pos_qty.abs();

    if ctx.trading_state == TradingState::Halted {
        return Err(DeniedReason::TradingHalted);
    }
    if let Some(max) = limits.max_orders_per_second
        && ctx.orders_last_second >= max
    {
        return Err(DeniedReason::RateLimited);
    }
    if (ctx.trading_state == TradingState::Reducing || o.reduce_only) && !reduces {
        return Err(DeniedReason::ReduceOnly);
    }
    if let Some(max) = limits.max_open_orders
        && ctx.open_orders >= max
    {
        return Err(DeniedReason::MaxOpenOrders);
    }
    let px = reservation_price(o, ctx.params, ctx.last_price)?;
    let notional = order_notional(o, px, ctx.instrument)?;
    if let Some(max) = limits.max_order_notional
        && notional > max
    {
        return Err(DeniedReason::MaxOrderNotional);
    }
    if let Some(max) = limits.max_position
        && after.abs() > max
        && after.abs() > pos_qty.abs()
    {
        return Err(DeniedReason::MaxPosition);
    }
    if let Some(max) = limits.max_daily_loss
        && ctx.daily_pnl <= -max
        && !reduces
    {
        return Err(DeniedReason::MaxDailyLoss);
    }

    let request = reservation_for(
        o,
        ctx.instrument,
        ctx.account.account_type,
        pos_qty,
        ctx.params,
        px,
    );
    // The funds check is the account's own rule, so the order that passes here
    // is exactly the order the account will accept.
    ctx.account
        .can_reserve(o.id, &request, pos_qty)
        .map_err(|e| DeniedReason::from(&e))?;
    Ok(request)
}

/// An order's full quantity × `px` × multiplier; one beyond what a decimal
/// holds is denied as too large, never a panic.
fn order_notional(
    o: &Order,
    px: Decimal,
    instrument: &Instrument,
) -> Result<Decimal, DeniedReason> {
    o.quantity
        .get()
        .checked_mul(px)
        .and_then(|n| n.checked_mul(instrument.multiplier))
        .ok_or(DeniedReason::MaxOrderNotional)
}

/// Whether changing `before` into `after` only lowers its quantity, prices
/// untouched: such a change lessens exposure and is never refused for the
/// trading state, a limit or funds.
#[must_use]
pub fn lessens(before: &Order, after: &Order) -> bool {
    after.quantity <= before.quantity
        && after.price == before.price
        && after.trigger_price == before.trigger_price
}

/// Checks a modification of a live order: `ctx.order` is the order as it would
/// be after the change and `ctx.account` the account with that order's own
/// reservation released.
///
/// A change that only lowers the quantity ([`lessens`]) passes whatever the
/// trading state, limits or funds. Any other change is checked like a new order
/// on what the modified order leaves unfilled: halted refuses it, reducing (or a
/// `reduce_only` order) lets it through only if it still reduces the position,
/// and the notional, position, daily-loss and funds limits apply. Counters of
/// new orders (open orders, orders per second) do not: a modification adds no
/// order.
///
/// On success returns the reservation the modified order needs.
///
/// # Errors
/// The first [`DeniedReason`] that applies.
pub fn check_modify(
    ctx: &RiskContext<'_>,
    before: &Order,
) -> Result<ReservationRequest, DeniedReason> {
    let o = ctx.order;
    let pos_qty = ctx.position.map_or(Decimal::ZERO, |p| p.quantity);
    let leaves = o.leaves_qty().get();
    let signed = o.side.sign() * leaves;
    let after = pos_qty + signed;
    let reduces = !pos_qty.is_zero()
        && pos_qty.is_sign_positive() != signed.is_sign_positive()
        && leaves <= pos_qty.abs();
    let px = reservation_price(o, ctx.params, ctx.last_price)?;
    let request = reservation_for(
        o,
        ctx.instrument,
        ctx.account.account_type,
        pos_qty,
        ctx.params,
        px,
    );
    if lessens(before, o) {
        return Ok(request);
    }
    if ctx.trading_state == TradingState::Halted {
        return Err(DeniedReason::TradingHalted);
    }
    if (ctx.trading_state == TradingState::Reducing || o.reduce_only) && !reduces {
        return Err(DeniedReason::ReduceOnly);
    }
    let notional = order_notional(o, px, ctx.instrument)?;
    let limits = ctx.limits;
    if limits.max_order_notional.is_some_and(|max| notional > max) {
        return Err(DeniedReason::MaxOrderNotional);
    }
    if limits
        .max_position
        .is_some_and(|max| after.abs() > max && after.abs() > pos_qty.abs())
    {
        return Err(DeniedReason::MaxPosition);
    }
    if limits
        .max_daily_loss
        .is_some_and(|max| ctx.daily_pnl <= -max && !reduces)
    {
        return Err(DeniedReason::MaxDailyLoss);
    }
    ctx.account
        .can_reserve(o.id, &request, pos_qty)
        .map_err(|e| DeniedReason::from(&e))?;
    Ok(request)
}

/// The reservation an order needs for its unfilled quantity, priced at
/// `reference_px` (the limit price, or last/trigger plus the band).
#[must_use]
pub fn reservation_for(
    order: &Order,
    instrument: &Instrument,
    account_type: AccountType,
    position_qty: Decimal,
    params: &RiskParams,
    reference_px: Decimal,
) -> ReservationRequest {
    let qty = order.leaves_qty();
    let notional = mul_sat(mul_sat(qty.get(), reference_px), instrument.multiplier);
    let currency = instrument.quote_currency.clone();
    let with_fees = |n: Decimal| round_amount_up(mul_sat(n, Decimal::ONE + params.fee_rate));
    let hold = match (order.side, account_type) {
        (Side::Buy, _) => Hold::Cash {
            currency,
            amount: with_fees(notional),
        },
        (Side::Sell, AccountType::Cash) => Hold::Position {
            instrument_id: order.instrument_id.clone(),
            quantity: qty.get(),
        },
        // Margin: the part that closes a long needs no collateral; the part that
        // opens or extends a short holds cash collateral.
        (Side::Sell, AccountType::Margin) => {
            let opening = (qty.get() - position_qty.max(Decimal::ZERO)).max(Decimal::ZERO);
            let collateral = mul_sat(
                mul_sat(mul_sat(opening, reference_px), instrument.multiplier),
                params.margin_ratio,
            );
            Hold::Cash {
                currency,
                amount: with_fees(collateral),
            }
        }
    };
    ReservationRequest {
        hold,
        quantity: qty,
    }
}

/// The price a reservation is sized at for `order` given the last price.
///
/// # Errors
/// [`DeniedReason::NoMarketPrice`] for a market order with no last price.
pub fn reservation_price(
    order: &Order,
    params: &RiskParams,
    last_price: Option<Price>,
) -> Result<Decimal, DeniedReason> {
    let band = Decimal::ONE + params.market_band;
    match order.order_type {
        OrderType::Limit | OrderType::StopLimit => order
            .price
            .map(Price::get)
            .ok_or(DeniedReason::NoMarketPrice),
        OrderType::Market => last_price
            .map(|p| mul_sat(p.get(), band))
            .ok_or(DeniedReason::NoMarketPrice),
        OrderType::StopMarket => order
            .trigger_price
            .map(Price::get)
            .into_iter()
            .chain(last_price.map(Price::get))
            .max()
            .map(|p| mul_sat(p, band))
            .ok_or(DeniedReason::NoMarketPrice),
    }
}

/// `a × b` for non-negative amounts, saturating at `Decimal::MAX` instead of
/// panicking: a hold that large fails the funds check like any other too-large one.
fn mul_sat(a: Decimal, b: Decimal) -> Decimal {
    a.checked_mul(b).unwrap_or(Decimal::MAX)
}

#[cfg(test)]
mod tests;
