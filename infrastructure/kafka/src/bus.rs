//! The [`MessageBus`] over Kafka: an idempotent keyed producer and topic setup.

mod consume;
mod dead;
mod lag;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{
    BusError, BusMessage, DeadLetter, MessageBus, Subscription, SubscriptionSpec,
};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use crate::config::KafkaConfig;
use consume::KafkaSubscription;

/// The Kafka bus. Cheap to clone; clones share the producer.
#[derive(Clone)]
pub struct KafkaBus {
    pub(crate) config: Arc<KafkaConfig>,
    producer: FutureProducer,
    /// Readers of the groups' committed offsets, for [`MessageBus::backlog`].
    pub(crate) lag_readers: Arc<lag::LagReaders>,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.config.brokers)
            .field("topic", &self.config.topic)
            .finish_non_exhaustive()
    }
}

/// A Kafka failure, as a transient bus error.
pub(crate) fn unavailable(e: &KafkaError) -> BusError {
    BusError::Unavailable(format!("kafka: {e}"))
}

/// One record to produce: key, payload, headers.
pub(crate) struct Outgoing<'a> {
    pub(crate) topic: &'a str,
    pub(crate) key: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) headers: OwnedHeaders,
}

impl KafkaBus {
    /// Creates the producer and the topics (main and dead-letter) when missing.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the brokers cannot be reached.
    pub async fn connect(config: KafkaConfig) -> Result<Self, BusError> {
        let timeout_ms = config.delivery_timeout.as_millis().to_string();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", &timeout_ms)
            .set("client.id", "ordermon")
            .create()
            .map_err(|e| unavailable(&e))?;
        let bus = Self {
            config: Arc::new(config),
            producer,
            lag_readers: Arc::default(),
        };
        bus.create_topics().await?;
        Ok(bus)
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// A client configuration for the brokers.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.config.brokers);
        c
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>, BusError> {
        self.client_config().create().map_err(|e| unavailable(&e))
    }

    fn admin_options() -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(Duration::from_secs(10)))
            .operation_timeout(Some(Duration::from_secs(10)))
    }

    /// Creates the main and dead-letter topics; existing ones are kept.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the brokers cannot be reached or refuse.
    pub async fn create_topics(&self) -> Result<(), BusError> {
        let dlq = self.config.dead_letter_topic();
        let replication = TopicReplication::Fixed(self.config.replication);
        let topics = [
            NewTopic::new(&self.config.topic, self.config.partitions, replication),
            NewTopic::new(
                &dlq,
                self.config.partitions,
                TopicReplication::Fixed(self.config.replication),
            ),
        ];
        let results = self
            .admin()?
            .create_topics(&topics, &Self::admin_options())
            .await
            .map_err(|e| unavailable(&e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(BusError::Unavailable(format!(
                        "kafka: cannot create topic {topic}: {code}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Deletes the topics and the given consumer groups (tests).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the brokers cannot be reached.
    pub async fn delete_topics(&self, groups: &[&str]) -> Result<(), BusError> {
        let admin = self.admin()?;
        let dlq = self.config.dead_letter_topic();
        admin
            .delete_topics(&[&self.config.topic, &dlq], &Self::admin_options())
            .await
            .map_err(|e| unavailable(&e))?;
        if !groups.is_empty() {
            // Best effort: not every broker supports deleting groups.
            let _ = admin.delete_groups(groups, &Self::admin_options()).await;
        }
        Ok(())
    }

    /// Produces records (in order: each is queued before the next) and waits for
    /// all of them to be acknowledged.
    pub(crate) async fn send(&self, batch: Vec<Outgoing<'_>>) -> Result<(), BusError> {
        let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(batch.len());
        for m in batch {
            let mut record = FutureRecord::to(m.topic)
                .key(m.key)
                .payload(m.payload)
                .headers(m.headers);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for it to drain a little.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(refused_or_unavailable(&e)),
                }
            }
        }
        let timeout = self.config.delivery_timeout + Duration::from_secs(5);
        let outcomes = tokio::time::timeout(timeout, futures::future::join_all(pending))
            .await
            .map_err(|_| BusError::NotConfirmed("kafka deliveries timed out".to_owned()))?;
        for outcome in outcomes {
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(if refused(&e) {
                        BusError::Rejected(format!("kafka: {e}"))
                    } else {
                        BusError::NotConfirmed(format!("kafka: {e}"))
                    });
                }
                Err(_) => {
                    return Err(BusError::NotConfirmed("kafka producer dropped".to_owned()));
                }
            }
        }
        Ok(())
    }
}

/// Whether Kafka refused a record for good: sending it again fails again.
fn refused(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::BadMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
        )
    )
}

fn refused_or_unavailable(e: &KafkaError) -> BusError {
    if refused(e) {
        BusError::Rejected(format!("kafka: {e}"))
    } else {
        unavailable(e)
    }
}

#[async_trait]
impl MessageBus for KafkaBus {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn publish(&self, messages: &[BusMessage]) -> Result<(), BusError> {
        let topic = &self.config.topic;
        let batch = messages
            .iter()
            .map(|m| Outgoing {
                topic,
                key: &m.key,
                payload: &m.payload,
                headers: crate::codec::headers(m, &[]),
            })
            .collect();
        self.send(batch).await?;
        metrics::counter!("ordermon_bus_published_total", "bus" => "kafka")
            .increment(messages.len() as u64);
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(KafkaSubscription::new(self.clone(), spec)?))
    }

    async fn dead_letters(&self, group: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let mut all = dead::read(self, group).await?;
        all.truncate(limit);
        Ok(all)
    }

    async fn replay_dead_letters(
        &self,
        group: &str,
        ids: Option<&[EventId]>,
    ) -> Result<usize, BusError> {
        dead::replay(self, group, ids).await
    }

    async fn health(&self) -> Result<(), BusError> {
        let producer = self.producer.clone();
        let topic = self.config.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .map(|_| ())
                .map_err(|e| unavailable(&e))
        })
        .await
        .map_err(|e| BusError::Unexpected(e.to_string()))?
    }

    /// Summed over the topic's partitions: the high watermark minus the
    /// group's committed offset. Records delivered but not yet committed
    /// count (members commit handled offsets every `commit_interval`), and so
    /// do records no pattern of the group matches (its members skip them).
    /// Kafka keeps no list of groups per topic: a group that never committed
    /// reads as everything retained, which is where it would start.
    async fn backlog(&self, group: &str) -> Result<Option<u64>, BusError> {
        lag::backlog(self, group).await.map(Some)
    }
}
