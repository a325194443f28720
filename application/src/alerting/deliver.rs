//! Delivery: works through the durable queue of notifications. Each due
//! record is *claimed* first (a versioned write: when several instances share
//! the store only one wins it), then sent through its receiver's notifier,
//! then marked delivered — or, on a transient failure, given its next try
//! with exponential backoff and jitter (never sooner than the receiver's own
//! `Retry-After`), and failed only after `give_up_after`. A receiver that is
//! down holds back its later notifications, so they arrive in order once it
//! is back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use ordermon_domain::alert::{DeliveryStatus, NotificationRecord};
use ordermon_domain::ports::{
    ChangeSet, Clock, NotificationLog, Notifier, NotifyError, StateChange, StoreError,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::DeliveryConfig;
use crate::committer::GroupCommitter;

/// Records fetched per round.
const PAGE: u32 = 256;
/// How often the queue is looked at without a wake-up (retries come due).
const POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Delivery counters, for `/status` and tests.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Notifications delivered.
    pub sent: std::sync::atomic::AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: std::sync::atomic::AtomicU64,
    /// Notifications given up.
    pub failed: std::sync::atomic::AtomicU64,
}

/// Sends due notifications.
pub struct Deliverer {
    log: Arc<dyn NotificationLog>,
    committer: GroupCommitter,
    notifiers: HashMap<String, Arc<dyn Notifier>>,
    config: DeliveryConfig,
    instance: String,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    stats: Arc<DeliveryStats>,
    /// Receivers held back after a transient failure, until then.
    blocked: HashMap<String, DateTime<Utc>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("receivers", &self.notifiers.keys().collect::<Vec<_>>())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The delay before attempt `attempts + 1`: exponential from `min` to `max`
/// with jitter.
#[must_use]
pub fn backoff(config: &DeliveryConfig, attempts: u32) -> std::time::Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(config.min_backoff)
        .with_max_delay(config.max_backoff)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(usize::try_from(attempts.min(32)).unwrap_or(32))
        .unwrap_or(config.max_backoff)
}

impl Deliverer {
    /// A deliverer over the queue in `log`, writing through `committer`.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        log: Arc<dyn NotificationLog>,
        committer: GroupCommitter,
        notifiers: HashMap<String, Arc<dyn Notifier>>,
        config: DeliveryConfig,
        instance: String,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        stats: Arc<DeliveryStats>,
    ) -> Self {
        Self {
            log,
            committer,
            notifiers,
            config,
            instance,
            clock,
            wake,
            stats,
            blocked: HashMap::new(),
        }
    }

    /// Delivers until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let worked = match self.round().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "notification queue unavailable; retrying");
                    false
                }
            };
            if worked {
                // More may be due at once; let other tasks run between rounds.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One pass over the due notifications; returns how many it settled or
    /// claimed (0: nothing could be done now, wait).
    ///
    /// # Errors
    /// The queue could not be read.
    pub async fn round(&mut self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        self.blocked.retain(|_, until| *until > now);
        let due = self.log.due_notifications(now, PAGE).await?;
        let mut by_receiver: BTreeMap<String, Vec<NotificationRecord>> = BTreeMap::new();
        for r in due {
            if self.blocked.contains_key(&r.notification.receiver) {
                continue;
            }
            by_receiver
                .entry(r.notification.receiver.clone())
                .or_default()
                .push(r);
        }
        let mut progress = 0;
        let mut work = Vec::new();
        for (receiver, records) in by_receiver {
            match self.notifiers.get(&receiver) {
                Some(n) => work.push(self.deliver_receiver(n.clone(), records)),
                None => {
                    // Configured once, gone now: nothing can deliver it.
                    for mut r in records {
                        r.attempt_failed(format!("receiver `{receiver}` is not configured"), None);
                        self.stats
                            .failed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if self.write(r).await {
                            progress += 1;
                        }
                    }
                }
            }
        }
        for (claimed, blocked) in futures::future::join_all(work).await {
            progress += claimed;
            if let Some((receiver, until)) = blocked {
                self.blocked.insert(receiver, until);
            }
        }
        Ok(progress)
    }

    /// Sends one receiver's due records in order; returns how many it
    /// claimed, and the receiver and until when it is held back after a
    /// transient failure.
    async fn deliver_receiver(
        &self,
        notifier: Arc<dyn Notifier>,
        records: Vec<NotificationRecord>,
    ) -> (usize, Option<(String, DateTime<Utc>)>) {
        let batch_size = notifier.max_batch().max(1);
        let mut claimed_total = 0;
        let mut queue = records.into_iter().peekable();
        while queue.peek().is_some() {
            let now = self.clock.now();
            let lease = chrono::Duration::from_std(self.config.claim_lease).unwrap_or_default();
            let mut claimed = Vec::new();
            for mut r in queue.by_ref().take(batch_size) {
                let expected = r.version;
                r.claim(&self.instance, now, lease);
                if self.commit(&r, expected).await {
                    claimed.push(r);
                }
            }
            if claimed.is_empty() {
                continue;
            }
            claimed_total += claimed.len();
            let batch: Vec<_> = claimed.iter().map(|r| r.notification.clone()).collect();
            let started = std::time::Instant::now();
            let outcome =
                match tokio::time::timeout(self.config.timeout, notifier.notify(&batch)).await {
                    Ok(r) => r,
                    Err(_) => Err(NotifyError::transient("timed out")),
                };
            let kind = notifier.kind();
            let receiver = notifier.name().to_owned();
            metrics::histogram!("ordermon_notification_send_seconds", "receiver" => receiver.clone())
                .record(started.elapsed().as_secs_f64());
            let now = self.clock.now();
            match outcome {
                Ok(()) => {
                    for mut r in claimed {
                        let expected = r.version;
                        r.delivered(now);
                        self.count(&receiver, kind, "sent", &self.stats.sent);
                        tracing::info!(receiver, notification = %r.id(), group = %r.notification.group_key, "notification delivered");
                        self.commit(&r, expected).await;
                    }
                }
                Err(NotifyError::Permanent(message)) => {
                    for mut r in claimed {
                        let expected = r.version;
                        r.attempt_failed(message.clone(), None);
                        self.count(&receiver, kind, "failed", &self.stats.failed);
                        tracing::error!(receiver, notification = %r.id(), error = %message, "notification refused for good");
                        self.commit(&r, expected).await;
                    }
                }
                Err(NotifyError::Transient {
                    message,
                    retry_after,
                }) => {
                    let mut until = now;
                    for mut r in claimed {
                        let expected = r.version;
                        let wait =
                            backoff(&self.config, r.attempts).max(retry_after.unwrap_or_default());
                        let retry_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                        let age = now - r.notification.created_at;
                        let give_up = age
                            >= chrono::Duration::from_std(self.config.give_up_after)
                                .unwrap_or_default();
                        if give_up {
                            r.attempt_failed(format!("gave up: {message}"), None);
                            self.count(&receiver, kind, "failed", &self.stats.failed);
                        } else {
                            r.attempt_failed(message.clone(), Some(retry_at));
                            until = until.max(retry_at);
                            self.count(&receiver, kind, "retried", &self.stats.retried);
                        }
                        tracing::warn!(receiver, notification = %r.id(), attempts = r.attempts, error = %message, "notification not delivered; will retry");
                        self.commit(&r, expected).await;
                    }
                    // Hold back the rest so they arrive in order.
                    return (claimed_total, Some((receiver, until)));
                }
            }
        }
        (claimed_total, None)
    }

    fn count(
        &self,
        receiver: &str,
        kind: &'static str,
        outcome: &'static str,
        c: &std::sync::atomic::AtomicU64,
    ) {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("ordermon_notifications_total", "receiver" => receiver.to_owned(), "kind" => kind, "outcome" => outcome)
            .increment(1);
    }

    async fn write(&self, r: NotificationRecord) -> bool {
        let expected = r.version.saturating_sub(1);
        self.commit(&r, expected).await
    }

    /// Writes a record with a version check; false when someone else wrote
    /// it first (another instance claimed it) or the store failed.
    async fn commit(&self, r: &NotificationRecord, expected: u64) -> bool {
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::Notification {
            record: Box::new(r.clone()),
            expected,
        });
        match self.committer.commit(cs).await {
            Ok(_) => true,
            Err(StoreError::Conflict { .. }) => false,
            Err(e) => {
                tracing::warn!(notification = %r.id(), error = %e, "could not record a notification's delivery");
                false
            }
        }
    }
}

/// True when a record still waits for delivery.
#[must_use]
pub fn waiting(r: &NotificationRecord) -> bool {
    r.status == DeliveryStatus::Pending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_within_bounds() {
        let c = DeliveryConfig::default();
        for attempts in 0..40 {
            let d = backoff(&c, attempts);
            assert!(
                d >= c.min_backoff && d <= c.max_backoff * 2,
                "{attempts}: {d:?}"
            );
        }
        let late = backoff(&c, 20);
        assert!(late >= std::time::Duration::from_secs(60), "{late:?}");
    }
}
