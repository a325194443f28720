//! Holding a lease: a task that takes a named lease (see
//! [`LeaseStore`]) when it is free, renews it every third of its TTL while it
//! holds it, asks again every tenth of the TTL while another instance holds it,
//! and lets go on shutdown so a survivor takes over at once.
//!
//! What the lease guards runs only while [`LeaseHandle::held`] says so. That
//! is judged on this process's monotonic clock: the lease counts as held until
//! the start of the last successful renewal plus 90 % of the TTL, which is
//! before the store's own expiry (the store starts counting later). A process
//! paused past its lease (a long GC-like stall, `SIGSTOP`) therefore finds its
//! lease gone the moment it wakes, before it acts, whether or not its renewal
//! task has run yet; and its next renewal finds another holder with a higher
//! epoch.

use std::sync::Arc;
use std::time::Duration;

use ordermon_domain::ports::LeaseStore;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shortest TTL a lease may have (renewals need a few round trips of slack).
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(300);

/// The lease as this instance holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The lease's fencing epoch.
    pub epoch: u64,
    /// Until when this instance may act under it (monotonic clock).
    pub until: Instant,
}

/// What `/status` shows of a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseStatus {
    /// The lease's name.
    pub name: String,
    /// This instance's holder id.
    pub instance: String,
    /// Whether this instance holds it now.
    pub held: bool,
    /// Who held it at the last look (`None`: nobody, or not asked yet).
    pub holder: Option<String>,
    /// Its epoch at the last look.
    pub epoch: u64,
    /// How often this instance took it.
    pub acquired_total: u64,
    /// How often this instance lost it without giving it up.
    pub lost_total: u64,
    /// The last failure to reach the store, if the last attempt failed.
    pub last_error: Option<String>,
}

/// Watches a lease held by a [`LeaseKeeper`].
#[derive(Debug, Clone)]
pub struct LeaseHandle {
    held: watch::Receiver<Option<Held>>,
    status: Arc<Mutex<LeaseStatus>>,
}

impl LeaseHandle {
    /// The lease, if this instance holds it and its time has not run out.
    #[must_use]
    pub fn held(&self) -> Option<Held> {
        (*self.held.borrow()).filter(|h| Instant::now() < h.until)
    }

    /// Resolves once this instance holds the lease.
    pub async fn acquired(&mut self) {
        loop {
            if self.held().is_some() {
                return;
            }
            if self.held.changed().await.is_err() {
                // The keeper stopped: the lease will never come.
                return std::future::pending().await;
            }
        }
    }

    /// Resolves once this instance no longer holds the lease (its time ran
    /// out or the keeper saw another holder).
    pub async fn lost(&mut self) {
        loop {
            let Some(h) = self.held() else { return };
            tokio::select! {
                changed = self.held.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(h.until) => return,
            }
        }
    }

    /// A snapshot for `/status`.
    #[must_use]
    pub fn status(&self) -> LeaseStatus {
        let mut s = self.status.lock().clone();
        s.held = self.held().is_some();
        s
    }
}

/// Keeps one lease for one instance.
pub struct LeaseKeeper {
    store: Arc<dyn LeaseStore>,
    name: String,
    instance: String,
    ttl: Duration,
}

impl std::fmt::Debug for LeaseKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseKeeper")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LeaseKeeper {
    /// A keeper of lease `name` for `instance`, `ttl` long (at least
    /// [`MIN_LEASE_TTL`]).
    #[must_use]
    pub fn new(
        store: Arc<dyn LeaseStore>,
        name: impl Into<String>,
        instance: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            name: name.into(),
            instance: instance.into(),
            ttl: ttl.max(MIN_LEASE_TTL),
        }
    }

    /// Starts keeping the lease on `tracker` until `cancel` fires, then
    /// releases it.
    pub fn spawn(self, tracker: &TaskTracker, cancel: CancellationToken) -> LeaseHandle {
        let (tx, rx) = watch::channel(None);
        let status = Arc::new(Mutex::new(LeaseStatus {
            name: self.name.clone(),
            instance: self.instance.clone(),
            held: false,
            holder: None,
            epoch: 0,
            acquired_total: 0,
            lost_total: 0,
            last_error: None,
        }));
        let handle = LeaseHandle {
            held: rx,
            status: status.clone(),
        };
        tracker.spawn(self.run(tx, status, cancel));
        handle
    }

    async fn run(
        self,
        tx: watch::Sender<Option<Held>>,
        status: Arc<Mutex<LeaseStatus>>,
        cancel: CancellationToken,
    ) {
        let renew_every = self.ttl / 3;
        let ask_every = self.ttl / 10;
        let mut held: Option<Held> = None;
        while !cancel.is_cancelled() {
            let asked = Instant::now();
            let answer = tokio::select! {
                a = self.store.keep(&self.name, &self.instance, self.ttl) => a,
                () = cancel.cancelled() => break,
            };
            let was = held.filter(|h| asked < h.until);
            held = match answer {
                Ok(lease) => {
                    let mut s = status.lock();
                    s.holder = lease.live.then(|| lease.holder.clone());
                    s.epoch = lease.epoch;
                    s.last_error = None;
                    if lease.held_by(&self.instance) {
                        if was.is_none() {
                            s.acquired_total += 1;
                            tracing::info!(lease = %self.name, epoch = lease.epoch, "lease acquired");
                        }
                        Some(Held {
                            epoch: lease.epoch,
                            until: asked + self.ttl.mul_f64(0.9),
                        })
                    } else {
                        if was.is_some() {
                            s.lost_total += 1;
                            tracing::warn!(lease = %self.name, holder = %lease.holder, epoch = lease.epoch, "lease lost to another instance");
                        }
                        None
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "lease renewal failed; trying again");
                    let mut s = status.lock();
                    s.last_error = Some(e.to_string());
                    // Still ours until its time runs out, unless renewed.
                    if was.is_some() && held.is_some_and(|h| Instant::now() >= h.until) {
                        s.lost_total += 1;
                    }
                    held
                }
            };
            tx.send_replace(held);
            let wait = if held.is_some() {
                renew_every
            } else {
                ask_every
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => break,
            }
        }
        tx.send_replace(None);
        if held.is_some() {
            match self.store.release(&self.name, &self.instance).await {
                Ok(_) => tracing::info!(lease = %self.name, "lease released"),
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "lease not released; it lapses by itself");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ordermon_memory::MemoryStore;

    async fn until(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn one_keeper_holds_and_the_other_takes_over_when_it_stops() {
        let store: Arc<dyn LeaseStore> = Arc::new(MemoryStore::new());
        let tracker = TaskTracker::new();
        let ttl = Duration::from_millis(400);
        let cancel_a = CancellationToken::new();
        let a =
            LeaseKeeper::new(store.clone(), "relay", "a", ttl).spawn(&tracker, cancel_a.clone());
        until(|| a.held().is_some()).await;
        let cancel_b = CancellationToken::new();
        let b =
            LeaseKeeper::new(store.clone(), "relay", "b", ttl).spawn(&tracker, cancel_b.clone());
        until(|| b.status().holder.as_deref() == Some("a")).await;
        // Several renewals later, still a's alone.
        tokio::time::sleep(ttl * 2).await;
        assert!(a.held().is_some());
        assert!(b.held().is_none());
        assert_eq!(a.status().epoch, 1);
        // a shuts down and releases: b takes it at its next ask, epoch 2.
        cancel_a.cancel();
        let started = Instant::now();
        let mut b2 = b.clone();
        tokio::time::timeout(Duration::from_secs(2), b2.acquired())
            .await
            .unwrap();
        assert!(started.elapsed() < ttl, "{:?}", started.elapsed());
        assert_eq!(b.held().unwrap().epoch, 2);
        assert!(a.held().is_none());
        let st = b.status();
        assert!(st.held && st.acquired_total == 1 && st.holder.as_deref() == Some("b"));
        cancel_b.cancel();
        tracker.close();
        tracker.wait().await;
    }

    /// A store that stops answering one holder, as a stalled network or a
    /// paused process would look to that holder's keeper.
    struct Stalling {
        inner: MemoryStore,
        stalled: parking_lot::Mutex<Option<String>>,
    }

    type Answer<T> = Result<T, ordermon_domain::ports::StoreError>;

    #[async_trait::async_trait]
    impl LeaseStore for Stalling {
        async fn acquire(
            &self,
            name: &str,
            holder: &str,
            ttl: Duration,
        ) -> Answer<ordermon_domain::ports::Lease> {
            if self.stalled.lock().as_deref() == Some(holder) {
                std::future::pending::<()>().await;
            }
            self.inner.acquire(name, holder, ttl).await
        }
        async fn release(&self, name: &str, holder: &str) -> Answer<bool> {
            self.inner.release(name, holder).await
        }
        async fn renew_all(&self, prefix: &str, holder: &str, ttl: Duration) -> Answer<u64> {
            self.inner.renew_all(prefix, holder, ttl).await
        }
        async fn leases(&self, prefix: &str) -> Answer<Vec<ordermon_domain::ports::Lease>> {
            self.inner.leases(prefix).await
        }
    }

    #[tokio::test]
    async fn a_holder_that_cannot_renew_stops_acting_before_another_takes_over() {
        let store = Arc::new(Stalling {
            inner: MemoryStore::new(),
            stalled: parking_lot::Mutex::new(None),
        });
        let tracker = TaskTracker::new();
        let ttl = Duration::from_millis(600);
        let a = LeaseKeeper::new(store.clone(), "relay", "a", ttl)
            .spawn(&tracker, CancellationToken::new());
        until(|| a.held().is_some()).await;
        *store.stalled.lock() = Some("a".to_owned());
        let stalled = Instant::now();
        let mut lost = a.clone();
        tokio::time::timeout(ttl * 2, lost.lost()).await.unwrap();
        let gave_up = Instant::now();
        assert!(a.held().is_none());
        // Its own time ran out within the TTL of the stall, never later.
        assert!(gave_up - stalled <= ttl, "{:?}", gave_up - stalled);
        // Another instance, which still reaches the store, takes over only
        // once the store's lease lapsed, after a had stopped acting.
        let b = LeaseKeeper::new(store.clone(), "relay", "b", ttl)
            .spawn(&tracker, CancellationToken::new());
        let mut b2 = b.clone();
        tokio::time::timeout(ttl * 3, b2.acquired()).await.unwrap();
        assert!(Instant::now() >= gave_up);
        assert_eq!(b.held().unwrap().epoch, 2);
        assert!(a.held().is_none());
        tracker.close();
    }
}
