//! Monitoring: keeps one monitor running for every active user owned here.
//!
//! On start and every `monitor.scan_interval` it reads the instruments (added
//! on another instance or with SQL), the open orders operators marked canceled
//! with SQL (carried out as real cancels), and which users are `active` and
//! which strategies are `enabled` (operators flip them with plain SQL), starts
//! the monitors of newly active users, stops those of disabled ones, and sends
//! strategy changes to the affected monitors. Changes made through the API go
//! through the user's owner and take effect at once, without waiting for a scan;
//! a user created through the API is monitored as soon as it is committed.
//! The global kill switch is read back every [`CONTROL_INTERVAL`], so one
//! engaged through another instance applies here too. More tasks feed the
//! monitors: the quote lanes (each quote goes straight to
//! the running strategies that trade its instrument, see
//! [`QuoteLanes`](crate::owner::QuoteLanes)) and the ticker (timers and checks,
//! through the owners).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ordermon_domain::ids::{StrategyId, UserId};
use ordermon_domain::strategy::StrategyStatus;
use ordermon_domain::user::UserStatus;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::error::AppError;

/// Figures for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitoringStatus {
    /// Users whose status is `active` at the last scan.
    pub active_users: usize,
    /// Monitors running.
    pub running_monitors: usize,
    /// Strategies running.
    pub running_strategies: u64,
    /// Quotes, ticks and order events fed to monitors.
    pub events_processed: u64,
    /// Strategy restarts after failures.
    pub restarts: u64,
    /// Quotes the quote lanes missed because they fell behind the feed.
    pub dropped_quotes: u64,
    /// (instrument, strategy) quote subscriptions.
    pub subscriptions: usize,
    /// Quote lanes strategies are called in.
    pub lanes: usize,
    /// Scans completed.
    pub scans: u64,
}

/// A strategy as a scan sees it: (user, id) (strategy ids are unique per
/// user), then status and version.
type ScannedStrategy = ((UserId, StrategyId), (StrategyStatus, u64));

/// The scan loop's memory of the last scan.
#[derive(Debug, Default)]
struct Seen {
    active: usize,
    /// The users' stamp and the monitored set's changes when the users were
    /// last read (`None`: never, or the store keeps no stamp).
    users: Option<(u64, u64)>,
    /// Sorted by user and id.
    strategies: Vec<ScannedStrategy>,
    /// Whether the strategies were read yet (the first read syncs nothing).
    strategies_read: bool,
    /// The strategies' stamp when they were last read, if the store keeps one.
    strategy_stamp: Option<u64>,
    scans: u64,
}

/// The users whose strategies differ between two scans (a strategy added,
/// removed, or with another status or version), each once, in order.
/// `before` and `now` are sorted by (user, id): one walk over both, no
/// hashing — at 50,000 users hashing every key on every scan cost the
/// runtime a quarter of a core.
fn changed_users(before: &[ScannedStrategy], now: &[ScannedStrategy]) -> Vec<UserId> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut users: Vec<UserId> = Vec::new();
    let mut note = |user: &UserId| {
        if users.last() != Some(user) {
            users.push(user.clone());
        }
    };
    let (mut i, mut j) = (0, 0);
    loop {
        match (before.get(i), now.get(j)) {
            (Some(b), Some(n)) => match b.0.cmp(&n.0) {
                Less => {
                    note(&b.0.0);
                    i += 1;
                }
                Greater => {
                    note(&n.0.0);
                    j += 1;
                }
                Equal => {
                    if b.1 != n.1 {
                        note(&n.0.0);
                    }
                    i += 1;
                    j += 1;
                }
            },
            (Some(b), None) => {
                note(&b.0.0);
                i += 1;
            }
            (None, Some(n)) => {
                note(&n.0.0);
                j += 1;
            }
            (None, None) => return users,
        }
    }
}

/// Runs the scan loop, the quote lanes and the ticker for an engine.
#[derive(Debug)]
pub struct Monitoring {
    engine: Arc<Engine>,
    seen: parking_lot::Mutex<Seen>,
    /// One scan at a time (the loop's, or one asked for).
    scanning: tokio::sync::Mutex<()>,
}

impl Monitoring {
    /// Starts the scan loop, the lanes and the ticker; they stop when
    /// `cancel` fires.
    #[must_use]
    pub fn spawn(engine: Arc<Engine>, cancel: &CancellationToken) -> Arc<Self> {
        let me = Arc::new(Self {
            engine,
            seen: parking_lot::Mutex::new(Seen::default()),
            scanning: tokio::sync::Mutex::new(()),
        });
        let tracker = me.engine.tracker();
        {
            let me = me.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move { me.scan_loop(cancel).await });
        }
        {
            let me = me.clone();
            let cancel = cancel.clone();
            let feed = me.engine.events.subscribe();
            tracker.spawn(async move { me.created_users(feed, cancel).await });
        }
        me.engine.spawn_lanes(cancel);
        // The kill switch engaged on another instance applies here within
        // this interval.
        me.engine
            .admin
            .global_switch()
            .spawn_watch(CONTROL_INTERVAL, &tracker, cancel.clone());
        {
            let me = me.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move { me.tick_loop(cancel).await });
        }
        me
    }

    /// Figures for `/status`.
    #[must_use]
    pub fn status(&self) -> MonitoringStatus {
        let seen = self.seen.lock();
        let c = self.engine.monitor_counters();
        MonitoringStatus {
            active_users: seen.active,
            running_monitors: self.engine.monitored_users(),
            running_strategies: c.strategies.load(Ordering::Relaxed),
            events_processed: c.events.load(Ordering::Relaxed),
            restarts: c.restarts.load(Ordering::Relaxed),
            dropped_quotes: self.engine.lagged_quotes(),
            subscriptions: self.engine.quote_subscriptions(),
            lanes: self.engine.lane_count(),
            scans: seen.scans,
        }
    }

    async fn scan_loop(self: Arc<Self>, cancel: CancellationToken) {
        let every = self.engine.monitor_config().scan_interval;
        let mut interval = tokio::time::interval(every.max(std::time::Duration::from_millis(10)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = cancel.cancelled() => return,
            }
            if let Err(e) = self.scan().await {
                tracing::error!(error = %e, "monitor scan failed; will retry");
            }
        }
    }

    /// Starts the monitor of a user created through this instance at once,
    /// not at the next scan (SPEC §3.4: API changes apply at once). A user
    /// created with plain SQL or on another instance waits for the scan.
    async fn created_users(
        self: Arc<Self>,
        mut feed: tokio::sync::broadcast::Receiver<Arc<ordermon_domain::event::DomainEvent>>,
        cancel: CancellationToken,
    ) {
        use ordermon_domain::event::{EventPayload, UserEvent};
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let event = tokio::select! {
                e = feed.recv() => e,
                () = cancel.cancelled() => return,
            };
            match event {
                Ok(e) => {
                    if let EventPayload::User(UserEvent::Created { user }) = &e.payload
                        && user.status == UserStatus::Active
                        && !self.engine.is_monitored(&user.id)
                        && self.engine.may_own(&user.id)
                    {
                        drop(self.engine.start_monitor(&user.id).await);
                    }
                }
                // Missed ones are started by the next scan.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// One scan: reconcile running monitors and strategies with the database.
    ///
    /// The users and the strategies are each read only when the store's
    /// stamp of them moved since they were last read (or the store keeps
    /// none), and the users also when a monitor started, stopped or was asked
    /// to start meanwhile; every [`FULL_SCAN_EVERY`]th scan reads both
    /// anyway. At tens of thousands of users a read of every row was most of a
    /// scan's cost, and nearly every scan finds nothing changed.
    ///
    /// # Errors
    /// Store failures (the next scan retries).
    pub async fn scan(&self) -> Result<(), AppError> {
        let p = self.engine.persistence();
        // Instruments added or changed on another instance (or with SQL).
        let catalog = self.engine.instruments.catalog();
        for instrument in p.instruments.list_instruments().await? {
            if catalog
                .get(&instrument.id)
                .is_none_or(|known| *known != instrument)
            {
                catalog.put(instrument);
            }
        }
        let _one_at_a_time = self.scanning.lock().await;
        let full = self.seen.lock().scans.is_multiple_of(FULL_SCAN_EVERY);
        self.users_pass(full).await?;
        self.operator_cancels().await?;
        self.strategies_pass(full).await?;
        self.seen.lock().scans += 1;
        Ok(())
    }

    /// Starts the monitors of active users not monitored, stops those of
    /// users disabled or removed — unless nothing could have changed since
    /// the last time (`full` reads them in any case).
    async fn users_pass(&self, full: bool) -> Result<(), AppError> {
        let p = self.engine.persistence();
        let monitored = self.engine.monitored();
        // Read before the users: a change after either is seen next time.
        let changes = monitored.changes();
        let stamp = p.users.user_status_stamp().await?;
        let this_read = stamp.map(|stamp| (stamp, changes));
        if !full && this_read.is_some() && self.seen.lock().users == this_read {
            return Ok(());
        }
        // Begun before the statuses are read: a monitor started after (a
        // user created meanwhile) is not in the list read and is no reason
        // to stop anything. Marking users found costs one lookup each, like
        // asking whether they are monitored.
        let pass = monitored.begin_pass();
        let users = p.users.user_statuses().await?;
        let mut active = 0;
        // Every monitor to start is asked at once, and the scan returns once
        // each start is committed (or its owner could not start). Starting
        // a bounded number at a time was tried: it keeps a restart's first
        // commits from all being in memory together, but it couples each
        // owner's load to the commits before it, and a PostgreSQL restart
        // at 50,000 users took 10–16 s instead of 9–10 s. The answers are
        // awaited in the order asked: owners answer in about that order, so
        // most are in by the time they are looked at (a `FuturesUnordered`
        // of them cost ~11 % of a 50,000-user start-up in wake-ups).
        let mut starting = Vec::new();
        for (user, status) in &users {
            let running = monitored.found(user, pass);
            match (status, running) {
                (UserStatus::Active, false) => {
                    active += 1;
                    // Shared users: the instance owning the user runs it.
                    if self.engine.may_own(user) {
                        starting.push(self.engine.start_monitor(user).await);
                    }
                }
                (UserStatus::Active, true) => active += 1,
                (UserStatus::Disabled, true) => {
                    self.engine
                        .stop_monitor(user, *status, "user disabled")
                        .await;
                }
                (UserStatus::Disabled, false) => {}
            }
        }
        for answer in starting {
            drop(answer.await);
        }
        for user in monitored.not_found(pass) {
            self.engine
                .stop_monitor(&user, UserStatus::Disabled, "user removed")
                .await;
        }
        // A monitor started or stopped here moved `changes` since it was
        // read: the next scan reads the users again, and finds them settled.
        let mut seen = self.seen.lock();
        seen.active = active;
        seen.users = this_read;
        Ok(())
    }

    /// Sends the monitors of users whose strategies changed in the database
    /// their strategies again — unless the store's stamp says none did
    /// (`full` reads them in any case).
    async fn strategies_pass(&self, full: bool) -> Result<(), AppError> {
        let p = self.engine.persistence();
        let stamp = p.strategies.strategy_stamp().await?;
        if !full && stamp.is_some() && self.seen.lock().strategy_stamp == stamp {
            return Ok(());
        }
        let strategies = p.strategies.strategy_statuses().await?;
        // Find users whose strategy set changed since the last read.
        let mut now: Vec<ScannedStrategy> = strategies
            .into_iter()
            .map(|(id, user, status, version)| ((user, id), (status, version)))
            .collect();
        now.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (changed_users, first) = {
            let seen = self.seen.lock();
            (changed_users(&seen.strategies, &now), !seen.strategies_read)
        };
        if !first {
            for user in changed_users {
                if self.engine.is_monitored(&user) {
                    let list = p.strategies.list_strategies(&user).await?;
                    self.engine.sync_strategies(&user, list).await;
                }
            }
        }
        let mut seen = self.seen.lock();
        seen.strategies = now;
        seen.strategies_read = true;
        seen.strategy_stamp = stamp;
        Ok(())
    }

    /// Carries out the cancels operators asked for with plain SQL (`UPDATE
    /// orders SET status = 'cancelled' WHERE …` on an open order): each
    /// becomes a real cancel through the user's owner and the venue, with its
    /// events, which also writes the row back consistent. One that fails is
    /// tried again at the next scan.
    async fn operator_cancels(&self) -> Result<(), AppError> {
        let asked = self
            .engine
            .persistence()
            .orders
            .cancels_requested(OPERATOR_CANCELS_PER_SCAN)
            .await?;
        for (order, user) in asked {
            if !self.engine.may_own(&user) {
                continue;
            }
            match self.engine.orders.cancel(&user, order).await {
                Ok(o) => {
                    tracing::info!(user_id = %user, order_id = %order, status = %o.status.as_str(), "order canceled as the database asked");
                }
                Err(e) => {
                    tracing::warn!(user_id = %user, order_id = %order, error = %e, "cancel asked in the database failed; retrying at the next scan");
                }
            }
        }
        Ok(())
    }

    /// Ticks monitors once per `tick_interval` — those running a strategy
    /// that takes timer callbacks every round, the others in turn for their
    /// checks (see `MonitoredUsers`) — spread over the interval in slices:
    /// ticking thousands of owners at the same instant would stall the
    /// runtime and delay every quote behind the burst.
    async fn tick_loop(self: Arc<Self>, cancel: CancellationToken) {
        let every = self
            .engine
            .monitor_config()
            .tick_interval
            .max(std::time::Duration::from_millis(10));
        let slices = u32::try_from((every.as_millis() / 10).clamp(1, TICK_SLICES)).unwrap_or(1);
        let mut interval = tokio::time::interval(every / slices);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut round: Vec<ordermon_domain::ids::UserId> = Vec::new();
        let mut round_no = 0_u64;
        let mut slice = 0_usize;
        let slices = slices as usize;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = cancel.cancelled() => return,
            }
            if slice == 0 {
                // Users who start monitoring mid-round get ticks from the next.
                round = self.engine.monitored().tick_round(round_no);
                round_no = round_no.wrapping_add(1);
            }
            let per = round.len().div_ceil(slices);
            let from = (slice * per).min(round.len());
            let to = (from + per).min(round.len());
            self.engine.tick_users(&round[from..to]);
            slice = (slice + 1) % slices;
        }
    }
}

/// Every how many scans the users and strategies are read whatever their
/// stamps say (a stamp that hashes rows could, however unlikely, repeat).
const FULL_SCAN_EVERY: u64 = 30;

/// Most cancels asked with SQL carried out per scan.
const OPERATOR_CANCELS_PER_SCAN: u32 = 1000;

/// How often the global trading state is read back from the database, so a
/// change made on another instance applies here.
pub const CONTROL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Most slices a tick round is spread over (one every 10 ms at least).
const TICK_SLICES: u128 = 50;

#[cfg(test)]
mod tests {
    use super::*;

    fn s(user: &str, id: &str, status: StrategyStatus, version: u64) -> ScannedStrategy {
        (
            (UserId::new(user).unwrap(), StrategyId::new(id).unwrap()),
            (status, version),
        )
    }

    fn names(users: &[UserId]) -> Vec<&str> {
        users.iter().map(UserId::as_str).collect()
    }

    #[test]
    fn a_scan_finds_the_users_whose_strategies_were_added_removed_or_changed() {
        use StrategyStatus::{Disabled, Enabled};
        let before = vec![
            s("alice", "a1", Enabled, 1),
            s("alice", "a2", Enabled, 1),
            s("bob", "b1", Enabled, 3),
            s("carol", "c1", Enabled, 1),
            s("dave", "d1", Enabled, 1),
        ];
        let now = vec![
            s("alice", "a1", Enabled, 1),
            s("alice", "a2", Disabled, 2),
            s("bob", "b1", Enabled, 3),
            s("bob", "b2", Enabled, 1),
            s("dave", "d1", Enabled, 2),
            s("erin", "e1", Enabled, 1),
        ];
        assert_eq!(
            names(&changed_users(&before, &now)),
            ["alice", "bob", "carol", "dave", "erin"]
        );
        assert!(changed_users(&now, &now).is_empty(), "nothing changed");
        assert_eq!(
            names(&changed_users(&[], &now)),
            ["alice", "bob", "dave", "erin"]
        );
        assert_eq!(
            names(&changed_users(&before, &[])),
            ["alice", "bob", "carol", "dave"]
        );
    }
}
