//! Strategies: create, change, delete and read a user's strategies (each
//! change goes through the user's owner, so it takes effect in the user's
//! monitor at once), and the registry of strategy types.

use ordermon_domain::ids::{StrategyId, UserId};
use ordermon_domain::strategy::Strategy;

use super::Core;
use crate::error::AppError;
use crate::owner::{Command, StrategyPatch};
use crate::strategy::StrategyRegistry;

/// The strategy use cases.
#[derive(Clone, Debug)]
pub struct StrategyService {
    pub(super) core: Core,
}

impl StrategyService {
    /// The strategy registry.
    #[must_use]
    pub fn registry(&self) -> &StrategyRegistry {
        &self.core.ctx.registry
    }

    /// Creates a strategy (params validated by its type; bad params → 422, nothing saved).
    ///
    /// # Errors
    /// Validation, Conflict when the id exists, NotFound user.
    pub async fn create(&self, strategy: Strategy) -> Result<Strategy, AppError> {
        let user = strategy.user_id.clone();
        self.core
            .ask(&user, |reply| Command::CreateStrategy {
                strategy: Box::new(strategy),
                reply,
            })
            .await
    }

    /// Changes a strategy's name, params, instruments or status.
    ///
    /// # Errors
    /// NotFound, Validation.
    pub async fn update(
        &self,
        user: &UserId,
        id: &StrategyId,
        patch: StrategyPatch,
    ) -> Result<Strategy, AppError> {
        let id = id.clone();
        self.core
            .ask(user, |reply| Command::UpdateStrategy {
                id,
                patch: Box::new(patch),
                reply,
            })
            .await
    }

    /// Deletes a strategy (stopping it first).
    ///
    /// # Errors
    /// NotFound.
    pub async fn delete(&self, user: &UserId, id: &StrategyId) -> Result<(), AppError> {
        let id = id.clone();
        self.core
            .ask(user, |reply| Command::DeleteStrategy { id, reply })
            .await
    }

    /// A user's strategies, with their live stats.
    ///
    /// # Errors
    /// NotFound user.
    pub async fn list(&self, user: &UserId) -> Result<Vec<Strategy>, AppError> {
        self.core
            .ask(user, |reply| Command::ListStrategies { reply })
            .await
    }

    /// One of `user`'s strategies, with its live stats (strategy ids are
    /// unique per user: another user's strategy of the same id is not seen).
    ///
    /// # Errors
    /// NotFound.
    pub async fn get(&self, user: &UserId, id: &StrategyId) -> Result<Strategy, AppError> {
        let (strategies, user_id, key) = (
            self.core.ctx.persistence.strategies.clone(),
            user.clone(),
            id.clone(),
        );
        let stored = self
            .core
            .cache
            .strategy(user, id, || async move {
                Ok(strategies.get_strategy(&user_id, &key).await?)
            })
            .await?
            .filter(|s| &s.user_id == user)
            .ok_or(AppError::NotFound("strategy"))?;
        // The owner holds the live stats.
        Ok(self
            .list(&stored.user_id)
            .await?
            .into_iter()
            .find(|s| &s.id == id)
            .unwrap_or(stored))
    }
}
