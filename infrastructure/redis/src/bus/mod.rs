//! The Redis Streams bus: the domain's [`MessageBus`] port over one stream.
//!
//! - Publishing appends every message to the stream (`XADD … MAXLEN ~ n`, one
//!   pipeline per batch, so a batch keeps its order); the reply is the confirm.
//! - A consumer group is a Redis consumer group (`XGROUP CREATE … $ MKSTREAM`);
//!   members read with `XREADGROUP` on a connection of their own (blocking reads
//!   would stall other commands on a shared one) and acknowledge with `XACK`.
//!   Topic patterns are applied by the members: an entry no pattern matches is
//!   acknowledged and skipped.
//! - A nack keeps the entry pending and schedules it: after the retry delay the
//!   member takes it again with `XCLAIM` (which counts the delivery). Entries left
//!   pending by a member that died are taken over with `XAUTOCLAIM` once idle for
//!   [`RedisBusConfig::claim_idle`].
//! - After `max_attempts` deliveries (the `XPENDING` delivery count) an entry is
//!   moved to the group's dead-letter stream `<stream>:dlq:<group>` and acked, in
//!   one `MULTI`. Replay appends it to the main stream again, reserved for that
//!   group, and deletes it from the dead-letter stream.
//!
//! Redis replies only after applying a command, but persistence depends on the
//! server's configuration (AOF / RDB): without it, a restart loses the stream.
//!
//! [`MessageBus`]: ordermon_domain::ports::MessageBus

mod codec;
mod config;
mod dead;
#[doc(hidden)]
pub mod fuzzing;
mod subscription;

use std::time::Duration;

use async_trait::async_trait;
use ordermon_application::backoff::Backoff;
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{
    BusError, BusMessage, DeadLetter, MessageBus, Subscription, SubscriptionSpec,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamMaxlen;
use redis::{AsyncConnectionConfig, Client};

pub use config::RedisBusConfig;

use subscription::RedisSubscription;

/// The Redis Streams bus. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisBus {
    config: std::sync::Arc<RedisBusConfig>,
    client: Client,
    /// Publishes, acks and claims (auto-reconnecting, multiplexed).
    commands: ConnectionManager,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("stream", &self.config.stream)
            .finish_non_exhaustive()
    }
}

/// A Redis failure, as a transient bus error.
pub(crate) fn unavailable(e: &redis::RedisError) -> BusError {
    BusError::Unavailable(format!("redis: {e}"))
}

impl RedisBus {
    /// Connects.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when Redis cannot be reached;
    /// [`BusError::Unexpected`] for an invalid URL or an unusable CA file.
    pub async fn connect(config: RedisBusConfig) -> Result<Self, BusError> {
        let client = crate::tls::client(&config.url, config.tls_ca_file.as_deref())
            .map_err(|e| BusError::Unexpected(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let commands = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(Self {
            config: std::sync::Arc::new(config),
            client,
            commands,
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &RedisBusConfig {
        &self.config
    }

    /// A connection of its own, for blocking reads.
    pub(crate) async fn dedicated(&self) -> Result<MultiplexedConnection, BusError> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(self.config.block + self.config.response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// The shared command connection.
    pub(crate) fn commands(&self) -> ConnectionManager {
        self.commands.clone()
    }

    /// A fresh reconnect backoff.
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::new(self.config.reconnect_min, self.config.reconnect_max)
    }

    /// Entries in the stream and pending (delivered, unacknowledged) for `group`.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when Redis cannot be reached.
    pub async fn depth(&self, group: &str) -> Result<(u64, u64), BusError> {
        let mut c = self.commands();
        let len: u64 = redis::cmd("XLEN")
            .arg(&self.config.stream)
            .query_async(&mut c)
            .await
            .map_err(|e| unavailable(&e))?;
        let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
            .arg(&self.config.stream)
            .arg(group)
            .query_async(&mut c)
            .await
            .unwrap_or_default();
        Ok((len, pending.count() as u64))
    }

    /// Deletes the stream and the dead-letter streams of `groups` (tests).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when Redis cannot be reached.
    pub async fn delete(&self, groups: &[&str]) -> Result<(), BusError> {
        let mut keys = vec![self.config.stream.clone()];
        keys.extend(groups.iter().map(|g| self.config.dead_stream(g)));
        let mut c = self.commands();
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut c)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// `MAXLEN ~ n` for the main stream.
    fn max_len(&self) -> StreamMaxlen {
        StreamMaxlen::Approx(self.config.max_len)
    }

    /// Appends `message` (to one group only when `only_group` is set).
    pub(crate) fn xadd(
        &self,
        pipe: &mut redis::Pipeline,
        message: &BusMessage,
        only_group: Option<&str>,
    ) {
        pipe.cmd("XADD")
            .arg(&self.config.stream)
            .arg(self.max_len())
            .arg("*")
            .arg(codec::fields(message, only_group))
            .ignore();
    }
}

#[async_trait]
impl MessageBus for RedisBus {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, messages: &[BusMessage]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for m in messages {
            self.xadd(&mut pipe, m, None);
        }
        let mut c = self.commands();
        pipe.query_async::<()>(&mut c)
            .await
            .map_err(|e| unavailable(&e))?;
        metrics::counter!("ordermon_bus_published_total", "bus" => "redis")
            .increment(messages.len() as u64);
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        subscription::create_group(&mut self.commands(), &self.config.stream, &spec.group).await?;
        Ok(Box::new(RedisSubscription::new(self.clone(), spec)))
    }

    async fn dead_letters(&self, group: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        dead::list(self, group, limit).await
    }

    async fn replay_dead_letters(
        &self,
        group: &str,
        ids: Option<&[EventId]>,
    ) -> Result<usize, BusError> {
        dead::replay(self, group, ids).await
    }

    async fn health(&self) -> Result<(), BusError> {
        let mut c = self.commands();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| unavailable(&e))
    }

    /// The group's `lag` (entries not yet delivered to it) plus its `pending`
    /// entries (delivered, not acknowledged: in a member's hands, waiting out a
    /// retry delay, or left by a member that died), from `XINFO GROUPS`. Every
    /// entry of the stream counts, including those no pattern of the group
    /// matches (its members skip them). `None` when Redis cannot tell the lag
    /// (before Redis 7, or after entries were deleted from the middle of the
    /// stream) or does not know the group.
    async fn backlog(&self, group: &str) -> Result<Option<u64>, BusError> {
        let mut c = self.commands();
        let reply: redis::RedisResult<redis::streams::StreamInfoGroupsReply> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.config.stream)
            .query_async(&mut c)
            .await;
        let groups = match reply {
            Ok(r) => r.groups,
            // Redis answered, with an error: no such stream.
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(unavailable(&e)),
        };
        Ok(groups
            .into_iter()
            .find(|g| g.name == group)
            .and_then(|g| Some((g.lag? as u64).saturating_add(g.pending as u64))))
    }
}
