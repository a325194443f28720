//! The alerting worker: one task, the only writer of alerts. It reads the
//! commit feed (every event this instance commits), evaluates the users the
//! events touched at once and every rule each `evaluation_interval`, keeps the
//! alert book and the notification groups, and commits what changed — alert
//! rows with their events (so they reach the bus and the WebSocket stream)
//! and the notifications to send — before waking the deliverer.
//!
//! `command.rs` is what the service asks of it, `evaluate.rs` decides the
//! rules, `persist.rs` writes what changed, `deadlines.rs` says when time
//! alone makes a user due; this file keeps the worker's state and its loop.

mod command;
mod deadlines;
mod evaluate;
mod persist;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ordermon_domain::alert::{NotificationRecord, Silence};
use ordermon_domain::event::{DomainEvent, EventPayload};
use ordermon_domain::ports::Clock;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::SystemProbe;
use super::book::AlertBook;
use super::config::InhibitRule;
use super::dispatch::Dispatcher;
use super::eval::{EvalContext, RuleSet, Subject, SystemFigures, eval_venues};
use super::observed::Observed;
use super::sampled::Sampled;
use super::seed::Seed;
use super::status::StatusCells;
use crate::catalog::InstrumentCatalog;
use crate::committer::GroupCommitter;
use crate::market::QuoteBook;

pub use self::command::Command;
pub(crate) use self::deadlines::Deadlines;
pub use self::persist::alert_event;

/// How often pending promotions, market-data and instance rules are looked
/// at between full evaluations.
const LIGHT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

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
    pub(crate) probe: Option<Arc<dyn SystemProbe>>,
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
    async fn refresh_system(&mut self, probe: Option<&Arc<dyn SystemProbe>>) {
        if let Some(p) = probe
            && let Ok(f) =
                tokio::time::timeout(std::time::Duration::from_millis(500), p.figures()).await
        {
            self.env.system = f;
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
}
