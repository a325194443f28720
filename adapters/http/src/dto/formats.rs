//! The wire formats of the domain's text types, as named OpenAPI schemas.
//!
//! Fields declare `#[schema(value_type = formats::InstrumentId)]` and the like,
//! so the document states exactly which strings the server accepts: the same
//! characters, lengths and shapes the domain's constructors check (tests below
//! hold each pattern against those constructors). A value can still be refused
//! for what no schema can say — an instrument that is not listed, a price off
//! the instrument's tick — with `422` or `404`.

use std::borrow::Cow;

use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The decimal text every amount uses: an optional minus, up to 20 integer
/// digits, up to 18 decimal places (and trailing zeros after them).
pub const DECIMAL_PATTERN: &str = r"^-?[0-9]{1,20}(\.[0-9]{1,18}0{0,10})?$";
/// A decimal of zero or more.
pub const NON_NEGATIVE_DECIMAL_PATTERN: &str = r"^[0-9]{1,20}(\.[0-9]{1,18}0{0,10})?$";
/// Searched for (not anchored) in a positive decimal: a digit that is not zero.
pub const NON_ZERO_PATTERN: &str = "[1-9]";
/// Longest decimal text: 28 significant digits always fit exactly.
pub const DECIMAL_MAX_LENGTH: usize = 29;
/// User, strategy and rule ids.
pub const NAME_PATTERN: &str = r"^[A-Za-z0-9_.\-]+$";
/// `SYMBOL.VENUE`.
pub const INSTRUMENT_PATTERN: &str = r"^[A-Za-z0-9_/\-]{1,32}\.[A-Za-z0-9_\-]{1,32}$";
/// Client order ids and trade ids: printable ASCII without spaces.
pub const PRINTABLE_PATTERN: &str = r"^[!-~]+$";
/// A UUID of version 7 (order and event ids).
pub const UUID_V7_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$";
/// ISO-like currency codes.
pub const CURRENCY_PATTERN: &str = r"^[A-Z0-9]{2,12}$";

fn text(description: &str, pattern: &str, min: usize, max: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .into()
}

macro_rules! format {
    ($(#[$meta:meta])* $name:ident, $schema:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

format!(
    /// An exact decimal, as a string (never a JSON number). (Not named
    /// `Decimal`: utoipa reads any type of that name as rust_decimal's.)
    SignedDecimal,
    text(
        "An exact decimal as a string: optional minus, up to 20 integer digits, \
         up to 18 decimal places, at most 29 characters",
        DECIMAL_PATTERN,
        1,
        DECIMAL_MAX_LENGTH
    )
);
format!(
    /// A decimal above zero (prices, tick sizes): a non-negative decimal with a
    /// digit other than zero.
    PositiveDecimal,
    AllOfBuilder::new()
        .item(text(
            "A decimal above zero, as a string: up to 20 integer digits, up to 18 \
             decimal places, at most 29 characters",
            NON_NEGATIVE_DECIMAL_PATTERN,
            1,
            DECIMAL_MAX_LENGTH
        ))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(NON_ZERO_PATTERN))
        )
        .into()
);
format!(
    /// A decimal of zero or more (quantities).
    NonNegativeDecimal,
    text(
        "A decimal of zero or more, as a string: up to 20 integer digits, up to \
         18 decimal places, at most 29 characters",
        NON_NEGATIVE_DECIMAL_PATTERN,
        1,
        DECIMAL_MAX_LENGTH
    )
);
format!(
    /// A user id.
    UserId,
    text("A user id: 1-64 of A-Z a-z 0-9 _ . -", NAME_PATTERN, 1, 64)
);
format!(
    /// A strategy id.
    StrategyId,
    text("A strategy id: 1-64 of A-Z a-z 0-9 _ . -", NAME_PATTERN, 1, 64)
);
format!(
    /// An alert rule's name.
    RuleName,
    text("An alert rule name: 1-128 of A-Z a-z 0-9 _ . -", NAME_PATTERN, 1, 128)
);
format!(
    /// `SYMBOL.VENUE`.
    InstrumentId,
    text(
        "SYMBOL.VENUE: a symbol of 1-32 of A-Z a-z 0-9 _ - /, a dot, a venue of \
         1-32 of A-Z a-z 0-9 _ -",
        INSTRUMENT_PATTERN,
        3,
        65
    )
);
format!(
    /// A client's order id.
    ClientOrderId,
    text(
        "The client's id for an order: 1-64 printable ASCII characters, no spaces",
        PRINTABLE_PATTERN,
        1,
        64
    )
);
format!(
    /// The venue's id of one execution.
    TradeId,
    text(
        "The venue's id of one execution: 1-64 printable ASCII characters, no spaces",
        PRINTABLE_PATTERN,
        1,
        64
    )
);
format!(
    /// A currency code.
    Currency,
    text("A currency code: 2-12 of A-Z 0-9", CURRENCY_PATTERN, 2, 12)
);
format!(
    /// An order or event id.
    UuidV7,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some("A UUID of version 7"))
        .pattern(Some(UUID_V7_PATTERN))
        .into()
);

#[cfg(test)]
mod tests {
    use ordermon_domain::ids;
    use ordermon_domain::values::{Price, Quantity, parse_decimal};
    use proptest::prelude::*;
    use proptest::string::string_regex;

    use super::*;

    /// Text the pattern (and length bounds) allows.
    fn matching(pattern: &str, max: usize) -> impl Strategy<Value = String> {
        let body = &pattern[1..pattern.len() - 1];
        string_regex(body)
            .expect("pattern compiles")
            .prop_filter("length", move |s| !s.is_empty() && s.len() <= max)
    }

    fn is_match(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern)
            .expect("pattern compiles")
            .is_match(s)
    }

    proptest! {
        #[test]
        fn what_the_decimal_pattern_allows_parses(s in matching(DECIMAL_PATTERN, DECIMAL_MAX_LENGTH)) {
            prop_assert!(parse_decimal(&s).is_ok(), "{s}");
        }

        #[test]
        fn what_the_positive_schema_allows_is_a_price(s in matching(NON_NEGATIVE_DECIMAL_PATTERN, DECIMAL_MAX_LENGTH)) {
            prop_assert_eq!(s.parse::<Price>().is_ok(), is_match(NON_ZERO_PATTERN, &s), "{}", s);
        }

        #[test]
        fn what_the_non_negative_pattern_allows_is_a_quantity(s in matching(NON_NEGATIVE_DECIMAL_PATTERN, DECIMAL_MAX_LENGTH)) {
            prop_assert!(s.parse::<Quantity>().is_ok(), "{s}");
        }

        #[test]
        fn a_price_or_quantity_text_matches_its_pattern(s in "[-+0-9._ e]{1,30}") {
            if s.parse::<Price>().is_ok() && s.len() <= DECIMAL_MAX_LENGTH {
                prop_assert!(is_match(NON_NEGATIVE_DECIMAL_PATTERN, &s), "{s}");
                prop_assert!(is_match(NON_ZERO_PATTERN, &s), "{s}");
            }
            if s.parse::<Quantity>().is_ok() && s.len() <= DECIMAL_MAX_LENGTH {
                prop_assert!(is_match(NON_NEGATIVE_DECIMAL_PATTERN, &s), "{s}");
            }
            if parse_decimal(&s).is_ok() && s.len() <= DECIMAL_MAX_LENGTH {
                prop_assert!(is_match(DECIMAL_PATTERN, &s), "{s}");
            }
        }

        #[test]
        fn what_the_id_patterns_allow_the_domain_accepts(
            name in matching(NAME_PATTERN, 64),
            instrument in matching(INSTRUMENT_PATTERN, 65),
            printable in matching(PRINTABLE_PATTERN, 64),
        ) {
            prop_assert!(ids::UserId::new(name.clone()).is_ok());
            prop_assert!(ids::StrategyId::new(name).is_ok());
            prop_assert!(ids::InstrumentId::new(instrument).is_ok());
            prop_assert!(ids::ClientOrderId::new(printable).is_ok());
        }

        #[test]
        fn what_the_domain_accepts_the_id_patterns_allow(s in "[ -~]{0,70}") {
            if ids::UserId::new(s.clone()).is_ok() {
                prop_assert!(is_match(NAME_PATTERN, &s));
            }
            if ids::InstrumentId::new(s.clone()).is_ok() {
                prop_assert!(is_match(INSTRUMENT_PATTERN, &s));
            }
            if ids::ClientOrderId::new(s.clone()).is_ok() {
                prop_assert!(is_match(PRINTABLE_PATTERN, &s));
            }
        }
    }

    #[test]
    fn uuid_v7_pattern_matches_order_ids_only() {
        let id = ids::OrderId::generate().to_string();
        assert!(is_match(UUID_V7_PATTERN, &id));
        assert!(!is_match(
            UUID_V7_PATTERN,
            "550e8400-e29b-41d4-a716-446655440000"
        ));
    }
}
