//! A user's monitor: the slots of the user's running strategies, the owner's
//! side of parking and unparking them in the quote lanes (`lanes.rs`),
//! restarts with backoff, and the health checks of every tick (silent
//! strategies, stuck orders).
//!
//! It exists while the user is monitored and never writes the user's state:
//! the owner lends it the state to read (a [`Now`]) and runs what it answers.
//! A callback's [`Call`] says what the strategy asked for (the owner executes
//! it through the same paths as the API) or that it panicked (the owner has
//! it restarted); what the monitor notices is a [`MonitorEvent`] for the
//! owner to record in the cycle; a quote a parked strategy missed is handed
//! back for the owner to have it catch up on. From the context it uses the
//! strategy registry, the quote lanes, the set of monitored users, the
//! counters and the monitor settings.
//!
//! A strategy runs inside `catch_unwind`: a panic is contained to that
//! strategy, which is rebuilt from its configuration and restarted (with
//! backoff once it keeps failing); the owner, and every other user's monitor,
//! carry on.

mod health;
mod park;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use ordermon_domain::alert::Severity;
use ordermon_domain::event::MonitorEvent;
use ordermon_domain::ids::{InstrumentId, OrderId, RuleName, StrategyId, UserId};
use ordermon_domain::market::Quote;
use ordermon_domain::order::Order;
use ordermon_domain::strategy::Strategy as StrategyConfig;
use tokio::sync::mpsc;

use super::lanes::{Running, Slot, UserView};
use super::state::UserState;
use super::strategy_book::StrategyBook;
use super::{Command, Context, panic_text};
use crate::error::FieldError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext};

/// The user's state as the owner holds it at this moment, lent to the
/// monitor to read.
#[derive(Clone, Copy)]
pub(super) struct Now<'a> {
    pub(super) state: &'a UserState,
    /// Events the current cycle has recorded so far: with the commits the
    /// monitor has seen, it says which state this is (a view is rebuilt
    /// only when that changed).
    pub(super) recorded: usize,
    pub(super) at: DateTime<Utc>,
}

/// What became of one strategy callback.
pub(super) enum Call {
    /// Not called (not running, or suspended), or it asked for nothing.
    Quiet,
    /// It asked for these: the owner executes them, and the strategy stays
    /// parked in its lane until the owner unparks it.
    Decided(Vec<StrategyCommand>),
    /// It panicked (the text of the panic): the owner has it restarted.
    Failed(String),
}

/// What a running strategy made of new parameters.
pub(super) enum ParamsUpdate {
    /// Taken (or the strategy is not running).
    Taken,
    /// Refused: the change is refused as a whole.
    Refused(Vec<FieldError>),
    /// It panicked (the text of the panic): the owner has it restarted.
    Failed(String),
}

/// The state a cached view shows: (commits seen, events recorded).
type ViewGen = (u64, usize);

/// The running monitor of one user.
pub(super) struct Monitor {
    ctx: Arc<Context>,
    user_id: UserId,
    /// The owner's mailbox, where the lanes hand the strategies' decisions.
    mailbox: mpsc::WeakSender<Command>,
    /// Monitor events are an aggregate per monitor session, so sequences start
    /// at 1 for each run and never collide with an earlier run's.
    aggregate: String,
    seq: u64,
    /// Running strategies; each slot is also in the user's quote lane.
    running: BTreeMap<StrategyId, Arc<Slot>>,
    /// Commits (or reloads after a failed one) seen during this session.
    commits: u64,
    /// The last view of the user published to the slots.
    view: Option<(ViewGen, Arc<UserView>)>,
    /// The running strategies that take timer callbacks.
    timed: BTreeSet<StrategyId>,
    reported_stuck: HashSet<OrderId>,
}

impl Monitor {
    /// Starts monitoring `user_id`, with no strategy running yet.
    pub(super) fn open(
        ctx: Arc<Context>,
        user_id: UserId,
        mailbox: mpsc::WeakSender<Command>,
    ) -> Self {
        ctx.monitored.insert(user_id.clone());
        tracing::info!(user_id = %user_id, "monitor started");
        Self {
            aggregate: format!("{user_id}:{}", uuid::Uuid::now_v7().simple()),
            ctx,
            user_id,
            mailbox,
            seq: 0,
            running: BTreeMap::new(),
            commits: 0,
            view: None,
            timed: BTreeSet::new(),
            reported_stuck: HashSet::new(),
        }
    }

    /// Ends monitoring (every strategy was stopped): the user leaves the
    /// lanes and the monitored set.
    pub(super) fn close(self, reason: &str) {
        self.ctx.monitored.remove(&self.user_id);
        self.ctx.lanes.set(&self.user_id, &[]);
        tracing::info!(user_id = %self.user_id, reason, "monitor stopped");
    }

    /// The aggregate and sequence of the next monitor event.
    pub(super) fn next_event(&mut self) -> (String, u64) {
        self.seq += 1;
        (self.aggregate.clone(), self.seq)
    }

    /// The running strategies.
    pub(super) fn running(&self) -> Vec<StrategyId> {
        self.running.keys().cloned().collect()
    }

    /// The running strategies that take timer callbacks.
    pub(super) fn timed(&self) -> Vec<StrategyId> {
        self.timed.iter().cloned().collect()
    }

    pub(super) fn is_running(&self, id: &StrategyId) -> bool {
        self.running.contains_key(id)
    }

    /// The running slot of a strategy.
    pub(super) fn slot(&self, id: &StrategyId) -> Option<Arc<Slot>> {
        self.running.get(id).cloned()
    }

    /// Whether `slot` is still the one running for its strategy (a lane's
    /// decision from a slot since stopped is not executed).
    pub(super) fn is_current(&self, slot: &Arc<Slot>) -> bool {
        self.running
            .get(&slot.strategy_id)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
    }

    /// Puts the running strategies in the user's quote lane, each under the
    /// instruments its configuration names.
    pub(super) fn subscribe(&self, book: &StrategyBook) {
        let entries: Vec<(Arc<Slot>, Vec<InstrumentId>)> = self
            .running
            .iter()
            .filter_map(|(id, slot)| {
                let c = book.get(id)?;
                Some((slot.clone(), c.instruments.clone()))
            })
            .collect();
        self.ctx.lanes.set(&self.user_id, &entries);
    }

    /// The user's positions and open orders as strategies in a lane see them
    /// (rebuilt only when the state changed).
    fn view(&mut self, now: Now<'_>) -> Arc<UserView> {
        let generation = (self.commits, now.recorded);
        if let Some((g, v)) = &self.view
            && *g == generation
        {
            return v.clone();
        }
        let view = Arc::new(UserView {
            positions: now.state.positions.clone(),
            open_orders: now
                .state
                .orders
                .values()
                .filter(|o| o.is_open())
                .cloned()
                .collect(),
        });
        self.view = Some((generation, view.clone()));
        view
    }

    /// The state was committed (or reloaded after a failed commit): every
    /// running strategy gets the new view.
    pub(super) fn committed(&mut self, now: Now<'_>) {
        self.commits += 1;
        if self.running.is_empty() {
            return;
        }
        let view = self.view(now);
        for slot in self.running.values() {
            slot.state.lock().show(view.clone(), &slot.strategy_id);
        }
    }

    /// Builds strategy `id` from its `config` and gives it a slot; false when its type
    /// refuses the configuration. Its `on_start` is the owner's to call.
    pub(super) fn start_strategy(
        &mut self,
        id: &StrategyId,
        config: &StrategyConfig,
        now: Now<'_>,
    ) -> bool {
        let instance = match self.ctx.registry.create(config) {
            Ok(i) => i,
            Err(errors) => {
                let text = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::error!(user_id = %self.user_id, strategy_id = %id, error = %text, "strategy cannot start");
                return false;
            }
        };
        // Asked once; a strategy that panics answering keeps its timer.
        let timer = catch_unwind(AssertUnwindSafe(|| instance.uses_timer())).unwrap_or(true);
        if timer {
            self.timed.insert(id.clone());
        } else {
            self.timed.remove(id);
        }
        self.ctx
            .monitored
            .set_timed(&self.user_id, !self.timed.is_empty());
        let view = self.view(now);
        let slot = Slot::new(
            id.clone(),
            self.user_id.clone(),
            self.mailbox.clone(),
            Running::new(instance, now.at),
            view,
        );
        self.running.insert(id.clone(), slot);
        self.ctx.counters.strategies.fetch_add(1, Ordering::Relaxed);
        tracing::info!(user_id = %self.user_id, strategy_id = %id, kind = %config.strategy_type, "strategy started");
        true
    }

    /// Takes a strategy out of its lane (its `on_stop`, the owner's to call,
    /// is its last callback); false when it is not running.
    pub(super) fn halt(&self, id: &StrategyId) -> bool {
        let Some(slot) = self.running.get(id) else {
            return false;
        };
        slot.state.lock().stopped = true;
        true
    }

    /// Forgets a halted strategy.
    pub(super) fn remove(&mut self, id: &StrategyId) {
        if self.running.remove(id).is_some() {
            self.ctx.counters.strategies.fetch_sub(1, Ordering::Relaxed);
        }
        if self.timed.remove(id) {
            self.ctx
                .monitored
                .set_timed(&self.user_id, !self.timed.is_empty());
        }
        tracing::info!(user_id = %self.user_id, strategy_id = %id, "strategy stopped");
    }

    /// Calls one callback of a running strategy, contained, with the state
    /// as it is `now` (which its lane is shown from then on too).
    pub(super) fn call(
        &mut self,
        id: &StrategyId,
        now: Now<'_>,
        f: impl FnOnce(&mut dyn Strategy, &StrategyContext<'_>) -> Vec<StrategyCommand>,
    ) -> Call {
        let Some(slot) = self.slot(id) else {
            return Call::Quiet;
        };
        let view = self.view(now);
        let result = {
            let mut guard = slot.state.lock();
            let st = &mut *guard;
            if st.run.suspended(now.at) {
                return Call::Quiet;
            }
            // What it learns here and what the lane shows it stay in step.
            st.show(view, id);
            let orders: Vec<&Order> = now
                .state
                .orders
                .values()
                .filter(|o| o.is_open() && o.strategy_id.as_ref() == Some(id))
                .collect();
            let ctx = StrategyContext {
                strategy_id: id,
                user_id: &now.state.user.id,
                now: now.at,
                positions: &now.state.positions,
                open_orders: &orders,
            };
            let instance = &mut st.run.instance;
            let r = catch_unwind(AssertUnwindSafe(|| f(instance.as_mut(), &ctx)));
            if let Ok(cmds) = &r {
                st.run.beat(now.at);
                if !cmds.is_empty() {
                    st.parks += 1;
                }
            }
            r
        };
        self.ctx.counters.events.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(cmds) if cmds.is_empty() => Call::Quiet,
            Ok(cmds) => Call::Decided(cmds),
            Err(panic) => Call::Failed(panic_text(panic.as_ref())),
        }
    }

    /// Restarts a strategy that failed: a fresh instance from `config` in its
    /// slot, suspended with exponential backoff once it failed more than
    /// `max_restarts_per_minute` times in a minute. The event records it (the
    /// alerting service raises `strategy_crashed` from it).
    pub(super) fn restart(
        &self,
        id: &StrategyId,
        config: &StrategyConfig,
        error: &str,
        at: DateTime<Utc>,
    ) -> Option<MonitorEvent> {
        let fresh = self.ctx.registry.create(config).ok();
        let slot = self.slot(id)?;
        let attempt = {
            let mut st = slot.state.lock();
            let attempt = health::note_failure(&mut st.run, at, &self.ctx.config.monitor);
            if let Some(instance) = fresh {
                st.run.instance = instance;
            }
            attempt
        };
        self.ctx.counters.restarts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ordermon_strategy_restarts_total").increment(1);
        tracing::error!(user_id = %self.user_id, strategy_id = %id, attempt, error, "strategy failed; restarted");
        Some(MonitorEvent::Restarted {
            strategy_id: Some(id.clone()),
            error: error.to_owned(),
            attempt,
        })
    }

    /// Hands a running strategy new parameters (a hot update: no restart).
    pub(super) fn update_params(
        &self,
        id: &StrategyId,
        params: &serde_json::Value,
    ) -> ParamsUpdate {
        let Some(slot) = self.running.get(id) else {
            return ParamsUpdate::Taken;
        };
        let mut st = slot.state.lock();
        let instance = &mut st.run.instance;
        match catch_unwind(AssertUnwindSafe(|| instance.update_params(params))) {
            Ok(Ok(())) => ParamsUpdate::Taken,
            Ok(Err(errors)) => ParamsUpdate::Refused(errors),
            Err(panic) => ParamsUpdate::Failed(panic_text(panic.as_ref())),
        }
    }

    /// The next quote a parked strategy catches up on, or `None` when this
    /// park is over (see [`park`]).
    pub(super) fn next_catch_up(&mut self, slot: &Slot, now: Now<'_>) -> Option<Arc<Quote>> {
        let view = self.view(now);
        park::next_catch_up(slot, view)
    }

    /// The quote caught up on led to a decision the owner executed (see
    /// [`park`]).
    pub(super) fn catch_up_decided(slot: &Slot) {
        park::catch_up_decided(slot);
    }

    /// Still behind after the most quotes the owner catches a strategy up on
    /// (see [`park`]).
    pub(super) fn supersede(&mut self, slot: &Slot, now: Now<'_>) {
        let view = self.view(now);
        park::supersede(slot, view);
    }

    /// The checks of a tick: strategies silent for longer than the heartbeat
    /// timeout (and those heard from again), then orders the venue has not
    /// answered for too long (each reported once per session).
    ///
    /// A strategy without a timer is not called on a tick: the tick counts
    /// as its heartbeat, as a timer callback that does nothing would have,
    /// unless it is suspended after failing.
    pub(super) fn check(
        &mut self,
        at: DateTime<Utc>,
        orders: &HashMap<OrderId, Order>,
    ) -> Vec<MonitorEvent> {
        let cfg = &self.ctx.config.monitor;
        for (id, slot) in &self.running {
            if !self.timed.contains(id) {
                let mut st = slot.state.lock();
                if !st.run.suspended(at) {
                    st.run.beat(at);
                }
            }
        }
        let mut events = health::silent_strategies(&self.running, at, cfg);
        events.extend(health::stuck_orders(
            &mut self.reported_stuck,
            orders,
            at,
            cfg,
        ));
        events
    }

    /// What a strategy asked to be alerted about, as the event the alerting
    /// service raises the alert from; `None` for a bad rule name.
    pub(super) fn strategy_alert(
        &self,
        id: &StrategyId,
        rule: &str,
        severity: Severity,
        summary: String,
        labels: BTreeMap<String, String>,
    ) -> Option<MonitorEvent> {
        let Ok(rule) = RuleName::new(rule) else {
            tracing::warn!(user_id = %self.user_id, strategy_id = %id, rule, "strategy alert with a bad rule name ignored");
            return None;
        };
        metrics::counter!("ordermon_strategy_alerts_total").increment(1);
        Some(MonitorEvent::StrategyAlert {
            strategy_id: id.clone(),
            rule,
            severity,
            summary,
            labels,
        })
    }
}
