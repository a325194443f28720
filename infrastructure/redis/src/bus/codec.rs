//! Bus messages as stream entry fields, and back.
//!
//! Fields: `id` (event id), `topic`, `key`, `payload` (bytes), `headers` (JSON,
//! only when there are any), and `group` on an entry replayed from a dead-letter
//! stream (only that group handles it; the others skip it). Dead-letter entries
//! add `attempts`, `error` and `dead_at`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{BusMessage, DeadLetter};
use redis::streams::StreamId;

/// An entry's fields.
pub(crate) type Fields = Vec<(&'static str, Vec<u8>)>;

/// The fields of a message; `only_group` marks a replay for one group.
pub(crate) fn fields(message: &BusMessage, only_group: Option<&str>) -> Fields {
    let mut f: Fields = vec![
        ("id", message.id.to_string().into_bytes()),
        ("topic", message.topic.as_bytes().to_vec()),
        ("key", message.key.as_bytes().to_vec()),
        ("payload", message.payload.clone()),
    ];
    if !message.headers.is_empty()
        && let Ok(h) = serde_json::to_vec(&message.headers)
    {
        f.push(("headers", h));
    }
    if let Some(g) = only_group {
        f.push(("group", g.as_bytes().to_vec()));
    }
    f
}

/// The fields of a dead letter.
pub(crate) fn dead_fields(dead: &DeadLetter) -> Fields {
    let mut f = fields(&dead.message, Some(&dead.group));
    f.push(("attempts", dead.attempts.to_string().into_bytes()));
    f.push(("error", dead.error.as_bytes().to_vec()));
    f.push(("dead_at", dead.dead_at.to_rfc3339().into_bytes()));
    f
}

fn text(entry: &StreamId, field: &str) -> Option<String> {
    entry.get::<String>(field)
}

/// A decoded entry: the message and the group it is reserved for, if any.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) message: BusMessage,
    pub(crate) only_group: Option<String>,
}

/// Decodes an entry; `None` when it is not a valid ordermon message (missing
/// fields or an invalid event id), or was deleted.
pub(crate) fn decode(entry: &StreamId) -> Option<Decoded> {
    let id: EventId = text(entry, "id")?.parse().ok()?;
    let headers = entry
        .get::<Vec<u8>>("headers")
        .and_then(|h| serde_json::from_slice::<BTreeMap<String, String>>(&h).ok())
        .unwrap_or_default();
    Some(Decoded {
        message: BusMessage {
            id,
            topic: text(entry, "topic")?,
            key: text(entry, "key").unwrap_or_default(),
            payload: entry.get::<Vec<u8>>("payload").unwrap_or_default(),
            headers,
        },
        only_group: text(entry, "group"),
    })
}

/// Decodes a dead-letter entry.
pub(crate) fn decode_dead(entry: &StreamId, group: &str) -> Option<DeadLetter> {
    let d = decode(entry)?;
    Some(DeadLetter {
        message: d.message,
        group: d.only_group.unwrap_or_else(|| group.to_owned()),
        attempts: text(entry, "attempts")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        error: text(entry, "error").unwrap_or_default(),
        dead_at: text(entry, "dead_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn entry(fields: Fields) -> StreamId {
        StreamId {
            id: "1-0".to_owned(),
            milliseconds_elapsed_from_delivery: None,
            delivered_count: None,
            map: fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), redis::Value::BulkString(v)))
                .collect::<HashMap<_, _>>(),
        }
    }

    #[test]
    fn messages_round_trip() {
        let mut headers = BTreeMap::new();
        headers.insert("trace".to_owned(), "t1".to_owned());
        let m = BusMessage {
            id: EventId::generate(),
            topic: "order.filled.alice".to_owned(),
            key: "alice".to_owned(),
            payload: b"{\"x\":1}".to_vec(),
            headers,
        };
        let d = decode(&entry(fields(&m, Some("g")))).unwrap();
        assert_eq!(d.message, m);
        assert_eq!(d.only_group.as_deref(), Some("g"));
    }

    #[test]
    fn dead_letters_round_trip() {
        let dead = DeadLetter {
            message: BusMessage {
                id: EventId::generate(),
                topic: "a.b.c".to_owned(),
                key: "c".to_owned(),
                payload: vec![],
                headers: BTreeMap::new(),
            },
            group: "g".to_owned(),
            attempts: 4,
            error: "boom".to_owned(),
            dead_at: DateTime::parse_from_rfc3339("2024-05-06T07:08:09Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        assert_eq!(decode_dead(&entry(dead_fields(&dead)), "x").unwrap(), dead);
    }

    #[test]
    fn foreign_entries_are_not_decoded() {
        assert!(decode(&entry(vec![("id", b"nope".to_vec())])).is_none());
    }
}
