//! Administration: the kill switch (one user's or everyone's), the global
//! switch shared by the instances, and the instance's own component health
//! in the event log.

use std::sync::Arc;

use ordermon_domain::event::{AggregateType, DomainEvent, EventPayload, SystemEvent};
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::ChangeSet;
use ordermon_domain::risk::TradingState;

use super::Core;
use crate::error::AppError;
use crate::owner::UserPatch;
use crate::trading_switch::GlobalSwitch;

/// The administration use cases.
#[derive(Clone, Debug)]
pub struct AdminService {
    pub(super) core: Core,
}

impl AdminService {
    /// The global kill switch, shared by the instances on one database.
    #[must_use]
    pub fn global_switch(&self) -> &Arc<GlobalSwitch> {
        &self.core.ctx.global
    }

    /// The kill switch: halt, reduce-only or resume, for one user or everyone.
    ///
    /// # Errors
    /// NotFound user; store failures.
    pub async fn kill_switch(
        &self,
        user: Option<&UserId>,
        state: TradingState,
        reason: String,
        actor: String,
    ) -> Result<TradingState, AppError> {
        if let Some(user) = user {
            let patch = UserPatch {
                trading_state: Some(state),
                reason: Some(format!("{reason} (by {actor})")),
                ..UserPatch::default()
            };
            return self
                .core
                .update_user(user, patch)
                .await
                .map(|u| u.trading_state);
        }
        self.core.ctx.global.engage(state, reason, actor).await
    }

    /// Records in the event log that a supporting component of `instance`
    /// (`cache`, `bus`) stopped working (`Some(reason)`) or works again
    /// (`None`). Each instance's component history is its own aggregate
    /// (`component/{instance}/{component}`), so instances never contend.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_component_health(
        &self,
        instance: &str,
        component: &str,
        problem: Option<String>,
    ) -> Result<(), AppError> {
        let aggregate = format!("component/{instance}/{component}");
        let last = self
            .core
            .ctx
            .persistence
            .events
            .aggregate_events(AggregateType::System, &aggregate)
            .await?
            .last()
            .map_or(0, |e| e.event.sequence);
        let payload = match problem {
            Some(reason) => {
                tracing::warn!(component, %reason, "component degraded");
                SystemEvent::ComponentDegraded {
                    component: component.to_owned(),
                    instance: instance.to_owned(),
                    reason,
                }
            }
            None => {
                tracing::info!(component, "component recovered");
                SystemEvent::ComponentRecovered {
                    component: component.to_owned(),
                    instance: instance.to_owned(),
                }
            }
        };
        let mut cs = ChangeSet::default();
        cs.push_events([DomainEvent::new(
            aggregate,
            last + 1,
            None,
            self.core.ctx.clock.now(),
            None,
            EventPayload::System(payload),
        )])
        .map_err(|e| AppError::Unexpected(e.to_string()))?;
        self.core.ctx.committer.commit(cs).await?;
        Ok(())
    }
}
