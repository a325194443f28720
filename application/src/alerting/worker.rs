//! The alerting worker: one task, the only writer of alerts. It reads the
//! commit feed (every event this instance commits), evaluates the users the
//! events touched at once and every rule each `evaluation_interval`, keeps the
//! alert book and the notification groups, and commits what changed — alert
//! rows with their events (so they reach the bus and the WebSocket stream)
//! and the notifications to send — before waking the deliverer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ordermon_domain::alert::{Alert, NotificationRecord, RuleOverride, Silence};
use ordermon_domain::event::{AlertEvent, DomainEvent, EventPayload};
use ordermon_domain::ids::{AlertId, UserId};
use ordermon_domain::ports::{ChangeSet, Clock, StateChange, StoreError};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::book::{AlertBook, BookError};
use super::config::InhibitRule;
use super::dispatch::Dispatcher;
use super::eval::{
    EvalContext, RuleSet, Subject, SystemFigures, eval_instruments, eval_system, eval_user,
    eval_venues, next_deadlines,
};
use super::flow::bucket_of;
use super::observed::Observed;
use super::sampled::Sampled;
use super::seed::Seed;
use super::status::StatusCells;
use crate::catalog::InstrumentCatalog;
use crate::committer::GroupCommitter;
use crate::market::QuoteBook;

/// How often pending promotions, market-data and instance rules are looked
/// at between full evaluations.
const LIGHT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Alerts written per change set (bigger rounds are split).
const CHUNK: usize = 500;

/// What the service asks of the worker.
#[derive(Debug)]
pub enum Command {
    /// Acknowledge.
    Ack {
        /// The alert.
        id: AlertId,
        /// Who.
        by: String,
        /// The answer.
        reply: oneshot::Sender<Result<Alert, BookError>>,
    },
    /// Resolve by hand.
    Resolve {
        /// The alert.
        id: AlertId,
        /// Who.
        by: String,
        /// The answer.
        reply: oneshot::Sender<Result<Alert, BookError>>,
    },
    /// A silence was created or expired (already stored).
    Silence(Box<Silence>),
    /// The per-user overrides changed (already stored): all of them now.
    Overrides(Vec<RuleOverride>),
    /// An execution report was refused (a disagreement with the venue).
    Mismatch {
        /// The user.
        user: UserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Answered once everything before it is evaluated and committed.
    Sync(oneshot::Sender<()>),
    /// Evaluates every rule now (as the periodic evaluation does), then
    /// answers like `Sync`.
    Evaluate(oneshot::Sender<()>),
}

/// Everything the worker owns.
pub(crate) struct Worker {
    pub(crate) rules: RuleSet,
    pub(crate) observed: Observed,
    pub(crate) sampled: Sampled,
    pub(crate) book: AlertBook,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) silences: Vec<Silence>,
    pub(crate) inhibit: Vec<InhibitRule>,
    pub(crate) committer: GroupCommitter,
    pub(crate) clock: Arc<dyn Clock>,
    /// What evaluation reads besides the series.
    pub(crate) env: Env,
    pub(crate) wake_delivery: Arc<Notify>,
    pub(crate) status: Arc<StatusCells>,
    /// Notifications decided but not yet stored (retried every round).
    pub(crate) unsaved: Vec<NotificationRecord>,
    /// Users, instruments and venues are evaluated once the store has been read.
    pub(crate) seeded: bool,
    pub(crate) last_bucket: i64,
    pub(crate) last_sweep: Option<Instant>,
    /// When users must be looked at again because time alone makes a rule
    /// hold (an order that waits), earliest first.
    pub(crate) deadlines: Deadlines,
}

/// Instants at which users (and the venues) must be evaluated.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, UserId)>>,
    /// The earliest instant scheduled per user (older heap entries are stale).
    scheduled: HashMap<UserId, DateTime<Utc>>,
    venues: Option<DateTime<Utc>>,
}

impl Deadlines {
    fn schedule(
        &mut self,
        user: &UserId,
        at: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        now: DateTime<Utc>,
    ) {
        if let Some(t) = at.0.filter(|t| *t > now) {
            if self.scheduled.get(user).is_none_or(|s| t < *s || *s <= now) {
                self.scheduled.insert(user.clone(), t);
                self.heap.push(Reverse((t, user.clone())));
            }
        }
        if let Some(t) = at.1.filter(|t| *t > now) {
            self.venues = Some(self.venues.map_or(t, |v| v.min(t)));
        }
    }

    /// The earliest instant anything is due.
    fn next(&self) -> Option<DateTime<Utc>> {
        let user = self.heap.peek().map(|Reverse((t, _))| *t);
        match (user, self.venues) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The users due at `now`, and whether the venues are.
    fn take_due(&mut self, now: DateTime<Utc>) -> (Vec<UserId>, bool) {
        let mut users = Vec::new();
        while let Some(Reverse((t, _))) = self.heap.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((t, u))) = self.heap.pop() {
                if self.scheduled.get(&u) == Some(&t) {
                    self.scheduled.remove(&u);
                    users.push(u);
                }
            }
        }
        let venues = self.venues.is_some_and(|t| t <= now);
        if venues {
            self.venues = None;
        }
        (users, venues)
    }
}

/// What evaluation reads besides the series (a field of its own so it can
/// be borrowed while the book is written).
pub(crate) struct Env {
    pub(crate) quotes: Arc<QuoteBook>,
    pub(crate) catalog: Arc<InstrumentCatalog>,
    pub(crate) instance: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) settings: WorkerSettings,
    pub(crate) system: SystemFigures,
}

impl Env {
    fn context(&self, now: DateTime<Utc>) -> EvalContext<'_> {
        EvalContext {
            now,
            quotes: &self.quotes,
            catalog: &self.catalog,
            venue_stuck_after: self.settings.venue_stuck_after,
            strategy_alert_hold: self.settings.strategy_alert_hold,
            started_at: self.started_at,
            system: self.system,
            instance: &self.instance,
        }
    }
}

/// Settings the worker reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerSettings {
    pub(crate) evaluation_interval: std::time::Duration,
    pub(crate) venue_stuck_after: std::time::Duration,
    pub(crate) strategy_alert_hold: std::time::Duration,
}

/// Where the worker's inputs come from.
pub(crate) struct Inputs {
    pub(crate) events: broadcast::Receiver<Arc<DomainEvent>>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) seeds: mpsc::Receiver<Seed>,
    pub(crate) probe: Option<Arc<dyn super::SystemProbe>>,
}

impl Worker {
    /// Runs until `cancel` fires, then commits what is left.
    pub(crate) async fn run(mut self, mut inputs: Inputs, cancel: CancellationToken) {
        let mut sweep = tokio::time::interval(self.env.settings.evaluation_interval);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut light =
            tokio::time::interval(LIGHT_INTERVAL.min(self.env.settings.evaluation_interval));
        light.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seeds_open = true;
        let mut syncs: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            let next_due = match (self.dispatcher.next_due(), self.deadlines.next()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let due_in = next_due
                .map(|t| (t - self.clock.now()).to_std().unwrap_or_default())
                .unwrap_or(std::time::Duration::from_secs(3600));
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                cmd = inputs.commands.recv() => match cmd {
                    Some(Command::Sync(reply)) => syncs.push(reply),
                    Some(Command::Evaluate(reply)) => {
                        // What was committed before the command counts.
                        while let Ok(e) = inputs.events.try_recv() {
                            self.ingest(&e);
                        }
                        self.evaluate_dirty();
                        self.refresh_system(inputs.probe.as_ref()).await;
                        self.sweep();
                        syncs.push(reply);
                    }
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                seed = inputs.seeds.recv(), if seeds_open => match seed {
                    Some(s) => self.seed(s),
                    None => {
                        seeds_open = false;
                        self.seeded = true;
                        self.status.seeded.store(true, Ordering::Relaxed);
                        tracing::info!(users = self.observed.users.len(), "alerting: store read, every rule evaluates");
                    }
                },
                ev = inputs.events.recv() => {
                    match ev {
                        Ok(e) => self.ingest(&e),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            self.status.lagged.fetch_add(n, Ordering::Relaxed);
                            metrics::counter!("ordermon_alerting_events_lagged_total").increment(n);
                            tracing::warn!(skipped = n, "alerting fell behind the commit feed");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                },
                _ = sweep.tick() => {
                    self.refresh_system(inputs.probe.as_ref()).await;
                    self.sweep();
                },
                _ = light.tick() => self.light(),
                () = tokio::time::sleep(due_in) => {},
            }
            // Take what else is queued before evaluating (also what was
            // committed before a command arrived: commands are served first).
            for _ in 0..4096 {
                match inputs.events.try_recv() {
                    Ok(e) => self.ingest(&e),
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            let (due, venues) = self.deadlines.take_due(now);
            self.observed.dirty.extend(due);
            if venues && self.seeded {
                let hits = eval_venues(
                    &self.rules,
                    &self.observed,
                    &self.sampled,
                    &self.env.context(now),
                );
                let changed = self.book.reconcile(&Subject::Venues, hits, now);
                self.route(changed, now);
            }
            self.evaluate_dirty();
            self.decide();
            self.persist().await;
            if !syncs.is_empty() && self.book.uncommitted_len() == 0 && self.unsaved.is_empty() {
                for s in syncs.drain(..) {
                    let _ = s.send(());
                }
            }
        }
        self.decide();
        self.persist().await;
    }

    /// Reads the instance figures (bounded: a slow probe keeps the old ones).
    async fn refresh_system(&mut self, probe: Option<&Arc<dyn super::SystemProbe>>) {
        if let Some(p) = probe {
            if let Ok(f) =
                tokio::time::timeout(std::time::Duration::from_millis(500), p.figures()).await
            {
                self.env.system = f;
            }
        }
    }

    fn ingest(&mut self, e: &DomainEvent) {
        if matches!(e.payload, EventPayload::Alert(_)) {
            return;
        }
        self.status.events.fetch_add(1, Ordering::Relaxed);
        self.observed.apply(e);
    }

    fn seed(&mut self, s: Seed) {
        match s {
            Seed::User(u) => self.observed.seed_user(&u),
            Seed::Book {
                user,
                account,
                positions,
            } => self.observed.seed_book(&user, &account, &positions),
            Seed::Order(o) => self.observed.seed_order(&o),
        }
    }

    fn command(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Ack { id, by, reply } => {
                let r = self.book.acknowledge(id, &by, now);
                if let Ok(a) = &r {
                    self.dispatcher.observe(a, now);
                }
                let _ = reply.send(r);
            }
            Command::Resolve { id, by, reply } => {
                let r = self.book.resolve(id, &by, now);
                if let Ok(a) = &r {
                    self.dispatcher.observe(a, now);
                }
                let _ = reply.send(r);
            }
            Command::Silence(s) => {
                match self.silences.iter_mut().find(|x| x.id == s.id) {
                    Some(x) => *x = *s,
                    None => self.silences.push(*s),
                }
                self.remute(now);
            }
            Command::Overrides(list) => {
                self.rules.set_overrides(&list);
                self.observed
                    .dirty
                    .extend(self.observed.users.keys().cloned());
            }
            Command::Mismatch { user, at } => self.observed.mismatch(&user, at),
            Command::Sync(_) | Command::Evaluate(_) => {}
        }
    }

    /// Re-applies silences and inhibition; routes the alerts whose flags changed.
    fn remute(&mut self, now: DateTime<Utc>) {
        self.silences.retain(|s| s.ends_at > now);
        let changed = self.book.apply_mutes(&self.silences, &self.inhibit, now);
        for a in &changed {
            self.dispatcher.observe(a, now);
        }
    }

    /// Evaluates the users events touched since the last evaluation.
    fn evaluate_dirty(&mut self) {
        if !self.observed.system_dirty && (self.observed.dirty.is_empty() || !self.seeded) {
            return;
        }
        let started = Instant::now();
        let now = self.clock.now();
        let mut changed = Vec::new();
        if self.observed.system_dirty {
            self.observed.system_dirty = false;
            let hits = eval_system(
                &self.rules,
                &self.observed,
                &self.sampled,
                &self.env.context(now),
            );
            changed.extend(self.book.reconcile(&Subject::System, hits, now));
        }
        if self.seeded && !self.observed.dirty.is_empty() {
            let dirty: Vec<UserId> = self.observed.dirty.drain().collect();
            let stuck_after = self.env.settings.venue_stuck_after;
            for user in dirty {
                let Some(u) = self.observed.users.get(&user) else {
                    continue;
                };
                let rules = self.rules.for_user(&user);
                self.deadlines
                    .schedule(&user, next_deadlines(rules, u, stuck_after), now);
                let hits = eval_user(&self.rules, &user, u, &self.sampled, &self.env.context(now));
                changed.extend(self.book.reconcile(&Subject::User(user), hits, now));
            }
        }
        self.route(changed, now);
        self.status.record_busy(started.elapsed());
    }

    fn route(&mut self, changed: Vec<Alert>, now: DateTime<Utc>) {
        if changed.is_empty() {
            return;
        }
        for a in &changed {
            count_transition(a);
            self.dispatcher.observe(a, now);
        }
        // New alerts learn their silences and inhibitions before any flush.
        self.remute(now);
    }

    /// Evaluates every rule on every series; samples at each new bucket.
    fn sweep(&mut self) {
        let started = Instant::now();
        let now = self.clock.now();
        let bucket = bucket_of(now);
        let mut changed = self.book.promote_due(now);
        if self.seeded {
            if bucket != self.last_bucket {
                self.last_bucket = bucket;
                for u in self.observed.users.values_mut() {
                    u.trim(now);
                }
                self.sample_equity(now);
                // The sampler reads the series and writes its own state.
                let mut sampled = std::mem::take(&mut self.sampled);
                sampled.sample(&self.rules, &self.observed, &self.env.context(now));
                self.sampled = sampled;
            }
            let ctx = self.env.context(now);
            let stuck_after = self.env.settings.venue_stuck_after;
            for (user, u) in &self.observed.users {
                let rules = self.rules.for_user(user);
                self.deadlines
                    .schedule(user, next_deadlines(rules, u, stuck_after), now);
                let hits = eval_user(&self.rules, user, u, &self.sampled, &ctx);
                if hits.is_empty() && self.book.quiet(user) {
                    continue;
                }
                changed.extend(self.book.reconcile(&Subject::User(user.clone()), hits, now));
            }
            self.observed.dirty.clear();
            let hits = eval_instruments(&self.rules, &self.sampled, &self.env.context(now));
            changed.extend(self.book.reconcile(&Subject::Instruments, hits, now));
            let hits = eval_venues(
                &self.rules,
                &self.observed,
                &self.sampled,
                &self.env.context(now),
            );
            changed.extend(self.book.reconcile(&Subject::Venues, hits, now));
        }
        let hits = eval_system(
            &self.rules,
            &self.observed,
            &self.sampled,
            &self.env.context(now),
        );
        changed.extend(self.book.reconcile(&Subject::System, hits, now));
        self.observed.system_dirty = false;
        for a in &changed {
            count_transition(a);
            self.dispatcher.observe(a, now);
        }
        // Silences start and end with time: re-applied at every sweep.
        self.remute(now);
        let took = started.elapsed();
        self.status
            .record_sweep(took, self.book.len(), self.sampled.series());
        self.export_counts();
        metrics::histogram!("ordermon_alert_evaluation_seconds").record(took.as_secs_f64());
        self.last_sweep = Some(started);
    }

    /// Between full evaluations: pending alerts whose `for` has passed, the
    /// market data and the instance rules (a handful of series).
    fn light(&mut self) {
        let now = self.clock.now();
        let mut changed = self.book.promote_due(now);
        if self.seeded {
            let hits = eval_instruments(&self.rules, &self.sampled, &self.env.context(now));
            changed.extend(self.book.reconcile(&Subject::Instruments, hits, now));
        }
        let hits = eval_system(
            &self.rules,
            &self.observed,
            &self.sampled,
            &self.env.context(now),
        );
        changed.extend(self.book.reconcile(&Subject::System, hits, now));
        self.route(changed, now);
    }

    /// `ordermon_alerts{state, severity}`: unresolved alerts now.
    fn export_counts(&self) {
        use ordermon_domain::alert::{AlertState, Severity};
        let mut counts = [[0u64; 3]; 2];
        for a in self.book.alerts() {
            let s = usize::from(a.state == AlertState::Firing);
            let v = match a.severity {
                Severity::Info => 0,
                Severity::Warning => 1,
                Severity::Critical => 2,
            };
            counts[s][v] += 1;
        }
        for (si, state) in ["pending", "firing"].iter().enumerate() {
            for (vi, sev) in ["info", "warning", "critical"].iter().enumerate() {
                metrics::gauge!("ordermon_alerts", "state" => *state, "severity" => *sev)
                    .set(counts[si][vi] as f64);
            }
        }
    }

    /// Records each user's equity at the end of a bucket (high-water mark,
    /// day start, history for loss velocity).
    fn sample_equity(&mut self, now: DateTime<Utc>) {
        let ctx = self.env.context(now);
        let mut samples = Vec::new();
        for (id, u) in &self.observed.users {
            if let Some(e) = super::eval::equity(u, &ctx) {
                samples.push((id.clone(), e));
            }
        }
        for (id, e) in samples {
            if let Some(u) = self.observed.users.get_mut(&id) {
                u.sample_equity(now, e);
            }
        }
    }

    /// Flushes due groups and decides escalations.
    fn decide(&mut self) {
        let now = self.clock.now();
        let mut records = self.dispatcher.flush(now);
        let escalations = self.dispatcher.escalations(self.book.alerts(), now);
        for (fp, record) in escalations {
            if self.book.escalate(fp, now).is_some() {
                records.push(record);
            }
        }
        if !records.is_empty() {
            metrics::counter!("ordermon_notifications_decided_total")
                .increment(records.len() as u64);
        }
        self.unsaved.extend(records);
    }

    /// Commits alert changes (with their events) and decided notifications.
    async fn persist(&mut self) {
        let changes = self.book.uncommitted();
        if !changes.is_empty() {
            let mut sets = Vec::new();
            for chunk in changes.chunks(CHUNK) {
                let mut cs = ChangeSet::default();
                let mut ids = Vec::with_capacity(chunk.len());
                for (alert, stored) in chunk {
                    cs.changes.push(StateChange::Alert {
                        alert: Box::new(alert.clone()),
                        expected: *stored,
                    });
                    ids.push((alert.id, alert.version));
                    if let Err(e) = cs.push_events([alert_event(alert)]) {
                        tracing::error!(error = %e, "alert event not serializable");
                    }
                }
                sets.push((cs, ids));
            }
            let commits = sets.into_iter().map(|(cs, ids)| {
                let committer = self.committer.clone();
                async move { (committer.commit(cs).await, ids) }
            });
            for (result, ids) in futures::future::join_all(commits).await {
                match result {
                    Ok(_) => self.book.committed(&ids),
                    Err(StoreError::Conflict { id, actual, .. }) => {
                        // The stored version is not the one expected (a lost
                        // answer, another writer): write over it next round.
                        tracing::warn!(alert = %id, ?actual, "alert version differs from the store; retrying");
                        if let (Ok(alert_id), Some(actual)) = (id.parse(), actual) {
                            self.book.stored_is(alert_id, actual);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "alert changes not stored yet; retrying"),
                }
            }
        }
        if !self.unsaved.is_empty() {
            let mut cs = ChangeSet::default();
            for r in &self.unsaved {
                cs.changes.push(StateChange::Notification {
                    record: Box::new(r.clone()),
                    expected: 0,
                });
            }
            match self.committer.commit(cs).await {
                Ok(_) => {
                    self.unsaved.clear();
                    self.wake_delivery.notify_one();
                }
                Err(StoreError::Duplicate { .. } | StoreError::Conflict { .. }) => {
                    // Stored by an earlier attempt whose answer was lost.
                    self.unsaved.clear();
                    self.wake_delivery.notify_one();
                }
                Err(e) => tracing::warn!(error = %e, "notifications not stored yet; retrying"),
            }
        }
        self.status
            .active
            .store(self.book.len() as u64, Ordering::Relaxed);
    }
}

/// `ordermon_alert_transitions_total{state, severity}`: raised (pending or
/// firing), promoted, resolved.
fn count_transition(a: &Alert) {
    metrics::counter!("ordermon_alert_transitions_total", "state" => a.state.as_str(), "severity" => a.severity.as_str())
        .increment(1);
}

/// The event of an alert's new state.
#[must_use]
pub fn alert_event(alert: &Alert) -> DomainEvent {
    DomainEvent::new(
        alert.id.to_string(),
        alert.version,
        alert.user_id.clone(),
        alert.updated_at,
        None,
        EventPayload::Alert(AlertEvent::Changed {
            alert: Box::new(alert.clone()),
        }),
    )
}
