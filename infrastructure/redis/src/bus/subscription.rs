//! A member of a consumer group on the stream: reads, retries, reclaim and
//! dead-lettering (see the module above for the protocol).

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use chrono::Utc;
use ordermon_domain::ports::{BusError, DeadLetter, Delivery, Subscription, SubscriptionSpec};
use rand::Rng;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use tokio::time::Instant;

use super::{RedisBus, codec, unavailable};
use ordermon_application::backoff::Backoff;

/// Creates the group at the end of the stream (creating the stream too); an
/// existing group is kept as it is.
pub(crate) async fn create_group(
    c: &mut impl ConnectionLike,
    stream: &str,
    group: &str,
) -> Result<(), BusError> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(c)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(unavailable(&e)),
    }
}

/// A nacked entry waiting for its retry time.
#[derive(Debug)]
struct Retry {
    due: Instant,
    id: String,
    attempt: u32,
}

/// A member of a consumer group.
pub(crate) struct RedisSubscription {
    bus: RedisBus,
    spec: SubscriptionSpec,
    consumer: String,
    reader: Option<MultiplexedConnection>,
    buffer: VecDeque<Delivery>,
    /// Own pending entries must be read again (after a reconnect or a failed
    /// ack); the cursor pages through them.
    reread_pending: Option<String>,
    retries: Vec<Retry>,
    next_reclaim: Instant,
    claim_cursor: String,
    backoff: Backoff,
    read_in_flight: Option<PendingRead>,
    /// Handled entries whose `XACK` is not sent yet (sent in batches).
    to_ack: Vec<String>,
}

/// A blocking read that may outlive one call of `next`.
type PendingRead = std::pin::Pin<
    Box<dyn std::future::Future<Output = redis::RedisResult<Option<StreamReadReply>>> + Send>,
>;

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription")
            .field("group", &self.spec.group)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

/// `ms-seq` as numbers, for ordering entry ids.
fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

impl RedisSubscription {
    pub(crate) fn new(bus: RedisBus, spec: SubscriptionSpec) -> Self {
        let consumer = format!("c-{:016x}", rand::rng().random::<u64>());
        let backoff = bus.backoff();
        Self {
            bus,
            spec,
            consumer,
            reader: None,
            buffer: VecDeque::new(),
            reread_pending: Some("0".to_owned()),
            retries: Vec::new(),
            next_reclaim: Instant::now(),
            claim_cursor: "0-0".to_owned(),
            backoff,
            read_in_flight: None,
            to_ack: Vec::new(),
        }
    }

    fn stream(&self) -> &str {
        &self.bus.config().stream
    }

    fn max_attempts(&self) -> u32 {
        self.spec.max_attempts.max(1)
    }

    /// Fills the buffer: due retries, then stuck entries, then own pending ones
    /// after a reconnect, then new entries (blocking until one arrives or a timer
    /// is due).
    async fn fill(&mut self) -> Result<(), BusError> {
        self.flush_acks().await?;
        let now = Instant::now();
        self.take_due_retries(now).await?;
        if self.buffer.is_empty() && now >= self.next_reclaim {
            self.reclaim(now).await?;
        }
        if self.buffer.is_empty() {
            self.read().await?;
        }
        Ok(())
    }

    async fn take_due_retries(&mut self, now: Instant) -> Result<(), BusError> {
        let (due, waiting): (Vec<Retry>, Vec<Retry>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|r| r.due <= now);
        self.retries = waiting;
        if due.is_empty() {
            return Ok(());
        }
        let attempts: HashMap<String, u32> =
            due.iter().map(|r| (r.id.clone(), r.attempt)).collect();
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(self.stream())
            .arg(&self.spec.group)
            .arg(&self.consumer)
            .arg(0);
        for r in &due {
            cmd.arg(&r.id);
        }
        let mut c = self.bus.commands();
        let claimed: Result<redis::streams::StreamClaimReply, _> = cmd.query_async(&mut c).await;
        let claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                // Try again later.
                self.retries.extend(due);
                return Err(unavailable(&e));
            }
        };
        // Entries no longer pending (trimmed, or taken by another member) are
        // simply not returned.
        let entries = claimed
            .ids
            .into_iter()
            .map(|entry| {
                let attempt = attempts.get(&entry.id).copied().unwrap_or(2);
                (entry, attempt)
            })
            .collect();
        self.accept(entries).await
    }

    /// Takes over entries another member left pending too long; buries those
    /// delivered `max_attempts` times already.
    async fn reclaim(&mut self, now: Instant) -> Result<(), BusError> {
        let idle = self.bus.config().effective_claim_idle();
        let mut c = self.bus.commands();
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(self.stream())
            .arg(&self.spec.group)
            .arg(&self.consumer)
            .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX))
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(usize::from(self.spec.prefetch.max(1)))
            .query_async(&mut c)
            .await
            .map_err(|e| unavailable(&e))?;
        self.claim_cursor = reply.next_stream_id;
        if self.claim_cursor == "0-0" {
            self.next_reclaim = now + idle / 2;
        }
        if reply.claimed.is_empty() {
            return Ok(());
        }
        metrics::counter!("ordermon_bus_reclaimed_total", "bus" => "redis")
            .increment(reply.claimed.len() as u64);
        let counts = self.delivery_counts(&reply.claimed).await?;
        let entries = reply
            .claimed
            .into_iter()
            .map(|entry| {
                let attempt = counts.get(&entry.id).copied().unwrap_or(1);
                (entry, attempt)
            })
            .collect();
        self.accept(entries).await
    }

    /// Delivery counts (from `XPENDING`) of entries this member holds.
    async fn delivery_counts(
        &mut self,
        entries: &[StreamId],
    ) -> Result<HashMap<String, u32>, BusError> {
        let Some(first) = entries
            .iter()
            .map(|e| e.id.as_str())
            .min_by_key(|id| id_key(id))
        else {
            return Ok(HashMap::new());
        };
        let last = entries
            .iter()
            .map(|e| e.id.as_str())
            .max_by_key(|id| id_key(id))
            .unwrap_or(first);
        let mut c = self.bus.commands();
        let reply: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(self.stream())
            .arg(&self.spec.group)
            .arg(first)
            .arg(last)
            .arg(entries.len().max(1) * 4)
            .arg(&self.consumer)
            .query_async(&mut c)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(reply
            .ids
            .into_iter()
            .map(|p| (p.id, u32::try_from(p.times_delivered).unwrap_or(u32::MAX)))
            .collect())
    }

    async fn reader(&mut self) -> Result<&mut MultiplexedConnection, BusError> {
        if self.reader.is_none() {
            let conn = self.bus.dedicated().await?;
            self.reader = Some(conn);
        }
        self.reader
            .as_mut()
            .ok_or_else(|| BusError::Unavailable("redis reader missing".to_owned()))
    }

    /// Reads own pending entries (after a reconnect) or new ones.
    async fn read(&mut self) -> Result<(), BusError> {
        let count = usize::from(self.spec.prefetch.max(1));
        let stream = self.stream().to_owned();
        let group = self.spec.group.clone();
        let consumer = self.consumer.clone();
        if let Some(cursor) = self.reread_pending.clone() {
            let reader = self.reader().await?;
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&group)
                .arg(&consumer)
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&cursor)
                .query_async(reader)
                .await
                .map_err(|e| self.read_failed(&e))?;
            let entries: Vec<StreamId> = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
            self.reread_pending = entries.last().map(|e| e.id.clone());
            let entries: Vec<StreamId> = entries
                .into_iter()
                .filter(|e| !self.retries.iter().any(|r| r.id == e.id))
                .collect();
            let counts = self.delivery_counts(&entries).await?;
            let entries = entries
                .into_iter()
                .map(|entry| {
                    let attempt = counts.get(&entry.id).copied().unwrap_or(1);
                    (entry, attempt)
                })
                .collect();
            return self.accept(entries).await;
        }
        // The blocking read is kept across calls: if `next` is cancelled while
        // Redis holds the read, the entries it hands to this consumer are still
        // collected by the next call instead of being stranded in its pending list.
        if self.read_in_flight.is_none() {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(&group)
                .arg(&consumer)
                .arg("COUNT")
                .arg(count)
                .arg("BLOCK")
                .arg(self.block_for())
                .arg("STREAMS")
                .arg(&stream)
                .arg(">");
            let mut reader = self.reader().await?.clone();
            self.read_in_flight = Some(Box::pin(async move {
                cmd.query_async::<Option<StreamReadReply>>(&mut reader)
                    .await
            }));
        }
        let reply = match self.read_in_flight.as_mut() {
            Some(read) => read.await,
            None => return Ok(()),
        };
        self.read_in_flight = None;
        let reply = reply.map_err(|e| self.read_failed(&e))?;
        let entries = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| (entry, 1))
            .collect();
        self.accept(entries).await
    }

    /// Milliseconds the next blocking read may wait: until the next timer.
    fn block_for(&self) -> u64 {
        let now = Instant::now();
        let mut until = self.next_reclaim;
        if let Some(r) = self.retries.iter().map(|r| r.due).min() {
            until = until.min(r);
        }
        let wait = until
            .saturating_duration_since(now)
            .min(self.bus.config().block);
        // BLOCK 0 would wait forever.
        u64::try_from(wait.as_millis()).unwrap_or(1000).max(1)
    }

    fn read_failed(&mut self, e: &redis::RedisError) -> BusError {
        self.reader = None;
        if e.code() != Some("NOGROUP") {
            self.reread_pending = Some("0".to_owned());
        }
        unavailable(e)
    }

    /// Queues entries for delivery, or settles them at once when they are not
    /// for this member: deleted (trimmed) entries, foreign entries, replays for
    /// another group and topics no pattern matches are acked; entries delivered
    /// more than `max_attempts` times are buried. Deliveries are buffered before
    /// anything is awaited, so a cancelled call loses none of them.
    async fn accept(&mut self, entries: Vec<(StreamId, u32)>) -> Result<(), BusError> {
        let mut skip = Vec::new();
        let mut bury = Vec::new();
        for (entry, attempt) in entries {
            let decoded = if entry.map.is_empty() {
                None
            } else {
                codec::decode(&entry)
            };
            let Some(decoded) = decoded else {
                if !entry.map.is_empty() {
                    tracing::warn!(group = %self.spec.group, id = %entry.id, "undecodable stream entry dropped");
                }
                skip.push(entry.id);
                continue;
            };
            let for_us = decoded
                .only_group
                .as_deref()
                .is_none_or(|g| g == self.spec.group);
            if !for_us || !self.spec.matches(&decoded.message.topic) {
                skip.push(entry.id);
                continue;
            }
            let delivery = Delivery {
                message: decoded.message,
                attempt,
                receipt: entry.id,
            };
            if attempt > self.max_attempts() {
                bury.push(delivery);
            } else {
                self.buffer.push_back(delivery);
            }
        }
        if !skip.is_empty() {
            self.xack(&skip).await?;
        }
        for delivery in bury {
            let error = format!("not acknowledged after {} deliveries", delivery.attempt - 1);
            self.bury(&delivery, &error).await?;
        }
        Ok(())
    }

    /// Sends the batched acks; on failure the entries stay pending with this
    /// member and are read again (and deduplicated) once it reconnects.
    async fn flush_acks(&mut self) -> Result<(), BusError> {
        if self.to_ack.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.to_ack);
        self.xack(&ids).await
    }

    async fn xack(&mut self, ids: &[String]) -> Result<(), BusError> {
        let mut c = self.bus.commands();
        let acked: redis::RedisResult<u64> = redis::cmd("XACK")
            .arg(self.stream())
            .arg(&self.spec.group)
            .arg(ids)
            .query_async(&mut c)
            .await;
        acked.map(|_| ()).map_err(|e| {
            // The entry stays pending with us: read it again once reconnected.
            self.reread_pending.get_or_insert_with(|| "0".to_owned());
            unavailable(&e)
        })
    }

    /// Moves a delivery to the dead-letter stream and acks it, atomically.
    async fn bury(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        let dead = DeadLetter {
            message: delivery.message.clone(),
            group: self.spec.group.clone(),
            attempts: delivery.attempt,
            error: error.to_owned(),
            dead_at: Utc::now(),
        };
        let config = self.bus.config();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(config.dead_stream(&self.spec.group))
            .arg(redis::streams::StreamMaxlen::Approx(config.dead_max_len))
            .arg("*")
            .arg(codec::dead_fields(&dead))
            .ignore()
            .cmd("XACK")
            .arg(&config.stream)
            .arg(&self.spec.group)
            .arg(&delivery.receipt)
            .ignore();
        let mut c = self.bus.commands();
        pipe.query_async::<()>(&mut c).await.map_err(|e| {
            self.reread_pending.get_or_insert_with(|| "0".to_owned());
            unavailable(&e)
        })?;
        metrics::counter!("ordermon_bus_dead_letters_total", "bus" => "redis").increment(1);
        Ok(())
    }
}

impl Drop for RedisSubscription {
    fn drop(&mut self) {
        // Send the batched acks; what is lost here is redelivered (and deduplicated).
        if self.to_ack.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let ids = std::mem::take(&mut self.to_ack);
            let mut c = self.bus.commands();
            let mut cmd = redis::cmd("XACK");
            cmd.arg(self.stream()).arg(&self.spec.group).arg(ids);
            rt.spawn(async move {
                let _ = cmd.query_async::<u64>(&mut c).await;
            });
        }
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        loop {
            if let Some(d) = self.buffer.pop_front() {
                return Ok(Some(d));
            }
            match self.fill().await {
                Ok(()) => self.backoff.reset(),
                Err(e) => {
                    let wait = self.backoff.delay();
                    tracing::warn!(group = %self.spec.group, error = %e, ?wait, "redis stream read failed; retrying");
                    if matches!(&e, BusError::Unavailable(m) if m.contains("NOGROUP")) {
                        // The stream or group vanished (e.g. Redis restarted empty).
                        let _ =
                            create_group(&mut self.bus.commands(), self.stream(), &self.spec.group)
                                .await;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        // Acks go out in batches: one XACK per read batch, or every half prefetch.
        self.to_ack.push(delivery.receipt.clone());
        if self.to_ack.len() >= usize::from(self.spec.prefetch.max(2) / 2) {
            self.flush_acks().await?;
        }
        Ok(())
    }

    async fn nack(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        if delivery.attempt >= self.max_attempts() {
            return self.bury(delivery, error).await;
        }
        // Stays pending with us; taken again with XCLAIM once due.
        self.retries.push(Retry {
            due: Instant::now() + self.bus.config().retry_delay(delivery.attempt),
            id: delivery.receipt.clone(),
            attempt: delivery.attempt + 1,
        });
        metrics::counter!("ordermon_bus_retries_total", "bus" => "redis").increment(1);
        Ok(())
    }

    async fn dead_letter(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        self.bury(delivery, error).await
    }
}
