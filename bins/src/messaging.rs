//! The message bus `bus.url` selects, and what runs on it in this instance: the
//! outbox relay (committed events to the broker, in commit order) and the
//! instance's own consumer (the live stream and cache eviction).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use ordermon_application::Engine;
use ordermon_application::cache::ReadCache;
use ordermon_application::consume::{Consumer, ConsumerConfig, ConsumerHandle, DeadLetters};
use ordermon_application::lease_keeper::LeaseKeeper;
use ordermon_application::relay::{OutboxRelay, RelayConfig, RelayHandle};

/// The lease the instances' relays compete for.
pub(crate) const RELAY_LEASE: &str = "outbox-relay";
use ordermon_application::instance_consumer::{EventFanout, InstanceHandler};
use ordermon_domain::ports::{BusError, Clock, MessageBus};
use ordermon_http::StatusSection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{BusKind, BusSettings};

/// Why the bus could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BusOpenError {
    /// `bus.url` names nothing this build supports.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// `kafka://` in a build without the `kafka` feature.
    #[error(
        "bus.url = `{0}`: this build has no Kafka support (build ordermon with `--features kafka`)"
    )]
    NoKafka(String),
    /// The broker did not answer in time.
    #[error("cannot reach the {kind} bus at {url}: {source}")]
    Connect {
        /// `rabbitmq`, `kafka`, `redis`.
        kind: &'static str,
        /// The URL, password masked.
        url: String,
        /// Why.
        source: BusError,
    },
}

/// Opens the bus `settings` names, retrying with backoff for up to `timeout`
/// while the broker cannot be reached.
///
/// # Errors
/// See [`BusOpenError`].
pub(crate) async fn open_bus(
    settings: &BusSettings,
    timeout: Duration,
) -> Result<Arc<dyn MessageBus>, BusOpenError> {
    let kind = settings.kind()?;
    let url = settings.url.expose().trim().to_owned();
    let deadline = tokio::time::Instant::now() + timeout;
    // 0.1 s doubling up to 2 s between tries, until the deadline.
    let mut waits = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .without_max_times()
        .build();
    loop {
        let attempt = tokio::time::timeout_at(deadline, connect_once(kind, settings, &url)).await;
        let error = match attempt {
            Ok(Ok(bus)) => return Ok(bus),
            Ok(Err(Attempt::Fatal(e))) => return Err(e),
            Ok(Err(Attempt::Retry(e))) => e,
            Err(_) => BusError::Unavailable(format!("no answer within {timeout:?}")),
        };
        let wait = waits.next().unwrap_or(Duration::from_secs(2));
        if tokio::time::Instant::now() + wait >= deadline {
            return Err(BusOpenError::Connect {
                kind: kind_name(kind),
                url: settings.url.to_string(),
                source: error,
            });
        }
        tracing::warn!(bus = kind_name(kind), url = %settings.url, error = %error, ?wait, "bus not reachable yet; retrying");
        tokio::time::sleep(wait).await;
    }
}

enum Attempt {
    Retry(BusError),
    /// Only `kafka://` without the feature is fatal today.
    #[cfg_attr(feature = "kafka", allow(dead_code))]
    Fatal(BusOpenError),
}

fn kind_name(kind: BusKind) -> &'static str {
    match kind {
        BusKind::Memory => "memory",
        BusKind::Redis => "redis",
        BusKind::RabbitMq => "rabbitmq",
        BusKind::Kafka => "kafka",
    }
}

async fn connect_once(
    kind: BusKind,
    settings: &BusSettings,
    url: &str,
) -> Result<Arc<dyn MessageBus>, Attempt> {
    let retry_delays = settings.retry_delays.clone();
    Ok(match kind {
        BusKind::Memory => Arc::new(ordermon_memory::bus::MemoryBus::with_config(
            ordermon_memory::bus::MemoryBusConfig {
                retry_delays,
                ..ordermon_memory::bus::MemoryBusConfig::default()
            },
        )),
        BusKind::RabbitMq => {
            let mut config = ordermon_rabbitmq::RabbitConfig::new(url);
            config.exchange.clone_from(&settings.topic);
            config.retry_delays = retry_delays;
            Arc::new(
                ordermon_rabbitmq::RabbitBus::connect(config)
                    .await
                    .map_err(Attempt::Retry)?,
            )
        }
        BusKind::Redis => {
            let mut config = ordermon_redis::bus::RedisBusConfig::new(url);
            config.stream.clone_from(&settings.topic);
            config.tls_ca_file.clone_from(&settings.tls_ca_file);
            config.retry_delays = retry_delays;
            Arc::new(
                ordermon_redis::bus::RedisBus::connect(config)
                    .await
                    .map_err(Attempt::Retry)?,
            )
        }
        #[cfg(feature = "kafka")]
        BusKind::Kafka => {
            let mut config = ordermon_kafka::KafkaConfig::from_url(url);
            config.topic.clone_from(&settings.topic);
            config.retry_delays = retry_delays;
            Arc::new(
                ordermon_kafka::KafkaBus::connect(config)
                    .await
                    .map_err(Attempt::Retry)?,
            )
        }
        #[cfg(not(feature = "kafka"))]
        BusKind::Kafka => {
            return Err(Attempt::Fatal(BusOpenError::NoKafka(
                settings.url.to_string(),
            )));
        }
    })
}

/// The relay and the instance consumer, running.
pub(crate) struct Messaging {
    bus: Arc<dyn MessageBus>,
    group: String,
    relay: Option<RelayHandle>,
    consumer: ConsumerHandle,
    relay_tasks: TaskTracker,
    relay_cancel: CancellationToken,
    lease_tasks: TaskTracker,
    lease_cancel: CancellationToken,
    consumer_tasks: TaskTracker,
    consumer_cancel: CancellationToken,
}

impl std::fmt::Debug for Messaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messaging")
            .field("bus", &self.bus.name())
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Messaging {
    /// Starts the relay (when `settings.relay`) from the engine's outbox to
    /// `bus`, woken by every commit, relaying while this process holds the
    /// `outbox-relay` lease, and this instance's consumer in
    /// `group`, feeding `fanout` and evicting from `cache`.
    pub(crate) fn start(
        bus: Arc<dyn MessageBus>,
        settings: &BusSettings,
        group: String,
        engine: &Engine,
        clock: Arc<dyn Clock>,
        fanout: Arc<EventFanout>,
        cache: Arc<ReadCache>,
    ) -> Self {
        let relay_tasks = TaskTracker::new();
        let relay_cancel = CancellationToken::new();
        let lease_tasks = TaskTracker::new();
        let lease_cancel = CancellationToken::new();
        let relay = settings.relay.then(|| {
            // The keeper outlives the relay (its own token, cancelled after
            // the relay's final drain), so the drain still holds the lease.
            let lease = LeaseKeeper::new(
                engine.persistence().leases.clone(),
                RELAY_LEASE,
                lease_holder(&group),
                settings.relay_lease_ttl,
            )
            .spawn(&lease_tasks, lease_cancel.clone());
            let config = RelayConfig {
                batch: settings.relay_batch,
                poll_interval: settings.relay_poll_interval,
                retain_sent: (!settings.outbox_retention.is_zero())
                    .then_some(settings.outbox_retention),
                ..RelayConfig::default()
            };
            OutboxRelay::new(
                engine.persistence().outbox.clone(),
                bus.clone(),
                clock.clone(),
                config,
            )
            .with_commit_feed(engine.events.subscribe())
            .with_lease(lease)
            .spawn(&relay_tasks, relay_cancel.clone())
        });
        let consumer_tasks = TaskTracker::new();
        let consumer_cancel = CancellationToken::new();
        let mut config = ConsumerConfig::new(group.clone(), ["#"]);
        config.max_attempts = settings.max_attempts;
        // Events from before this start reach no stream client and no cache
        // entry; a new group's backlog is skipped (a minute of slack for clocks).
        let not_before = clock.now() - chrono::Duration::seconds(60);
        let handler = Arc::new(InstanceHandler::new(fanout, cache, not_before));
        // Deduplication by the consumer's bounded window of recent ids: this
        // consumer keeps nothing across restarts, so a record that outlives
        // the window would only grow.
        let consumer = Consumer::new(bus.clone(), handler, config)
            .with_clock(clock.clone())
            .spawn(&consumer_tasks, consumer_cancel.clone());
        tracing::info!(bus = bus.name(), %group, relay = settings.relay, "messaging started");
        Self {
            bus,
            group,
            relay,
            consumer,
            relay_tasks,
            relay_cancel,
            lease_tasks,
            lease_cancel,
            consumer_tasks,
            consumer_cancel,
        }
    }

    /// The bus.
    pub(crate) fn bus(&self) -> &Arc<dyn MessageBus> {
        &self.bus
    }

    /// This instance's consumer group.
    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    /// The relay's handle, when this instance relays.
    pub(crate) fn relay(&self) -> Option<RelayHandle> {
        self.relay.clone()
    }

    /// The consumer's handle.
    pub(crate) fn consumer(&self) -> ConsumerHandle {
        self.consumer.clone()
    }

    /// `/status` sections: `relay` (when relaying here) and `consumer`.
    pub(crate) fn status_sections(&self) -> Vec<Arc<dyn StatusSection>> {
        let mut out: Vec<Arc<dyn StatusSection>> = Vec::new();
        if let Some(relay) = self.relay.clone() {
            out.push(Arc::new(Section::new("relay", move || {
                serde_json::to_value(relay.status()).unwrap_or_default()
            })));
        }
        let consumer = self.consumer.clone();
        let bus = self.bus.name();
        out.push(Arc::new(Section::new("consumer", move || {
            let mut v = serde_json::to_value(consumer.status()).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("bus".to_owned(), bus.into());
            }
            v
        })));
        out
    }

    /// The dead-letter use cases over this bus.
    pub(crate) fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(self.bus.clone())
    }

    /// Called after the engine has committed its last batch: the relay drains
    /// the outbox (bounded by its drain timeout), then the consumer stops.
    pub(crate) async fn shutdown(self) {
        self.relay_cancel.cancel();
        self.relay_tasks.close();
        self.relay_tasks.wait().await;
        // The relay drained under the lease; now the keeper releases it.
        self.lease_cancel.cancel();
        self.lease_tasks.close();
        self.lease_tasks.wait().await;
        self.consumer_cancel.cancel();
        self.consumer_tasks.close();
        self.consumer_tasks.wait().await;
        tracing::info!(bus = self.bus.name(), "messaging stopped");
    }
}

/// A `/status` section computed on demand.
pub(crate) struct Section {
    name: &'static str,
    report: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
}

impl Section {
    pub(crate) fn new(
        name: &'static str,
        report: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            report: Box::new(report),
        }
    }
}

impl StatusSection for Section {
    fn name(&self) -> &'static str {
        self.name
    }

    fn report(&self) -> serde_json::Value {
        (self.report)()
    }
}

/// Readiness of the bus: `degraded` (still ready) while the broker is down or
/// this instance's consumer has not subscribed yet (until then, events published
/// for its group may not reach its stream clients and caches).
pub(crate) struct BusHealth {
    pub(crate) bus: Arc<dyn MessageBus>,
    pub(crate) consumer: ConsumerHandle,
}

#[async_trait::async_trait]
impl ordermon_http::HealthCheck for BusHealth {
    fn name(&self) -> &'static str {
        "bus"
    }

    /// Commits do not wait for the broker: the outbox keeps events until it
    /// answers again, so a broker outage delays events but loses none.
    fn critical(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<(), String> {
        self.bus.health().await.map_err(|e| e.to_string())?;
        if self.consumer.status().running {
            Ok(())
        } else {
            Err("this instance's consumer has not subscribed yet".to_owned())
        }
    }
}

/// This process's name in leases: the instance name and a random suffix, so a
/// restarted instance, or two misconfigured with one name, never take a lease
/// for the other.
pub(crate) fn lease_holder(instance: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    // At most 160 bytes of the name, cut on a character boundary: a lease
    // name or holder is at most 200 bytes.
    let mut end = instance.len().min(160);
    while !instance.is_char_boundary(end) {
        end -= 1;
    }
    let mut holder = instance[..end].to_owned();
    holder.push('/');
    holder.push_str(&suffix[..12]);
    holder
}

#[cfg(test)]
mod lease_holder_tests {
    use super::lease_holder;
    use ordermon_domain::ports::{LEASE_NAME_MAX, check_lease_name};

    #[test]
    fn a_holder_fits_a_lease_and_differs_per_process() {
        for instance in ["ordermon-a", &"é".repeat(150), &"x".repeat(300)] {
            let holder = lease_holder(instance);
            assert!(check_lease_name("holder", &holder).is_none(), "{holder}");
            assert!(
                holder.len() <= LEASE_NAME_MAX - "member:".len(),
                "{}",
                holder.len()
            );
            assert!(holder.starts_with(&instance[..instance.len().min(8)]));
            assert_ne!(holder, lease_holder(instance));
        }
    }
}
