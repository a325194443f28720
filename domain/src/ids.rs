//! Validated identifiers: every id that crosses a boundary is checked once, here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a string could not become an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The value was empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which identifier was being built.
        kind: &'static str,
    },
    /// The value was longer than allowed.
    #[error("{kind} must be at most {max} characters")]
    TooLong {
        /// Which identifier was being built.
        kind: &'static str,
        /// The largest allowed length.
        max: usize,
    },
    /// The value contained a character outside the allowed set.
    #[error("{kind} contains an invalid character: {allowed}")]
    InvalidChar {
        /// Which identifier was being built.
        kind: &'static str,
        /// A description of the characters that are allowed.
        allowed: &'static str,
    },
    /// The value is not a UUID, or not of the required version.
    #[error("{kind} must be a UUIDv7")]
    NotUuidV7 {
        /// Which identifier was being built.
        kind: &'static str,
    },
    /// An instrument id must look like `SYMBOL.VENUE`.
    #[error("instrument id must be SYMBOL.VENUE, e.g. AAPL.XNAS")]
    InstrumentFormat,
}

fn check(
    kind: &'static str,
    s: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if !s.chars().all(ok) {
        return Err(IdError::InvalidChar { kind, allowed });
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Declares a string identifier newtype whose constructor validates its text and
/// whose `Deserialize` goes through that constructor.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:expr, $allowed:literal, $pred:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Builds the identifier, checking its length and characters.
            ///
            /// # Errors
            /// Returns an [`IdError`] when the text is empty, too long or has a
            /// character outside the allowed set.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, &value, $max, $allowed, $pred)?;
                Ok(Self(value))
            }

            /// Returns the identifier's text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A user's id: 1–64 of `[A-Za-z0-9_.-]`.
    UserId, "user id", 64, "allowed are A-Z a-z 0-9 _ . -", is_name_char
);
string_id!(
    /// A client's own id for an order: 1–64 printable ASCII characters, unique per user.
    ClientOrderId, "client order id", 64, "allowed is printable ASCII without spaces",
    |c: char| c.is_ascii_graphic()
);
string_id!(
    /// The venue's id of one execution: unique per order.
    TradeId, "trade id", 64, "allowed is printable ASCII without spaces",
    |c: char| c.is_ascii_graphic()
);
string_id!(
    /// A strategy's id: 1–64 of `[A-Za-z0-9_.-]`.
    StrategyId, "strategy id", 64, "allowed are A-Z a-z 0-9 _ . -", is_name_char
);
string_id!(
    /// An instrument's symbol, e.g. `AAPL`, `0700`, `BTCUSDT`.
    Symbol, "symbol", 32, "allowed are A-Z a-z 0-9 _ - /", |c: char| c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '/')
);
string_id!(
    /// A venue's code, e.g. `XNAS`, `HKEX`, `BINANCE`, `SIM`.
    Venue, "venue", 32, "allowed are A-Z a-z 0-9 _ -", |c: char| c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-')
);
string_id!(
    /// The name of an alert rule, e.g. `stuck_order`.
    RuleName, "rule name", 128, "allowed are A-Z a-z 0-9 _ . -", is_name_char
);

/// Declares a UUIDv7 identifier newtype.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "Uuid", into = "Uuid")]
        pub struct $name(Uuid);

        impl $name {
            /// Creates a fresh, time-ordered id.
            #[must_use]
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID, which must be version 7.
            ///
            /// # Errors
            /// Returns [`IdError::NotUuidV7`] for any other version.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                if uuid.get_version_num() == 7 {
                    Ok(Self(uuid))
                } else {
                    Err(IdError::NotUuidV7 { kind: $kind })
                }
            }

            /// Returns the UUID.
            #[must_use]
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl TryFrom<Uuid> for $name {
            type Error = IdError;
            fn try_from(value: Uuid) -> Result<Self, Self::Error> {
                Self::from_uuid(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let uuid = Uuid::parse_str(s).map_err(|_| IdError::NotUuidV7 { kind: $kind })?;
                Self::from_uuid(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

uuid_id!(
    /// An order's id (UUIDv7, so ids sort by creation time).
    OrderId, "order id"
);
uuid_id!(
    /// A domain event's id (UUIDv7).
    EventId, "event id"
);
uuid_id!(
    /// An alert's id (UUIDv7).
    AlertId, "alert id"
);
uuid_id!(
    /// A silence's id (UUIDv7).
    SilenceId, "silence id"
);
uuid_id!(
    /// A notification's id (UUIDv7): one message to one receiver, and the key
    /// receivers can deduplicate on.
    NotificationId, "notification id"
);
uuid_id!(
    /// A sign-in session's id (UUIDv7): named by the access tokens and the
    /// refresh token of one password sign-in.
    SessionId, "session id"
);

/// An instrument's id, `SYMBOL.VENUE` (e.g. `0700.HKEX`, `AAPL.XNAS`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstrumentId {
    text: String,
    dot: usize,
}

impl InstrumentId {
    /// Parses `SYMBOL.VENUE`; the venue is the part after the last dot.
    ///
    /// # Errors
    /// Returns an [`IdError`] when either part is missing or invalid.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let text = value.into();
        let dot = text.rfind('.').ok_or(IdError::InstrumentFormat)?;
        Symbol::new(&text[..dot])?;
        Venue::new(&text[dot + 1..])?;
        Ok(Self { text, dot })
    }

    /// Builds the id from its two parts.
    #[must_use]
    pub fn from_parts(symbol: &Symbol, venue: &Venue) -> Self {
        let text = format!("{symbol}.{venue}");
        Self {
            dot: symbol.as_str().len(),
            text,
        }
    }

    /// The symbol part.
    #[must_use]
    pub fn symbol(&self) -> &str {
        &self.text[..self.dot]
    }

    /// The venue part.
    #[must_use]
    pub fn venue(&self) -> &str {
        &self.text[self.dot + 1..]
    }

    /// The whole id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl TryFrom<String> for InstrumentId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<InstrumentId> for String {
    fn from(value: InstrumentId) -> Self {
        value.text
    }
}

impl FromStr for InstrumentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("alice", true)]
    #[case("a.b-c_D9", true)]
    #[case("", false)]
    #[case("has space", false)]
    #[case("semi;colon", false)]
    #[case("ü", false)]
    fn user_ids(#[case] text: &str, #[case] ok: bool) {
        assert_eq!(UserId::new(text).is_ok(), ok, "{text}");
    }

    #[test]
    fn user_id_length_limit() {
        assert!(UserId::new("a".repeat(64)).is_ok());
        assert_eq!(
            UserId::new("a".repeat(65)),
            Err(IdError::TooLong {
                kind: "user id",
                max: 64
            })
        );
    }

    #[test]
    fn deserialize_goes_through_validation() {
        assert!(serde_json::from_str::<UserId>("\"bad id\"").is_err());
        assert!(serde_json::from_str::<UserId>("\"good\"").is_ok());
        assert!(serde_json::from_str::<ClientOrderId>("\"c 1\"").is_err());
        assert!(serde_json::from_str::<InstrumentId>("\"AAPL\"").is_err());
    }

    #[rstest]
    #[case("0700.HKEX", "0700", "HKEX")]
    #[case("AAPL.XNAS", "AAPL", "XNAS")]
    #[case("BTC/USDT.BINANCE", "BTC/USDT", "BINANCE")]
    fn instrument_ids(#[case] text: &str, #[case] symbol: &str, #[case] venue: &str) {
        let id = InstrumentId::new(text).unwrap();
        assert_eq!(id.symbol(), symbol);
        assert_eq!(id.venue(), venue);
        assert_eq!(id.to_string(), text);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<InstrumentId>(&json).unwrap(), id);
    }

    #[rstest]
    #[case("AAPL")]
    #[case(".XNAS")]
    #[case("AAPL.")]
    #[case("AA PL.XNAS")]
    fn bad_instrument_ids(#[case] text: &str) {
        assert!(InstrumentId::new(text).is_err(), "{text}");
    }

    #[test]
    fn order_ids_are_v7_and_time_ordered() {
        let a = OrderId::generate();
        let b = OrderId::generate();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<OrderId>().unwrap(), a);
        let v4 = Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
        assert!(OrderId::from_uuid(v4).is_err());
    }
}
