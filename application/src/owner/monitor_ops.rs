//! The owner's side of its user's monitor (the [`Monitor`], `monitor/`,
//! holds the running strategies): it starts and stops the monitor, lends it
//! the state, calls the strategies' callbacks other than `on_quote`, executes
//! what they ask for through the same paths as the API, has a parked
//! strategy catch up on what it missed, and records what the monitor notices
//! (stuck orders, silent strategies, restarts) as domain events, monitor
//! events, which the alerting service turns into alerts.

use std::sync::Arc;

use ordermon_domain::event::{EventPayload, MonitorEvent};
use ordermon_domain::ids::{ClientOrderId, StrategyId, UserId};
use ordermon_domain::order::NewOrder;
use ordermon_domain::strategy::{Strategy as StrategyConfig, StrategyStatus};
use ordermon_domain::user::UserStatus;

use super::Owner;
use super::lanes::Slot;
use super::monitor::{Call, Monitor, Now, ParamsUpdate};
use crate::error::AppError;
use crate::strategy::{Strategy, StrategyCommand, StrategyContext, StrategyOrder};
use crate::validate::check_new_order;

/// Quotes a strategy catches up on in the owner while it is unparked, at most.
const MAX_CATCH_UP: usize = 64;

impl Owner {
    /// The monitor, when the user is monitored, and the state lent to it.
    fn monitor_now(&mut self) -> Option<(&mut Monitor, Now<'_>)> {
        let m = self.monitor.as_mut()?;
        let now = Now {
            state: &self.state,
            recorded: self.cycle.events.len(),
            at: self.ctx.clock.now(),
        };
        Some((m, now))
    }

    /// Records a monitor event in the cycle (none when not monitored).
    fn monitor_event(&mut self, event: MonitorEvent) {
        let Some((id, seq)) = self.monitor.as_mut().map(Monitor::next_event) else {
            return;
        };
        let e = self.envelope(id, seq, EventPayload::Monitor(event));
        self.cycle.events.push(e);
    }

    /// Starts the monitor: enabled strategies, quote subscriptions.
    pub(super) async fn start_monitor(&mut self) {
        if self.monitor.is_some() {
            return;
        }
        if self.state.user.status != UserStatus::Active {
            // Enabled with plain SQL: adopt it.
            self.state.user.status = UserStatus::Active;
        }
        if let Err(e) = self.load_strategies().await {
            tracing::error!(user_id = %self.state.user.id, error = %e, "monitor could not load strategies");
            return;
        }
        self.monitor = Some(Monitor::open(
            self.ctx.clone(),
            self.state.user.id.clone(),
            self.mailbox.clone(),
        ));
        self.monitor_event(MonitorEvent::Started);
        for id in self.strategies.enabled() {
            self.start_strategy(&id).await;
        }
        self.resubscribe();
    }

    /// Stops the monitor gracefully: every strategy gets `on_stop`.
    pub(super) async fn stop_monitor(&mut self, reason: &str) {
        let Some(ids) = self.monitor.as_ref().map(Monitor::running) else {
            return;
        };
        for id in ids {
            self.stop_strategy(&id).await;
        }
        self.monitor_event(MonitorEvent::Stopped {
            reason: reason.to_owned(),
        });
        if let Some(m) = self.monitor.take() {
            m.close(reason);
        }
    }

    /// Puts the running strategies in the user's quote lane, each under the
    /// instruments it trades.
    pub(super) fn resubscribe(&self) {
        if let Some(m) = &self.monitor {
            m.subscribe(&self.strategies);
        }
    }

    /// Gives every running strategy the current view (after a commit, or
    /// the reload after a failed one).
    pub(super) fn publish_view(&mut self) {
        if let Some((m, now)) = self.monitor_now() {
            m.committed(now);
        }
    }

    pub(super) async fn start_strategy(&mut self, id: &StrategyId) {
        let Some(config) = self.strategies.get(id).cloned() else {
            return;
        };
        let started = self
            .monitor_now()
            .is_some_and(|(m, now)| m.start_strategy(id, &config, now));
        if started {
            self.invoke(id, |s, ctx| s.on_start(ctx)).await;
        }
    }

    async fn stop_strategy(&mut self, id: &StrategyId) {
        if !self.monitor.as_ref().is_some_and(|m| m.halt(id)) {
            return;
        }
        self.invoke(id, |s, ctx| s.on_stop(ctx)).await;
        if let Some(m) = self.monitor.as_mut() {
            m.remove(id);
        }
    }

    /// Calls one strategy callback in the owner, contained: a panic restarts
    /// the strategy; what it asks for is executed at once.
    async fn invoke(
        &mut self,
        id: &StrategyId,
        f: impl FnOnce(&mut dyn Strategy, &StrategyContext<'_>) -> Vec<StrategyCommand>,
    ) {
        if self.invoke_once(id, f).await {
            self.unpark(id).await;
        }
    }

    /// [`Self::invoke`] without the unpark: returns whether the strategy
    /// asked for something (it is then parked in its lane until unparked).
    async fn invoke_once(
        &mut self,
        id: &StrategyId,
        f: impl FnOnce(&mut dyn Strategy, &StrategyContext<'_>) -> Vec<StrategyCommand>,
    ) -> bool {
        let Some((m, now)) = self.monitor_now() else {
            return false;
        };
        // Most callbacks decide nothing: skip the boxed future then.
        match m.call(id, now, f) {
            Call::Quiet => false,
            Call::Decided(cmds) => {
                self.execute(id, cmds).await;
                true
            }
            Call::Failed(error) => {
                self.restart_strategy(id, &error);
                false
            }
        }
    }

    /// Ends one park of a strategy: it catches up here, in order, on the
    /// quotes it missed while parked, and the lane takes over again with a
    /// fresh view.
    async fn unpark(&mut self, id: &StrategyId) {
        let Some(slot) = self.monitor.as_ref().and_then(|m| m.slot(id)) else {
            return;
        };
        for _ in 0..MAX_CATCH_UP {
            let Some((m, now)) = self.monitor_now() else {
                return;
            };
            let Some(quote) = m.next_catch_up(&slot, now) else {
                return;
            };
            if self.invoke_once(id, |s, ctx| s.on_quote(ctx, &quote)).await {
                // Acted on the quote caught up on and executed it: that park
                // is done.
                Monitor::catch_up_decided(&slot);
            }
        }
        if let Some((m, now)) = self.monitor_now() {
            m.supersede(&slot, now);
        }
    }

    /// A strategy decided in its lane: execute, then unpark it.
    pub(super) async fn on_decided(&mut self, slot: Arc<Slot>, cmds: Vec<StrategyCommand>) {
        if !self.monitor.as_ref().is_some_and(|m| m.is_current(&slot)) {
            // Stopped (or restarted under a new slot) since: not executed.
            return;
        }
        let id = slot.strategy_id.clone();
        self.execute(&id, cmds).await;
        self.unpark(&id).await;
    }

    /// A strategy panicked in its lane: restart it, then unpark it.
    pub(super) async fn on_failed(&mut self, slot: Arc<Slot>, error: &str) {
        if !self.monitor.as_ref().is_some_and(|m| m.is_current(&slot)) {
            return;
        }
        let id = slot.strategy_id.clone();
        self.restart_strategy(&id, error);
        self.unpark(&id).await;
    }

    fn restart_strategy(&mut self, id: &StrategyId, error: &str) {
        let Some(config) = self.strategies.get(id).cloned() else {
            return;
        };
        let event = self
            .monitor_now()
            .and_then(|(m, now)| m.restart(id, &config, error, now.at));
        if let Some(event) = event {
            self.monitor_event(event);
        }
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
                        let Some(new) = strategy_order(&self.state.user.id, id, o) else {
                            continue;
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
                                    self.strategies.update_stats(id, |s| s.orders += 1);
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
                        let event = self
                            .monitor
                            .as_ref()
                            .and_then(|m| m.strategy_alert(id, &rule, severity, summary, labels));
                        if let Some(event) = event {
                            self.monitor_event(event);
                        }
                        Ok(())
                    }
                };
                if let Err(e) = outcome {
                    tracing::warn!(user_id = %self.state.user.id, strategy_id = %id, error = %e, "strategy command refused");
                }
            }
        })
    }

    pub(super) async fn on_tick(&mut self) {
        let Some(ids) = self.monitor.as_ref().map(Monitor::timed) else {
            return;
        };
        let now = self.now();
        for id in &ids {
            self.invoke(id, |s, ctx| s.on_timer(ctx)).await;
        }
        let events = match self.monitor.as_mut() {
            Some(m) => m.check(now, &self.state.orders),
            None => Vec::new(),
        };
        for event in events {
            self.monitor_event(event);
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
                    self.strategies.update_stats(&sid, |s| s.fills += 1);
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
        let Some(running) = self.monitor.as_ref().map(|m| m.is_running(id)) else {
            return Ok(());
        };
        let Some(after) = self.strategies.get(id).cloned() else {
            self.stop_strategy(id).await;
            self.resubscribe();
            return Ok(());
        };
        match (after.status, running) {
            (StrategyStatus::Enabled, false) => self.start_strategy(id).await,
            (StrategyStatus::Disabled, true) => self.stop_strategy(id).await,
            (StrategyStatus::Enabled, true) if before.params != after.params => {
                // Hot update: the running instance takes the new params.
                let update = self
                    .monitor
                    .as_ref()
                    .map_or(ParamsUpdate::Taken, |m| m.update_params(id, &after.params));
                match update {
                    ParamsUpdate::Taken => {}
                    ParamsUpdate::Refused(errors) => return Err(AppError::Validation(errors)),
                    ParamsUpdate::Failed(error) => self.restart_strategy(id, &error),
                }
            }
            _ => {}
        }
        self.resubscribe();
        Ok(())
    }
}

/// The order a strategy asked for, as a submission of the user's; `None`
/// when no client order id could be made for it.
fn strategy_order(user: &UserId, strategy: &StrategyId, o: StrategyOrder) -> Option<NewOrder> {
    Some(NewOrder {
        client_order_id: strategy_client_id(strategy)?,
        user_id: user.clone(),
        strategy_id: Some(strategy.clone()),
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
    })
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
