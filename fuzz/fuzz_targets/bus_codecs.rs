//! Bus deliveries as a broker may hand them over → the RabbitMQ, Redis Streams
//! and Kafka decoders and the consumer's event decoder: no panic on any input;
//! whatever decodes, written back the way the publisher writes it, decodes to
//! the same message (and a dead letter to the same dead letter); an event
//! payload that decodes re-encodes to JSON that decodes to the same event.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ordermon_domain::event::DomainEvent;
use ordermon_kafka::fuzzing as kafka;
use ordermon_rabbitmq::fuzzing as amqp;
use ordermon_redis::bus::fuzzing as streams;

#[derive(Debug, Arbitrary)]
enum AmqpValue {
    Long(Vec<u8>),
    Short(String),
    I64(i64),
    I32(i32),
    U8(u8),
    Bool(bool),
    Float(f64),
}

#[derive(Debug, Arbitrary)]
enum StreamValue {
    Bulk(Vec<u8>),
    Simple(String),
    Int(i64),
    Nil,
}

/// Header names are mostly the codecs' own, so decoding gets past its first
/// checks often.
#[derive(Debug, Arbitrary)]
enum Name {
    Known(u8),
    Other(String),
}

const NAMES: &[&str] = &[
    "id", "topic", "key", "payload", "headers", "group", "attempts", "error", "dead_at",
    "x-ordermon-topic", "x-ordermon-key", "x-ordermon-attempt", "x-ordermon-group",
    "x-ordermon-error", "x-ordermon-dead-at", "ordermon-id", "ordermon-topic",
    "ordermon-group", "ordermon-attempts", "ordermon-error", "ordermon-dead-at",
    "ordermon-replayed", "traceparent",
];

impl Name {
    fn text(self) -> String {
        match self {
            Self::Known(i) => NAMES[usize::from(i) % NAMES.len()].to_owned(),
            Self::Other(s) => s,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// Use a valid UUIDv7 as the event id (else `id_text`).
    valid_id: bool,
    id_text: String,
    routing_key: String,
    group: String,
    key: Vec<u8>,
    payload: Vec<u8>,
    amqp: Vec<(Name, AmqpValue)>,
    stream: Vec<(Name, StreamValue)>,
    kafka: Vec<(Name, Option<Vec<u8>>)>,
}

fuzz_target!(|input: Input| {
    let id = if input.valid_id {
        ordermon_domain::ids::EventId::generate().to_string()
    } else {
        input.id_text.clone()
    };

    // RabbitMQ: the event id is the message id.
    let headers = input
        .amqp
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                AmqpValue::Long(b) => amqp::Header::Long(b),
                AmqpValue::Short(s) => amqp::Header::Short(s),
                AmqpValue::I64(n) => amqp::Header::I64(n),
                AmqpValue::I32(n) => amqp::Header::I32(n),
                AmqpValue::U8(n) => amqp::Header::U8(n),
                AmqpValue::Bool(b) => amqp::Header::Bool(b),
                AmqpValue::Float(f) => amqp::Header::Float(f),
            };
            (k.text(), v)
        })
        .collect();
    let props = amqp::properties(Some(id.clone()), headers);
    if let Some((message, attempt)) = amqp::decode(&input.routing_key, &props, input.payload.clone()) {
        assert!(attempt >= 1);
        let again = amqp::decode("elsewhere", &amqp::encode(&message, attempt), message.payload.clone());
        assert_eq!(again, Some((message.clone(), attempt)));
        event(&message.payload);
        let (dead, written) = amqp::dead_letter(&input.routing_key, &props, input.payload.clone(), &input.group)
            .expect("a message that decodes is a dead letter too");
        let (back, _) = amqp::dead_letter("elsewhere", &written, dead.message.payload.clone(), "other")
            .expect("a written dead letter decodes");
        assert_eq!(back, dead);
    }

    // Redis Streams: fields of an entry.
    let mut fields: Vec<(String, streams::Field)> = vec![("id".to_owned(), streams::Field::Bulk(id.clone().into_bytes()))];
    fields.extend(input.stream.into_iter().map(|(k, v)| {
        let v = match v {
            StreamValue::Bulk(b) => streams::Field::Bulk(b),
            StreamValue::Simple(s) => streams::Field::Simple(s),
            StreamValue::Int(n) => streams::Field::Int(n),
            StreamValue::Nil => streams::Field::Nil,
        };
        (k.text(), v)
    }));
    let entry = streams::entry(fields);
    if let Some((message, only)) = streams::decode(&entry) {
        let again = streams::decode(&streams::encode(&message, only.as_deref()));
        assert_eq!(again, Some((message.clone(), only)));
        event(&message.payload);
        let (dead, written) = streams::dead_letter(&entry, &input.group).expect("dead letter");
        let (back, _) = streams::dead_letter(&written, "other").expect("a written dead letter decodes");
        assert_eq!(back, dead);
    }

    // Kafka: headers carry the id and topic, the key is the ordering key.
    let mut headers: Vec<(String, Option<Vec<u8>>)> = vec![("ordermon-id".to_owned(), Some(id.into_bytes()))];
    headers.extend(input.kafka.into_iter().map(|(k, v)| (k.text(), v)));
    let record = kafka::record(input.key, input.payload, headers);
    if let Some(message) = kafka::decode(&record) {
        assert_eq!(kafka::decode(&kafka::encode(&message)), Some(message.clone()));
        event(&message.payload);
    }
    if let Some(dead) = kafka::dead_letter(&record) {
        assert_eq!(kafka::dead_letter(&kafka::encode_dead(&dead)), Some(dead));
    }
});

/// The consumer's decoding of a payload: an event that decodes round-trips.
fn event(payload: &[u8]) {
    if let Ok(e) = serde_json::from_slice::<DomainEvent>(payload) {
        let json = serde_json::to_vec(&e).expect("an event serializes");
        let back: DomainEvent = serde_json::from_slice(&json).expect("its JSON decodes");
        assert_eq!(back, e);
    }
}
