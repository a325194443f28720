//! Bus messages as Kafka records (key = ordering key, headers carry the rest),
//! and back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{BusMessage, DeadLetter};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};

/// The event id.
pub(crate) const ID: &str = "ordermon-id";
/// The message topic (`aggregate.event.user`).
pub(crate) const TOPIC: &str = "ordermon-topic";
/// The only group that should handle a replayed record.
pub(crate) const GROUP: &str = "ordermon-group";
/// Deliveries made before dead-lettering.
pub(crate) const ATTEMPTS: &str = "ordermon-attempts";
/// The last failure.
pub(crate) const ERROR: &str = "ordermon-error";
/// When it was dead-lettered (RFC 3339).
pub(crate) const DEAD_AT: &str = "ordermon-dead-at";
/// Marks a dead-letter tombstone: the dead letter with this id was replayed.
pub(crate) const REPLAYED: &str = "ordermon-replayed";

/// The headers of a message, plus `extra` ones.
pub(crate) fn headers(message: &BusMessage, extra: &[(&str, String)]) -> OwnedHeaders {
    let mut h = OwnedHeaders::new_with_capacity(message.headers.len() + extra.len() + 2);
    let id = message.id.to_string();
    h = h.insert(Header {
        key: ID,
        value: Some(&id),
    });
    h = h.insert(Header {
        key: TOPIC,
        value: Some(&message.topic),
    });
    // A Kafka header name is a C string to librdkafka: one holding a NUL would
    // be cut short and read back as another name, so it is not written.
    for (k, v) in message.headers.iter().filter(|(k, _)| !k.contains('\0')) {
        h = h.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    for (k, v) in extra {
        h = h.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    h
}

/// The extra headers of a dead letter.
pub(crate) fn dead_headers(dead: &DeadLetter) -> Vec<(&'static str, String)> {
    vec![
        (GROUP, dead.group.clone()),
        (ATTEMPTS, dead.attempts.to_string()),
        (ERROR, dead.error.clone()),
        (DEAD_AT, dead.dead_at.to_rfc3339()),
    ]
}

/// A consumed record, copied out of the consumer's buffer.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    pub(crate) headers: BTreeMap<String, String>,
}

impl Record {
    pub(crate) fn from_message(m: &BorrowedMessage<'_>) -> Self {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        let v = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                        (h.key.to_owned(), v.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        }
    }

    /// The group a replayed record is reserved for.
    pub(crate) fn only_group(&self) -> Option<&str> {
        self.headers.get(GROUP).map(String::as_str)
    }

    /// The bus message; `None` when the record has no valid event id.
    pub(crate) fn message(&self) -> Option<BusMessage> {
        let id: EventId = self.headers.get(ID)?.parse().ok()?;
        Some(BusMessage {
            id,
            topic: self.headers.get(TOPIC).cloned().unwrap_or_default(),
            key: String::from_utf8_lossy(&self.key).into_owned(),
            payload: self.payload.clone(),
            headers: self
                .headers
                .iter()
                .filter(|(k, _)| !k.starts_with("ordermon-"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The dead letter a dead-letter-topic record carries.
    pub(crate) fn dead_letter(&self) -> Option<DeadLetter> {
        Some(DeadLetter {
            message: self.message()?,
            group: self.only_group()?.to_owned(),
            attempts: self
                .headers
                .get(ATTEMPTS)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0),
            error: self.headers.get(ERROR).cloned().unwrap_or_default(),
            dead_at: self
                .headers
                .get(DEAD_AT)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
        })
    }

    /// For a tombstone, the dead-letter record it hides (`partition:offset`).
    pub(crate) fn replayed(&self) -> Option<&str> {
        self.headers.get(REPLAYED).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(h: &OwnedHeaders, key: &str, payload: &[u8]) -> Record {
        Record {
            partition: 0,
            offset: 0,
            key: key.as_bytes().to_vec(),
            payload: payload.to_vec(),
            headers: h
                .iter()
                .map(|x| {
                    (
                        x.key.to_owned(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn messages_and_dead_letters_round_trip() {
        let mut own = BTreeMap::new();
        own.insert("trace".to_owned(), "x".to_owned());
        let m = BusMessage {
            id: EventId::generate(),
            topic: "order.filled.alice".to_owned(),
            key: "alice".to_owned(),
            payload: b"{}".to_vec(),
            headers: own,
        };
        let r = record(&headers(&m, &[]), "alice", b"{}");
        assert_eq!(r.message().unwrap(), m);
        assert_eq!(r.only_group(), None);

        let dead = DeadLetter {
            message: m.clone(),
            group: "g".to_owned(),
            attempts: 3,
            error: "boom".to_owned(),
            dead_at: DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let r = record(&headers(&m, &dead_headers(&dead)), "alice", b"{}");
        assert_eq!(r.dead_letter().unwrap(), dead);
        assert!(r.replayed().is_none());
    }

    /// Found by the `bus_codecs` fuzz target: librdkafka cut a header name at
    /// its NUL, so `"a\0b"` was published as `"a"` — another header. Such a
    /// name is not written at all; the others are.
    #[test]
    fn a_header_name_with_a_nul_is_not_written_as_another_name() {
        let mut own = BTreeMap::new();
        own.insert("\u{16}\0\0".to_owned(), String::new());
        own.insert("trace".to_owned(), "x".to_owned());
        let m = BusMessage {
            id: EventId::generate(),
            topic: "t".to_owned(),
            key: "k".to_owned(),
            payload: Vec::new(),
            headers: own,
        };
        let r = record(&headers(&m, &[]), "k", b"");
        let read = r.message().unwrap();
        assert!(!read.headers.contains_key("\u{16}"), "{:?}", read.headers);
        assert_eq!(read.headers.len(), 1);
        assert_eq!(read.headers["trace"], "x");
    }
}
