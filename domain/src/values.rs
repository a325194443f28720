//! Exact decimal value types: `Price`, `Quantity`, `Currency`, `Money`.
//!
//! Every amount is a `rust_decimal::Decimal`. On the wire each one is a JSON
//! string; a JSON number is refused because it may already have lost precision.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most decimal places a stored amount may carry (it fits `NUMERIC(38,18)`).
pub const MAX_SCALE: u32 = 18;

/// The largest magnitude an amount may have (it fits `NUMERIC(38,18)`).
pub const MAX_ABS: Decimal = Decimal::from_parts(0x6310_0000, 0x6bc7_5e2d, 0x5, false, 0); // 1e20

/// Why a decimal value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The text is not a plain decimal number.
    #[error("not a decimal number: {0:?}")]
    NotDecimal(String),
    /// The value must be greater than zero.
    #[error("must be positive")]
    NotPositive,
    /// The value must not be negative.
    #[error("must not be negative")]
    Negative,
    /// The value has more decimal places than can be stored exactly.
    #[error("at most {MAX_SCALE} decimal places")]
    TooPrecise,
    /// The value is too large to be stored.
    #[error("magnitude must be below 1e20")]
    TooLarge,
    /// A currency code is malformed.
    #[error("currency must be 2-12 characters of A-Z and 0-9")]
    Currency,
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// Parses a decimal from text exactly: no exponent, no silent rounding.
///
/// The text is `-?[0-9]+(\.[0-9]+)?`: an optional minus, digits, and optionally
/// a dot followed by digits — no plus sign, no digit separators, no bare dot.
///
/// # Errors
/// Returns [`ValueError::NotDecimal`] when the text is not a plain decimal that
/// `Decimal` represents exactly.
pub fn parse_decimal(text: &str) -> Result<Decimal, ValueError> {
    if !is_plain_decimal(text) {
        return Err(ValueError::NotDecimal(text.to_owned()));
    }
    Decimal::from_str_exact(text).map_err(|_| ValueError::NotDecimal(text.to_owned()))
}

/// `-?[0-9]+(\.[0-9]+)?`.
fn is_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

fn check_bounds(d: Decimal) -> Result<Decimal, ValueError> {
    if d.scale() > MAX_SCALE {
        // Trailing zeros beyond the limit are harmless: "1.0000000000000000000".
        let normalized = d.normalize();
        if normalized.scale() > MAX_SCALE {
            return Err(ValueError::TooPrecise);
        }
        return check_bounds(normalized);
    }
    if d.abs() >= MAX_ABS {
        return Err(ValueError::TooLarge);
    }
    Ok(d)
}

/// Rounds a computed amount to the stored precision (half away from zero).
#[must_use]
pub fn round_amount(d: Decimal) -> Decimal {
    if d.scale() > MAX_SCALE {
        d.round_dp_with_strategy(MAX_SCALE, RoundingStrategy::MidpointAwayFromZero)
    } else {
        d
    }
}

/// Rounds a computed amount up in magnitude to the stored precision (used for
/// reservations, which must never be short).
#[must_use]
pub fn round_amount_up(d: Decimal) -> Decimal {
    if d.scale() > MAX_SCALE {
        d.round_dp_with_strategy(MAX_SCALE, RoundingStrategy::AwayFromZero)
    } else {
        d
    }
}

/// Deserializes a decimal from a JSON string only (numbers are refused).
fn de_decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_decimal(&text).map_err(serde::de::Error::custom)
}

macro_rules! decimal_newtype {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(Decimal);

        impl $name {
            /// Builds the value, checking sign, precision and magnitude.
            ///
            /// # Errors
            /// Returns a [`ValueError`] describing the first rule broken.
            pub fn new(value: Decimal) -> Result<Self, ValueError> {
                let value = check_bounds(value)?;
                let check: fn(Decimal) -> Result<(), ValueError> = $check;
                check(value)?;
                Ok(Self(value))
            }

            /// Returns the decimal.
            #[must_use]
            pub const fn get(self) -> Decimal {
                self.0
            }
        }

        impl TryFrom<Decimal> for $name {
            type Error = ValueError;
            fn try_from(value: Decimal) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let value = parse_decimal(s)?;
                // "-0" is zero written as a negative number: refused as
                // text, as the API's pattern refuses it.
                if value.is_zero() && s.starts_with('-') {
                    return Err(ValueError::Negative);
                }
                Self::new(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(de_decimal(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

decimal_newtype!(
    /// A price: strictly positive, at most 18 decimal places.
    Price,
    |d| if d > Decimal::ZERO { Ok(()) } else { Err(ValueError::NotPositive) }
);
decimal_newtype!(
    /// A quantity: zero or more, at most 18 decimal places.
    Quantity,
    |d| if d >= Decimal::ZERO { Ok(()) } else { Err(ValueError::Negative) }
);

impl Quantity {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// True when the quantity is zero.
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `self - other`, floored at zero.
    #[must_use]
    pub fn saturating_sub(self, other: Self) -> Self {
        if other.0 >= self.0 {
            Self::ZERO
        } else {
            Self(self.0 - other.0)
        }
    }

    /// `self + other`.
    ///
    /// # Errors
    /// Returns [`ValueError::TooLarge`] when the sum cannot be stored.
    pub fn checked_add(self, other: Self) -> Result<Self, ValueError> {
        Self::new(self.0 + other.0)
    }
}

/// A currency code: 2–12 characters of `A-Z0-9` (`USD`, `HKD`, `USDT`, `BTC`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// Builds a currency code.
    ///
    /// # Errors
    /// Returns [`ValueError::Currency`] when the code is malformed.
    pub fn new(code: impl Into<String>) -> Result<Self, ValueError> {
        let code = code.into();
        let ok = (2..=12).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok {
            Ok(Self(code))
        } else {
            Err(ValueError::Currency)
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl FromStr for Currency {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount of one currency; may be negative (losses, debits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount, exact, serialized as a string.
    #[serde(with = "decimal_string")]
    pub amount: Decimal,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Builds an amount of money.
    ///
    /// # Errors
    /// Returns a [`ValueError`] when the amount is too precise or too large.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, ValueError> {
        Ok(Self {
            amount: check_bounds(amount)?,
            currency,
        })
    }

    /// Zero of a currency.
    #[must_use]
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: Decimal::ZERO,
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Serde helpers for a bare `Decimal` field carried as a JSON string
/// (`#[serde(with = "decimal_string")]`); numbers are refused.
pub mod decimal_string {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    /// Writes the decimal as a string.
    ///
    /// # Errors
    /// Propagates the serializer's error.
    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    /// Reads a decimal from a string, within the stored precision.
    ///
    /// # Errors
    /// Fails for numbers, malformed text, or values that cannot be stored.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let value = super::de_decimal(d)?;
        super::check_bounds(value).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers for an optional `Decimal` carried as a JSON string or null.
pub mod opt_decimal_string {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the decimal as a string, or null.
    ///
    /// # Errors
    /// Propagates the serializer's error.
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(d),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional decimal from a string or null.
    ///
    /// # Errors
    /// Fails for numbers, malformed text, or values that cannot be stored.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => {
                let value = super::parse_decimal(&text).map_err(serde::de::Error::custom)?;
                super::check_bounds(value)
                    .map(Some)
                    .map_err(serde::de::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use rust_decimal_macros::dec;

    #[rstest]
    #[case("1", true)]
    #[case("-0.5", true)]
    #[case("007.10", true)]
    #[case("+1", false)]
    #[case("1_000", false)]
    #[case(".5", false)]
    #[case("5.", false)]
    #[case("-", false)]
    #[case("--1", false)]
    #[case(" 1", false)]
    #[case("1 ", false)]
    #[case("", false)]
    fn decimals_are_plain_text(#[case] text: &str, #[case] ok: bool) {
        assert_eq!(parse_decimal(text).is_ok(), ok, "{text}");
    }

    #[test]
    fn max_abs_is_1e20() {
        assert_eq!(MAX_ABS, Decimal::from_str("100000000000000000000").unwrap());
    }

    #[rstest]
    #[case("10.00", true)]
    #[case("0.000000000000000001", true)]
    #[case("123456789012.123456789", true)]
    #[case("0", false)]
    #[case("-1", false)]
    #[case("0.0000000000000000001", false)]
    #[case("1e5", false)]
    #[case(" 1", false)]
    #[case("", false)]
    #[case("abc", false)]
    #[case("100000000000000000000", false)]
    fn prices(#[case] text: &str, #[case] ok: bool) {
        assert_eq!(text.parse::<Price>().is_ok(), ok, "{text}");
    }

    #[test]
    fn quantity_allows_zero_refuses_negative() {
        assert!("0".parse::<Quantity>().is_ok());
        assert_eq!("-0.1".parse::<Quantity>(), Err(ValueError::Negative));
        for negative_zero in ["-0", "-0.000"] {
            assert_eq!(negative_zero.parse::<Quantity>(), Err(ValueError::Negative));
            assert!(negative_zero.parse::<Price>().is_err());
        }
    }

    #[test]
    fn trailing_zeros_beyond_scale_are_normalized() {
        let q: Quantity = "1.00000000000000000000".parse().unwrap();
        assert_eq!(q.get(), dec!(1));
    }

    #[test]
    fn json_strings_only() {
        assert_eq!(
            serde_json::from_str::<Price>("\"10.25\"").unwrap().get(),
            dec!(10.25)
        );
        assert!(serde_json::from_str::<Price>("10.25").is_err());
        assert!(serde_json::from_str::<Quantity>("\"-3\"").is_err());
        assert_eq!(
            serde_json::to_string(&Price::new(dec!(10.50)).unwrap()).unwrap(),
            "\"10.50\""
        );
    }

    #[test]
    fn exact_round_trip() {
        for text in ["0.000000000000000001", "123456789012.123456789"] {
            let q: Quantity = text.parse().unwrap();
            let json = serde_json::to_string(&q).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Quantity>(&json).unwrap(), q);
        }
    }

    #[test]
    fn money_json() {
        let m = Money::new(dec!(-12.5), Currency::new("USD").unwrap()).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"-12.5","currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount":1,"currency":"USD"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"usd"}"#).is_err());
    }

    #[test]
    fn rounding_helpers() {
        let d = dec!(1) / dec!(3);
        assert_eq!(round_amount(d).scale(), MAX_SCALE);
        assert!(round_amount_up(d) > d);
        assert_eq!(round_amount(dec!(1.5)), dec!(1.5));
    }
}
