//! The owner's commit: the cycle's writes (state rows with the versions they
//! expect, events, outbox rows) go to the group committer as one change set;
//! its outcome answers the cycle's callers. A failed commit reloads the
//! user's state, which is then ahead of the store.

use ordermon_domain::ids::OrderId;
use ordermon_domain::ports::{ChangeSet, ReservationWrite, StateChange};

use super::state::{Cycle, UserState};
use super::{Owner, traced};
use crate::error::AppError;

impl Owner {
    /// Commits the cycle and answers its callers.
    pub(super) async fn flush(&mut self) {
        let cycle = std::mem::take(&mut self.cycle);
        if !cycle.has_writes() {
            // Terminal orders loaded for a command that changed nothing (a
            // cancel of a filled order) do not stay in memory.
            self.state.orders.retain(|_, o| !o.status.is_terminal());
            for r in cycle.replies {
                r(Ok(()));
            }
            return;
        }
        let mut batch = match self.build_batch(&cycle) {
            Ok(mut b) => {
                b.fence = self.ctx.fence(&self.state.user.id);
                b
            }
            Err(e) => {
                self.fail_cycle(cycle, e).await;
                return;
            }
        };
        // One commit span per traced command, ending when the commit does.
        let _commits = traced::commit_spans(&cycle.traced, &mut batch.outbox);
        match self.ctx.committer.commit(batch).await {
            Ok(_) => {
                metrics::counter!("ordermon_owner_cycles_total").increment(1);
                self.state.orders.retain(|_, o| !o.status.is_terminal());
                self.publish_view();
                for r in cycle.replies {
                    r(Ok(()));
                }
            }
            Err(e) => {
                // A duplicate (two requests racing for one id) or a version
                // conflict is the client's 409, not a server fault.
                if matches!(
                    e,
                    ordermon_domain::ports::StoreError::Duplicate { .. }
                        | ordermon_domain::ports::StoreError::Conflict { .. }
                ) {
                    tracing::info!(user_id = %self.state.user.id, error = %e, "commit refused; reloading user state");
                } else {
                    tracing::error!(user_id = %self.state.user.id, error = %e, "commit failed; reloading user state");
                }
                self.fail_cycle(cycle, e.into()).await;
            }
        }
    }

    async fn fail_cycle(&mut self, cycle: Cycle, e: AppError) {
        metrics::counter!("ordermon_owner_commit_failures_total").increment(1);
        for r in cycle.replies {
            r(Err(e.clone()));
        }
        // The in-memory state is ahead of the store: reload it.
        let now = self.now();
        match self.ctx.loads.load(&self.state.user.id).await {
            Ok(Some(records)) => {
                let mut fresh = UserState::from_records(records, now);
                let mut cids = std::mem::take(&mut self.state.session_cids);
                for c in &cycle.new_cids {
                    cids.remove(c);
                }
                fresh.session_cids = cids;
                fresh.recent_submits = std::mem::take(&mut self.state.recent_submits);
                self.state = fresh;
            }
            Ok(None) => {
                tracing::error!(user_id = %self.state.user.id, "user vanished during reload")
            }
            Err(err) => {
                tracing::error!(user_id = %self.state.user.id, error = %err, "reload failed; keeping state");
            }
        }
        // Strategies the cycle changed are ahead of the store too.
        if !cycle.strategies.is_empty() {
            match self
                .ctx
                .persistence
                .strategies
                .list_strategies(&self.state.user.id)
                .await
            {
                Ok(fresh) => self.sync_strategies(fresh).await,
                Err(err) => {
                    tracing::error!(user_id = %self.state.user.id, error = %err, "strategy reload failed; reloading on next use");
                    self.strategies.forget();
                }
            }
        }
        self.publish_view();
    }

    fn build_batch(&self, cycle: &Cycle) -> Result<ChangeSet, AppError> {
        let mut cs = ChangeSet::default();
        for id in &cycle.order_seq {
            let (Some(expected), Some(order)) = (cycle.orders.get(id), self.state.orders.get(id))
            else {
                return Err(AppError::Unexpected(format!("order {id} left the cycle")));
            };
            cs.changes.push(StateChange::Order {
                order: Box::new(order.clone()),
                expected: *expected,
            });
        }
        for fill in &cycle.fills {
            cs.changes.push(StateChange::Fill(Box::new(fill.clone())));
        }
        if let Some(expected) = cycle.account {
            // Only the reservations this cycle changed are written: every
            // order it touched, and every order an account event named.
            let mut ids: Vec<OrderId> = cycle
                .reservations
                .iter()
                .chain(&cycle.order_seq)
                .copied()
                .collect();
            ids.sort_unstable();
            ids.dedup();
            cs.changes.push(StateChange::Account {
                account: Box::new(self.state.account.with_reservations_of(&ids)),
                expected,
                reservations: ReservationWrite::Orders(ids),
            });
        }
        for (inst, expected) in &cycle.positions {
            if let Some(p) = self.state.positions.get(inst) {
                cs.changes.push(StateChange::Position {
                    position: Box::new(p.clone()),
                    expected: *expected,
                });
            }
        }
        for (id, expected) in &cycle.strategies {
            match self.strategies.get(id) {
                Some(st) => cs.changes.push(StateChange::Strategy {
                    strategy: Box::new(st.clone()),
                    expected: *expected,
                }),
                None => cs.changes.push(StateChange::DeleteStrategy {
                    id: id.clone(),
                    user_id: self.state.user.id.clone(),
                    expected: *expected,
                }),
            }
        }
        if let Some(expected) = cycle.user {
            cs.changes.push(StateChange::User {
                user: Box::new(self.state.user.clone()),
                expected,
            });
        }
        cs.push_events(cycle.events.iter().cloned())
            .map_err(|e| AppError::Unexpected(e.to_string()))?;
        let max = self.ctx.config.max_event_bytes;
        if let Some(m) = cs.outbox.iter().find(|m| m.payload.len() > max) {
            metrics::counter!("ordermon_events_too_large_total").increment(1);
            return Err(AppError::field(
                "body",
                format!(
                    "the change would record a {} event of {} bytes; at most {max}",
                    m.topic.split('.').take(2).collect::<Vec<_>>().join("."),
                    m.payload.len()
                ),
            ));
        }
        Ok(cs)
    }
}
