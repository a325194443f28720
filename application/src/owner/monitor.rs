//! The monitor inside a user's owner: runs the user's enabled strategies,
//! watches the instruments they and the open orders need, and checks for stuck
//! orders and silent strategies. Everything it notices is a domain event (a
//! monitor event); the alerting service turns those facts into alerts.
//!
//! A strategy runs inside `catch_unwind`: a panic is contained to that strategy,
//! which is rebuilt from its configuration and restarted (with backoff once it
//! keeps failing); the owner, and every other user's monitor, carry on.

use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Duration, Utc};
use ordermon_domain::alert::Severity;
use ordermon_domain::event::{EventPayload, MonitorEvent};
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, RuleName, StrategyId};
use ordermon_domain::order::{NewOrder, Order, OrderStatus};
use ordermon_domain::strategy::{Strategy as StrategyConfig, StrategyStatus};

use super::Owner;
use super::lanes::{Running, Slot, UserView};
use crate::error::AppError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext};
use crate::validate::check_new_order;

/// Which state a published view shows: (cycles flushed, events of this cycle).
type ViewGen = (u64, usize);

/// The monitor's state.
pub(crate) struct MonitorState {
    /// Monitor events are an aggregate per monitor session, so sequences start
    /// at 1 for each run and never collide with an earlier run's.
    aggregate: String,
    seq: u64,
    /// Running strategies; each slot is also in the user's quote lane.
    running: BTreeMap<StrategyId, Arc<Slot>>,
    /// The last view of the user published to the slots.
    view: Option<(ViewGen, Arc<UserView>)>,
    reported_stuck: HashSet<OrderId>,
}

/// Quotes replayed in the owner while releasing a strategy, at most.
const MAX_REPLAY: usize = 64;

pub(crate) fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

fn strategy_client_id(strategy: &StrategyId) -> Option<ClientOrderId> {
    // FNV-1a of the strategy id keeps the id short; the UUIDv7 makes it unique.
    let mut h: u32 = 0x811c_9dc5;
    for b in strategy.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ClientOrderId::new(format!("s{h:08x}-{}", uuid::Uuid::now_v7().simple())).ok()
}

impl Owner {
    fn monitor_event(&mut self, event: MonitorEvent) {
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        m.seq += 1;
        let (id, seq) = (m.aggregate.clone(), m.seq);
        let e = self.envelope(id, seq, EventPayload::Monitor(event));
        self.cycle.events.push(e);
    }

    /// Starts the monitor: enabled strategies, quote subscriptions.
    pub(super) async fn start_monitor(&mut self) {
        if self.monitor.is_some() {
            return;
        }
        if self.state.user.status != ordermon_domain::user::UserStatus::Active {
            // Enabled with plain SQL: adopt it.
            self.state.user.status = ordermon_domain::user::UserStatus::Active;
        }
        if let Err(e) = self.load_strategies().await {
            tracing::error!(user_id = %self.state.user.id, error = %e, "monitor could not load strategies");
            return;
        }
        self.monitor = Some(MonitorState {
            aggregate: format!("{}:{}", self.state.user.id, uuid::Uuid::now_v7().simple()),
            seq: 0,
            running: BTreeMap::new(),
            view: None,
            reported_stuck: HashSet::new(),
        });
        self.ctx.monitored.insert(self.state.user.id.clone());
        tracing::info!(user_id = %self.state.user.id, "monitor started");
        self.monitor_event(MonitorEvent::Started);
        for id in self.strategies.enabled() {
            self.start_strategy(&id).await;
        }
        self.resubscribe();
    }

    /// Stops the monitor gracefully: every strategy gets `on_stop`.
    pub(super) async fn stop_monitor(&mut self, reason: &str) {
        if self.monitor.is_none() {
            return;
        }
        let ids: Vec<StrategyId> = self
            .monitor
            .as_ref()
            .map(|m| m.running.keys().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.stop_strategy(&id).await;
        }
        self.monitor_event(MonitorEvent::Stopped {
            reason: reason.to_owned(),
        });
        self.monitor = None;
        self.ctx.monitored.remove(&self.state.user.id);
        self.ctx.lanes.set(&self.state.user.id, &[]);
        tracing::info!(user_id = %self.state.user.id, reason, "monitor stopped");
    }

    /// Puts the running strategies in the user's quote lane, each under the
    /// instruments it trades.
    pub(super) fn resubscribe(&mut self) {
        let Some(m) = &self.monitor else { return };
        let entries: Vec<(Arc<Slot>, Vec<InstrumentId>)> = m
            .running
            .iter()
            .filter_map(|(id, slot)| {
                let c = self.strategies.get(id)?;
                Some((slot.clone(), c.instruments.clone()))
            })
            .collect();
        self.ctx.lanes.set(&self.state.user.id, &entries);
    }

    /// Which state a view would show now.
    fn view_gen(&self) -> ViewGen {
        (self.published, self.cycle.events.len())
    }

    /// The user's positions and open orders as strategies in a lane see them
    /// (rebuilt only when the state changed).
    fn user_view(&mut self) -> Arc<UserView> {
        let generation = self.view_gen();
        if let Some((g, v)) = self.monitor.as_ref().and_then(|m| m.view.as_ref()) {
            if *g == generation {
                return v.clone();
            }
        }
        let view = Arc::new(UserView {
            positions: self.state.positions.clone(),
            open_orders: self
                .state
                .orders
                .values()
                .filter(|o| o.is_open())
                .cloned()
                .collect(),
        });
        if let Some(m) = self.monitor.as_mut() {
            m.view = Some((generation, view.clone()));
        }
        view
    }

    /// Gives every running strategy the current view (after a commit).
    pub(super) fn publish_view(&mut self) {
        if self.monitor.as_ref().is_none_or(|m| m.running.is_empty()) {
            return;
        }
        let view = self.user_view();
        for slot in self.monitor.iter().flat_map(|m| m.running.values()) {
            let mut st = slot.state.lock();
            if !Arc::ptr_eq(&st.view, &view) {
                st.view = view.clone();
            }
        }
    }

    pub(super) async fn start_strategy(&mut self, id: &StrategyId) {
        let Some(config) = self.strategies.get(id).cloned() else {
            return;
        };
        let instance = match self.ctx.registry.create(&config) {
            Ok(i) => i,
            Err(errors) => {
                let text = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::error!(user_id = %self.state.user.id, strategy_id = %id, error = %text, "strategy cannot start");
                return;
            }
        };
        let now = self.now();
        let view = self.user_view();
        let slot = Slot::new(
            id.clone(),
            self.state.user.id.clone(),
            self.mailbox.clone(),
            Running::new(instance, now),
            view,
        );
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        m.running.insert(id.clone(), slot);
        self.ctx.counters.strategies.fetch_add(1, Ordering::Relaxed);
        tracing::info!(user_id = %self.state.user.id, strategy_id = %id, kind = %config.strategy_type, "strategy started");
        self.invoke(id, |s, ctx| s.on_start(ctx)).await;
    }

    async fn stop_strategy(&mut self, id: &StrategyId) {
        let Some(slot) = self.slot(id) else {
            return;
        };
        // The lane stops calling it first; `on_stop` is its last callback.
        slot.state.lock().stopped = true;
        self.invoke(id, |s, ctx| s.on_stop(ctx)).await;
        if let Some(m) = self.monitor.as_mut() {
            if m.running.remove(id).is_some() {
                self.ctx.counters.strategies.fetch_sub(1, Ordering::Relaxed);
            }
        }
        tracing::info!(user_id = %self.state.user.id, strategy_id = %id, "strategy stopped");
    }

    /// Calls one strategy callback in the owner, contained: a panic restarts
    /// the strategy; what it asks for is executed at once.
    async fn invoke(
        &mut self,
        id: &StrategyId,
        f: impl FnOnce(&mut dyn Strategy, &StrategyContext<'_>) -> Vec<StrategyCommand>,
    ) {
        if self.invoke_once(id, f).await {
            self.release(id).await;
        }
    }

    /// [`Self::invoke`] without the release: returns whether the strategy
    /// asked for something (it then holds its lane until released).
    async fn invoke_once(
        &mut self,
        id: &StrategyId,
        f: impl FnOnce(&mut dyn Strategy, &StrategyContext<'_>) -> Vec<StrategyCommand>,
    ) -> bool {
        let now = self.now();
        let Some(slot) = self.slot(id) else {
            return false;
        };
        let view = self.user_view();
        let result = {
            let mut guard = slot.state.lock();
            let st = &mut *guard;
            if st.run.suspended(now) {
                return false;
            }
            // What it learns here and what the lane shows it stay in step.
            st.view = view;
            let orders: Vec<&Order> = self
                .state
                .orders
                .values()
                .filter(|o| o.is_open() && o.strategy_id.as_ref() == Some(id))
                .collect();
            let ctx = StrategyContext {
                strategy_id: id,
                user_id: &self.state.user.id,
                now,
                positions: &self.state.positions,
                open_orders: &orders,
            };
            let instance = &mut st.run.instance;
            let r = catch_unwind(AssertUnwindSafe(|| f(instance.as_mut(), &ctx)));
            if let Ok(cmds) = &r {
                st.run.beat(now);
                if !cmds.is_empty() {
                    st.holds += 1;
                }
            }
            r
        };
        self.ctx.counters.events.fetch_add(1, Ordering::Relaxed);
        match result {
            // Most callbacks decide nothing: skip the boxed future then.
            Ok(cmds) if cmds.is_empty() => false,
            Ok(cmds) => {
                self.execute(id, cmds).await;
                true
            }
            Err(panic) => {
                self.restart_strategy(id, &panic_text(panic.as_ref()));
                false
            }
        }
    }

    /// Ends one hold of a strategy: the quotes it missed while held are fed
    /// to it here, in order, and the lane takes over again with a fresh view.
    async fn release(&mut self, id: &StrategyId) {
        let Some(slot) = self.slot(id) else {
            return;
        };
        for _ in 0..MAX_REPLAY {
            let view = self.user_view();
            let quote = {
                let mut st = slot.state.lock();
                if st.holds > 1 {
                    // Another decision is still on its way to this owner.
                    st.holds -= 1;
                    return;
                }
                match st.pending.pop_front() {
                    Some(q) if !st.stopped => q,
                    _ => {
                        st.pending.clear();
                        st.holds = 0;
                        st.view = view;
                        return;
                    }
                }
            };
            if self.invoke_once(id, |s, ctx| s.on_quote(ctx, &quote)).await {
                // Acted on the replayed quote and executed it: that hold is done.
                let mut st = slot.state.lock();
                st.holds = st.holds.saturating_sub(1).max(1);
            }
        }
        // Still behind after many replays: the rest is superseded.
        let view = self.user_view();
        let mut st = slot.state.lock();
        st.pending.clear();
        st.holds = st.holds.saturating_sub(1);
        st.view = view;
    }

    /// The running slot of a strategy.
    fn slot(&self, id: &StrategyId) -> Option<Arc<Slot>> {
        self.monitor.as_ref()?.running.get(id).cloned()
    }

    /// Whether `slot` is still the one running for its strategy.
    fn is_current(&self, slot: &Arc<Slot>) -> bool {
        self.monitor
            .as_ref()
            .and_then(|m| m.running.get(&slot.strategy_id))
            .is_some_and(|s| Arc::ptr_eq(s, slot))
    }

    /// A strategy decided in its lane: execute, then release it.
    pub(super) async fn on_decided(&mut self, slot: Arc<Slot>, cmds: Vec<StrategyCommand>) {
        if !self.is_current(&slot) {
            // Stopped (or restarted under a new slot) since: not executed.
            return;
        }
        let id = slot.strategy_id.clone();
        self.execute(&id, cmds).await;
        self.release(&id).await;
    }

    /// A strategy panicked in its lane: restart it, then release it.
    pub(super) async fn on_failed(&mut self, slot: Arc<Slot>, error: &str) {
        if !self.is_current(&slot) {
            return;
        }
        let id = slot.strategy_id.clone();
        self.restart_strategy(&id, error);
        self.release(&id).await;
    }

    fn restart_strategy(&mut self, id: &StrategyId, error: &str) {
        let now = self.now();
        let limit = self.ctx.config.monitor.max_restarts_per_minute.max(1);
        let Some(config) = self.strategies.get(id).cloned() else {
            return;
        };
        let fresh = self.ctx.registry.create(&config).ok();
        let Some(slot) = self.slot(id) else {
            return;
        };
        let attempt = {
            let mut st = slot.state.lock();
            let run = &mut st.run;
            run.restarts.push_back(now);
            while run
                .restarts
                .front()
                .is_some_and(|t| now - *t > Duration::minutes(1))
            {
                run.restarts.pop_front();
            }
            let attempt = u32::try_from(run.restarts.len()).unwrap_or(u32::MAX);
            if attempt > limit {
                // Keeps failing: back off exponentially (capped at 5 minutes).
                let secs = 2_i64.saturating_pow((attempt - limit).min(8)).min(300);
                run.suspended_until = Some(now + Duration::seconds(secs));
            }
            if let Some(instance) = fresh {
                run.instance = instance;
            }
            attempt
        };
        self.ctx.counters.restarts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ordermon_strategy_restarts_total").increment(1);
        tracing::error!(user_id = %self.state.user.id, strategy_id = %id, attempt, error, "strategy failed; restarted");
        // The alerting service raises `strategy_crashed` from this event.
        self.monitor_event(MonitorEvent::Restarted {
            strategy_id: Some(id.clone()),
            error: error.to_owned(),
            attempt,
        });
    }

    /// Executes what a strategy asked for, through the same paths as the API.
    fn execute<'a>(
        &'a mut self,
        id: &'a StrategyId,
        cmds: Vec<StrategyCommand>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if self.correlation.is_none() {
                // What the strategy does now is one command's worth of events.
                self.correlation = Some(uuid::Uuid::now_v7());
            }
            for cmd in cmds {
                let outcome = match cmd {
                    StrategyCommand::Submit(o) => {
                        let Some(cid) = strategy_client_id(id) else {
                            continue;
                        };
                        let new = NewOrder {
                            client_order_id: cid,
                            user_id: self.state.user.id.clone(),
                            strategy_id: Some(id.clone()),
                            instrument_id: o.instrument_id,
                            side: o.side,
                            order_type: o.order_type,
                            quantity: o.quantity,
                            price: o.price,
                            trigger_price: None,
                            time_in_force: o.time_in_force,
                            expire_at: None,
                            reduce_only: o.reduce_only,
                            post_only: false,
                        };
                        let checked = match self.ctx.catalog.get(&new.instrument_id) {
                            None => Err(AppError::field("instrument_id", "unknown instrument")),
                            Some(inst) => new
                                .validate(self.now())
                                .map_err(AppError::from)
                                .and_then(|()| check_new_order(&new, &inst)),
                        };
                        match checked {
                            Ok(()) => {
                                let r = self.submit(new).await.map(|_| ());
                                if r.is_ok() {
                                    self.bump_stats(id, |s| s.orders += 1);
                                    self.resubscribe();
                                }
                                r
                            }
                            Err(e) => Err(e),
                        }
                    }
                    StrategyCommand::Modify { order_id, change } => {
                        self.modify(order_id, change).await.map(|_| ())
                    }
                    StrategyCommand::Cancel { order_id } => self.cancel(order_id).await.map(|_| ()),
                    StrategyCommand::RaiseAlert {
                        rule,
                        severity,
                        summary,
                        labels,
                    } => {
                        self.strategy_alert(id, &rule, severity, summary, labels);
                        Ok(())
                    }
                };
                if let Err(e) = outcome {
                    tracing::warn!(user_id = %self.state.user.id, strategy_id = %id, error = %e, "strategy command refused");
                }
            }
        })
    }

    pub(super) fn bump_stats(
        &mut self,
        id: &StrategyId,
        f: impl FnOnce(&mut ordermon_domain::strategy::StrategyStats),
    ) {
        if let Some(s) = self.strategies.get_mut(id) {
            f(&mut s.stats);
        }
    }

    /// Records what a strategy asked to be alerted about; the alerting
    /// service raises the alert from the event.
    fn strategy_alert(
        &mut self,
        id: &StrategyId,
        rule: &str,
        severity: Severity,
        summary: String,
        labels: BTreeMap<String, String>,
    ) {
        let Ok(rule) = RuleName::new(rule) else {
            tracing::warn!(user_id = %self.state.user.id, strategy_id = %id, rule, "strategy alert with a bad rule name ignored");
            return;
        };
        metrics::counter!("ordermon_strategy_alerts_total").increment(1);
        self.monitor_event(MonitorEvent::StrategyAlert {
            strategy_id: id.clone(),
            rule,
            severity,
            summary,
            labels,
        });
    }

    pub(super) async fn on_tick(&mut self) {
        if self.monitor.is_none() {
            return;
        }
        let now = self.now();
        let ids: Vec<StrategyId> = self
            .monitor
            .as_ref()
            .map(|m| m.running.keys().cloned().collect())
            .unwrap_or_default();
        for id in &ids {
            self.invoke(id, |s, ctx| s.on_timer(ctx)).await;
        }
        self.check_heartbeats(now);
        self.check_stuck_orders(now);
    }

    fn check_heartbeats(&mut self, now: DateTime<Utc>) {
        let timeout = Duration::from_std(self.ctx.config.monitor.heartbeat_timeout)
            .unwrap_or(Duration::seconds(60));
        let mut silent = Vec::new();
        let mut resumed = Vec::new();
        for (id, slot) in self.monitor.iter().flat_map(|m| m.running.iter()) {
            let mut st = slot.state.lock();
            let run = &mut st.run;
            let quiet = now - run.last_beat > timeout;
            if !run.heartbeat_reported && quiet {
                run.heartbeat_reported = true;
                silent.push((id.clone(), (now - run.last_beat).num_seconds()));
            } else if run.heartbeat_reported && !quiet {
                run.heartbeat_reported = false;
                resumed.push(id.clone());
            }
        }
        for (id, secs) in silent {
            self.monitor_event(MonitorEvent::StrategyHeartbeatMissing {
                strategy_id: id,
                silent_secs: u64::try_from(secs).unwrap_or(0),
            });
        }
        for id in resumed {
            self.monitor_event(MonitorEvent::StrategyHeartbeatResumed { strategy_id: id });
        }
    }

    fn check_stuck_orders(&mut self, now: DateTime<Utc>) {
        let cfg = &self.ctx.config.monitor;
        let submit = Duration::from_std(cfg.stuck_submit_after).unwrap_or(Duration::seconds(30));
        let cancel = Duration::from_std(cfg.stuck_cancel_after).unwrap_or(Duration::seconds(30));
        let reported = self.monitor.as_ref().map(|m| &m.reported_stuck);
        let stuck: Vec<(OrderId, OrderStatus, i64)> = self
            .state
            .orders
            .values()
            .filter(|o| !reported.is_some_and(|r| r.contains(&o.id)))
            .filter_map(|o| {
                let waited = now - o.updated_at;
                let limit = match o.status {
                    OrderStatus::Submitted => submit,
                    OrderStatus::PendingCancel => cancel,
                    _ => return None,
                };
                (waited > limit).then(|| (o.id, o.status, waited.num_seconds()))
            })
            .collect();
        for (id, status, secs) in stuck {
            if let Some(m) = self.monitor.as_mut() {
                m.reported_stuck.insert(id);
            }
            self.monitor_event(MonitorEvent::StuckOrder {
                order_id: id,
                status,
                waited_secs: u64::try_from(secs).unwrap_or(0),
            });
        }
    }

    /// Feeds order events of strategy orders to their strategies.
    pub(super) async fn feed_order_events(&mut self) {
        // Bounded: commands issued by strategies can cause more events.
        for _ in 0..8 {
            let events = std::mem::take(&mut self.cycle.strategy_events);
            if events.is_empty() || self.monitor.is_none() {
                return;
            }
            for (order_id, event) in events {
                let Some(order) = self.state.orders.get(&order_id).cloned() else {
                    continue;
                };
                let Some(sid) = order.strategy_id.clone() else {
                    continue;
                };
                if let ordermon_domain::order::OrderEvent::Filled { .. } = &event {
                    self.bump_stats(&sid, |s| s.fills += 1);
                }
                self.invoke(&sid, |s, ctx| s.on_order_event(ctx, &order, &event))
                    .await;
            }
            self.resubscribe();
        }
    }

    /// Makes the running set match a strategy's (new) configuration.
    pub(super) async fn apply_strategy_change(
        &mut self,
        id: &StrategyId,
        before: &StrategyConfig,
    ) -> Result<(), AppError> {
        if self.monitor.is_none() {
            return Ok(());
        }
        let Some(now) = self.strategies.get(id).cloned() else {
            self.stop_strategy(id).await;
            self.resubscribe();
            return Ok(());
        };
        let running = self
            .monitor
            .as_ref()
            .is_some_and(|m| m.running.contains_key(id));
        match (now.status, running) {
            (StrategyStatus::Enabled, false) => self.start_strategy(id).await,
            (StrategyStatus::Disabled, true) => self.stop_strategy(id).await,
            (StrategyStatus::Enabled, true) if before.params != now.params => {
                // Hot update: the running instance takes the new params.
                let r = self
                    .monitor
                    .as_ref()
                    .and_then(|m| m.running.get(id))
                    .map(|slot| {
                        let mut st = slot.state.lock();
                        let instance = &mut st.run.instance;
                        catch_unwind(AssertUnwindSafe(|| instance.update_params(&now.params)))
                    });
                match r {
                    Some(Ok(Ok(()))) | None => {}
                    Some(Ok(Err(errors))) => return Err(AppError::Validation(errors)),
                    Some(Err(p)) => self.restart_strategy(id, &panic_text(p.as_ref())),
                }
            }
            _ => {}
        }
        self.resubscribe();
        Ok(())
    }
}
