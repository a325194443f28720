//! A Kafka consumer-group member: commits only handled offsets, holds nacked
//! records for their retry delay, and dead-letters after `max_attempts`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ordermon_domain::ports::{BusError, DeadLetter, Delivery, Subscription, SubscriptionSpec};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::{KafkaBus, Outgoing, unavailable};
use crate::codec::{self, Record};

/// Handled commits are flushed after this many acks even within the interval.
const COMMIT_EVERY: usize = 1000;

/// Offsets of one partition.
#[derive(Debug, Default)]
struct Partition {
    /// Delivered, not yet handled.
    outstanding: BTreeSet<i64>,
    /// One past the highest offset received.
    next: i64,
    /// The last committed position.
    committed: i64,
}

impl Partition {
    /// Where the group may resume: the first unhandled record.
    fn position(&self) -> i64 {
        self.outstanding.first().copied().unwrap_or(self.next)
    }
}

/// A member of a Kafka consumer group.
pub(crate) struct KafkaSubscription {
    bus: KafkaBus,
    spec: SubscriptionSpec,
    consumer: StreamConsumer,
    partitions: HashMap<i32, Partition>,
    retries: Vec<(Instant, Delivery)>,
    handled_since_commit: usize,
    last_commit: Instant,
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("group", &self.spec.group)
            .finish_non_exhaustive()
    }
}

fn receipt(partition: i32, offset: i64) -> String {
    format!("{partition}:{offset}")
}

fn parse_receipt(receipt: &str) -> Result<(i32, i64), BusError> {
    receipt
        .split_once(':')
        .and_then(|(p, o)| Some((p.parse().ok()?, o.parse().ok()?)))
        .ok_or_else(|| BusError::Unexpected(format!("bad kafka receipt {receipt}")))
}

impl KafkaSubscription {
    pub(crate) fn new(bus: KafkaBus, spec: SubscriptionSpec) -> Result<Self, BusError> {
        let longest = bus
            .config
            .retry_delays
            .iter()
            .max()
            .copied()
            .unwrap_or_default();
        // A member waiting out a retry does not poll; it must not be evicted.
        let max_poll = (longest * 2).max(Duration::from_secs(300));
        let consumer: StreamConsumer = bus
            .client_config()
            .set("group.id", &spec.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("max.poll.interval.ms", max_poll.as_millis().to_string())
            .set("client.id", "ordermon")
            // Latency over fetch size: a fetch returns as soon as anything is
            // there, and an idle partition is asked again after 10 ms (the
            // default waits up to 500 ms, which is every live stream's latency).
            .set("fetch.wait.max.ms", "10")
            .set("fetch.min.bytes", "1")
            .create()
            .map_err(|e| unavailable(&e))?;
        consumer
            .subscribe(&[&bus.config.topic])
            .map_err(|e| unavailable(&e))?;
        Ok(Self {
            bus,
            spec,
            consumer,
            partitions: HashMap::new(),
            retries: Vec::new(),
            handled_since_commit: 0,
            last_commit: Instant::now(),
        })
    }

    fn max_attempts(&self) -> u32 {
        self.spec.max_attempts.max(1)
    }

    /// A record arrived: a delivery for this member, or `None` when it is not
    /// for it (skipped and counted as handled).
    fn receive(&mut self, record: &Record) -> Option<Delivery> {
        let p = self.partitions.entry(record.partition).or_default();
        p.outstanding.insert(record.offset);
        p.next = p.next.max(record.offset + 1);
        let for_us = record.only_group().is_none_or(|g| g == self.spec.group);
        let message = record.message();
        match message {
            Some(message) if for_us && self.spec.matches(&message.topic) => Some(Delivery {
                message,
                attempt: 1,
                receipt: receipt(record.partition, record.offset),
            }),
            other => {
                if other.is_none() {
                    tracing::warn!(group = %self.spec.group, partition = record.partition, offset = record.offset, "undecodable kafka record skipped");
                }
                self.handled(record.partition, record.offset);
                None
            }
        }
    }

    fn handled(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.outstanding.remove(&offset);
        }
        self.handled_since_commit += 1;
    }

    /// Commits the handled positions that moved, if enough time or records
    /// passed (or always with `force`).
    fn commit(&mut self, force: bool) {
        let due = self.handled_since_commit >= COMMIT_EVERY
            || self.last_commit.elapsed() >= self.bus.config.commit_interval;
        if self.handled_since_commit == 0 || !(force || due) {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (id, p) in &mut self.partitions {
            let position = p.position();
            if position > p.committed
                && tpl
                    .add_partition_offset(&self.bus.config.topic, *id, Offset::Offset(position))
                    .is_ok()
            {
                p.committed = position;
            }
        }
        self.handled_since_commit = 0;
        self.last_commit = Instant::now();
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            // The records come again after a restart; dedupe absorbs them.
            tracing::warn!(group = %self.spec.group, error = %e, "kafka offset commit failed");
        }
    }

    /// The retry that is due first.
    fn next_retry(&self) -> Option<(usize, Instant)> {
        self.retries
            .iter()
            .enumerate()
            .min_by_key(|(_, (due, _))| *due)
            .map(|(i, (due, _))| (i, *due))
    }

    async fn bury(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        let (partition, offset) = parse_receipt(&delivery.receipt)?;
        let dead = DeadLetter {
            message: delivery.message.clone(),
            group: self.spec.group.clone(),
            attempts: delivery.attempt,
            error: error.to_owned(),
            dead_at: Utc::now(),
        };
        let dlq = self.bus.config.dead_letter_topic();
        self.bus
            .send(vec![Outgoing {
                topic: &dlq,
                key: &dead.message.key,
                payload: &dead.message.payload,
                headers: codec::headers(&dead.message, &codec::dead_headers(&dead)),
            }])
            .await?;
        self.handled(partition, offset);
        self.commit(false);
        metrics::counter!("ordermon_bus_dead_letters_total", "bus" => "kafka").increment(1);
        Ok(())
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        loop {
            let now = Instant::now();
            let retry = self.next_retry();
            if let Some((i, due)) = retry
                && due <= now
            {
                return Ok(Some(self.retries.swap_remove(i).1));
            }
            let mut wait = self.bus.config.commit_interval;
            if let Some((_, due)) = retry {
                wait = wait.min(due - now);
            }
            let received = tokio::select! {
                m = self.consumer.recv() => Some(m.map(|m| Record::from_message(&m))),
                () = tokio::time::sleep(wait) => None,
            };
            match received {
                Some(Ok(record)) => {
                    if let Some(d) = self.receive(&record) {
                        return Ok(Some(d));
                    }
                }
                Some(Err(e)) => {
                    // Usually transient (a broker connection dropped); librdkafka
                    // reconnects by itself.
                    tracing::warn!(group = %self.spec.group, error = %e, "kafka consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None => self.commit(true),
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        let (partition, offset) = parse_receipt(&delivery.receipt)?;
        self.handled(partition, offset);
        self.commit(false);
        Ok(())
    }

    async fn nack(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        if delivery.attempt >= self.max_attempts() {
            return self.bury(delivery, error).await;
        }
        let due = Instant::now() + self.bus.config.retry_delay(delivery.attempt);
        let mut again = delivery.clone();
        again.attempt += 1;
        self.retries.push((due, again));
        metrics::counter!("ordermon_bus_retries_total", "bus" => "kafka").increment(1);
        Ok(())
    }

    async fn dead_letter(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        self.bury(delivery, error).await
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        self.commit(true);
    }
}
