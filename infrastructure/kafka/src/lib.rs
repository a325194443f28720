//! ordermon's Kafka bus: the domain's [`MessageBus`] port over one topic with
//! rdkafka (librdkafka, built from source: depend on this crate only when Kafka
//! is wanted — the `ordermon` crate enables it with its `kafka` feature).
//!
//! - Every event goes to one topic (`ordermon.events` by default), keyed by user:
//!   Kafka keeps one key's records in one partition, in order. The producer is
//!   idempotent (`enable.idempotence=true`, `acks=all`), so its internal retries
//!   neither duplicate nor reorder; a publish returns once every record of the
//!   batch is acknowledged.
//! - A consumer group is a Kafka consumer group. Offsets are committed only for
//!   records that were handled (acked or dead-lettered), never ahead of one still
//!   in flight. Topic patterns are applied by the members on the record's
//!   `ordermon-topic` header; records no pattern matches are skipped.
//! - Kafka has no per-record redelivery: a nack holds the record in the member and
//!   hands it out again after the retry delay, while later records flow on (its
//!   offset is not committed meanwhile, so a crash redelivers it); after
//!   `max_attempts` the record goes to the dead-letter topic `<topic>.dlq` (with
//!   group, attempts, error and time in headers).
//! - Dead letters are listed by reading the dead-letter topic; replay republishes
//!   them on the main topic reserved for their group (`ordermon-group` header) and
//!   appends a tombstone record to the dead-letter topic so they are not listed
//!   again.
//! - A group's backlog is the high watermark minus the group's committed offset,
//!   summed over the topic's partitions, read by a consumer that carries the
//!   group's id but never joins the group.
//! - Topics are created on connect with the admin API (some brokers, such as
//!   tansu, do not create them automatically).
//!
//! [`MessageBus`]: ordermon_domain::ports::MessageBus

mod bus;
mod codec;
mod config;
#[doc(hidden)]
pub mod fuzzing;

pub use bus::KafkaBus;
pub use config::KafkaConfig;
