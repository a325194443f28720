//! Decimals in configuration: a string (`"0.5"`), or for convenience a TOML
//! integer or float (read through its shortest decimal text).

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

pub(crate) fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    convert(Raw::deserialize(d)?)
}

pub(crate) mod option {
    use ordermon_domain::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(d),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Option::<super::Raw>::deserialize(d)?
            .map(super::convert)
            .transpose()
    }
}
