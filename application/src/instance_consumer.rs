//! The instance consumer: this instance's own consumer of the event bus, which
//! evicts its in-process cache copies and feeds the live events its WebSocket
//! streams read.
//!
//! Every instance consumes the bus in a consumer group of its own, so each one
//! sees every event committed by any instance. [`InstanceHandler`] handles
//! those deliveries: it evicts the cache keys the event made stale (the writer
//! already invalidated the shared tier; this reaches the in-process copies),
//! then hands the event to the [`EventFanout`], a broadcast that WebSocket
//! streams subscribe to. A client connected to any instance therefore sees
//! every event of its user, in per-user order (the bus keys messages by user).
//!
//! Without a bus (unit tests, embedders that do not want one) the fanout can
//! follow the local committer instead ([`EventFanout::follow`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::event::DomainEvent;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::{ReadCache, keys};
use crate::consume::{EventHandler, HandlerError};

/// Events buffered for slow stream clients before they are told they lagged.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The live events of one instance, for its WebSocket clients.
#[derive(Debug)]
pub struct EventFanout {
    tx: broadcast::Sender<Arc<DomainEvent>>,
}

impl EventFanout {
    /// A fanout buffering `capacity` events per slow reader (at least 16).
    #[must_use]
    pub fn new(capacity: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Arc::new(Self { tx })
    }

    /// Every event handed to the fanout from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.tx.subscribe()
    }

    /// Hands an event to every subscriber (none is fine).
    pub fn publish(&self, event: Arc<DomainEvent>) {
        // No subscriber: nobody is watching, nothing to do.
        let _ = self.tx.send(event);
    }

    /// Subscribers right now.
    #[must_use]
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Feeds the fanout from a local commit feed (`EventService::subscribe`)
    /// until `cancel` fires or the feed closes: the stream without a bus.
    pub fn follow(
        self: &Arc<Self>,
        mut feed: broadcast::Receiver<Arc<DomainEvent>>,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) {
        let fanout = self.clone();
        tracker.spawn(async move {
            loop {
                let next = tokio::select! {
                    () = cancel.cancelled() => return,
                    next = feed.recv() => next,
                };
                match next {
                    Ok(e) => fanout.publish(e),
                    // Readers of the fanout see their own lag; this one cannot
                    // recover the skipped events, so it carries on.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "event stream fell behind the committer");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// Handles this instance's bus deliveries: evicts stale in-process cache
/// entries, then feeds the live stream.
#[derive(Debug)]
pub struct InstanceHandler {
    fanout: Arc<EventFanout>,
    cache: Arc<ReadCache>,
    not_before: DateTime<Utc>,
}

impl InstanceHandler {
    /// A handler feeding `fanout` and evicting from `cache`. Events that
    /// happened before `not_before` are acknowledged and skipped: a new or
    /// long-stopped instance's group may start with a backlog that no stream
    /// client is waiting for and no cache entry can predate.
    #[must_use]
    pub fn new(fanout: Arc<EventFanout>, cache: Arc<ReadCache>, not_before: DateTime<Utc>) -> Self {
        Self {
            fanout,
            cache,
            not_before,
        }
    }
}

#[async_trait]
impl EventHandler for InstanceHandler {
    async fn handle(&self, event: &DomainEvent) -> Result<(), HandlerError> {
        if event.occurred_at < self.not_before {
            metrics::counter!("ordermon_stream_backlog_skipped_total").increment(1);
            return Ok(());
        }
        if self.cache.is_on() {
            let stale = keys::stale_after_event(event);
            if !stale.is_empty() {
                self.cache.evict_local(&stale).await;
            }
        }
        // Within a consumed message's trace: the hand-over to the streams.
        let _fanout = (crate::trace_context::enabled() && !tracing::Span::current().is_none())
            .then(|| {
                tracing::info_span!("stream.fanout", subscribers = self.fanout.subscribers())
                    .entered()
            });
        self.fanout.publish(Arc::new(event.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ordermon_domain::event::{EventPayload, MonitorEvent};
    use ordermon_domain::ids::UserId;

    use super::*;

    fn event(at: DateTime<Utc>) -> DomainEvent {
        let user: UserId = "alice".parse().unwrap_or_else(|e| panic!("{e}"));
        DomainEvent::new(
            "alice",
            1,
            Some(user),
            at,
            None,
            EventPayload::Monitor(MonitorEvent::Started),
        )
    }

    #[tokio::test]
    async fn handled_events_reach_every_subscriber_and_old_ones_are_skipped() {
        let fanout = EventFanout::new(16);
        let mut a = fanout.subscribe();
        let mut b = fanout.subscribe();
        let start = Utc::now();
        let handler = InstanceHandler::new(fanout.clone(), Arc::new(ReadCache::off()), start);

        let old = event(start - chrono::Duration::seconds(60));
        assert_eq!(handler.handle(&old).await, Ok(()));
        let new = event(start + chrono::Duration::milliseconds(1));
        assert_eq!(handler.handle(&new).await, Ok(()));

        for rx in [&mut a, &mut b] {
            let got = tokio::time::timeout(Duration::from_secs(1), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no event"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.event_id, new.event_id, "the old event must be skipped");
            assert!(rx.try_recv().is_err(), "exactly one event expected");
        }
    }

    #[tokio::test]
    async fn follow_forwards_a_commit_feed_until_cancelled() {
        let (tx, rx) = broadcast::channel(16);
        let fanout = EventFanout::new(16);
        let mut sub = fanout.subscribe();
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        fanout.follow(rx, &tracker, cancel.clone());
        let e = Arc::new(event(Utc::now()));
        tx.send(e.clone()).unwrap_or_else(|_| panic!("no receiver"));
        let got = tokio::time::timeout(Duration::from_secs(1), sub.recv())
            .await
            .unwrap_or_else(|_| panic!("not forwarded"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.event_id, e.event_id);
        cancel.cancel();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(1), tracker.wait())
            .await
            .unwrap_or_else(|_| panic!("follow task did not stop"));
    }
}
