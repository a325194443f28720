//! The outbox relay: publishes committed outbox rows to the bus, in commit
//! order, and marks them sent once the broker has confirmed them.
//!
//! One relay task per outbox: it reads the oldest unsent rows (`pending`), hands
//! them to the bus as one batch (which keeps their order and returns after the
//! broker's confirms), then marks them sent. A crash between publish and mark
//! publishes those rows again on restart: delivery is at-least-once and consumers
//! deduplicate by event id. A failed publish is retried with exponential backoff
//! and jitter, without marking anything. The relay sleeps when the outbox is empty
//! and wakes at once when the committer signals a commit (see [`OutboxRelay::waker`]),
//! or after a short poll interval otherwise. On cancellation it makes a final
//! attempt to drain the outbox, bounded by a deadline.
//!
//! Only one relay may drain an outbox at a time: two would publish the same rows
//! and could interleave users' events. Where several instances share one
//! outbox, each runs a relay under the `outbox-relay` lease
//! ([`OutboxRelay::with_lease`]): the one holding it relays, the others stand
//! by and take over within the lease's TTL when the holder dies. A relay also
//! checks the lease right before each publish, so a holder paused past its
//! lease publishes nothing more once it wakes (a batch already handed to the
//! broker may still arrive twice; consumers deduplicate by event id).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use ordermon_domain::event::DomainEvent;
use ordermon_domain::ports::{
    BusError, BusMessage, Clock, MessageBus, Outbox, OutboxRecord, StoreError,
};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::lease_keeper::{LeaseHandle, LeaseStatus};
use crate::trace_context::TRACEPARENT;

/// Relay settings (the binary maps its configuration onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Most rows per batch.
    pub batch: u32,
    /// How often an idle relay looks at the outbox without being woken.
    pub poll_interval: Duration,
    /// First retry delay after a failure (doubles, with jitter).
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How long the final drain on shutdown may take.
    pub drain_timeout: Duration,
    /// How often the (possibly costly) pending count is refreshed.
    pub count_interval: Duration,
    /// How long sent rows stay in the outbox before the relay deletes them
    /// (`None`: never). The event log keeps every event regardless.
    pub retain_sent: Option<Duration>,
    /// How often sent rows older than `retain_sent` are deleted.
    pub purge_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            poll_interval: Duration::from_millis(250),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            count_interval: Duration::from_secs(1),
            retain_sent: Some(Duration::from_secs(24 * 3600)),
            purge_interval: Duration::from_secs(3600),
        }
    }
}

/// Why one relay step failed (it is retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Reading or marking the outbox failed.
    #[error("outbox: {0}")]
    Store(#[from] StoreError),
    /// The bus did not confirm the batch.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// The relay's state for `/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayStatus {
    /// The bus (`memory`, `rabbitmq`, `kafka`, `redis`).
    pub bus: &'static str,
    /// Whether this instance relays now (under a lease: whether it holds it).
    pub running: bool,
    /// The `outbox-relay` lease, when relays compete for it.
    pub lease: Option<LeaseStatus>,
    /// Unsent outbox rows (refreshed about once a second).
    pub pending: u64,
    /// Age of the oldest unsent row, in seconds (0 when none).
    pub oldest_pending_seconds: f64,
    /// Rows published since start.
    pub published_total: u64,
    /// Failed relay steps since start.
    pub failures_total: u64,
    /// The last failure, if the last step failed.
    pub last_error: Option<String>,
    /// When the last batch was confirmed.
    pub last_published_at: Option<DateTime<Utc>>,
    /// Rows the broker refused for good and the relay set aside since start.
    pub set_aside_total: u64,
    /// The last row set aside.
    pub last_set_aside: Option<SetAside>,
}

/// An outbox row the broker refused for good (too large, malformed): the relay
/// marks it handled so the rows behind it go on. The event itself stays in the
/// event log; consumers and live streams never receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    /// The outbox row.
    pub outbox_id: i64,
    /// The event.
    pub event_id: String,
    /// Its topic.
    pub topic: String,
    /// What the broker said.
    pub error: String,
    /// When it was set aside.
    pub at: DateTime<Utc>,
}

/// A handle to watch and wake a relay.
#[derive(Debug, Clone)]
pub struct RelayHandle {
    status: Arc<Mutex<RelayStatus>>,
    wake: Arc<Notify>,
    lease: Option<LeaseHandle>,
}

impl RelayHandle {
    /// A snapshot of the relay's state.
    #[must_use]
    pub fn status(&self) -> RelayStatus {
        let mut s = self.status.lock().clone();
        s.lease = self.lease.as_ref().map(LeaseHandle::status);
        s
    }

    /// Wakes the relay (something was committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The outbox relay.
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    bus: Arc<dyn MessageBus>,
    clock: Arc<dyn Clock>,
    config: RelayConfig,
    handle: RelayHandle,
    feed: Option<broadcast::Receiver<Arc<DomainEvent>>>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("bus", &self.bus.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The bus message for an outbox row; the row's trace context, if any, goes
/// along as the `traceparent` header.
#[must_use]
pub fn bus_message(record: &OutboxRecord) -> BusMessage {
    let m = &record.message;
    let mut headers = std::collections::BTreeMap::new();
    if let Some(traceparent) = &m.traceparent {
        headers.insert(TRACEPARENT.to_owned(), traceparent.clone());
    }
    BusMessage {
        id: m.event_id,
        topic: m.topic.clone(),
        key: m.key.clone(),
        payload: m.payload.clone().into_bytes(),
        headers,
    }
}

/// When traces are recorded: a `publish` span for each message that carries a
/// trace context, child of the commit that wrote it, and the message's
/// `traceparent` set to it. The spans end when the returned vector is
/// dropped, once the broker confirmed.
fn publish_spans(messages: &mut [BusMessage], bus: &str) -> Vec<tracing::Span> {
    if !crate::trace_context::enabled() {
        return Vec::new();
    }
    messages
        .iter_mut()
        .filter_map(|message| {
            let parent = message.headers.get(TRACEPARENT)?;
            let span = tracing::info_span!(
                "publish",
                otel.kind = "producer",
                messaging.system = bus,
                messaging.destination.name = %message.topic,
                messaging.message.id = %message.id,
            );
            crate::trace_context::follow(&span, Some(parent));
            if let Some(traceparent) = crate::trace_context::of(&span) {
                message.headers.insert(TRACEPARENT.to_owned(), traceparent);
            }
            Some(span)
        })
        .collect()
}

impl OutboxRelay {
    /// A relay from `outbox` to `bus`.
    #[must_use]
    pub fn new(
        outbox: Arc<dyn Outbox>,
        bus: Arc<dyn MessageBus>,
        clock: Arc<dyn Clock>,
        config: RelayConfig,
    ) -> Self {
        let status = RelayStatus {
            bus: bus.name(),
            running: false,
            lease: None,
            pending: 0,
            oldest_pending_seconds: 0.0,
            published_total: 0,
            failures_total: 0,
            last_error: None,
            last_published_at: None,
            set_aside_total: 0,
            last_set_aside: None,
        };
        Self {
            outbox,
            bus,
            clock,
            config,
            handle: RelayHandle {
                status: Arc::new(Mutex::new(status)),
                wake: Arc::new(Notify::new()),
                lease: None,
            },
            feed: None,
        }
    }

    /// Relays only while `lease` is held (see the module docs); stands by
    /// otherwise. The lease's keeper must outlive the relay, so the final
    /// drain on shutdown still holds it.
    #[must_use]
    pub fn with_lease(mut self, lease: LeaseHandle) -> Self {
        self.handle.lease = Some(lease);
        self
    }

    /// Whether this relay may publish now.
    fn leading(&self) -> bool {
        self.handle
            .lease
            .as_ref()
            .is_none_or(|l| l.held().is_some())
    }

    /// Wakes the relay whenever events are committed (e.g. from
    /// `EventService::subscribe`), instead of waiting for the next poll.
    #[must_use]
    pub fn with_commit_feed(mut self, feed: broadcast::Receiver<Arc<DomainEvent>>) -> Self {
        self.feed = Some(feed);
        self
    }

    /// The signal to fire after each commit (hand it to the group committer);
    /// a signal fired while the relay is busy is remembered.
    #[must_use]
    pub fn waker(&self) -> Arc<Notify> {
        self.handle.wake.clone()
    }

    /// A handle for `/status` and wake-ups.
    #[must_use]
    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// Runs the relay on `tracker` until `cancel` fires.
    pub fn spawn(self, tracker: &TaskTracker, cancel: CancellationToken) -> RelayHandle {
        let handle = self.handle();
        tracker.spawn(self.run(cancel));
        handle
    }

    /// Publishes one batch; returns how many rows were published (0 = the outbox
    /// is empty).
    ///
    /// # Errors
    /// The outbox or the bus failed; nothing was marked sent.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let step = self.step().await;
        if let Err(e) = &step {
            self.failed(e);
        }
        step
    }

    async fn step(&self) -> Result<usize, RelayError> {
        let records = self.outbox.pending(self.config.batch.max(1)).await?;
        let Some(oldest) = records.first() else {
            let mut s = self.handle.status.lock();
            s.pending = 0;
            s.oldest_pending_seconds = 0.0;
            metrics::gauge!("ordermon_outbox_pending").set(0.0);
            metrics::gauge!("ordermon_outbox_oldest_pending_seconds").set(0.0);
            return Ok(0);
        };
        let age = (self.clock.now() - oldest.message.created_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        let mut messages: Vec<BusMessage> = records.iter().map(bus_message).collect();
        let _publishes = publish_spans(&mut messages, self.bus.name());
        if !self.leading() {
            // The lease ran out while reading: the new holder publishes these.
            return Ok(0);
        }
        let n = match self.bus.publish(&messages).await {
            Ok(()) => {
                let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
                self.outbox.mark_sent(&ids).await?;
                records.len()
            }
            // Some row of the batch can never be published: find it, set it
            // aside, and go on with the others, one at a time.
            Err(BusError::Rejected(_)) => self.one_by_one(&records).await?,
            Err(e) => return Err(e.into()),
        };
        metrics::counter!("ordermon_outbox_published_total").increment(n as u64);
        metrics::histogram!("ordermon_outbox_batch_size").record(n as f64);
        metrics::gauge!("ordermon_outbox_oldest_pending_seconds").set(age);
        let mut s = self.handle.status.lock();
        s.published_total += n as u64;
        s.oldest_pending_seconds = age;
        s.last_error = None;
        s.last_published_at = Some(self.clock.now());
        Ok(n)
    }

    /// Publishes `records` one at a time, in order, setting aside each the
    /// broker refuses for good; stops at any other failure (what went out is
    /// marked sent, the rest comes again). Returns the rows handled.
    async fn one_by_one(&self, records: &[OutboxRecord]) -> Result<usize, RelayError> {
        let mut handled = 0;
        for record in records {
            let mut message = [bus_message(record)];
            let _publish = publish_spans(&mut message, self.bus.name());
            match self.bus.publish(&message).await {
                Ok(()) => {}
                Err(BusError::Rejected(error)) => self.set_aside(record, error),
                Err(e) => {
                    if handled > 0 {
                        return Ok(handled);
                    }
                    return Err(e.into());
                }
            }
            self.outbox.mark_sent(&[record.id]).await?;
            handled += 1;
        }
        Ok(handled)
    }

    fn set_aside(&self, record: &OutboxRecord, error: String) {
        let m = &record.message;
        metrics::counter!("ordermon_outbox_set_aside_total").increment(1);
        tracing::error!(
            outbox_id = record.id,
            event_id = %m.event_id,
            topic = %m.topic,
            bytes = m.payload.len(),
            error = %error,
            "the broker refused an outbox row for good; set aside (the event stays in the event log)"
        );
        let mut s = self.handle.status.lock();
        s.set_aside_total += 1;
        s.last_set_aside = Some(SetAside {
            outbox_id: record.id,
            event_id: m.event_id.to_string(),
            topic: m.topic.clone(),
            error,
            at: self.clock.now(),
        });
    }

    async fn refresh_count(&self) {
        match self.outbox.pending_count().await {
            Ok(n) => {
                metrics::gauge!("ordermon_outbox_pending").set(n as f64);
                self.handle.status.lock().pending = n;
            }
            Err(e) => tracing::debug!(error = %e, "outbox pending count failed"),
        }
    }

    fn failed(&self, e: &RelayError) {
        metrics::counter!("ordermon_outbox_relay_failures_total").increment(1);
        let mut s = self.handle.status.lock();
        s.failures_total += 1;
        s.last_error = Some(e.to_string());
    }

    /// Deletes sent rows older than `retain_sent`; returns how many went.
    ///
    /// # Errors
    /// The outbox failed (nothing is lost: the rows stay until next time).
    pub async fn purge_once(&self) -> Result<u64, RelayError> {
        let Some(keep) = self.config.retain_sent else {
            return Ok(0);
        };
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let cutoff = self
            .clock
            .now()
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let n = self.outbox.purge_sent(cutoff).await?;
        if n > 0 {
            metrics::counter!("ordermon_outbox_purged_total").increment(n);
            tracing::info!(rows = n, %cutoff, "sent outbox rows deleted");
        }
        Ok(n)
    }

    /// Relays until `cancel` fires, then drains what it can before the deadline.
    pub async fn run(mut self, cancel: CancellationToken) {
        tracing::info!(
            bus = self.bus.name(),
            leased = self.handle.lease.is_some(),
            "outbox relay started"
        );
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        let mut last_count = tokio::time::Instant::now() - self.config.count_interval;
        // The first purge comes one interval after start, not during it.
        let mut last_purge = tokio::time::Instant::now();
        while !cancel.is_cancelled() {
            if !self.leading() {
                self.stand_by(&cancel).await;
                last_purge = tokio::time::Instant::now();
                continue;
            }
            self.handle.status.lock().running = true;
            if last_count.elapsed() >= self.config.count_interval {
                self.refresh_count().await;
                last_count = tokio::time::Instant::now();
            }
            if last_purge.elapsed() >= self.config.purge_interval {
                if let Err(e) = self.purge_once().await {
                    tracing::warn!(error = %e, "outbox purge failed; trying again later");
                }
                last_purge = tokio::time::Instant::now();
            }
            match self.relay_once().await {
                Ok(0) => {
                    backoff.reset();
                    tokio::select! {
                        () = self.handle.wake.notified() => {}
                        () = committed(&mut self.feed) => {}
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                        () = cancel.cancelled() => {}
                    }
                }
                Ok(_) => backoff.reset(),
                Err(e) => {
                    let wait = backoff.next();
                    tracing::warn!(error = %e, ?wait, "outbox relay step failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = cancel.cancelled() => {}
                    }
                }
            }
        }
        if self.leading() {
            self.drain().await;
        }
        self.refresh_count().await;
        self.handle.status.lock().running = false;
        tracing::info!("outbox relay stopped");
    }

    /// Waits for the lease (another instance relays meanwhile), keeping the
    /// pending count fresh for `/status` and the alert rules.
    async fn stand_by(&mut self, cancel: &CancellationToken) {
        let was_running = std::mem::replace(&mut self.handle.status.lock().running, false);
        if was_running {
            tracing::warn!("outbox relay lease lost; standing by");
        }
        let Some(mut lease) = self.handle.lease.clone() else {
            return;
        };
        loop {
            self.refresh_count().await;
            tokio::select! {
                () = lease.acquired() => {
                    tracing::info!("this instance relays the outbox now");
                    return;
                }
                () = tokio::time::sleep(self.config.count_interval) => {}
                () = cancel.cancelled() => return,
            }
        }
    }

    /// The final drain on shutdown: publish until empty, failing, or out of time.
    async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        loop {
            let step = tokio::time::timeout_at(deadline, self.relay_once()).await;
            match step {
                Ok(Ok(0)) => return,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let wait = backoff.next();
                    if tokio::time::Instant::now() + wait >= deadline {
                        tracing::warn!(error = %e, "outbox not drained before shutdown; rows stay for the next start");
                        return;
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(_) => {
                    tracing::warn!("outbox drain timed out; rows stay for the next start");
                    return;
                }
            }
        }
    }
}

/// Resolves when events were committed; never without a feed.
async fn committed(feed: &mut Option<broadcast::Receiver<Arc<DomainEvent>>>) {
    let Some(rx) = feed.as_mut() else {
        return std::future::pending().await;
    };
    match rx.recv().await {
        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
            // One wake-up covers everything committed so far.
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
        }
        Err(broadcast::error::RecvError::Closed) => {
            *feed = None;
            std::future::pending::<()>().await;
        }
    }
}

/// Exponential backoff with jitter (backon): each delay is 50–100 % of a
/// nominal one that doubles from `min` up to `max`; `reset` starts over
/// after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    schedule: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        // backon's jitter adds up to the delay itself: half the nominal
        // delays, jittered, fall in [d/2, d).
        let schedule = ExponentialBuilder::new()
            .with_min_delay(min / 2)
            .with_max_delay(max / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            schedule,
            delays: schedule.build(),
            max,
        }
    }

    pub(crate) fn next(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    pub(crate) fn reset(&mut self) {
        self.delays = self.schedule.build();
    }
}

#[cfg(test)]
pub(crate) mod tests;
