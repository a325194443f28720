//! A RabbitMQ subscription: manual acks with prefetch, retries through delay
//! queues, dead letters after `max_attempts`, and resubscription (with backoff)
//! whenever the channel, the connection or the broker drops.

use async_trait::async_trait;
use chrono::Utc;
use std::collections::BTreeSet;

use futures::{FutureExt, StreamExt};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::{Channel, Consumer};
use ordermon_domain::ports::{BusError, DeadLetter, Delivery, Subscription, SubscriptionSpec};

use super::{Outgoing, RabbitBus};
use crate::codec;
use crate::supervisor::unavailable;
use crate::topology;
use crate::topology::no_args;

/// The consumer on the current connection.
struct Active {
    generation: u64,
    channel: Channel,
    consumer: Consumer,
    /// Delivery tags handed out and not yet settled.
    outstanding: BTreeSet<u64>,
    /// Settled tags whose ack is not sent yet: acks go out in batches, as one
    /// `basic.ack` with `multiple` up to the first tag still outstanding.
    settled: BTreeSet<u64>,
}

impl Active {
    /// The highest settled tag below every outstanding one, if any: acking it
    /// with `multiple` covers exactly the settled deliveries before it.
    fn ackable(&self) -> Option<u64> {
        let limit = self.outstanding.first().map_or(u64::MAX, |t| t - 1);
        self.settled.range(..=limit).next_back().copied()
    }
}

/// A member of a consumer group on RabbitMQ.
pub(crate) struct RabbitSubscription {
    bus: RabbitBus,
    spec: SubscriptionSpec,
    queue: String,
    active: Option<Active>,
    /// Settled deliveries that trigger an ack batch.
    ack_batch: usize,
}

impl std::fmt::Debug for RabbitSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitSubscription")
            .field("group", &self.spec.group)
            .field("generation", &self.active.as_ref().map(|a| a.generation))
            .finish_non_exhaustive()
    }
}

impl RabbitSubscription {
    pub(crate) fn new(bus: RabbitBus, spec: SubscriptionSpec) -> Self {
        let queue = bus.config().queue(&spec.group);
        // Half the prefetch window, so the broker never waits for acks while
        // the consumer still has work.
        let ack_batch = usize::from(spec.prefetch.max(2) / 2);
        Self {
            bus,
            spec,
            queue,
            active: None,
            ack_batch,
        }
    }

    /// Opens a channel, re-declares the group's topology and starts consuming,
    /// retrying with backoff until the broker is back.
    async fn start(&self) -> Active {
        let mut backoff = self.bus.supervisor.backoff();
        loop {
            match self.try_start().await {
                Ok(active) => return active,
                Err(e) => {
                    let wait = backoff.next().unwrap_or(self.bus.config().reconnect_max);
                    tracing::warn!(group = %self.spec.group, error = %e, ?wait, "rabbitmq resubscribe failed");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn try_start(&self) -> Result<Active, BusError> {
        let live = self.bus.supervisor.live().await?;
        let result = async {
            let channel = live.consumers.create_channel().await?;
            channel
                .basic_qos(self.spec.prefetch.max(1), BasicQosOptions::default())
                .await?;
            topology::declare_group(&channel, self.bus.config(), &self.spec).await?;
            let consumer = channel
                .basic_consume(
                    self.queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    no_args(),
                )
                .await?;
            Ok::<_, lapin::Error>((channel, consumer))
        }
        .await;
        match result {
            Ok((channel, consumer)) => Ok(Active {
                generation: live.generation,
                channel,
                consumer,
                outstanding: BTreeSet::new(),
                settled: BTreeSet::new(),
            }),
            Err(e) => {
                if !live.consumers.status().connected() {
                    self.bus.supervisor.invalidate(live.generation).await;
                }
                Err(unavailable(e))
            }
        }
    }

    /// The delivery tag if `delivery` came from the current channel; `None`
    /// when it belongs to a previous connection (the broker redelivers it).
    fn tag_for(&self, delivery: &Delivery) -> Result<Option<u64>, BusError> {
        let (generation, tag) = parse_receipt(&delivery.receipt)?;
        Ok(self
            .active
            .as_ref()
            .filter(|a| a.generation == generation)
            .map(|_| tag))
    }

    /// Marks a delivery settled; its ack is sent with the next batch.
    async fn ack_tag(&mut self, tag: u64) -> Result<(), BusError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        active.outstanding.remove(&tag);
        active.settled.insert(tag);
        if active.settled.len() >= self.ack_batch {
            self.flush_acks().await?;
        }
        Ok(())
    }

    /// Sends the acks that can go (one `basic.ack` with `multiple`).
    async fn flush_acks(&mut self) -> Result<(), BusError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let Some(tag) = active.ackable() else {
            return Ok(());
        };
        let multiple = BasicAckOptions { multiple: true };
        if let Err(e) = active.channel.basic_ack(tag, multiple).await {
            // The channel is gone; its unacked messages come back on the next one.
            self.active = None;
            return Err(unavailable(e));
        }
        active.settled = active.settled.split_off(&(tag + 1));
        Ok(())
    }

    /// Publishes a copy (confirmed) and then acks the original, so the message is
    /// never lost between the two.
    async fn move_to(
        &mut self,
        delivery: &Delivery,
        exchange: &str,
        routing_key: &str,
        properties: lapin::BasicProperties,
    ) -> Result<(), BusError> {
        let Some(tag) = self.tag_for(delivery)? else {
            return Ok(());
        };
        let payload = &delivery.message.payload;
        self.bus
            .send_with_reconnect(|| {
                vec![Outgoing {
                    exchange,
                    routing_key,
                    payload,
                    properties: properties.clone(),
                }]
            })
            .await?;
        self.ack_tag(tag).await
    }

    async fn bury(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        let dead = DeadLetter {
            message: delivery.message.clone(),
            group: self.spec.group.clone(),
            attempts: delivery.attempt,
            error: error.to_owned(),
            dead_at: Utc::now(),
        };
        let dlx = self.bus.config().dead_letter_exchange();
        let queue = self.queue.clone();
        self.move_to(delivery, &dlx, &queue, codec::dead_letter_properties(&dead))
            .await?;
        metrics::counter!("ordermon_bus_dead_letters_total", "bus" => "rabbitmq").increment(1);
        Ok(())
    }
}

fn parse_receipt(receipt: &str) -> Result<(u64, u64), BusError> {
    receipt
        .split_once(':')
        .and_then(|(g, t)| Some((g.parse().ok()?, t.parse().ok()?)))
        .ok_or_else(|| BusError::Unexpected(format!("bad rabbitmq receipt {receipt}")))
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        loop {
            if self.active.is_none() {
                self.active = Some(self.start().await);
            }
            let Some(active) = self.active.as_mut() else {
                continue;
            };
            let generation = active.generation;
            let next = match active.consumer.next().now_or_never() {
                Some(next) => next,
                None => {
                    // Nothing ready: send the pending acks before waiting.
                    if let Err(e) = self.flush_acks().await {
                        tracing::warn!(group = %self.spec.group, error = %e, "rabbitmq ack failed; resubscribing");
                        continue;
                    }
                    let Some(active) = self.active.as_mut() else {
                        continue;
                    };
                    active.consumer.next().await
                }
            };
            match next {
                Some(Ok(d)) => {
                    let tag = d.delivery_tag;
                    if let Some(active) = self.active.as_mut() {
                        active.outstanding.insert(tag);
                    }
                    match codec::decode(d.routing_key.as_str(), &d.properties, d.data) {
                        Some(decoded) => {
                            return Ok(Some(Delivery {
                                message: decoded.message,
                                attempt: decoded.attempt,
                                receipt: format!("{generation}:{tag}"),
                            }));
                        }
                        None => {
                            // Not ours (no event id): the queue's dead-letter
                            // exchange takes it.
                            tracing::warn!(group = %self.spec.group, "undecodable message dead-lettered");
                            let Some(active) = self.active.as_mut() else {
                                continue;
                            };
                            active.outstanding.remove(&tag);
                            let channel = active.channel.clone();
                            if channel
                                .basic_reject(tag, BasicRejectOptions { requeue: false })
                                .await
                                .is_err()
                            {
                                self.active = None;
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(group = %self.spec.group, error = %e, "rabbitmq consumer failed; resubscribing");
                    self.active = None;
                }
                None => {
                    tracing::warn!(group = %self.spec.group, "rabbitmq consumer ended; resubscribing");
                    self.active = None;
                }
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        match self.tag_for(delivery)? {
            Some(tag) => self.ack_tag(tag).await,
            // From a previous connection: the broker redelivers it; the consumer
            // framework's dedupe makes that harmless.
            None => Ok(()),
        }
    }

    async fn nack(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        if delivery.attempt >= self.spec.max_attempts.max(1) {
            return self.bury(delivery, error).await;
        }
        let delay = self.bus.config().retry_delay(delivery.attempt);
        let retry_queue = self.bus.config().retry_queue(&self.spec.group, delay);
        let mut props = codec::properties(&delivery.message, delivery.attempt + 1);
        let mut headers = props.headers().clone().unwrap_or_default();
        headers.insert(
            codec::ERROR.into(),
            lapin::types::AMQPValue::LongString(error.to_owned().into()),
        );
        props = props.with_headers(headers);
        // Through the default exchange: routed by queue name to this group only.
        self.move_to(delivery, "", &retry_queue, props).await?;
        metrics::counter!("ordermon_bus_retries_total", "bus" => "rabbitmq").increment(1);
        Ok(())
    }

    async fn dead_letter(&mut self, delivery: &Delivery, error: &str) -> Result<(), BusError> {
        self.bury(delivery, error).await
    }
}

impl Drop for RabbitSubscription {
    fn drop(&mut self) {
        // Closing the channel cancels the consumer and hands its unacked
        // deliveries back to the queue at once (an open channel would keep them
        // until the connection closes).
        if let (Some(active), Ok(rt)) = (self.active.take(), tokio::runtime::Handle::try_current())
        {
            let ack = active.ackable();
            rt.spawn(async move {
                if let Some(tag) = ack {
                    let _ = active
                        .channel
                        .basic_ack(tag, BasicAckOptions { multiple: true })
                        .await;
                }
                let _ = active
                    .channel
                    .close(200, "subscription dropped".into())
                    .await;
            });
        }
    }
}
