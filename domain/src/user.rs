//! Users: who is monitored, their role, limits and trading state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::account::AccountType;
use crate::ids::UserId;
use crate::risk::{RiskLimits, TradingState};

/// `active` users are monitored; `disabled` ones are not (flip it with plain SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Monitored and allowed to trade.
    #[default]
    Active,
    /// Not monitored; new orders are denied.
    Disabled,
}

impl UserStatus {
    /// The database / JSON name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for UserStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err(UnknownName(s.to_owned())),
        }
    }
}

/// What a user may do through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, for every user.
    Admin,
    /// Trade and read their own data.
    #[default]
    Trader,
    /// Read their own data.
    Viewer,
}

impl Role {
    /// The JSON / JWT name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Trader => "trader",
            Self::Viewer => "viewer",
        }
    }
}

impl Role {
    /// The one of `self` and `other` that may do less: a token never acts
    /// with more than its holder's role, nor with more than it was minted for.
    #[must_use]
    pub fn lesser(self, other: Self) -> Self {
        let rank = |r: Self| match r {
            Self::Viewer => 0,
            Self::Trader => 1,
            Self::Admin => 2,
        };
        if rank(other) < rank(self) {
            other
        } else {
            self
        }
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "trader" => Ok(Self::Trader),
            "viewer" => Ok(Self::Viewer),
            _ => Err(UnknownName(s.to_owned())),
        }
    }
}

/// A name that matches none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownName(pub String);

/// Why a valid token may not act for its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No such user.
    #[error("unknown user")]
    UnknownUser,
    /// The user is disabled.
    #[error("user disabled")]
    Disabled,
    /// The token was issued before the user's tokens were revoked.
    #[error("token revoked")]
    Revoked,
}

/// A user of ordermon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Monitored or not.
    pub status: UserStatus,
    /// API role.
    pub role: Role,
    /// Cash or margin.
    #[serde(default)]
    pub account_type: AccountType,
    /// Risk limits.
    #[serde(default)]
    pub limits: RiskLimits,
    /// The user's own kill switch.
    #[serde(default)]
    pub trading_state: TradingState,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency.
    #[serde(default)]
    pub version: u64,
    /// Sequence of the last event of this aggregate in the event log.
    #[serde(default)]
    pub sequence: u64,
    /// Tokens issued before this moment no longer act for the user (an
    /// admin revoked them); `None`: never revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

impl User {
    /// The role a token issued at `issued_at` (Unix seconds) and minted for
    /// `claimed` acts with for this user — the lesser of the two — or why it
    /// may not act at all. A token issued in the second of a revocation is
    /// refused too (token times have whole seconds).
    ///
    /// # Errors
    /// [`TokenRefusal::Disabled`] for a disabled user,
    /// [`TokenRefusal::Revoked`] for a token issued before the user's tokens
    /// were revoked.
    pub fn admit_token(&self, issued_at: i64, claimed: Role) -> Result<Role, TokenRefusal> {
        if self.status == UserStatus::Disabled {
            return Err(TokenRefusal::Disabled);
        }
        if self
            .tokens_valid_after
            .is_some_and(|after| issued_at <= after.timestamp())
        {
            return Err(TokenRefusal::Revoked);
        }
        Ok(self.role.lesser(claimed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> User {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        User {
            id: UserId::new("alice").unwrap_or_else(|_| unreachable!()),
            name: "Alice".into(),
            status: UserStatus::Active,
            role,
            account_type: AccountType::default(),
            limits: RiskLimits::default(),
            trading_state: TradingState::default(),
            created_at: at,
            updated_at: at,
            version: 1,
            sequence: 0,
            tokens_valid_after: None,
        }
    }

    #[test]
    fn a_token_acts_with_the_lesser_role() {
        let admin = user(Role::Admin);
        assert_eq!(admin.admit_token(0, Role::Viewer), Ok(Role::Viewer));
        assert_eq!(admin.admit_token(0, Role::Admin), Ok(Role::Admin));
        let viewer = user(Role::Viewer);
        assert_eq!(viewer.admit_token(0, Role::Admin), Ok(Role::Viewer));
        assert_eq!(
            user(Role::Trader).admit_token(0, Role::Admin),
            Ok(Role::Trader)
        );
    }

    #[test]
    fn disabled_users_and_revoked_tokens_are_refused() {
        let mut u = user(Role::Admin);
        u.status = UserStatus::Disabled;
        assert_eq!(u.admit_token(0, Role::Admin), Err(TokenRefusal::Disabled));
        let mut u = user(Role::Trader);
        u.tokens_valid_after = DateTime::from_timestamp(1_700_000_100, 500_000_000);
        assert_eq!(
            u.admit_token(1_700_000_099, Role::Trader),
            Err(TokenRefusal::Revoked)
        );
        // The second of the revocation itself: refused (it may be before it).
        assert_eq!(
            u.admit_token(1_700_000_100, Role::Trader),
            Err(TokenRefusal::Revoked)
        );
        assert_eq!(u.admit_token(1_700_000_101, Role::Trader), Ok(Role::Trader));
    }
}
