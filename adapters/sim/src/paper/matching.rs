//! The paper venue's matching rules: when an order may trade against a quote, at
//! what price and for how much, and the fill report that records it.
//!
//! Everything here is pure and exact (`Decimal`); the venue's book applies it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{OrderId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{Order, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind};
use ordermon_domain::values::{Money, Price, Quantity, round_amount};
use rust_decimal::Decimal;

/// Basis points in one.
const BPS: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// An order as the venue works it.
#[derive(Debug, Clone)]
pub(super) struct Resting {
    pub(super) id: OrderId,
    pub(super) user_id: UserId,
    pub(super) instrument: Arc<Instrument>,
    pub(super) side: Side,
    pub(super) order_type: OrderType,
    pub(super) quantity: Decimal,
    pub(super) price: Option<Price>,
    pub(super) trigger_price: Option<Price>,
    pub(super) time_in_force: TimeInForce,
    pub(super) post_only: bool,
    /// Fills only while they reduce the user's position.
    pub(super) reduce_only: bool,
    /// A `reduce_only` order that met a position it can no longer reduce:
    /// canceled instead of resting.
    pub(super) nothing_to_reduce: bool,
    /// Quantity the venue has filled.
    pub(super) filled: Decimal,
    /// A stop whose trigger price traded.
    pub(super) triggered: bool,
    /// Arrival order, for time priority.
    pub(super) seq: u64,
    /// When the order expires by its time in force (DAY, GTD).
    pub(super) expires_at: Option<DateTime<Utc>>,
}

/// What becomes of an order once it has met a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finish {
    /// It keeps working.
    Rest,
    /// Nothing is left to fill.
    Done,
    /// Immediate-or-cancel / fill-or-kill: the rest is canceled.
    Cancel,
}

impl Resting {
    /// The venue's copy of a new order.
    pub(super) fn new(order: &Order, instrument: Arc<Instrument>, seq: u64) -> Self {
        let expires_at = match order.time_in_force {
            TimeInForce::Day => end_of_day(order.created_at),
            TimeInForce::Gtd => order.expire_at,
            TimeInForce::Gtc | TimeInForce::Ioc | TimeInForce::Fok => None,
        };
        Self {
            id: order.id,
            user_id: order.user_id.clone(),
            instrument,
            side: order.side,
            order_type: order.order_type,
            quantity: order.quantity.get(),
            price: order.price,
            trigger_price: order.trigger_price,
            time_in_force: order.time_in_force,
            post_only: order.post_only,
            reduce_only: order.reduce_only,
            nothing_to_reduce: false,
            filled: order.filled_qty.get(),
            triggered: false,
            seq,
            expires_at,
        }
    }

    /// Quantity still to fill.
    pub(super) fn leaves(&self) -> Decimal {
        (self.quantity - self.filled).max(Decimal::ZERO)
    }

    /// True for stop orders.
    pub(super) fn is_stop(&self) -> bool {
        self.order_type.has_trigger()
    }

    /// The limit price: `None` for market and stop-market orders.
    pub(super) fn limit(&self) -> Option<Price> {
        if self.order_type.has_price() {
            self.price
        } else {
            None
        }
    }

    /// Whether the order keeps working after meeting a quote.
    pub(super) fn finish(&self) -> Finish {
        let live = !self.is_stop() || self.triggered;
        if self.leaves() <= Decimal::ZERO {
            Finish::Done
        } else if self.nothing_to_reduce
            || (live && matches!(self.time_in_force, TimeInForce::Ioc | TimeInForce::Fok))
        {
            Finish::Cancel
        } else {
            Finish::Rest
        }
    }

    /// Matching priority on one quote: per side, market orders first, then the
    /// best limit price, then arrival.
    pub(super) fn priority(&self) -> (u8, bool, Decimal, u64) {
        let (side, price) = match (self.side, self.limit()) {
            (Side::Buy, p) => (0, p.map_or(Decimal::ZERO, |p| -p.get())),
            (Side::Sell, p) => (1, p.map_or(Decimal::ZERO, Price::get)),
        };
        (side, self.limit().is_some(), price, self.seq)
    }

    /// A report about this order.
    pub(super) fn report(&self, kind: ExecutionReportKind, ts: DateTime<Utc>) -> ExecutionReport {
        ExecutionReport {
            order_id: self.id,
            user_id: self.user_id.clone(),
            kind,
            ts_event: ts,
        }
    }
}

/// The end of the UTC day `at` falls in (when DAY orders expire).
pub(super) fn end_of_day(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(at.date_naive().succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc())
}

/// An instrument's latest quote and the size still available on it.
#[derive(Debug, Clone)]
pub(super) struct Liquidity {
    pub(super) quote: Quote,
    bid_left: Decimal,
    ask_left: Decimal,
}

impl Liquidity {
    /// The full sizes of a fresh quote.
    pub(super) fn new(quote: Quote) -> Self {
        Self {
            bid_left: quote.bid_size.get(),
            ask_left: quote.ask_size.get(),
            quote,
        }
    }

    /// The price an order of `side` takes, and the size left there.
    fn touch(&self, side: Side) -> (Decimal, Decimal) {
        match side {
            Side::Buy => (self.quote.ask.get(), self.ask_left),
            Side::Sell => (self.quote.bid.get(), self.bid_left),
        }
    }

    /// Consumes size taken by an order of `side`.
    pub(super) fn take(&mut self, side: Side, quantity: Decimal) {
        let left = match side {
            Side::Buy => &mut self.ask_left,
            Side::Sell => &mut self.bid_left,
        };
        *left = (*left - quantity).max(Decimal::ZERO);
    }
}

/// True when a limit order of `side` at `limit` can trade against the quote.
pub(super) fn crosses(side: Side, limit: Decimal, quote: &Quote) -> bool {
    match side {
        Side::Buy => quote.ask.get() <= limit,
        Side::Sell => quote.bid.get() >= limit,
    }
}

/// True when a stop of `side` at `trigger` is touched: a buy stop when the ask
/// reaches it, a sell stop when the bid falls to it.
pub(super) fn stop_reached(side: Side, trigger: Decimal, quote: &Quote) -> bool {
    match side {
        Side::Buy => quote.ask.get() >= trigger,
        Side::Sell => quote.bid.get() <= trigger,
    }
}

/// The touch price moved `bps` against the trader, then rounded to the tick,
/// again against the trader (a paper venue should never flatter a strategy).
pub(super) fn slipped(side: Side, touch: Decimal, bps: Decimal, tick: Decimal) -> Option<Decimal> {
    if bps.is_zero() || tick <= Decimal::ZERO {
        return Some(touch);
    }
    let factor = bps.checked_div(BPS)?;
    match side {
        Side::Buy => {
            let raw = touch.checked_mul(Decimal::ONE.checked_add(factor)?)?;
            raw.checked_div(tick)?.ceil().checked_mul(tick)
        }
        Side::Sell => {
            let raw = touch.checked_mul(Decimal::ONE.checked_sub(factor)?)?;
            let price = raw.checked_div(tick)?.floor().checked_mul(tick)?;
            // A sell never fills at zero: at worst at the bid itself.
            Some(if price > Decimal::ZERO { price } else { touch })
        }
    }
}

/// How an order meets the quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Aggression {
    /// Arriving (submit, modify, trigger): it takes the quote's price.
    Taker,
    /// Resting in the book when the quote moves onto it: it trades at its limit.
    Resting,
}

/// One execution the rules allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Execution {
    pub(super) quantity: Decimal,
    pub(super) price: Decimal,
    pub(super) liquidity: LiquiditySide,
}

/// What the order may execute against the quote now, if anything: bounded by
/// the size left on the quote and by `cap` (what a `reduce_only` order may
/// still reduce), rounded down to the lot, all or nothing for FOK.
pub(super) fn execution(
    order: &Resting,
    liquidity: &Liquidity,
    slippage_bps: Decimal,
    aggression: Aggression,
    cap: Option<Decimal>,
) -> Option<Execution> {
    let (touch, available) = liquidity.touch(order.side);
    let tick = order.instrument.tick_size.get();
    let (price, side) = match order.limit() {
        None => (
            slipped(order.side, touch, slippage_bps, tick)?,
            LiquiditySide::Taker,
        ),
        Some(limit) if !crosses(order.side, limit.get(), &liquidity.quote) => return None,
        // The quote's price is at least as good as the limit.
        Some(_) if aggression == Aggression::Taker => (touch, LiquiditySide::Taker),
        Some(limit) => (limit.get(), LiquiditySide::Maker),
    };
    let leaves = order.leaves();
    let bound = cap.map_or(available, |cap| available.min(cap));
    let quantity = floor_to_lot(bound.min(leaves), order.instrument.lot_size.get());
    if quantity <= Decimal::ZERO || (order.time_in_force == TimeInForce::Fok && quantity < leaves) {
        return None;
    }
    Some(Execution {
        quantity,
        price,
        liquidity: side,
    })
}

fn floor_to_lot(quantity: Decimal, lot: Decimal) -> Decimal {
    if lot <= Decimal::ZERO {
        return quantity;
    }
    quantity
        .checked_div(lot)
        .and_then(|n| n.floor().checked_mul(lot))
        .unwrap_or(Decimal::ZERO)
}

/// The fill report of an execution, with its commission (notional × fee rate in
/// the instrument's quote currency). `None` when a value cannot be stored.
pub(super) fn fill_report(
    order: &Resting,
    execution: &Execution,
    trade_id: TradeId,
    fee_rate: Decimal,
    ts: DateTime<Utc>,
) -> Option<ExecutionReport> {
    let notional = execution
        .quantity
        .checked_mul(execution.price)?
        .checked_mul(order.instrument.multiplier)?;
    let commission = round_amount(notional.checked_mul(fee_rate)?);
    let kind = ExecutionReportKind::Fill {
        trade_id,
        quantity: Quantity::new(execution.quantity).ok()?,
        price: Price::new(execution.price).ok()?,
        commission: Money::new(commission, order.instrument.quote_currency.clone()).ok()?,
        liquidity_side: execution.liquidity,
    };
    Some(order.report(kind, ts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    #[test]
    fn slippage_goes_against_the_trader_and_lands_on_tick() {
        let tick = dec!(0.01);
        assert_eq!(
            slipped(Side::Buy, dec!(100.00), dec!(1), tick),
            Some(dec!(100.01))
        );
        assert_eq!(
            slipped(Side::Buy, dec!(10.00), dec!(1), tick),
            Some(dec!(10.01))
        );
        assert_eq!(
            slipped(Side::Sell, dec!(99.99), dec!(1), tick),
            Some(dec!(99.98))
        );
        assert_eq!(
            slipped(Side::Sell, dec!(0.01), dec!(1), tick),
            Some(dec!(0.01))
        );
        assert_eq!(
            slipped(Side::Buy, dec!(100.00), dec!(0), tick),
            Some(dec!(100.00))
        );
    }

    #[test]
    fn lots_round_down() {
        assert_eq!(floor_to_lot(dec!(7), dec!(5)), dec!(5));
        assert_eq!(floor_to_lot(dec!(0.00123), dec!(0.0001)), dec!(0.0012));
        assert_eq!(floor_to_lot(dec!(4), dec!(5)), dec!(0));
    }

    #[test]
    fn day_ends_at_utc_midnight() {
        let at = Utc.with_ymd_and_hms(2024, 12, 31, 23, 59, 0).unwrap();
        assert_eq!(
            end_of_day(at),
            Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap())
        );
    }
}
