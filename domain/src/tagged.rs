//! Reading internally tagged enums (`{"type": "filled", "fill": …}`) without
//! serde's buffering.
//!
//! serde's derive reads an internally tagged enum by first copying the whole
//! object into an in-memory tree (it cannot know the variant before it has
//! seen the tag), then decoding the variant from that copy: an allocation per
//! key and value, for every event read. This crate always writes the tag
//! first, so the variant can be decoded straight from the input: [`read`]
//! takes the tag, then hands the rest of the object to an externally tagged
//! mirror of the enum (serde's `remote` derive, [`Mirror`]). An object whose
//! tag is not first (written by something else) still decodes, through a
//! `serde_json` copy of the object.
//!
//! The wire format does not change: the enums keep their derived
//! `Serialize`, and the tests check that every variant reads back through
//! both paths.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, IntoDeserializer, MapAccess,
    VariantAccess, Visitor,
};

/// The tag's key.
const TAG: &str = "type";

/// An enum with an externally tagged mirror (`#[serde(remote = "…")]`).
pub(crate) trait Mirror<'de>: Sized {
    /// Reads the enum in its externally tagged form.
    ///
    /// # Errors
    /// The deserializer's, for an unknown variant or a bad field.
    fn external<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Reads an internally tagged `T` (tag key `type`) from `d`.
///
/// # Errors
/// Not an object, no string `type`, an unknown variant, or a bad field.
pub(crate) fn read<'de, D, T>(d: D, name: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Mirror<'de>,
{
    d.deserialize_map(Tagged(name, PhantomData))
}

struct Tagged<T>(&'static str, PhantomData<T>);

/// A key: the tag, or another one (kept for the slow path).
enum Key {
    Tag,
    Other(String),
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(if v == TAG {
                    Key::Tag
                } else {
                    Key::Other(v.to_owned())
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de, T: Mirror<'de>> Visitor<'de> for Tagged<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as an object with a \"{TAG}\"", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key::<Key>()? {
            None => Err(de::Error::missing_field(TAG)),
            Some(Key::Tag) => {
                let tag: String = map.next_value()?;
                T::external(External { tag, rest: map })
            }
            Some(Key::Other(first)) => {
                let mut rest = serde_json::Map::new();
                rest.insert(first, map.next_value()?);
                let mut tag = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Tag => tag = Some(map.next_value::<String>()?),
                        Key::Other(k) => {
                            rest.insert(k, map.next_value()?);
                        }
                    }
                }
                let tag = tag.ok_or_else(|| de::Error::missing_field(TAG))?;
                buffered(tag, rest).map_err(de::Error::custom)
            }
        }
    }
}

/// The slow path: the variant from a copy of the object's other keys.
fn buffered<'de, T: Mirror<'de>>(
    tag: String,
    rest: serde_json::Map<String, serde_json::Value>,
) -> Result<T, serde_json::Error> {
    use serde_json::Value;
    // A unit variant is the bare name in the external form; it ignores keys
    // it does not have, as serde does.
    let unit = || T::external(Value::String(tag.clone()));
    if rest.is_empty()
        && let Ok(v) = unit()
    {
        return Ok(v);
    }
    let mut external = serde_json::Map::new();
    external.insert(tag.clone(), Value::Object(rest));
    T::external(Value::Object(external)).or_else(|e| unit().map_err(|_| e))
}

/// The externally tagged view of a tag-first object: the tag names the
/// variant, the rest of the map is its content.
struct External<A> {
    tag: String,
    rest: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for External<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for External<A> {
    type Error = A::Error;
    type Variant = Rest<A>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Rest<A>), A::Error> {
        let tag: de::value::StringDeserializer<A::Error> = self.tag.into_deserializer();
        Ok((seed.deserialize(tag)?, Rest(self.rest)))
    }
}

/// The object's keys after the tag.
struct Rest<A>(A);

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Rest<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        // Keys a unit variant does not have are ignored, as serde does.
        while self.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        seed.deserialize(de::value::MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::Map,
            &"no tuple variant in an internally tagged enum",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{TimeZone, Utc};
    use rust_decimal::Decimal;
    use serde::Serialize;
    use serde_json::Value;

    use crate::account::{AccountType, Hold, ReservationRequest, Settlement};
    use crate::event::{AccountEvent, PositionEvent};
    use crate::fill::{Fill, LiquiditySide};
    use crate::ids::{ClientOrderId, InstrumentId, OrderId, TradeId, UserId};
    use crate::order::{NewOrder, Order, OrderEvent, OrderType, Side, TimeInForce};
    use crate::position::PositionChange;
    use crate::risk::DeniedReason;
    use crate::values::{Currency, Money, Price, Quantity};

    fn d(units: i64, scale: u32) -> Decimal {
        Decimal::new(units, scale)
    }

    fn usd(amount: Decimal) -> Money {
        Money::new(amount, Currency::new("USD").unwrap()).unwrap()
    }

    fn order() -> Order {
        let new = NewOrder {
            client_order_id: ClientOrderId::new("c-1").unwrap(),
            user_id: UserId::new("alice").unwrap(),
            strategy_id: None,
            instrument_id: InstrumentId::new("ACME.SIM").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: Quantity::new(d(10, 0)).unwrap(),
            price: Some(Price::new(d(1025, 2)).unwrap()),
            trigger_price: None,
            time_in_force: TimeInForce::Gtc,
            expire_at: None,
            reduce_only: false,
            post_only: false,
        };
        let at = Utc.with_ymd_and_hms(2024, 5, 6, 9, 30, 0).unwrap();
        Order::create(OrderId::generate(), new, at).unwrap().0
    }

    fn fill(o: &Order) -> Fill {
        Fill {
            trade_id: TradeId::new("t-1").unwrap(),
            order_id: o.id,
            user_id: o.user_id.clone(),
            instrument_id: o.instrument_id.clone(),
            side: o.side,
            quantity: Quantity::new(d(4, 0)).unwrap(),
            price: Price::new(d(1025, 2)).unwrap(),
            commission: usd(d(41, 2)),
            liquidity_side: LiquiditySide::Taker,
            ts_event: o.created_at,
        }
    }

    pub(crate) fn order_events() -> Vec<OrderEvent> {
        let o = order();
        let reason = "venue: \"no\"\n".to_owned();
        vec![
            OrderEvent::Initialized {
                order: Box::new(o.clone()),
            },
            OrderEvent::Denied {
                reason: DeniedReason::InsufficientFunds,
            },
            OrderEvent::Submitted,
            OrderEvent::Accepted {
                venue_order_id: Some("v-9".to_owned()),
            },
            OrderEvent::Accepted {
                venue_order_id: None,
            },
            OrderEvent::Rejected {
                reason: reason.clone(),
            },
            OrderEvent::Canceled,
            OrderEvent::Expired,
            OrderEvent::Triggered,
            OrderEvent::PendingUpdate,
            OrderEvent::PendingCancel,
            OrderEvent::ModifyRejected {
                reason: reason.clone(),
            },
            OrderEvent::CancelRejected { reason },
            OrderEvent::Updated {
                quantity: Some(Quantity::new(d(12, 0)).unwrap()),
                price: None,
                trigger_price: Some(Price::new(d(1, 0)).unwrap()),
            },
            OrderEvent::Filled { fill: fill(&o) },
        ]
    }

    pub(crate) fn account_events() -> Vec<AccountEvent> {
        let o = order();
        let hold = Hold::Cash {
            currency: Currency::new("USD").unwrap(),
            amount: d(4100, 2),
        };
        vec![
            AccountEvent::Opened {
                account_type: AccountType::Margin,
            },
            AccountEvent::CashAdjusted {
                amount: usd(d(-5, 1)),
                reason: "fee".to_owned(),
            },
            AccountEvent::Reserved {
                order_id: o.id,
                request: ReservationRequest {
                    hold: hold.clone(),
                    quantity: Quantity::new(d(10, 0)).unwrap(),
                },
                position_qty: d(-3, 0),
            },
            AccountEvent::Released {
                order_id: o.id,
                hold,
            },
            AccountEvent::FillSettled {
                order_id: o.id,
                trade_id: TradeId::new("t-1").unwrap(),
                side: Side::Sell,
                quantity: Quantity::new(d(4, 0)).unwrap(),
                price: Price::new(d(1025, 2)).unwrap(),
                multiplier: d(1, 0),
                quote_currency: Currency::new("USD").unwrap(),
                commission: usd(d(41, 2)),
                settlement: Settlement {
                    cash_flow: d(4059, 2),
                    commission: usd(d(41, 2)),
                    consumed: d(4, 0),
                    released: d(0, 0),
                },
            },
        ]
    }

    pub(crate) fn position_events() -> Vec<PositionEvent> {
        let o = order();
        vec![PositionEvent::FillApplied {
            order_id: o.id,
            trade_id: TradeId::new("t-1").unwrap(),
            side: Side::Buy,
            quantity: Quantity::new(d(4, 0)).unwrap(),
            price: Price::new(d(1025, 2)).unwrap(),
            commission: usd(d(41, 2)),
            change: PositionChange {
                closed_qty: d(1, 0),
                opened_qty: d(3, 0),
                realized: d(-12, 1),
                flipped: true,
                quantity_after: d(3, 0),
            },
        }]
    }

    /// The object with its tag moved to the end (keys otherwise in order).
    fn tag_last(json: &str) -> String {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) else {
            panic!("not an object: {json}");
        };
        let mut parts: Vec<String> = map
            .iter()
            .filter(|(k, _)| k.as_str() != "type")
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        parts.push(format!("\"type\":{}", map["type"]));
        format!("{{{}}}", parts.join(","))
    }

    fn reads_back<T>(all: &[T])
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for e in all {
            let json = serde_json::to_string(e).unwrap();
            assert!(json.starts_with("{\"type\":"), "{json}");
            // Tag first (as written): straight from the input.
            assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), e, "{json}");
            // Tag elsewhere: through the copy.
            let moved = tag_last(&json);
            assert_eq!(&serde_json::from_str::<T>(&moved).unwrap(), e, "{moved}");
            // From a `Value` (keys sorted): also through the copy.
            let value: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(&serde_json::from_value::<T>(value).unwrap(), e);
        }
    }

    #[test]
    fn every_variant_reads_back_whatever_the_key_order() {
        reads_back(&order_events());
        reads_back(&account_events());
        reads_back(&position_events());
    }

    #[test]
    fn bad_objects_are_errors() {
        for bad in [
            "[]",
            "\"submitted\"",
            "{}",
            "{\"reason\":\"x\"}",
            "{\"type\":7}",
            "{\"type\":\"teleported\"}",
            "{\"reason\":\"x\",\"type\":\"teleported\"}",
            "{\"type\":\"rejected\"}",
            "{\"type\":\"rejected\",\"reason\":5}",
            "{\"type\":\"filled\",\"fill\":{}}",
            "{\"type\":\"submitted\",",
        ] {
            assert!(serde_json::from_str::<OrderEvent>(bad).is_err(), "{bad}");
        }
        // A unit variant ignores keys it does not have, as serde does.
        let extra = "{\"type\":\"submitted\",\"note\":{\"a\":[1,2]}}";
        assert_eq!(
            serde_json::from_str::<OrderEvent>(extra).unwrap(),
            OrderEvent::Submitted
        );
        let extra = "{\"note\":1,\"type\":\"canceled\"}";
        assert_eq!(
            serde_json::from_str::<OrderEvent>(extra).unwrap(),
            OrderEvent::Canceled
        );
    }
}
