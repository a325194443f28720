//! Accounts: audited cash adjustments, a user's consistent snapshot, the
//! portfolio valued at the latest marks and the positions.

use std::sync::Arc;

use ordermon_domain::Decimal;
use ordermon_domain::account::Account;
use ordermon_domain::ids::UserId;
use ordermon_domain::position::Position;
use ordermon_domain::values::Money;

use super::Core;
use crate::error::AppError;
use crate::high_water::HighWaterMarks;
use crate::owner::Command;
use crate::views::{self, PortfolioView, PositionView, Snapshot};

/// The account use cases.
#[derive(Clone, Debug)]
pub struct AccountService {
    pub(super) core: Core,
    pub(super) high_water: Arc<HighWaterMarks>,
}

impl AccountService {
    /// An audited deposit or withdrawal.
    ///
    /// # Errors
    /// NotFound; Conflict `insufficient_funds` for a withdrawal beyond free cash.
    #[tracing::instrument(skip_all, fields(user_id = %id), err)]
    pub async fn adjust_cash(
        &self,
        id: &UserId,
        amount: Money,
        reason: String,
    ) -> Result<Account, AppError> {
        if reason.trim().is_empty() || reason.len() > 500 {
            return Err(AppError::field("reason", "must be 1-500 characters"));
        }
        self.core
            .ask(id, |reply| Command::AdjustCash {
                amount: Box::new(amount),
                reason,
                reply,
            })
            .await
    }

    /// A consistent snapshot of a user's state from its owner.
    ///
    /// # Errors
    /// NotFound.
    pub async fn snapshot(&self, id: &UserId) -> Result<Snapshot, AppError> {
        self.core.ask(id, |reply| Command::Snapshot { reply }).await
    }

    /// Account and positions valued at the latest marks.
    ///
    /// # Errors
    /// NotFound.
    pub async fn portfolio(&self, id: &UserId) -> Result<PortfolioView, AppError> {
        // The owner's state is cached; the valuation uses the latest marks.
        let today = self.core.ctx.clock.now().date_naive();
        let snap = self
            .core
            .cache
            .snapshot(id, today, || self.snapshot(id))
            .await?;
        let mut view = views::portfolio(&snap, &self.core.ctx.quotes, Decimal::MIN);
        // The stored mark (shared by every instance, kept across restarts).
        self.high_water
            .observe(id, &mut view, self.core.ctx.clock.now())
            .await;
        Ok(view)
    }

    /// A user's positions (open and closed), valued.
    ///
    /// # Errors
    /// Store failures.
    pub async fn positions(&self, id: &UserId) -> Result<Vec<PositionView>, AppError> {
        let positions: Vec<Position> = self
            .core
            .ctx
            .persistence
            .positions
            .list_positions(id)
            .await?;
        Ok(positions
            .iter()
            .map(|p| PositionView::of(p, &self.core.ctx.quotes))
            .collect())
    }
}
