//! Instrument reference data and the order-shape checks it implies.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::InstrumentId;
use crate::values::{Currency, Price, Quantity, decimal_string, opt_decimal_string};

/// Why an instrument definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// A size increment must be positive.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    /// min quantity is above max quantity.
    #[error("min_quantity must not exceed max_quantity")]
    MinAboveMax,
}

/// Why a price or quantity does not fit an instrument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The price is not a multiple of the tick size.
    #[error("price {price} is not a multiple of tick size {tick}")]
    OffTick {
        /// The offending price.
        price: Decimal,
        /// The tick size.
        tick: Decimal,
    },
    /// The quantity is not a multiple of the lot size.
    #[error("quantity {quantity} is not a multiple of lot size {lot}")]
    OffLot {
        /// The offending quantity.
        quantity: Decimal,
        /// The lot size.
        lot: Decimal,
    },
    /// The quantity is below the minimum.
    #[error("quantity {quantity} is below the minimum {min}")]
    BelowMinQuantity {
        /// The offending quantity.
        quantity: Decimal,
        /// The minimum.
        min: Decimal,
    },
    /// The quantity is above the maximum.
    #[error("quantity {quantity} is above the maximum {max}")]
    AboveMaxQuantity {
        /// The offending quantity.
        quantity: Decimal,
        /// The maximum.
        max: Decimal,
    },
    /// The notional is below the minimum.
    #[error("notional {notional} is below the minimum {min}")]
    BelowMinNotional {
        /// The order's notional.
        notional: Decimal,
        /// The minimum.
        min: Decimal,
    },
}

/// Reference data for one tradable instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    /// `SYMBOL.VENUE`.
    pub id: InstrumentId,
    /// The currency prices are quoted in.
    pub quote_currency: Currency,
    /// The smallest price increment.
    pub tick_size: Price,
    /// The smallest quantity increment.
    pub lot_size: Quantity,
    /// The smallest order quantity.
    pub min_quantity: Quantity,
    /// The largest order quantity, if any.
    #[serde(default)]
    pub max_quantity: Option<Quantity>,
    /// The smallest order notional (quantity × price × multiplier), if any.
    #[serde(default, with = "opt_decimal_string")]
    pub min_notional: Option<Decimal>,
    /// Contract multiplier (1 for cash equities and spot crypto).
    #[serde(default = "one", with = "decimal_string")]
    pub multiplier: Decimal,
    /// Version for optimistic concurrency (0 before first save).
    #[serde(default)]
    pub version: u64,
}

fn one() -> Decimal {
    Decimal::ONE
}

impl Instrument {
    /// Checks the definition's internal consistency.
    ///
    /// # Errors
    /// Returns an [`InstrumentError`] for a zero lot size, a non-positive
    /// multiplier, or a minimum above the maximum.
    pub fn validate(&self) -> Result<(), InstrumentError> {
        if self.lot_size.is_zero() {
            return Err(InstrumentError::NotPositive("lot_size"));
        }
        if self.multiplier <= Decimal::ZERO {
            return Err(InstrumentError::NotPositive("multiplier"));
        }
        if let Some(max) = self.max_quantity
            && self.min_quantity > max
        {
            return Err(InstrumentError::MinAboveMax);
        }
        Ok(())
    }

    /// Checks that a price is on tick.
    ///
    /// # Errors
    /// Returns [`ShapeError::OffTick`] otherwise.
    pub fn check_price(&self, price: Price) -> Result<(), ShapeError> {
        let tick = self.tick_size.get();
        if (price.get() % tick).is_zero() {
            Ok(())
        } else {
            Err(ShapeError::OffTick {
                price: price.get(),
                tick,
            })
        }
    }

    /// Checks that a quantity is on lot and within the min/max bounds.
    ///
    /// # Errors
    /// Returns the first [`ShapeError`] that applies.
    pub fn check_quantity(&self, quantity: Quantity) -> Result<(), ShapeError> {
        let q = quantity.get();
        let lot = self.lot_size.get();
        if !(q % lot).is_zero() {
            return Err(ShapeError::OffLot { quantity: q, lot });
        }
        if q < self.min_quantity.get() || q.is_zero() {
            return Err(ShapeError::BelowMinQuantity {
                quantity: q,
                min: self.min_quantity.get().max(lot),
            });
        }
        if let Some(max) = self.max_quantity
            && q > max.get()
        {
            return Err(ShapeError::AboveMaxQuantity {
                quantity: q,
                max: max.get(),
            });
        }
        Ok(())
    }

    /// The notional of `quantity` at `price`, in the quote currency. Saturates at
    /// `Decimal::MAX` for sizes no decimal can hold (then every minimum passes and
    /// every limit and funds check refuses), so absurd input never panics.
    #[must_use]
    pub fn notional(&self, quantity: Quantity, price: Price) -> Decimal {
        quantity
            .get()
            .checked_mul(price.get())
            .and_then(|n| n.checked_mul(self.multiplier))
            .unwrap_or(Decimal::MAX)
    }

    /// Checks the minimum notional of an order at a reference price.
    ///
    /// # Errors
    /// Returns [`ShapeError::BelowMinNotional`] when it is too small.
    pub fn check_notional(&self, quantity: Quantity, price: Price) -> Result<(), ShapeError> {
        if let Some(min) = self.min_notional {
            let notional = self.notional(quantity, price);
            if notional < min {
                return Err(ShapeError::BelowMinNotional { notional, min });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    pub(crate) fn acme() -> Instrument {
        Instrument {
            id: InstrumentId::new("ACME.SIM").unwrap(),
            quote_currency: Currency::new("USD").unwrap(),
            tick_size: Price::new(dec!(0.01)).unwrap(),
            lot_size: Quantity::new(dec!(1)).unwrap(),
            min_quantity: Quantity::new(dec!(1)).unwrap(),
            max_quantity: Some(Quantity::new(dec!(1000000)).unwrap()),
            min_notional: Some(dec!(1)),
            multiplier: dec!(1),
            version: 0,
        }
    }

    fn p(d: Decimal) -> Price {
        Price::new(d).unwrap()
    }
    fn q(d: Decimal) -> Quantity {
        Quantity::new(d).unwrap()
    }

    #[test]
    fn tick_checks() {
        let i = acme();
        assert!(i.check_price(p(dec!(10.01))).is_ok());
        assert!(i.check_price(p(dec!(10.00))).is_ok());
        assert!(matches!(
            i.check_price(p(dec!(10.005))),
            Err(ShapeError::OffTick { .. })
        ));
    }

    #[test]
    fn lot_and_bounds() {
        let i = acme();
        assert!(i.check_quantity(q(dec!(5))).is_ok());
        assert!(matches!(
            i.check_quantity(q(dec!(1.5))),
            Err(ShapeError::OffLot { .. })
        ));
        assert!(matches!(
            i.check_quantity(q(dec!(0))),
            Err(ShapeError::BelowMinQuantity { .. })
        ));
        assert!(matches!(
            i.check_quantity(q(dec!(2000000))),
            Err(ShapeError::AboveMaxQuantity { .. })
        ));
    }

    #[test]
    fn notional_checks() {
        let i = acme();
        assert!(i.check_notional(q(dec!(1)), p(dec!(0.5))).is_err());
        assert!(i.check_notional(q(dec!(2)), p(dec!(0.5))).is_ok());
        let mut fut = acme();
        fut.multiplier = dec!(50);
        assert_eq!(fut.notional(q(dec!(2)), p(dec!(4000.25))), dec!(400025.00));
    }

    #[test]
    fn definition_checks() {
        let mut i = acme();
        assert!(i.validate().is_ok());
        i.min_quantity = q(dec!(10));
        i.max_quantity = Some(q(dec!(5)));
        assert_eq!(i.validate(), Err(InstrumentError::MinAboveMax));
        let mut j = acme();
        j.lot_size = Quantity::ZERO;
        assert!(j.validate().is_err());
    }

    #[test]
    fn crypto_lot() {
        let mut i = acme();
        i.lot_size = q(dec!(0.00001));
        i.min_quantity = q(dec!(0.0001));
        assert!(i.check_quantity(q(dec!(0.00123))).is_ok());
        assert!(i.check_quantity(q(dec!(0.000123))).is_err());
    }
}
