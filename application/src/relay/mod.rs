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
//!
//! `publish.rs` is one step, `housekeeping.rs` what runs between steps,
//! `status.rs` what the relay reports; this file holds the relay's settings
//! and its loop (its retry schedule is [`crate::backoff`]).

mod housekeeping;
mod publish;
mod status;

use std::sync::Arc;
use std::time::Duration;

use ordermon_domain::event::DomainEvent;
use ordermon_domain::ports::{Clock, MessageBus, Outbox};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::lease_keeper::LeaseHandle;

pub use self::publish::bus_message;
pub use self::status::{RelayError, RelayStatus, SetAside};
use crate::backoff::Backoff;

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
                    let wait = backoff.delay();
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
                    let wait = backoff.delay();
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

#[cfg(test)]
pub(crate) mod tests;
