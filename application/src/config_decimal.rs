//! Decimals in configuration files: a string (`"0.5"`, exact), or for
//! convenience a TOML integer or float, read through its shortest decimal
//! text so `0.001` is exactly 0.001 (`#[serde(with = "config_decimal")]`;
//! [`option`] for an optional one). Used by the alert rules and by the
//! server's `[engine.risk]` settings.

use std::str::FromStr;

use ordermon_domain::Decimal;
use serde::{Deserialize, Deserializer, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Text(String),
    Int(i64),
    Float(f64),
}

fn convert<E: serde::de::Error>(raw: Raw) -> Result<Decimal, E> {
    let text = match raw {
        Raw::Text(t) => t,
        Raw::Int(i) => i.to_string(),
        Raw::Float(f) if f.is_finite() => f.to_string(),
        Raw::Float(_) => return Err(E::custom("a finite number expected")),
    };
    Decimal::from_str(text.trim())
        .map_err(|_| E::custom(format!("bad decimal `{text}` (write e.g. \"0.5\")")))
}

/// Writes the decimal as a string.
///
/// # Errors
/// Propagates the serializer's error.
pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Reads a decimal from a string, an integer or a finite float.
///
/// # Errors
/// Fails for anything else and for text that is not a decimal.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    convert(Raw::deserialize(d)?)
}

/// The same for an optional decimal (absent or null: `None`).
pub mod option {
    use ordermon_domain::Decimal;
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

    /// Reads an optional decimal as [`super::deserialize`] does.
    ///
    /// # Errors
    /// As [`super::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<super::Raw>::deserialize(d)?
            .map(super::convert)
            .transpose()
    }
}
