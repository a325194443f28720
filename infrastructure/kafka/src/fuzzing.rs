//! Entry points for the fuzz targets in `fuzz/` (not an API): a record built
//! from plain values (headers read as the consumer reads them), decoded the
//! way the consumer decodes one, and the headers written back the way the
//! publisher writes them.

use std::collections::BTreeMap;

use ordermon_domain::ports::{BusMessage, DeadLetter};
use rdkafka::message::{Headers, OwnedHeaders};

use crate::codec::{self, Record};

/// An opaque consumed record.
#[derive(Debug, Clone)]
pub struct FuzzRecord(Record);

/// A record from its key, payload and headers as the consumer reads them:
/// names end at a NUL (librdkafka hands them over as C strings), values are
/// read lossily as UTF-8, a repeated name keeps the last value.
#[must_use]
pub fn record(
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
) -> FuzzRecord {
    let headers = headers
        .into_iter()
        .map(|(mut k, v)| {
            if let Some(nul) = k.find('\0') {
                k.truncate(nul);
            }
            let v = v
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            (k, v.into_owned())
        })
        .collect::<BTreeMap<_, _>>();
    FuzzRecord(Record {
        partition: 0,
        offset: 0,
        key,
        payload,
        headers,
    })
}

/// The bus message a record carries, if it is one of ordermon's.
#[must_use]
pub fn decode(r: &FuzzRecord) -> Option<BusMessage> {
    r.0.message()
}

/// The dead letter a dead-letter-topic record carries.
#[must_use]
pub fn dead_letter(r: &FuzzRecord) -> Option<DeadLetter> {
    r.0.dead_letter()
}

/// The record the publisher writes for `message` (key = its ordering key).
#[must_use]
pub fn encode(message: &BusMessage) -> FuzzRecord {
    from_headers(message, &codec::headers(message, &[]))
}

/// The record the dead-letter publisher writes for `dead`.
#[must_use]
pub fn encode_dead(dead: &DeadLetter) -> FuzzRecord {
    let extra = codec::dead_headers(dead);
    from_headers(&dead.message, &codec::headers(&dead.message, &extra))
}

fn from_headers(message: &BusMessage, h: &OwnedHeaders) -> FuzzRecord {
    let headers = h
        .iter()
        .map(|x| (x.key.to_owned(), x.value.map(<[u8]>::to_vec)))
        .collect();
    record(
        message.key.as_bytes().to_vec(),
        message.payload.clone(),
        headers,
    )
}
