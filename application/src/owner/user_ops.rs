//! Owner commands about the user and the account: cash adjustments, user
//! changes (status, role, limits, kill switch, token revocation) and read
//! snapshots.

use ordermon_domain::account::{Account, AccountError};
use ordermon_domain::event::{AccountEvent, UserEvent};
use ordermon_domain::order::Order;
use ordermon_domain::position::Position;
use ordermon_domain::risk::{RiskLimits, TradingState};
use ordermon_domain::user::{Role, User, UserStatus};
use ordermon_domain::values::Money;
use serde::Deserialize;

use super::Owner;
use crate::error::AppError;
use crate::views::Snapshot;

/// Changes to a user (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Enable or disable monitoring.
    #[serde(default)]
    pub status: Option<UserStatus>,
    /// New risk limits (replaces all limits).
    #[serde(default)]
    pub limits: Option<RiskLimits>,
    /// The user's kill switch.
    #[serde(default)]
    pub trading_state: Option<TradingState>,
    /// The API role (tokens act with at most this role from the next check).
    #[serde(default)]
    pub role: Option<Role>,
    /// Revoke every token issued until now (the user signs in again, or is
    /// given a new token).
    #[serde(default)]
    pub revoke_tokens: bool,
    /// Why (kept in the event).
    #[serde(default)]
    pub reason: Option<String>,
}

impl Owner {
    pub(super) fn adjust_cash(
        &mut self,
        amount: &Money,
        reason: String,
    ) -> Result<Account, AppError> {
        if amount.amount.is_zero() {
            return Err(AppError::field("amount", "must not be zero"));
        }
        self.state
            .account
            .adjust_cash(amount)
            .map_err(|e| match e {
                AccountError::InsufficientFunds { .. } => AppError::Conflict {
                    code: "insufficient_funds",
                    message: e.to_string(),
                },
                _ => AppError::field("amount", e),
            })?;
        self.account_event(AccountEvent::CashAdjusted {
            amount: amount.clone(),
            reason,
        });
        Ok(self.state.account.clone())
    }

    pub(super) async fn update_user(&mut self, patch: UserPatch) -> Result<User, AppError> {
        let now = self.now();
        let reason = patch.reason.clone().unwrap_or_default();
        let mut changed = false;
        if let Some(status) = patch.status
            && status != self.state.user.status
        {
            self.state.user.status = status;
            self.user_event(UserEvent::StatusChanged { status });
            changed = true;
        }
        if let Some(limits) = patch.limits
            && limits != self.state.user.limits
        {
            self.state.user.limits = limits.clone();
            self.user_event(UserEvent::LimitsChanged { limits });
            changed = true;
        }
        if let Some(state) = patch.trading_state
            && state != self.state.user.trading_state
        {
            self.state.user.trading_state = state;
            self.user_event(UserEvent::TradingStateChanged {
                state,
                reason: reason.clone(),
            });
            changed = true;
        }
        if let Some(role) = patch.role
            && role != self.state.user.role
        {
            self.state.user.role = role;
            self.user_event(UserEvent::RoleChanged { role });
            changed = true;
        }
        if patch.revoke_tokens {
            self.state.user.tokens_valid_after = Some(now);
            self.user_event(UserEvent::TokensRevoked { at: now });
            changed = true;
        }
        if changed {
            self.state.user.updated_at = now;
        }
        // Through the API the monitor follows at once, without waiting for a scan.
        match (patch.status, self.monitor.is_some()) {
            (Some(UserStatus::Disabled), true) => self.stop_monitor("user disabled").await,
            (Some(UserStatus::Active), false) => self.start_monitor().await,
            _ => {}
        }
        Ok(self.state.user.clone())
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let mut positions: Vec<Position> = self.state.positions.values().cloned().collect();
        positions.sort_by(|a, b| a.instrument_id.cmp(&b.instrument_id));
        let mut open_orders: Vec<Order> = self
            .state
            .orders
            .values()
            .filter(|o| o.is_open())
            .cloned()
            .collect();
        open_orders.sort_by_key(|o| o.id);
        Snapshot {
            user: self.state.user.clone(),
            account: self.state.account.clone(),
            positions,
            open_orders,
            day_realized: self.state.day_realized,
        }
    }
}
