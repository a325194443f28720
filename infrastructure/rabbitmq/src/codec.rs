//! Bus messages to AMQP properties and headers, and back.
//!
//! The event id travels as the AMQP `message_id`; the topic and key travel in
//! headers too, because retried and dead-lettered copies are routed by queue name
//! and lose the original routing key. Header names starting with `x-` are
//! reserved for the broker and for ordermon; a message's own headers are carried
//! as strings.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{BusMessage, DeadLetter};

/// The message's topic (its original routing key).
pub(crate) const TOPIC: &str = "x-ordermon-topic";
/// The ordering key (the user).
pub(crate) const KEY: &str = "x-ordermon-key";
/// Which delivery attempt the copy is for (1 = first).
pub(crate) const ATTEMPT: &str = "x-ordermon-attempt";
/// The group that dead-lettered the message.
pub(crate) const GROUP: &str = "x-ordermon-group";
/// The last failure.
pub(crate) const ERROR: &str = "x-ordermon-error";
/// When it was dead-lettered (RFC 3339).
pub(crate) const DEAD_AT: &str = "x-ordermon-dead-at";

/// Persistent delivery mode: the message survives a broker restart.
const PERSISTENT: u8 = 2;

/// AMQP properties for a message on its `attempt`-th delivery.
pub(crate) fn properties(message: &BusMessage, attempt: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (k, v) in &message.headers {
        headers.insert(k.as_str().into(), long_string(v));
    }
    headers.insert(TOPIC.into(), long_string(&message.topic));
    headers.insert(KEY.into(), long_string(&message.key));
    headers.insert(ATTEMPT.into(), AMQPValue::LongLongInt(i64::from(attempt)));
    BasicProperties::default()
        .with_message_id(ShortString::from(message.id.to_string()))
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

/// Properties of a dead letter: the message's, plus who gave up, when and why.
pub(crate) fn dead_letter_properties(dead: &DeadLetter) -> BasicProperties {
    let props = properties(&dead.message, dead.attempts);
    let mut headers = props.headers().clone().unwrap_or_default();
    headers.insert(GROUP.into(), long_string(&dead.group));
    headers.insert(ERROR.into(), long_string(&dead.error));
    headers.insert(DEAD_AT.into(), long_string(&dead.dead_at.to_rfc3339()));
    props.with_headers(headers)
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// A header as text (strings) or a number (integers).
fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => number(value).map(|n| n.to_string()),
    }
}

fn number(value: &AMQPValue) -> Option<i64> {
    Some(match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.parse().ok()?,
        _ => return None,
    })
}

/// A delivered message, decoded.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) message: BusMessage,
    pub(crate) attempt: u32,
    pub(crate) headers: BTreeMap<String, String>,
}

impl Decoded {
    /// A dead letter from a message read off a dead-letter queue.
    pub(crate) fn into_dead_letter(self, group: &str) -> DeadLetter {
        let dead_at = self
            .headers
            .get(DEAD_AT)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        DeadLetter {
            group: self
                .headers
                .get(GROUP)
                .cloned()
                .unwrap_or_else(|| group.to_owned()),
            attempts: self.attempt,
            error: self
                .headers
                .get(ERROR)
                .cloned()
                .unwrap_or_else(|| "rejected".to_owned()),
            dead_at,
            message: self.message,
        }
    }
}

/// Decodes a delivery; `None` when it was not written by ordermon (no valid
/// event id), so it can only be dead-lettered.
pub(crate) fn decode(
    routing_key: &str,
    properties: &BasicProperties,
    data: Vec<u8>,
) -> Option<Decoded> {
    let id: EventId = properties.message_id().as_ref()?.as_str().parse().ok()?;
    let mut all = BTreeMap::new();
    let mut attempt = 1;
    if let Some(table) = properties.headers() {
        for (k, v) in table.inner() {
            if k.as_str() == ATTEMPT {
                attempt = number(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(1)
                    .max(1);
            } else if let Some(s) = text(v) {
                all.insert(k.as_str().to_owned(), s);
            }
        }
    }
    let own = all
        .iter()
        .filter(|(k, _)| !k.starts_with("x-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let message = BusMessage {
        id,
        topic: all
            .get(TOPIC)
            .cloned()
            .unwrap_or_else(|| routing_key.to_owned()),
        key: all.get(KEY).cloned().unwrap_or_default(),
        payload: data,
        headers: own,
    };
    Some(Decoded {
        message,
        attempt,
        headers: all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_properties() {
        let mut headers = BTreeMap::new();
        headers.insert("trace".to_owned(), "abc".to_owned());
        let m = BusMessage {
            id: EventId::generate(),
            topic: "order.filled.alice".to_owned(),
            key: "alice".to_owned(),
            payload: b"{}".to_vec(),
            headers,
        };
        let props = properties(&m, 3);
        let d = decode("ordermon.events.g", &props, m.payload.clone()).unwrap();
        assert_eq!(d.message, m);
        assert_eq!(d.attempt, 3);
    }

    #[test]
    fn dead_letters_keep_group_error_and_time() {
        let dead = DeadLetter {
            message: BusMessage {
                id: EventId::generate(),
                topic: "a.b.c".to_owned(),
                key: "c".to_owned(),
                payload: vec![1, 2],
                headers: BTreeMap::new(),
            },
            group: "g".to_owned(),
            attempts: 5,
            error: "boom".to_owned(),
            dead_at: DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let props = dead_letter_properties(&dead);
        let back = decode("x", &props, dead.message.payload.clone())
            .unwrap()
            .into_dead_letter("other");
        assert_eq!(back, dead);
    }

    #[test]
    fn foreign_messages_are_not_decoded() {
        assert!(decode("a", &BasicProperties::default(), vec![]).is_none());
    }
}
