//! Entry points for the fuzz targets in `fuzz/` (not an API): a stream entry
//! built from plain values, decoded the way the consumer decodes one, and the
//! fields written back the way the publisher writes them.

use std::collections::HashMap;

use ordermon_domain::ports::{BusMessage, DeadLetter};
use redis::streams::StreamId;

use super::codec;

/// A field value as Redis may return it.
#[derive(Debug, Clone)]
pub enum Field {
    /// A bulk string (any bytes): what XADD stores.
    Bulk(Vec<u8>),
    /// A simple string.
    Simple(String),
    /// An integer.
    Int(i64),
    /// Nil.
    Nil,
}

impl From<Field> for redis::Value {
    fn from(f: Field) -> Self {
        match f {
            Field::Bulk(b) => Self::BulkString(b),
            Field::Simple(s) => Self::SimpleString(s),
            Field::Int(n) => Self::Int(n),
            Field::Nil => Self::Nil,
        }
    }
}

/// An entry from its fields (a repeated name keeps the last value).
#[must_use]
pub fn entry(fields: Vec<(String, Field)>) -> StreamId {
    StreamId {
        id: "1-0".to_owned(),
        milliseconds_elapsed_from_delivery: None,
        delivered_count: None,
        map: fields
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect::<HashMap<_, _>>(),
    }
}

/// Decodes an entry: the message and the group it is reserved for.
#[must_use]
pub fn decode(entry: &StreamId) -> Option<(BusMessage, Option<String>)> {
    codec::decode(entry).map(|d| (d.message, d.only_group))
}

/// The entry the publisher writes for `message`.
#[must_use]
pub fn encode(message: &BusMessage, only_group: Option<&str>) -> StreamId {
    let fields = codec::fields(message, only_group)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Field::Bulk(v)))
        .collect();
    entry(fields)
}

/// Decodes a dead-letter entry, and the entry it is written back as.
#[must_use]
pub fn dead_letter(entry: &StreamId, group: &str) -> Option<(DeadLetter, StreamId)> {
    let dead = codec::decode_dead(entry, group)?;
    let fields = codec::dead_fields(&dead)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Field::Bulk(v)))
        .collect();
    Some((dead, self::entry(fields)))
}
