//! Entry points for the fuzz targets in `fuzz/` (not an API): a delivery built
//! from plain values, decoded the way the consumer decodes one, and the
//! message written back the way the publisher writes it.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use ordermon_domain::ports::{BusMessage, DeadLetter};

use crate::codec;

/// A header value as a broker or another client might send it.
#[derive(Debug, Clone)]
pub enum Header {
    /// AMQP long string (any bytes).
    Long(Vec<u8>),
    /// AMQP short string.
    Short(String),
    /// 64-bit integer.
    I64(i64),
    /// 32-bit integer.
    I32(i32),
    /// Unsigned byte.
    U8(u8),
    /// Boolean.
    Bool(bool),
    /// Double.
    Float(f64),
}

impl From<Header> for AMQPValue {
    fn from(h: Header) -> Self {
        match h {
            Header::Long(b) => Self::LongString(LongString::from(b)),
            Header::Short(s) => Self::ShortString(ShortString::from(s)),
            Header::I64(n) => Self::LongLongInt(n),
            Header::I32(n) => Self::LongInt(n),
            Header::U8(n) => Self::ShortShortUInt(n),
            Header::Bool(b) => Self::Boolean(b),
            Header::Float(f) => Self::Double(f),
        }
    }
}

/// A delivery's properties from its message id and headers.
#[must_use]
pub fn properties(message_id: Option<String>, headers: Vec<(String, Header)>) -> BasicProperties {
    let mut table = FieldTable::default();
    for (k, v) in headers {
        table.insert(ShortString::from(k), v.into());
    }
    let props = BasicProperties::default().with_headers(table);
    match message_id {
        Some(id) => props.with_message_id(ShortString::from(id)),
        None => props,
    }
}

/// Decodes a delivery: the message and its attempt, or `None` for one
/// ordermon did not write.
#[must_use]
pub fn decode(
    routing_key: &str,
    props: &BasicProperties,
    payload: Vec<u8>,
) -> Option<(BusMessage, u32)> {
    codec::decode(routing_key, props, payload).map(|d| (d.message, d.attempt))
}

/// The properties the publisher writes for `message` on its `attempt`-th delivery.
#[must_use]
pub fn encode(message: &BusMessage, attempt: u32) -> BasicProperties {
    codec::properties(message, attempt)
}

/// A dead letter read off a dead-letter queue, and the properties it is
/// written back with.
#[must_use]
pub fn dead_letter(
    routing_key: &str,
    props: &BasicProperties,
    payload: Vec<u8>,
    group: &str,
) -> Option<(DeadLetter, BasicProperties)> {
    let dead = codec::decode(routing_key, props, payload)?.into_dead_letter(group);
    let written = codec::dead_letter_properties(&dead);
    Some((dead, written))
}
