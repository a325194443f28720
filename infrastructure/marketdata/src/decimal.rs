//! Exact decimals out of provider JSON.
//!
//! - **Strings** (Binance sends every price and quantity as a JSON string)
//!   parse exactly with `Decimal::from_str_exact`; they never pass through
//!   `f64`. Trailing zeros are dropped (`"0.01000000"` → `0.01`).
//! - **Numbers** (Yahoo sends JSON floats) cannot be exact: serde_json keeps a
//!   float as an `f64` (its `arbitrary_precision` feature would keep the text,
//!   but it changes number handling for the whole workspace, so it is not
//!   used). We take the `f64`'s shortest round-trip text — what serde_json
//!   prints, e.g. `367.79998779296875` — parse that text as a decimal, and
//!   round it half-even to the number of decimals the provider says its
//!   prices have (Yahoo's `priceHint`), which gives back the price the
//!   exchange printed (`367.8`). Integers (volumes, timestamps) are exact.

use std::str::FromStr;

use ordermon_domain::ports::MarketDataError;
use ordermon_domain::values::{Price, Quantity};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Number;

/// Why a value in a payload is not a usable decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotDecimal(pub(crate) String);

impl From<NotDecimal> for MarketDataError {
    fn from(value: NotDecimal) -> Self {
        MarketDataError::BadResponse(crate::redact::bounded(&value.0, 300))
    }
}

/// Parses a decimal string exactly.
pub(crate) fn from_text(text: &str) -> Result<Decimal, NotDecimal> {
    Decimal::from_str_exact(text.trim())
        .map(|d| d.normalize())
        .map_err(|_| NotDecimal(format!("{text:?} is not a decimal")))
}

/// A JSON number as a decimal: integers exactly, floats through their
/// shortest text, rounded half-even to `decimals` places.
pub(crate) fn from_number(n: &Number, decimals: u32) -> Result<Decimal, NotDecimal> {
    if let Some(i) = n.as_i64() {
        return Ok(Decimal::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Decimal::from(u));
    }
    let text = n.to_string();
    let d = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| NotDecimal(format!("{text} is not a representable decimal")))?;
    Ok(
        d.round_dp_with_strategy(decimals, RoundingStrategy::MidpointNearestEven)
            .normalize(),
    )
}

/// A positive price.
pub(crate) fn price(d: Decimal, what: &str) -> Result<Price, NotDecimal> {
    Price::new(d).map_err(|e| NotDecimal(format!("{what} {d}: {e}")))
}

/// A non-negative quantity.
pub(crate) fn quantity(d: Decimal, what: &str) -> Result<Quantity, NotDecimal> {
    Quantity::new(d).map_err(|e| NotDecimal(format!("{what} {d}: {e}")))
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn number(json: &str) -> Number {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn strings_parse_exactly_without_trailing_zeros() {
        assert_eq!(from_text("67250.01000000"), Ok(dec!(67250.01)));
        assert_eq!(from_text("0.00001000"), Ok(dec!(0.00001)));
        assert!(from_text("abc").is_err());
        assert!(from_text("").is_err());
        assert!(from_text("1e5").is_err());
    }

    #[test]
    fn floats_round_to_the_price_hint() {
        assert_eq!(
            from_number(&number("367.79998779296875"), 3),
            Ok(dec!(367.8))
        );
        assert_eq!(
            from_number(&number("189.83999633789062"), 2),
            Ok(dec!(189.84))
        );
        assert_eq!(from_number(&number("0.1"), 4), Ok(dec!(0.1)));
        assert_eq!(from_number(&number("2.5e-7"), 8), Ok(dec!(0.00000025)));
        assert_eq!(from_number(&number("12345678"), 2), Ok(dec!(12345678)));
        // Half-even: a float that sits exactly on the midpoint goes to even.
        assert_eq!(from_number(&number("0.125"), 2), Ok(dec!(0.12)));
    }

    #[test]
    fn prices_must_be_positive() {
        assert!(price(dec!(0), "bid").is_err());
        assert!(price(dec!(1.5), "bid").is_ok());
        assert!(quantity(dec!(-1), "volume").is_err());
        assert!(quantity(dec!(0), "volume").is_ok());
    }
}
