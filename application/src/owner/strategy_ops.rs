//! Owner commands about the user's strategies: create, change, delete, list
//! and reconcile with the store. The strategy book (`strategy_book.rs`)
//! says what a change makes of a configuration; the owner is its only
//! writer, records the change (version, events) and makes the running
//! monitor match it (`Owner::apply_strategy_change`, `monitor_ops.rs`).

use ordermon_domain::event::{EventPayload, StrategyEvent, strategy_aggregate_id};
use ordermon_domain::ids::StrategyId;
use ordermon_domain::strategy::{Strategy as StrategyConfig, StrategyStatus};

use super::Owner;
use super::strategy_book::{self, StrategyPatch};
use crate::error::AppError;

impl Owner {
    /// Reads the user's strategies from the store, once.
    pub(super) async fn load_strategies(&mut self) -> Result<(), AppError> {
        if !self.strategies.is_loaded() {
            let list = self
                .ctx
                .persistence
                .strategies
                .list_strategies(&self.state.user.id)
                .await?;
            self.strategies.load(list);
        }
        Ok(())
    }

    /// Records that this cycle writes strategy `id` (once per cycle: the
    /// version it expects, and the next one).
    fn touch_strategy(&mut self, id: &StrategyId) {
        let Some(s) = self.strategies.get_mut(id) else {
            return;
        };
        if !self.cycle.strategies.contains_key(id) {
            self.cycle.strategies.insert(id.clone(), s.version);
            s.version += 1;
        }
    }

    /// Records `events` of strategy `id` (which the book still holds).
    fn strategy_events(&mut self, id: &StrategyId, events: Vec<StrategyEvent>) {
        for event in events {
            let Some(s) = self.strategies.get_mut(id) else {
                return;
            };
            s.sequence += 1;
            let seq = s.sequence;
            let aggregate = strategy_aggregate_id(&self.state.user.id, id);
            let e = self.envelope(aggregate, seq, EventPayload::Strategy(event));
            self.cycle.events.push(e);
        }
    }

    fn validate_strategy(&self, s: &StrategyConfig) -> Result<(), AppError> {
        strategy_book::validate(s, &self.ctx.catalog, &self.ctx.registry)
    }

    pub(super) async fn create_strategy(
        &mut self,
        s: StrategyConfig,
    ) -> Result<StrategyConfig, AppError> {
        self.load_strategies().await?;
        let s = strategy_book::new_strategy(s, &self.state.user.id);
        self.validate_strategy(&s)?;
        if self.strategies.get(&s.id).is_some()
            || self
                .ctx
                .persistence
                .strategies
                .get_strategy(&self.state.user.id, &s.id)
                .await?
                .is_some()
        {
            return Err(AppError::Conflict {
                code: "strategy_exists",
                message: format!("strategy {} already exists", s.id),
            });
        }
        let id = s.id.clone();
        self.strategies.put(s.clone());
        self.touch_strategy(&id);
        self.strategy_events(
            &id,
            vec![StrategyEvent::Created {
                strategy: Box::new(s),
            }],
        );
        if self.monitor.is_some()
            && self
                .strategies
                .get(&id)
                .is_some_and(|c| c.status == StrategyStatus::Enabled)
        {
            self.start_strategy(&id).await;
            self.resubscribe();
        }
        self.strategies
            .get(&id)
            .cloned()
            .ok_or(AppError::NotFound("strategy"))
    }

    pub(super) async fn update_strategy(
        &mut self,
        id: &StrategyId,
        patch: StrategyPatch,
    ) -> Result<StrategyConfig, AppError> {
        self.load_strategies().await?;
        let before = self
            .strategies
            .get(id)
            .cloned()
            .ok_or(AppError::NotFound("strategy"))?;
        let mut next = strategy_book::patched(&before, &patch);
        self.validate_strategy(&next)?;
        next.updated_at = self.now();
        let events = strategy_book::change_events(&before, &next);
        self.strategies.put(next);
        self.touch_strategy(id);
        self.strategy_events(id, events);
        self.apply_strategy_change(id, &before).await?;
        self.strategies
            .get(id)
            .cloned()
            .ok_or(AppError::NotFound("strategy"))
    }

    pub(super) async fn delete_strategy(&mut self, id: &StrategyId) -> Result<(), AppError> {
        self.load_strategies().await?;
        let before = self
            .strategies
            .get(id)
            .cloned()
            .ok_or(AppError::NotFound("strategy"))?;
        self.touch_strategy(id);
        self.strategy_events(id, vec![StrategyEvent::Deleted]);
        self.strategies.remove(id);
        self.apply_strategy_change(id, &before).await
    }

    pub(super) async fn list_strategies(&mut self) -> Result<Vec<StrategyConfig>, AppError> {
        self.load_strategies().await?;
        Ok(self.strategies.list())
    }

    /// Reconciles with the database's view of the user's strategies (changed
    /// there with plain SQL): adopts status and params, starts and stops.
    pub(super) async fn sync_strategies(&mut self, fresh: Vec<StrategyConfig>) {
        for (id, before) in self.strategies.replace_all(fresh) {
            if let Err(e) = self.apply_strategy_change(&id, &before).await {
                tracing::warn!(user_id = %self.state.user.id, strategy_id = %id, error = %e, "strategy sync refused new params");
            }
        }
    }
}
