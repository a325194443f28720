//! Accounts: cash per currency as total / reserved / free, and the reservations
//! that back every open order (the "no oversell" guarantee).
//!
//! Rules: accepting an order reserves (cash for buys; position quantity for sells
//! on cash accounts; cash collateral for sells on margin accounts); fills consume
//! their share of the reservation; cancel / reject / expire release what is left.
//! A reservation is only made from free funds, and releases and consumption only
//! ever lower `reserved`, so `reserved <= total` and `free >= 0` hold after every
//! operation, whatever the interleaving.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{InstrumentId, OrderId, UserId};
use crate::side::Side;
use crate::values::{Currency, Money, Price, Quantity, decimal_string, round_amount};

/// Cash or margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// No shorting, no borrowing: sells need a free position.
    #[default]
    Cash,
    /// Shorting allowed against cash collateral.
    Margin,
}

/// Why an account operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Not enough free cash.
    #[error("insufficient funds: need {needed} {currency}, free {free}")]
    InsufficientFunds {
        /// Currency.
        currency: Currency,
        /// Amount asked for.
        needed: Decimal,
        /// Amount free.
        free: Decimal,
    },
    /// Not enough free position to sell.
    #[error("insufficient position in {instrument_id}: need {needed}, free {free}")]
    InsufficientPosition {
        /// Instrument.
        instrument_id: InstrumentId,
        /// Quantity asked for.
        needed: Decimal,
        /// Quantity free.
        free: Decimal,
    },
    /// The order already has a reservation.
    #[error("order {0} already has a reservation")]
    AlreadyReserved(OrderId),
    /// An amount was out of range.
    #[error("amount out of range")]
    OutOfRange,
}

/// One currency's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Currency.
    pub currency: Currency,
    /// Cash held.
    #[serde(with = "decimal_string")]
    pub total: Decimal,
    /// Cash held back for open orders.
    #[serde(with = "decimal_string")]
    pub reserved: Decimal,
}

impl Balance {
    /// `total - reserved`.
    #[must_use]
    pub fn free(&self) -> Decimal {
        self.total - self.reserved
    }
}

/// What a reservation holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hold {
    /// Cash.
    Cash {
        /// Currency.
        currency: Currency,
        /// Amount still held.
        #[serde(with = "decimal_string")]
        amount: Decimal,
    },
    /// Position quantity (sells on cash accounts).
    Position {
        /// Instrument.
        instrument_id: InstrumentId,
        /// Quantity still held.
        #[serde(with = "decimal_string")]
        quantity: Decimal,
    },
}

/// The reservation backing one open order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The order.
    pub order_id: OrderId,
    /// What is held.
    pub hold: Hold,
    /// Order quantity not yet filled, over which the hold is spread.
    #[serde(with = "decimal_string")]
    pub remaining_qty: Decimal,
}

/// What an order asks to reserve (computed by pre-trade risk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRequest {
    /// What to hold.
    pub hold: Hold,
    /// The order quantity it backs.
    pub quantity: Quantity,
}

/// How a fill settled against the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Cash paid (negative) or received (positive) in the quote currency, before commission.
    #[serde(with = "decimal_string")]
    pub cash_flow: Decimal,
    /// Commission charged.
    pub commission: Money,
    /// Reservation consumed by the fill.
    #[serde(with = "decimal_string")]
    pub consumed: Decimal,
    /// Reservation released because the order finished.
    #[serde(with = "decimal_string")]
    pub released: Decimal,
}

/// A user's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The owner.
    pub user_id: UserId,
    /// Cash or margin.
    pub account_type: AccountType,
    /// Balances per currency.
    pub balances: BTreeMap<Currency, Balance>,
    /// Reservations per open order (stores may keep them apart from the rest).
    #[serde(default)]
    pub reservations: BTreeMap<OrderId, Reservation>,
    /// Position quantity held back for open sells, per instrument.
    #[serde(default)]
    pub position_holds: BTreeMap<InstrumentId, Quantity>,
    /// Highest equity seen (for drawdown).
    #[serde(with = "decimal_string", default)]
    pub high_water_mark: Decimal,
    /// Version for optimistic concurrency.
    pub version: u64,
    /// Sequence of the last event of this account in the event log.
    #[serde(default)]
    pub sequence: u64,
}

impl Account {
    /// An empty account.
    #[must_use]
    pub fn new(user_id: UserId, account_type: AccountType) -> Self {
        Self {
            user_id,
            account_type,
            balances: BTreeMap::new(),
            reservations: BTreeMap::new(),
            position_holds: BTreeMap::new(),
            high_water_mark: Decimal::ZERO,
            version: 0,
            sequence: 0,
        }
    }

    /// A copy carrying only these orders' reservations: what a store is
    /// given when only they changed (see `ReservationWrite::Orders`), so
    /// that the copy costs the same however many orders are open.
    #[must_use]
    pub fn with_reservations_of(&self, orders: &[OrderId]) -> Self {
        Self {
            user_id: self.user_id.clone(),
            account_type: self.account_type,
            balances: self.balances.clone(),
            reservations: orders
                .iter()
                .filter_map(|id| self.reservations.get(id).map(|r| (*id, r.clone())))
                .collect(),
            position_holds: self.position_holds.clone(),
            high_water_mark: self.high_water_mark,
            version: self.version,
            sequence: self.sequence,
        }
    }

    /// The balance of a currency (zero when never funded).
    #[must_use]
    pub fn balance(&self, currency: &Currency) -> Balance {
        self.balances.get(currency).cloned().unwrap_or(Balance {
            currency: currency.clone(),
            total: Decimal::ZERO,
            reserved: Decimal::ZERO,
        })
    }

    /// Free cash in a currency.
    #[must_use]
    pub fn free(&self, currency: &Currency) -> Decimal {
        self.balances
            .get(currency)
            .map_or(Decimal::ZERO, Balance::free)
    }

    /// Position quantity not held back by open sells.
    #[must_use]
    pub fn free_position(&self, instrument_id: &InstrumentId, position_qty: Decimal) -> Decimal {
        let held = self
            .position_holds
            .get(instrument_id)
            .map_or(Decimal::ZERO, |q| q.get());
        (position_qty.max(Decimal::ZERO) - held).max(Decimal::ZERO)
    }

    /// Changes a currency's balance, opening it at zero first if needed. The
    /// currency is only cloned when the balance is new (this runs on every fill).
    fn with_balance(&mut self, currency: &Currency, change: impl FnOnce(&mut Balance)) {
        match self.balances.get_mut(currency) {
            Some(b) => change(b),
            None => {
                let mut b = Balance {
                    currency: currency.clone(),
                    total: Decimal::ZERO,
                    reserved: Decimal::ZERO,
                };
                change(&mut b);
                self.balances.insert(currency.clone(), b);
            }
        }
    }

    /// An audited cash adjustment (deposit when positive, withdrawal when negative).
    /// A withdrawal may only take free cash.
    ///
    /// # Errors
    /// [`AccountError::InsufficientFunds`] when a withdrawal exceeds free cash.
    pub fn adjust_cash(&mut self, amount: &Money) -> Result<(), AccountError> {
        let free = self.free(&amount.currency);
        if amount.amount < Decimal::ZERO && -amount.amount > free {
            return Err(AccountError::InsufficientFunds {
                currency: amount.currency.clone(),
                needed: -amount.amount,
                free,
            });
        }
        self.with_balance(&amount.currency, |b| {
            b.total = round_amount(b.total + amount.amount);
        });
        Ok(())
    }

    /// Checks that a reservation could be made now, changing nothing.
    ///
    /// # Errors
    /// Insufficient free cash or position, or a second reservation for the order.
    pub fn can_reserve(
        &self,
        order_id: OrderId,
        request: &ReservationRequest,
        position_qty: Decimal,
    ) -> Result<(), AccountError> {
        if self.reservations.contains_key(&order_id) {
            return Err(AccountError::AlreadyReserved(order_id));
        }
        match &request.hold {
            Hold::Cash { currency, amount } => {
                let free = self.free(currency);
                if *amount > free || *amount < Decimal::ZERO {
                    return Err(AccountError::InsufficientFunds {
                        currency: currency.clone(),
                        needed: *amount,
                        free,
                    });
                }
            }
            Hold::Position {
                instrument_id,
                quantity,
            } => {
                let free = self.free_position(instrument_id, position_qty);
                if *quantity > free || *quantity < Decimal::ZERO {
                    return Err(AccountError::InsufficientPosition {
                        instrument_id: instrument_id.clone(),
                        needed: *quantity,
                        free,
                    });
                }
            }
        }
        Ok(())
    }

    /// Reserves for an order. Nothing changes on error.
    ///
    /// # Errors
    /// Insufficient free cash or position, or a second reservation for the order.
    pub fn reserve(
        &mut self,
        order_id: OrderId,
        request: &ReservationRequest,
        position_qty: Decimal,
    ) -> Result<(), AccountError> {
        self.can_reserve(order_id, request, position_qty)?;
        match &request.hold {
            Hold::Cash { currency, amount } => {
                self.with_balance(currency, |b| b.reserved += *amount)
            }
            Hold::Position {
                instrument_id,
                quantity,
            } => {
                let held = self
                    .position_holds
                    .get(instrument_id)
                    .map_or(Decimal::ZERO, |q| q.get());
                let new = Quantity::new(held + *quantity).map_err(|_| AccountError::OutOfRange)?;
                self.position_holds.insert(instrument_id.clone(), new);
            }
        }
        self.reservations.insert(
            order_id,
            Reservation {
                order_id,
                hold: request.hold.clone(),
                remaining_qty: request.quantity.get(),
            },
        );
        Ok(())
    }

    /// Releases whatever is left of an order's reservation (cancel, reject,
    /// expire). Returns the released hold, or `None` when there was none.
    pub fn release(&mut self, order_id: OrderId) -> Option<Hold> {
        let r = self.reservations.remove(&order_id)?;
        self.unhold(&r.hold);
        Some(r.hold)
    }

    fn unhold(&mut self, hold: &Hold) {
        match hold {
            Hold::Cash { currency, amount } => self.unhold_cash(currency, *amount),
            Hold::Position {
                instrument_id,
                quantity,
            } => self.unhold_position(instrument_id, *quantity),
        }
    }

    fn unhold_cash(&mut self, currency: &Currency, amount: Decimal) {
        self.with_balance(currency, |b| {
            b.reserved = (b.reserved - amount).max(Decimal::ZERO);
        });
    }

    fn unhold_position(&mut self, instrument_id: &InstrumentId, quantity: Decimal) {
        let held = self
            .position_holds
            .get(instrument_id)
            .map_or(Decimal::ZERO, |q| q.get());
        let left = (held - quantity).max(Decimal::ZERO);
        if left.is_zero() {
            self.position_holds.remove(instrument_id);
        } else if let Ok(q) = Quantity::new(left) {
            match self.position_holds.get_mut(instrument_id) {
                Some(slot) => *slot = q,
                None => {
                    self.position_holds.insert(instrument_id.clone(), q);
                }
            }
        }
    }

    /// Settles a fill: consumes the fill's share of the order's reservation,
    /// moves the cash, charges the commission, and releases the rest of the
    /// reservation when the order has no quantity left.
    ///
    /// A fill without a reservation (a late fill after cancel, or an order
    /// imported from a gateway) still moves the cash: the trade happened.
    #[allow(clippy::too_many_arguments)]
    pub fn settle_fill(
        &mut self,
        order_id: OrderId,
        side: Side,
        quantity: Quantity,
        price: Price,
        multiplier: Decimal,
        quote_currency: &Currency,
        commission: &Money,
    ) -> Settlement {
        let q = quantity.get();
        // Fills reach here with a representable notional (see `OrderError::FillTooLarge`).
        let value = round_amount(q.saturating_mul(price.get()).saturating_mul(multiplier));
        let mut consumed = Decimal::ZERO;
        let mut released = Decimal::ZERO;

        if let Some(mut r) = self.reservations.remove(&order_id) {
            let share = if q >= r.remaining_qty || r.remaining_qty.is_zero() {
                Decimal::ONE
            } else {
                q / r.remaining_qty
            };
            // `r` is out of the map, so its ids can be lent while balances change.
            match &mut r.hold {
                Hold::Cash { currency, amount } => {
                    let part = if share == Decimal::ONE {
                        *amount
                    } else {
                        round_amount(*amount * share)
                    };
                    *amount -= part;
                    consumed = part;
                    self.unhold_cash(currency, part);
                }
                Hold::Position {
                    instrument_id,
                    quantity: held,
                } => {
                    let part = q.min(*held);
                    *held -= part;
                    consumed = part;
                    self.unhold_position(instrument_id, part);
                }
            }
            r.remaining_qty = (r.remaining_qty - q).max(Decimal::ZERO);
            if r.remaining_qty.is_zero() {
                // Order complete: price improvement and unused fee estimate come back.
                released = match &r.hold {
                    Hold::Cash { amount, .. }
                    | Hold::Position {
                        quantity: amount, ..
                    } => *amount,
                };
                self.unhold(&r.hold);
            } else {
                self.reservations.insert(order_id, r);
            }
        }

        let cash_flow = match side {
            Side::Buy => -value,
            Side::Sell => value,
        };
        self.with_balance(quote_currency, |b| {
            b.total = round_amount(b.total + cash_flow);
        });
        self.with_balance(&commission.currency, |c| {
            c.total = round_amount(c.total - commission.amount);
        });
        Settlement {
            cash_flow,
            commission: commission.clone(),
            consumed,
            released,
        }
    }

    /// Total reserved cash across currencies is at most total, and free is never
    /// negative. Used by tests and by reconciliation checks.
    #[must_use]
    pub fn invariants_hold(&self) -> bool {
        self.balances.values().all(|b| {
            b.reserved >= Decimal::ZERO && b.reserved <= b.total && b.free() >= Decimal::ZERO
        })
    }
}

#[cfg(test)]
mod tests;
