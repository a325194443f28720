//! Strategy configuration: what runs for a user, on which instruments, with
//! which parameters. The behaviour lives in the application's strategy registry.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{InstrumentId, StrategyId, UserId};
use crate::user::UnknownName;
use crate::values::decimal_string;

/// `enabled` strategies run; `disabled` ones do not (flip it with plain SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyStatus {
    /// Running.
    #[default]
    Enabled,
    /// Stopped.
    Disabled,
}

impl StrategyStatus {
    /// The database / JSON name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for StrategyStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enabled" => Ok(Self::Enabled),
            "disabled" => Ok(Self::Disabled),
            _ => Err(UnknownName(s.to_owned())),
        }
    }
}

/// Running figures of a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StrategyStats {
    /// Orders submitted.
    pub orders: u64,
    /// Fills received.
    pub fills: u64,
    /// Realized PnL.
    #[serde(with = "decimal_string")]
    pub realized_pnl: Decimal,
    /// Round trips closed with a profit.
    pub wins: u64,
    /// Round trips closed with a loss.
    pub losses: u64,
}

impl StrategyStats {
    /// Wins over closed round trips, or `None` before the first one.
    #[must_use]
    pub fn win_rate(&self) -> Option<Decimal> {
        let n = self.wins + self.losses;
        (n > 0).then(|| Decimal::from(self.wins) / Decimal::from(n))
    }
}

/// A configured strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    /// Id.
    pub id: StrategyId,
    /// Owner.
    pub user_id: UserId,
    /// Registry key of the strategy type (e.g. `twap`).
    #[serde(rename = "type")]
    pub strategy_type: String,
    /// Display name.
    pub name: String,
    /// Instruments it trades or watches.
    pub instruments: Vec<InstrumentId>,
    /// Parameters, validated by the strategy type.
    pub params: serde_json::Value,
    /// Running or not.
    pub status: StrategyStatus,
    /// Figures.
    #[serde(default)]
    pub stats: StrategyStats,
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
