//! Request decimals as the document states them: at most
//! [`DECIMAL_MAX_LENGTH`] characters of text, then the domain's own parsing.
//!
//! The domain reads any length (stored values are written by it and are
//! canonical); a request is held to the documented bound, so that text such as
//! `0.000…0` with forty zeros is refused as the document says, not accepted as
//! zero.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Display;
use std::marker::PhantomData;
use std::str::FromStr;

use ordermon_domain::Decimal;
use ordermon_domain::values::decimal_string;
use serde::Deserialize;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{DeserializeSeed, Deserializer, Error, SeqAccess, Visitor};

use super::formats::DECIMAL_MAX_LENGTH;

fn bounded<E: Error>(text: &str) -> Result<(), E> {
    if text.chars().count() > DECIMAL_MAX_LENGTH {
        return Err(E::custom(format!(
            "a decimal is at most {DECIMAL_MAX_LENGTH} characters"
        )));
    }
    Ok(())
}

/// A decimal newtype (`Price`, `Quantity`) from bounded text.
///
/// # Errors
/// Text over the bound, or what the type's parser says.
pub fn text<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let s = <Cow<'de, str>>::deserialize(d)?;
    bounded(&s)?;
    s.parse().map_err(D::Error::custom)
}

/// An optional decimal newtype from bounded text (`null` is absent).
///
/// # Errors
/// As [`text`].
pub fn opt_text<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    match <Option<Cow<'de, str>>>::deserialize(d)? {
        None => Ok(None),
        Some(s) => {
            bounded(&s)?;
            s.parse().map(Some).map_err(D::Error::custom)
        }
    }
}

/// A plain decimal, read as [`decimal_string`] reads it, from bounded text.
///
/// # Errors
/// As [`text`].
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let s = <Cow<'de, str>>::deserialize(d)?;
    bounded(&s)?;
    decimal_string::deserialize(BorrowedStrDeserializer::<D::Error>::new(&s))
}

/// An optional plain decimal, as [`opt_decimal_string`] reads it, from bounded text.
///
/// # Errors
/// As [`text`].
pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match <Option<Cow<'de, str>>>::deserialize(d)? {
        None => Ok(None),
        Some(s) => {
            bounded(&s)?;
            decimal_string::deserialize(BorrowedStrDeserializer::<D::Error>::new(&s)).map(Some)
        }
    }
}

/// A whole number from query text: digits, or a number with no fractional
/// part (`5.0`, `1e2`) — JSON Schema counts those as integers too.
#[must_use]
pub fn parse_count(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let f = text.parse::<f64>().ok()?;
    whole(f)
}

/// `f` as a `u64` when it is a whole number in range.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]
fn whole(f: f64) -> Option<u64> {
    // 2^64 is exactly representable; anything at or above it is out of range.
    (f.is_finite() && f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f))
        .then_some(f as u64)
}

/// Reads a count; `text: true` also reads query-string text.
struct Count {
    text: bool,
}

impl Visitor<'_> for Count {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number of zero or more")
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom("must not be negative"))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
        whole(v).ok_or_else(|| E::custom("must be a whole number of zero or more"))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<u64, E> {
        if !self.text {
            return Err(E::invalid_type(serde::de::Unexpected::Str(v), &self));
        }
        parse_count(v).ok_or_else(|| E::custom("must be a whole number of zero or more"))
    }
}

fn narrow<T: TryFrom<u64>, E: Error>(n: u64) -> Result<T, E> {
    T::try_from(n).map_err(|_| E::custom(format!("{n} is too large")))
}

/// A count (`u32`, `u64`): a JSON integer, or a number with no fractional part
/// (`5.0` is the integer 5 to JSON Schema). Query text is read the same way.
///
/// # Errors
/// Negative, fractional, or out of the type's range.
pub fn count<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    narrow(d.deserialize_any(Count { text: false })?)
}

/// An optional count (`null` is absent).
///
/// # Errors
/// As [`count`].
pub fn opt_count<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    optional(d, false)
}

/// An optional count in a query string (`limit=5`, `limit=5.0`).
///
/// # Errors
/// As [`count`].
pub fn opt_query_count<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    optional(d, true)
}

fn optional<'de, D, T>(d: D, text: bool) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    struct Opt(bool);
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(Count { text: self.0 }).map(Some)
        }
    }
    d.deserialize_option(Opt(text))?.map(narrow).transpose()
}

/// A deserializer that reads a struct only from a JSON object: serde's
/// derive would also read one from an array of its fields in order, which no
/// client means and the document does not allow. Everything else is passed
/// through unchanged (paths tracked by `serde_path_to_error` included).
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// A nested struct, from a JSON object only.
///
/// # Errors
/// Anything but an object, or what the struct says.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(ObjectOnly(d))
}

/// An optional nested struct: `null`, or a JSON object.
///
/// # Errors
/// As [`object`].
pub fn opt_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Opt<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Opt<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            object(d).map(Some)
        }
    }
    d.deserialize_option(Opt(PhantomData))
}

/// A list of structs, each from a JSON object only.
///
/// # Errors
/// As [`object`], for any element.
pub fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Each<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Each<T> {
        type Value = T;
        fn deserialize<D2: Deserializer<'de>>(self, d: D2) -> Result<T, D2::Error> {
            object(d)
        }
    }
    struct List<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for List<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            // Bounded by the request body limit, so the hint is only a hint.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(512));
            while let Some(item) = seq.next_element_seed(Each(PhantomData))? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(List(PhantomData))
}

#[cfg(test)]
mod tests {
    use ordermon_domain::values::{Price, Quantity};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::text")]
        price: Price,
        #[serde(default, deserialize_with = "super::opt_text")]
        quantity: Option<Quantity>,
        #[serde(default, deserialize_with = "super::opt_decimal")]
        limit: Option<ordermon_domain::Decimal>,
        #[serde(deserialize_with = "super::decimal")]
        amount: ordermon_domain::Decimal,
    }

    fn parse(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn decimals_within_the_bound_parse_as_the_domain_reads_them() {
        let b = parse(r#"{"price":"10.50","quantity":"3","limit":null,"amount":"-5"}"#)
            .expect("parses");
        assert_eq!(b.price.to_string(), "10.50");
        assert_eq!(b.quantity.map(|q| q.to_string()).as_deref(), Some("3"));
        assert_eq!(b.limit, None);
        assert_eq!(b.amount.to_string(), "-5");
        let b = parse(r#"{"price":"1","amount":"0"}"#).expect("defaults");
        assert!(b.quantity.is_none() && b.limit.is_none());
    }

    #[test]
    fn text_over_the_bound_is_refused_even_when_it_is_a_fine_value() {
        let zeros = format!("0.{}", "0".repeat(28)); // 30 characters, value 0
        let long_one = format!("1.{}", "0".repeat(28));
        for body in [
            format!(r#"{{"price":"{long_one}","amount":"0"}}"#),
            format!(r#"{{"price":"1","quantity":"{zeros}","amount":"0"}}"#),
            format!(r#"{{"price":"1","limit":"{zeros}","amount":"0"}}"#),
            format!(r#"{{"price":"1","amount":"{zeros}"}}"#),
        ] {
            let e = parse(&body).expect_err(&body).to_string();
            assert!(e.contains("at most 29 characters"), "{e}");
        }
        let ok = format!("1.{}", "0".repeat(27)); // 29 characters
        assert!(parse(&format!(r#"{{"price":"{ok}","amount":"0"}}"#)).is_ok());
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: u32,
        #[serde(default)]
        b: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(default, deserialize_with = "super::object")]
        one: Inner,
        #[serde(default, deserialize_with = "super::opt_object")]
        maybe: Option<Inner>,
        #[serde(default, deserialize_with = "super::objects")]
        many: Vec<Inner>,
    }

    fn outer(json: &str) -> Result<Outer, String> {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| format!("{} @ {}", e.inner(), e.path()))
    }

    #[test]
    fn nested_structs_come_from_objects_only() {
        let o = outer(r#"{"one":{"a":1},"maybe":{"a":2,"b":3},"many":[{"a":4},{"a":5}]}"#)
            .expect("objects");
        assert_eq!(o.one.a, 1);
        assert_eq!(o.maybe.and_then(|i| i.b), Some(3));
        assert_eq!(o.many.iter().map(|i| i.a).collect::<Vec<_>>(), [4, 5]);
        assert!(outer(r#"{"maybe":null}"#).expect("null").maybe.is_none());
        for (json, path) in [
            (r#"{"one":[1]}"#, "one"),
            (r#"{"maybe":[1, null]}"#, "maybe"),
            (r#"{"many":[{"a":1},[2]]}"#, "many[1]"),
        ] {
            let e = outer(json).expect_err(json);
            assert!(e.contains("sequence") && e.ends_with(path), "{json}: {e}");
        }
        // Paths into nested objects are kept.
        let e = outer(r#"{"many":[{"a":1},{"a":"x"}]}"#).expect_err("type");
        assert!(e.ends_with("many[1].a"), "{e}");
    }

    #[derive(Debug, Deserialize)]
    struct Counts {
        #[serde(default, deserialize_with = "super::opt_count")]
        small: Option<u32>,
        #[serde(default, deserialize_with = "super::count")]
        big: u64,
    }

    #[test]
    fn counts_are_whole_numbers_however_written() {
        let c: Counts = serde_json::from_str(r#"{"small":799740.0,"big":1e3}"#).expect("whole");
        assert_eq!((c.small, c.big), (Some(799_740), 1000));
        let c: Counts = serde_json::from_str(r#"{"small":null}"#).expect("null");
        assert_eq!((c.small, c.big), (None, 0));
        for bad in [
            r#"{"small":1.5}"#,
            r#"{"small":-1}"#,
            r#"{"small":4294967296}"#,
            r#"{"small":"7"}"#,
            r#"{"big":1e20}"#,
        ] {
            assert!(serde_json::from_str::<Counts>(bad).is_err(), "{bad}");
        }
        assert_eq!(super::parse_count("5.0"), Some(5));
        assert_eq!(super::parse_count("12"), Some(12));
        assert_eq!(super::parse_count("-1"), None);
        assert_eq!(super::parse_count("NaN"), None);
        assert_eq!(super::parse_count("0.5"), None);
    }

    #[test]
    fn numbers_and_bad_text_are_still_refused() {
        assert!(parse(r#"{"price":10,"amount":"0"}"#).is_err());
        assert!(parse(r#"{"price":"0","amount":"0"}"#).is_err());
        assert!(parse(r#"{"price":"1","amount":"1e3"}"#).is_err());
    }
}
