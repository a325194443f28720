//! The [`MessageBus`] over RabbitMQ: batched publishes with publisher confirms.

mod consume;
mod dead;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use lapin::BasicProperties;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{
    BusError, BusMessage, DeadLetter, MessageBus, Subscription, SubscriptionSpec,
};
use tokio::sync::Mutex;

use crate::codec;
use crate::config::RabbitConfig;
use crate::supervisor::{Live, Supervisor, unavailable};
use crate::topology::{self, no_args};
use consume::RabbitSubscription;

/// How long a publish waits for a reconnect before it reports the broker down
/// (the relay then backs off and tries again).
const PUBLISH_RECONNECT_WAIT: Duration = Duration::from_secs(5);

/// One message to write: exchange, routing key, body, properties.
pub(crate) struct Outgoing<'a> {
    pub(crate) exchange: &'a str,
    pub(crate) routing_key: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) properties: BasicProperties,
}

/// The RabbitMQ bus. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct RabbitBus {
    pub(crate) supervisor: Arc<Supervisor>,
    /// Keeps one batch's frames contiguous on the publishing channel, so the
    /// broker receives a batch in order even with concurrent publishers.
    write_lock: Arc<Mutex<()>>,
}

impl RabbitBus {
    /// Connects and declares the exchanges.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the broker cannot be reached.
    pub async fn connect(config: RabbitConfig) -> Result<Self, BusError> {
        let bus = Self::lazy(config);
        bus.supervisor.live().await?;
        Ok(bus)
    }

    /// A bus that connects on first use (and keeps retrying in the background of
    /// each call), for starting a server while the broker is still down.
    #[must_use]
    pub fn lazy(config: RabbitConfig) -> Self {
        Self {
            supervisor: Arc::new(Supervisor::new(config)),
            write_lock: Arc::new(Mutex::new(())),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &RabbitConfig {
        self.supervisor.config()
    }

    /// Messages ready in a group's queue (`None` if the queue does not exist).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the broker cannot be reached.
    pub async fn queue_depth(&self, group: &str) -> Result<Option<u32>, BusError> {
        let live = self.supervisor.live().await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let depth = channel
            .queue_declare(
                self.config().queue(group).as_str().into(),
                passive,
                no_args(),
            )
            .await
            .ok()
            .map(|q| q.message_count());
        let _ = channel.close(200, "done".into()).await;
        Ok(depth)
    }

    /// The group's backlog: messages ready in its queue plus those waiting out
    /// a retry delay in its delay queues (`message_count` of a passive
    /// `queue.declare`, which counts ready messages only: deliveries a
    /// consumer holds unacknowledged are not in it). `None` when the group's
    /// queue does not exist.
    async fn ready_messages(&self, group: &str) -> Result<Option<u64>, BusError> {
        let config = self.config();
        let mut queues = vec![config.queue(group)];
        queues.extend(
            config
                .retry_delays
                .iter()
                .map(|d| config.retry_queue(group, *d)),
        );
        let live = self.supervisor.live().await?;
        let mut channel = None;
        let mut total = 0_u64;
        for (i, queue) in queues.iter().enumerate() {
            let ch = match channel.take() {
                Some(ch) => ch,
                None => live
                    .connection
                    .create_channel()
                    .await
                    .map_err(unavailable)?,
            };
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            match ch
                .queue_declare(queue.as_str().into(), passive, no_args())
                .await
            {
                Ok(q) => {
                    total += u64::from(q.message_count());
                    channel = Some(ch);
                }
                // The broker closed the channel: no such queue.
                Err(e) if not_found(&e) => {
                    if i == 0 {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        if let Some(ch) = channel {
            let _ = ch.close(200, "done".into()).await;
        }
        Ok(Some(total))
    }

    /// Deletes a group's queues (decommissioning a consumer; tests).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the broker cannot be reached.
    pub async fn delete_group(&self, group: &str) -> Result<(), BusError> {
        let live = self.supervisor.live().await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        topology::delete_group(&channel, self.config(), group)
            .await
            .map_err(unavailable)?;
        let _ = channel.close(200, "done".into()).await;
        Ok(())
    }

    /// Deletes the exchanges (tests).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the broker cannot be reached.
    pub async fn delete_exchanges(&self) -> Result<(), BusError> {
        let live = self.supervisor.live().await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        topology::delete_exchanges(&channel, self.config())
            .await
            .map_err(unavailable)?;
        let _ = channel.close(200, "done".into()).await;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self) {
        self.supervisor.close().await;
    }

    /// Writes messages on the confirm channel of `live` and waits until the broker
    /// has confirmed all of them.
    pub(crate) async fn send(&self, live: &Live, batch: Vec<Outgoing<'_>>) -> Result<(), BusError> {
        if batch.is_empty() {
            return Ok(());
        }
        let confirms = {
            let _contiguous = self.write_lock.lock().await;
            let futures = batch
                .iter()
                .map(|m| {
                    live.publisher.basic_publish(
                        m.exchange.into(),
                        m.routing_key.into(),
                        BasicPublishOptions::default(),
                        m.payload,
                        m.properties.clone(),
                    )
                })
                .collect();
            in_order(futures).await
        };
        let confirms = confirms
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        let timeout = self.config().confirm_timeout;
        let outcomes = tokio::time::timeout(timeout, futures::future::join_all(confirms))
            .await
            .map_err(|_| BusError::NotConfirmed("rabbitmq confirms timed out".to_owned()))?;
        for outcome in outcomes {
            match outcome.map_err(unavailable)? {
                Confirmation::Ack(_) | Confirmation::NotRequested => {}
                Confirmation::Nack(_) => {
                    return Err(BusError::NotConfirmed(
                        "rabbitmq nacked a publish".to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`Self::send`] on the live connection, reconnecting once if it dropped.
    pub(crate) async fn send_with_reconnect<'a>(
        &self,
        batch: impl Fn() -> Vec<Outgoing<'a>> + Send + Sync,
    ) -> Result<(), BusError> {
        let live = self.supervisor.live_within(PUBLISH_RECONNECT_WAIT).await?;
        match self.send(&live, batch()).await {
            Err(BusError::Unavailable(e)) => {
                tracing::warn!(error = %e, "rabbitmq publish failed; reconnecting");
                self.supervisor.invalidate(live.generation).await;
                let live = self.supervisor.live_within(PUBLISH_RECONNECT_WAIT).await?;
                self.send(&live, batch()).await
            }
            other => other,
        }
    }
}

/// Polls every future once in the given order (each basic.publish queues its
/// frames and takes its confirm sequence number on that first poll), then waits
/// for all of them. This keeps a batch in order while every frame is written
/// without waiting for the previous one.
async fn in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut first: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, out) in futures.iter_mut().zip(first.iter_mut()) {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                *out = Some(v);
            }
        }
        Poll::Ready(())
    })
    .await;
    futures::future::join_all(futures.into_iter().zip(first).map(|(f, out)| async move {
        match out {
            Some(v) => v,
            None => f.await,
        }
    }))
    .await
}

#[async_trait]
impl MessageBus for RabbitBus {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    async fn publish(&self, messages: &[BusMessage]) -> Result<(), BusError> {
        let exchange = self.config().exchange.clone();
        let props: Vec<BasicProperties> =
            messages.iter().map(|m| codec::properties(m, 1)).collect();
        self.send_with_reconnect(|| {
            messages
                .iter()
                .zip(&props)
                .map(|(m, p)| Outgoing {
                    exchange: &exchange,
                    routing_key: &m.topic,
                    payload: &m.payload,
                    properties: p.clone(),
                })
                .collect()
        })
        .await?;
        metrics::counter!("ordermon_bus_published_total", "bus" => "rabbitmq")
            .increment(messages.len() as u64);
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        // Declare now so messages published from here on are kept for the group.
        let live = self.supervisor.live().await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        topology::declare_group(&channel, self.config(), &spec)
            .await
            .map_err(unavailable)?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(Box::new(RabbitSubscription::new(self.clone(), spec)))
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
        self.supervisor.live().await.map(|_| ())
    }

    async fn backlog(&self, group: &str) -> Result<Option<u64>, BusError> {
        self.ready_messages(group).await
    }
}

/// Whether the broker refused an operation because the queue does not exist.
fn not_found(e: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(p) if *p.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
}
