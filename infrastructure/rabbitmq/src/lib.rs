//! ordermon's RabbitMQ bus: the domain's [`MessageBus`] port over AMQP 0-9-1 with
//! lapin.
//!
//! Topology (`E` = the exchange, `ordermon.events` by default; `Q` = `E.<group>`):
//!
//! - `E`: durable topic exchange; routing key = message topic
//!   (`aggregate.event.user`, e.g. `order.filled.alice`).
//! - `Q`: one durable queue per consumer group, bound to `E` with the group's
//!   patterns (`*` one word, `#` any words).
//! - `Q.retry.<ms>`: one delay queue per retry delay (1 s, 5 s, 30 s by default),
//!   with that TTL; an expired message is dead-lettered by the broker back to `Q`
//!   through the default exchange. A nacked delivery is republished there with its
//!   attempt count (header `x-ordermon-attempt`) increased, then acked.
//! - `E.dlx` → `Q.dlq`: after `max_attempts` the message goes to the dead-letter
//!   exchange (direct, routing key `Q`) with its group, attempts, error and time in
//!   headers. `Q` also names `E.dlx` as its broker-level dead-letter exchange, so a
//!   message rejected by a foreign consumer lands there too.
//!
//! Publishes go through one confirm-mode channel and return once the broker has
//! confirmed every message of the batch; the whole batch is written before the
//! first confirm is awaited, so many confirms are in flight. Consumers use manual
//! acks and `basic.qos` prefetch. A [`supervisor`] reconnects with exponential
//! backoff and jitter when the connection or the broker drops; publishers retry
//! through it and subscriptions resubscribe, re-declaring their topology.
//!
//! [`MessageBus`]: ordermon_domain::ports::MessageBus

mod bus;
mod codec;
mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod supervisor;
mod topology;

pub use bus::RabbitBus;
pub use config::RabbitConfig;
