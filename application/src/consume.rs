//! The consumer framework: runs an [`EventHandler`] over a bus subscription with
//! at-least-once delivery made idempotent.
//!
//! For each delivery: the payload is decoded as a [`DomainEvent`] (one that does
//! not decode is dead-lettered at once — retrying cannot fix it); an event id
//! already handled is acked without calling the handler (a bounded set of recent
//! ids per consumer, plus an optional persistent [`ProcessedEvents`] store so the
//! guarantee survives restarts); otherwise the handler runs, and the delivery is
//! acked on success, nacked on a transient failure (the bus redelivers it with
//! increasing delay and dead-letters it after `max_attempts`), or dead-lettered
//! at once on a permanent one. Deliveries are handled one at a time, in the order
//! the bus delivers them, so per-key order is kept.

mod backlog;
mod dead_letters;
mod dedupe;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ordermon_domain::event::DomainEvent;
use ordermon_domain::ports::{BusError, Delivery, MessageBus, Subscription, SubscriptionSpec};
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use dead_letters::{DeadLetterView, DeadLetters, MAX_LIST, ReplayOutcome};
pub use dedupe::{MemoryProcessedEvents, ProcessedEvents, RecentIds};

use crate::backoff::Backoff;

/// Why a handler could not handle an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying (a dependency is down, a conflict, …).
    #[error("{0}")]
    Transient(String),
    /// Will never succeed: dead-letter the event now.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Handles events; must tolerate seeing an event again after a crash (the
/// framework deduplicates, but an effect and its "processed" mark are not one
/// transaction unless the handler makes them one).
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Handles one event.
    ///
    /// # Errors
    /// [`HandlerError::Transient`] to retry later, [`HandlerError::Permanent`] to
    /// dead-letter the event.
    async fn handle(&self, event: &DomainEvent) -> Result<(), HandlerError>;
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The consumer group, which is also the consumer's name for deduplication,
    /// metrics and dead letters (e.g. `ws-fanout`, `cache-invalidation`).
    pub group: String,
    /// Topic patterns (`order.#`, `*.*.alice`).
    pub topics: Vec<String>,
    /// Deliveries before a message is dead-lettered.
    pub max_attempts: u32,
    /// Unacknowledged messages the broker may push ahead.
    pub prefetch: u16,
    /// Recent event ids remembered in memory for deduplication.
    pub recent_ids: usize,
    /// Pause after a bus failure before trying again (doubles up to 30 s).
    pub error_backoff: Duration,
    /// How often the group's backlog is read from the broker while the
    /// consumer runs (`ordermon_consumer_lag_messages`); zero: never.
    pub backlog_interval: Duration,
}

impl ConsumerConfig {
    /// A consumer of `topics` in `group`: 5 attempts, prefetch 256, 100,000
    /// ids, the backlog read every 5 s.
    #[must_use]
    pub fn new(
        group: impl Into<String>,
        topics: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            group: group.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            max_attempts: 5,
            prefetch: 256,
            recent_ids: 100_000,
            error_backoff: Duration::from_millis(100),
            backlog_interval: Duration::from_secs(5),
        }
    }

    fn spec(&self) -> SubscriptionSpec {
        SubscriptionSpec {
            group: self.group.clone(),
            topics: self.topics.clone(),
            max_attempts: self.max_attempts,
            prefetch: self.prefetch,
        }
    }
}

/// A consumer's counters, for `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConsumerStatus {
    /// The group.
    pub group: String,
    /// Whether the consumer is running.
    pub running: bool,
    /// Events handled successfully.
    pub handled: u64,
    /// Deliveries of events already handled (acked without effect).
    pub duplicates: u64,
    /// Handler failures sent back for a retry.
    pub retried: u64,
    /// Events dead-lettered (permanent failures and undecodable payloads).
    pub dead_lettered: u64,
    /// The last handler or bus error.
    pub last_error: Option<String>,
    /// The group's backlog at the last reading: messages it still has to
    /// receive or acknowledge, as the broker counts them.
    pub backlog: Option<u64>,
}

/// A handle to a running consumer's status.
#[derive(Debug, Clone)]
pub struct ConsumerHandle {
    status: Arc<Mutex<ConsumerStatus>>,
}

impl ConsumerHandle {
    /// A snapshot of the counters.
    #[must_use]
    pub fn status(&self) -> ConsumerStatus {
        self.status.lock().clone()
    }
}

/// A consumer: a handler bound to a subscription.
pub struct Consumer {
    bus: Arc<dyn MessageBus>,
    handler: Arc<dyn EventHandler>,
    processed: Option<Arc<dyn ProcessedEvents>>,
    /// When set, how far behind its events the consumer is gets measured.
    clock: Option<Arc<dyn ordermon_domain::ports::Clock>>,
    config: ConsumerConfig,
    recent: RecentIds,
    status: Arc<Mutex<ConsumerStatus>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.config.group)
            .field("bus", &self.bus.name())
            .finish_non_exhaustive()
    }
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Handled,
    Duplicate,
    Retried,
    DeadLettered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Duplicate => "duplicate",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

impl Consumer {
    /// A consumer of `bus` running `handler`.
    #[must_use]
    pub fn new(
        bus: Arc<dyn MessageBus>,
        handler: Arc<dyn EventHandler>,
        config: ConsumerConfig,
    ) -> Self {
        let status = ConsumerStatus {
            group: config.group.clone(),
            ..ConsumerStatus::default()
        };
        Self {
            bus,
            handler,
            processed: None,
            clock: None,
            recent: RecentIds::new(config.recent_ids),
            config,
            status: Arc::new(Mutex::new(status)),
        }
    }

    /// Also records handled ids in `processed`, so duplicates are recognized
    /// after a restart.
    #[must_use]
    pub fn with_processed(mut self, processed: Arc<dyn ProcessedEvents>) -> Self {
        self.processed = Some(processed);
        self
    }

    /// Also records, for each event received, how long after it occurred it
    /// arrived (`ordermon_consumer_lag_seconds`): the consumer's lag behind
    /// the event log, whatever the broker.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn ordermon_domain::ports::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A handle to the consumer's status.
    #[must_use]
    pub fn handle(&self) -> ConsumerHandle {
        ConsumerHandle {
            status: self.status.clone(),
        }
    }

    /// Runs the consumer on `tracker` until `cancel` fires.
    pub fn spawn(self, tracker: &TaskTracker, cancel: CancellationToken) -> ConsumerHandle {
        let handle = self.handle();
        tracker.spawn(self.run(cancel));
        handle
    }

    /// Subscribes (retrying while the bus is down) and handles deliveries until
    /// `cancel` fires or the subscription ends. A delivery being handled when
    /// `cancel` fires is finished first. Meanwhile the group's backlog is read
    /// every `backlog_interval`.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(self.config.error_backoff, Duration::from_secs(30));
        let Some(sub) = self.subscribe(&cancel, &mut backoff).await else {
            return;
        };
        self.status.lock().running = true;
        tracing::info!(group = %self.config.group, bus = self.bus.name(), "consumer started");
        let sampler = backlog::sample(
            self.bus.clone(),
            self.config.group.clone(),
            self.config.backlog_interval,
            self.status.clone(),
        );
        // Two futures on one task: a slow reading never holds up a delivery,
        // and the readings stop with the consumer.
        tokio::select! {
            () = self.deliver(sub, &cancel, &mut backoff) => {}
            () = sampler => {}
        }
        self.status.lock().running = false;
        tracing::info!(group = %self.config.group, "consumer stopped");
    }

    /// Handles deliveries until `cancel` fires or the subscription ends.
    async fn deliver(
        &mut self,
        mut sub: Box<dyn Subscription>,
        cancel: &CancellationToken,
        backoff: &mut Backoff,
    ) {
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => break,
                next = sub.next() => next,
            };
            match next {
                Ok(Some(delivery)) => {
                    backoff.reset();
                    self.process(sub.as_mut(), &delivery).await;
                }
                Ok(None) => break,
                Err(e) => {
                    self.bus_error(&e);
                    let wait = backoff.delay();
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn subscribe(
        &self,
        cancel: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Option<Box<dyn Subscription>> {
        loop {
            let subscribed = tokio::select! {
                () = cancel.cancelled() => return None,
                s = self.bus.subscribe(self.config.spec()) => s,
            };
            match subscribed {
                Ok(sub) => return Some(sub),
                Err(e) => {
                    self.bus_error(&e);
                    let wait = backoff.delay();
                    tokio::select! {
                        () = cancel.cancelled() => return None,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn bus_error(&self, e: &BusError) {
        tracing::warn!(group = %self.config.group, error = %e, "consumer bus error");
        self.status.lock().last_error = Some(e.to_string());
    }

    /// Handles one delivery and settles it with the bus.
    async fn process(&mut self, sub: &mut dyn Subscription, delivery: &Delivery) {
        let span = consume_span(delivery, &self.config.group);
        let outcome = self.decide(sub, delivery).instrument(span).await;
        metrics::counter!(
            "ordermon_consumer_events_total",
            "group" => self.config.group.clone(),
            "outcome" => outcome.label(),
        )
        .increment(1);
        let mut s = self.status.lock();
        match outcome {
            Outcome::Handled => s.handled += 1,
            Outcome::Duplicate => s.duplicates += 1,
            Outcome::Retried => s.retried += 1,
            Outcome::DeadLettered => s.dead_lettered += 1,
        }
    }

    async fn decide(&mut self, sub: &mut dyn Subscription, delivery: &Delivery) -> Outcome {
        let event: DomainEvent = match serde_json::from_slice(&delivery.message.payload) {
            Ok(e) => e,
            Err(e) => {
                let error = format!("undecodable payload: {e}");
                self.settle(sub.dead_letter(delivery, &error).await, &error);
                return Outcome::DeadLettered;
            }
        };
        if let Some(clock) = &self.clock {
            let lag = (clock.now() - event.occurred_at)
                .to_std()
                .unwrap_or_default();
            metrics::histogram!("ordermon_consumer_lag_seconds").record(lag.as_secs_f64());
        }
        let id = delivery.message.id;
        if self.recent.contains(&id) {
            self.settle(sub.ack(delivery).await, "");
            return Outcome::Duplicate;
        }
        if let Some(p) = &self.processed {
            match p.contains(&self.config.group, id).await {
                Ok(true) => {
                    self.recent.insert(id);
                    self.settle(sub.ack(delivery).await, "");
                    return Outcome::Duplicate;
                }
                Ok(false) => {}
                Err(e) => {
                    let error = format!("deduplication store unavailable: {e}");
                    self.settle(sub.nack(delivery, &error).await, &error);
                    return Outcome::Retried;
                }
            }
        }
        match self.handler.handle(&event).await {
            Ok(()) => {
                if let Some(p) = &self.processed
                    && let Err(e) = p.insert(&self.config.group, id).await
                {
                    // The effect happened; a redelivery after a restart
                    // could repeat it, so say so.
                    tracing::warn!(group = %self.config.group, %id, error = %e, "could not record processed event");
                }
                self.recent.insert(id);
                self.settle(sub.ack(delivery).await, "");
                Outcome::Handled
            }
            Err(HandlerError::Transient(error)) => {
                self.settle(sub.nack(delivery, &error).await, &error);
                Outcome::Retried
            }
            Err(HandlerError::Permanent(error)) => {
                self.settle(sub.dead_letter(delivery, &error).await, &error);
                Outcome::DeadLettered
            }
        }
    }

    /// Records the outcome of an ack/nack; a failed one is only logged, since the
    /// bus delivers an unsettled message again (and dedupe absorbs it).
    fn settle(&self, settled: Result<(), BusError>, error: &str) {
        let mut s = self.status.lock();
        if !error.is_empty() {
            s.last_error = Some(error.to_owned());
        }
        if let Err(e) = settled {
            tracing::warn!(group = %self.config.group, error = %e, "could not settle a delivery; it will come again");
            s.last_error = Some(e.to_string());
        }
    }
}

/// When traces are recorded and the message carries a trace context: a
/// `consume` span that is a child of the relay's `publish`.
fn consume_span(delivery: &Delivery, group: &str) -> tracing::Span {
    let message = &delivery.message;
    match message.headers.get(crate::trace_context::TRACEPARENT) {
        Some(parent) if crate::trace_context::enabled() => {
            let span = tracing::info_span!(
                "consume",
                otel.kind = "consumer",
                messaging.consumer.group.name = group,
                messaging.destination.name = %message.topic,
                messaging.message.id = %message.id,
                attempt = delivery.attempt,
            );
            crate::trace_context::follow(&span, Some(parent));
            span
        }
        _ => tracing::Span::none(),
    }
}

#[cfg(test)]
mod tests;
