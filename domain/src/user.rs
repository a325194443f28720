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
}
