//! The connection supervisor: one AMQP connection shared by the bus, replaced
//! (with exponential backoff and jitter between attempts) when it or the broker
//! drops, and the topology every user needs re-declared on each new connection.
//!
//! Each connection has a generation number. Deliveries remember the generation
//! they came from: after a reconnect, their delivery tags mean nothing, and the
//! broker redelivers those messages anyway.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::options::ConfirmSelectOptions;
use lapin::types::LongString;
use lapin::{Channel, Connection, ConnectionProperties};
use ordermon_domain::ports::BusError;
use tokio::sync::Mutex;

use crate::config::RabbitConfig;
use crate::topology;

/// A live connection with its confirm-mode publishing channel.
#[derive(Clone)]
pub(crate) struct Live {
    /// Which connection this is (1, 2, … for each reconnect).
    pub(crate) generation: u64,
    /// The connection for publishes and topology.
    pub(crate) connection: Arc<Connection>,
    /// A channel in confirm mode for publishes.
    pub(crate) publisher: Channel,
    /// The connection consumers' channels are on. It is a separate one
    /// because the broker throttles a connection that publishes faster than
    /// its queues take messages (flow control): on a shared connection that
    /// also held back the consumers' acks, which is what would let the
    /// queues drain.
    pub(crate) consumers: Arc<Connection>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Closes both connections, waiting at most `within` for each.
    async fn close(&self, within: Duration, reason: &str) {
        for c in [&self.connection, &self.consumers] {
            let _ = tokio::time::timeout(within, c.close(200, reason.into())).await;
        }
    }

    fn usable(&self) -> bool {
        self.connection.status().connected()
            && self.publisher.status().connected()
            && self.consumers.status().connected()
    }
}

/// Owns the connection and replaces it when it drops.
#[derive(Debug)]
pub struct Supervisor {
    config: RabbitConfig,
    live: Mutex<Option<Live>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Supervisor {
    /// A supervisor that connects lazily.
    #[must_use]
    pub fn new(config: RabbitConfig) -> Self {
        Self {
            config,
            live: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &RabbitConfig {
        &self.config
    }

    /// The generation of the current connection (0 before the first).
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A fresh backoff schedule for reconnect loops.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::new()
            .with_min_delay(self.config.reconnect_min)
            .with_max_delay(self.config.reconnect_max)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The live connection, connecting once if there is none (no retry: callers
    /// decide whether to wait and try again).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the broker cannot be reached.
    pub(crate) async fn live(&self) -> Result<Live, BusError> {
        let mut guard = self.live.lock().await;
        if let Some(live) = guard.as_ref().filter(|l| l.usable()) {
            return Ok(live.clone());
        }
        if let Some(old) = guard.take() {
            tracing::warn!(
                generation = old.generation,
                "rabbitmq connection lost; reconnecting"
            );
            metrics::counter!("ordermon_bus_reconnects_total", "bus" => "rabbitmq").increment(1);
            // Best effort: the old one is usually dead already.
            old.close(Duration::from_secs(1), "reconnecting").await;
        }
        let live = self.connect().await?;
        *guard = Some(live.clone());
        Ok(live)
    }

    /// Connects until it succeeds or `give_up` has passed.
    ///
    /// # Errors
    /// The last connection error when the time is up.
    pub(crate) async fn live_within(&self, give_up: Duration) -> Result<Live, BusError> {
        let deadline = tokio::time::Instant::now() + give_up;
        let mut backoff = self.backoff();
        loop {
            match self.live().await {
                Ok(live) => return Ok(live),
                Err(e) => {
                    let wait = backoff.next().unwrap_or(self.config.reconnect_max);
                    if tokio::time::Instant::now() + wait > deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Forgets the connection of `generation` if it is still the current one, so
    /// the next caller reconnects (used when an operation on it failed).
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut guard = self.live.lock().await;
        if guard.as_ref().is_some_and(|l| l.generation == generation)
            && let Some(old) = guard.take()
        {
            old.close(Duration::from_secs(1), "reconnecting").await;
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        if let Some(old) = self.live.lock().await.take() {
            old.close(Duration::from_secs(2), "shutting down").await;
        }
    }

    async fn open(&self, role: &str) -> Result<Connection, BusError> {
        let props = ConnectionProperties::default().with_connection_name(LongString::from(
            format!("{} ({role})", self.config.connection_name),
        ));
        tokio::time::timeout(
            Duration::from_secs(10),
            Connection::connect(&self.config.url, props),
        )
        .await
        .map_err(|_| BusError::Unavailable("rabbitmq connect timed out".to_owned()))?
        .map_err(unavailable)
    }

    async fn connect(&self) -> Result<Live, BusError> {
        let connection = self.open("publish").await?;
        let publisher = connection.create_channel().await.map_err(unavailable)?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        topology::declare_exchanges(&publisher, &self.config)
            .await
            .map_err(unavailable)?;
        let consumers = match self.open("consume").await {
            Ok(c) => c,
            Err(e) => {
                let _ = connection
                    .close(200, "consumer connection failed".into())
                    .await;
                return Err(e);
            }
        };
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        tracing::info!(generation, "rabbitmq connected");
        Ok(Live {
            generation,
            connection: Arc::new(connection),
            publisher,
            consumers: Arc::new(consumers),
        })
    }
}

/// A broker or connection failure, as a transient bus error.
pub(crate) fn unavailable(e: lapin::Error) -> BusError {
    BusError::Unavailable(format!("rabbitmq: {e}"))
}
