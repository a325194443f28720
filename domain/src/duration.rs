//! Human durations in configuration and the API: `250ms`, `10s`, `5m`, `1h30m`, `7d`.

use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration `{input}`: {reason} (write e.g. `250ms`, `10s`, `5m`, `1h30m`)")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses one or more `<integer><unit>` parts (units `ms`, `s`, `m`, `h`, `d`).
///
/// # Errors
/// A [`DurationError`] for an empty text, a number without a unit, an unknown
/// unit, or a value beyond `u64` milliseconds.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let mut rest = input.trim();
    if rest.is_empty() {
        return Err(err("empty"));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a whole number"));
        }
        let (number, tail) = rest.split_at(digits);
        let letters = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(letters);
        if unit.is_empty() {
            return Err(err("missing unit"));
        }
        let millis = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, ms)| *ms)
            .ok_or_else(|| err("unknown unit"))?;
        let n: u64 = number.parse().map_err(|_| err("number too large"))?;
        total = n
            .checked_mul(millis)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("too large"))?;
        rest = tail;
    }
    Ok(Duration::from_millis(total))
}

/// Formats with the largest unit that divides the duration exactly (`10s`, `5m`,
/// `1500ms`), so formatted values parse back to the same duration.
#[must_use]
pub fn format(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    let (name, unit) = UNITS
        .iter()
        .rev()
        .find(|(_, unit)| ms % unit == 0)
        .copied()
        .unwrap_or(("ms", 1));
    format!("{}{name}", ms / unit)
}

/// `#[serde(with = "duration::serde")]` for a `std::time::Duration` written as text.
pub mod serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as `10s`-style text.
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Reads `10s`-style text; a bare number is refused (it has no unit).
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => super::parse(&t).map_err(serde::de::Error::custom),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "bad duration `{n}`: missing unit (write e.g. `{n}s` or `{n}ms`)"
            ))),
        }
    }
}

/// `#[serde(with = "duration::serde_opt")]` for an optional duration written
/// as text (absent or `null` = `None`).
pub mod serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as `10s`-style text, or nothing.
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads `10s`-style text or nothing.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| super::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "duration::serde_list")]` for a list of durations written
/// as text (`["1s", "5s", "30s"]`).
pub mod serde_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes each duration as `10s`-style text.
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|d| super::format(*d)))
    }

    /// Reads a list of `10s`-style texts.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| super::parse(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// `#[serde(with = "duration::serde_map")]` for named durations written as
/// text (`{ quote = "5s" }`).
pub mod serde_map {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes each duration as `10s`-style text.
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter().map(|(k, d)| (k, super::format(*d))))
    }

    /// Reads named `10s`-style texts.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, t)| {
                super::parse(&t)
                    .map(|d| (k, d))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse(" 0s ").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_bad_text() {
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "1.5s",
            "-1s",
            "10 s",
            "99999999999999999999s",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains("bad duration"), "{bad}: {e}");
        }
        assert!(
            parse("10")
                .unwrap_err()
                .to_string()
                .contains("missing unit")
        );
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "10s", "5m", "2h", "7d", "1500ms", "90s", "0s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
