//! Netting positions per user × instrument.
//!
//! A position keeps its signed quantity and its signed cost basis (the open part's
//! `quantity × price × multiplier`). Keeping the cost rather than only the average
//! price makes `realized + unrealized` equal the cash flows of the fills exactly,
//! with no drift from rounding an average.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{InstrumentId, UserId};
use crate::side::Side;
use crate::values::{Currency, Money, Price, Quantity, decimal_string, round_amount};

/// Long, short or flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSide {
    /// Positive quantity.
    Long,
    /// Negative quantity.
    Short,
    /// Zero quantity.
    Flat,
}

/// A user's net position in one instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The owner.
    pub user_id: UserId,
    /// The instrument.
    pub instrument_id: InstrumentId,
    /// Currency of prices and PnL.
    pub quote_currency: Currency,
    /// Contract multiplier.
    #[serde(with = "decimal_string")]
    pub multiplier: Decimal,
    /// Signed quantity: positive long, negative short.
    #[serde(with = "decimal_string")]
    pub quantity: Decimal,
    /// Signed cost basis of the open quantity (`Σ q × px × multiplier`).
    #[serde(with = "decimal_string")]
    pub cost: Decimal,
    /// Realized PnL, net of commissions paid in the quote currency.
    #[serde(with = "decimal_string")]
    pub realized_pnl: Decimal,
    /// Commissions paid in the quote currency.
    #[serde(with = "decimal_string")]
    pub commissions: Decimal,
    /// The last mark price seen, for unrealized PnL.
    pub last_mark: Option<Price>,
    /// When the current position was opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// When the position last went flat.
    pub closed_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency.
    pub version: u64,
    /// Sequence of the last event of this position in the event log.
    #[serde(default)]
    pub sequence: u64,
}

/// What one fill did to a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionChange {
    /// Quantity that closed existing exposure.
    #[serde(with = "decimal_string")]
    pub closed_qty: Decimal,
    /// Quantity that opened (or extended) exposure.
    #[serde(with = "decimal_string")]
    pub opened_qty: Decimal,
    /// Realized PnL of this fill (net of commission).
    #[serde(with = "decimal_string")]
    pub realized: Decimal,
    /// True when the fill crossed zero (closed one side, opened the other).
    pub flipped: bool,
    /// Quantity after the fill.
    #[serde(with = "decimal_string")]
    pub quantity_after: Decimal,
}

impl Position {
    /// A flat position.
    #[must_use]
    pub fn flat(
        user_id: UserId,
        instrument_id: InstrumentId,
        quote_currency: Currency,
        multiplier: Decimal,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            user_id,
            instrument_id,
            quote_currency,
            multiplier,
            quantity: Decimal::ZERO,
            cost: Decimal::ZERO,
            realized_pnl: Decimal::ZERO,
            commissions: Decimal::ZERO,
            last_mark: None,
            opened_at: None,
            closed_at: None,
            updated_at: now,
            version: 0,
            sequence: 0,
        }
    }

    /// Long, short or flat.
    #[must_use]
    pub fn side(&self) -> PositionSide {
        if self.quantity > Decimal::ZERO {
            PositionSide::Long
        } else if self.quantity < Decimal::ZERO {
            PositionSide::Short
        } else {
            PositionSide::Flat
        }
    }

    /// Average open price, or `None` when flat.
    #[must_use]
    pub fn avg_open_price(&self) -> Option<Decimal> {
        if self.quantity.is_zero() {
            None
        } else {
            Some(round_amount(self.cost / (self.quantity * self.multiplier)))
        }
    }

    /// Unrealized PnL at `mark` (or at the last mark; zero when none is known).
    #[must_use]
    pub fn unrealized_pnl(&self, mark: Option<Price>) -> Decimal {
        match mark.or(self.last_mark) {
            Some(px) => round_amount(
                self.quantity
                    .saturating_mul(px.get())
                    .saturating_mul(self.multiplier),
            )
            .saturating_sub(self.cost),
            None => Decimal::ZERO,
        }
    }

    /// Market value of the open quantity at the mark (signed).
    #[must_use]
    pub fn market_value(&self, mark: Option<Price>) -> Decimal {
        match mark.or(self.last_mark) {
            Some(px) => round_amount(
                self.quantity
                    .saturating_mul(px.get())
                    .saturating_mul(self.multiplier),
            ),
            None => self.cost,
        }
    }

    /// Applies one fill. A fill that crosses zero is split: one part closes the
    /// existing exposure (realizing PnL), the rest opens the opposite side at the
    /// fill price.
    pub fn apply_fill(
        &mut self,
        side: Side,
        quantity: Quantity,
        price: Price,
        commission: &Money,
        at: DateTime<Utc>,
    ) -> PositionChange {
        let q = quantity.get();
        let px = price.get();
        let signed = side.sign() * q;
        let mut realized = Decimal::ZERO;
        let mut closed = Decimal::ZERO;
        let was = self.quantity;

        if !was.is_zero() && was.is_sign_positive() != signed.is_sign_positive() {
            closed = q.min(was.abs());
            let cost_removed = if closed == was.abs() {
                self.cost
            } else {
                // cost × closed can overflow where the share of the cost cannot.
                round_amount(
                    self.cost
                        .checked_mul(closed)
                        .map_or_else(|| self.cost * (closed / was.abs()), |c| c / was.abs()),
                )
            };
            // Closing a long sells (cash in); closing a short buys (cash out).
            let value = round_amount(closed * px * self.multiplier);
            realized = if was > Decimal::ZERO {
                value - cost_removed
            } else {
                -value - cost_removed
            };
            self.cost -= cost_removed;
            if was > Decimal::ZERO {
                self.quantity -= closed;
            } else {
                self.quantity += closed;
            }
        }
        let opened = q - closed;
        if !opened.is_zero() {
            if self.quantity.is_zero() {
                self.opened_at = Some(at);
            }
            self.quantity += side.sign() * opened;
            self.cost += side.sign() * round_amount(opened * px * self.multiplier);
        }
        if commission.currency == self.quote_currency {
            realized -= commission.amount;
            self.commissions += commission.amount;
        }
        self.realized_pnl += realized;
        if self.quantity.is_zero() {
            self.cost = Decimal::ZERO;
            self.closed_at = Some(at);
        }
        self.last_mark = Some(price);
        self.updated_at = at;
        PositionChange {
            closed_qty: closed,
            opened_qty: opened,
            realized,
            flipped: !was.is_zero() && !opened.is_zero() && !closed.is_zero(),
            quantity_after: self.quantity,
        }
    }
}

#[cfg(test)]
mod tests;
