//! Group commit: many owners' batches written in one database transaction.
//!
//! Owners send their batch and wait for its outcome. A worker takes the first
//! waiting batch and everything else already queued (up to a limit), commits them
//! together with per-batch outcomes, and answers each owner. There is no
//! artificial delay: batches form naturally while the previous commit is in
//! flight, so an idle system commits at once and a busy one amortizes.

use std::sync::Arc;
use std::time::Instant;

use ordermon_domain::event::DomainEvent;
use ordermon_domain::ports::{ChangeSet, CommitReceipt, Store, StoreError};
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::{ReadCache, keys};

type Job = (
    ChangeSet,
    oneshot::Sender<Result<CommitReceipt, StoreError>>,
);

/// Group-commit settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitConfig {
    /// Most batches per transaction.
    pub max_batches: usize,
    /// Concurrent committing workers (1 for SQLite, a few for server databases).
    pub workers: usize,
    /// Queue length before owners wait (backpressure).
    pub queue: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self {
            max_batches: 256,
            workers: 2,
            queue: 8192,
        }
    }
}

/// Handle owners use to commit.
#[derive(Debug, Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Job>,
    committed: broadcast::Sender<Arc<DomainEvent>>,
}

impl GroupCommitter {
    /// Starts the workers.
    #[must_use]
    pub fn spawn(
        store: Arc<dyn Store>,
        config: CommitConfig,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        Self::spawn_with_cache(store, config, tracker, cancel, Arc::new(ReadCache::off()))
    }

    /// Starts the workers; after each group commits, and before any of its
    /// callers is answered, the keys its batches made stale are invalidated in
    /// `cache` (failed batches too: an owner's snapshot may have shown them).
    #[must_use]
    pub fn spawn_with_cache(
        store: Arc<dyn Store>,
        config: CommitConfig,
        tracker: &TaskTracker,
        cancel: CancellationToken,
        cache: Arc<ReadCache>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(config.queue.max(1));
        let (committed, _) = broadcast::channel(config.queue.max(16));
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..config.workers.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            let cancel = cancel.clone();
            let max = config.max_batches.max(1);
            let committed = committed.clone();
            let cache = cache.clone();
            tracker.spawn(async move { worker(store, rx, max, committed, cancel, cache).await });
        }
        Self { tx, committed }
    }

    /// Every event committed from now on, in commit order per user. A receiver
    /// that falls behind by more than the channel holds gets `Lagged` and can
    /// catch up from the event log.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.committed.subscribe()
    }

    /// Commits one batch through the group committer.
    ///
    /// # Errors
    /// The batch's own outcome; [`StoreError::Unavailable`] when shutting down.
    pub async fn commit(&self, mut batch: ChangeSet) -> Result<CommitReceipt, StoreError> {
        // Rows written from within a trace (a request's own commit) and not
        // already given a context (owners set their commands') follow a
        // `commit` span under the current one.
        let _span = if crate::trace_context::enabled()
            && !tracing::Span::current().is_none()
            && batch.outbox.iter().any(|m| m.traceparent.is_none())
        {
            let span = tracing::info_span!("commit", otel.kind = "internal");
            if let Some(traceparent) = crate::trace_context::of(&span) {
                for m in batch.outbox.iter_mut().filter(|m| m.traceparent.is_none()) {
                    m.traceparent = Some(traceparent.clone());
                }
            }
            Some(span)
        } else {
            None
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((batch, reply))
            .await
            .map_err(|_| StoreError::Unavailable("committer stopped".to_owned()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("committer stopped".to_owned()))?
    }
}

async fn worker(
    store: Arc<dyn Store>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max: usize,
    committed: broadcast::Sender<Arc<DomainEvent>>,
    cancel: CancellationToken,
    cache: Arc<ReadCache>,
) {
    loop {
        let mut jobs = Vec::new();
        {
            // Only one worker gathers at a time; it releases the receiver before
            // the commit so the next worker can gather the next group meanwhile.
            let mut rx = rx.lock().await;
            let first = tokio::select! {
                job = rx.recv() => job,
                () = cancel.cancelled() => {
                    // Drain what is queued before stopping: those owners wait.
                    rx.try_recv().ok()
                }
            };
            let Some(first) = first else { return };
            jobs.push(first);
            while jobs.len() < max {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let (batches, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let n = batches.len();
        let events: Vec<Vec<DomainEvent>> = if committed.receiver_count() > 0 {
            batches.iter().map(|b| b.events.clone()).collect()
        } else {
            Vec::new()
        };
        let stale = if cache.is_on() {
            keys::stale_after_all(&batches)
        } else {
            Vec::new()
        };
        let started = Instant::now();
        let results = store.commit_group(batches).await;
        // Never stale: invalidate before anyone learns of the commit.
        cache.invalidate(&stale).await;
        for (result, events) in results.iter().zip(events) {
            if result.is_ok() {
                for e in events {
                    // No receivers left is fine.
                    let _ = committed.send(Arc::new(e));
                }
            }
        }
        metrics::histogram!("ordermon_store_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("ordermon_store_group_size").record(n as f64);
        metrics::counter!("ordermon_store_commits_total").increment(1);
        let mut results = results.into_iter();
        for reply in replies {
            let r = results
                .next()
                .unwrap_or_else(|| Err(StoreError::Unexpected("missing group result".to_owned())));
            if r.is_err() {
                metrics::counter!("ordermon_store_batch_failures_total").increment(1);
            }
            // The owner may have given up (shutdown); nothing to do then.
            let _ = reply.send(r);
        }
    }
}
