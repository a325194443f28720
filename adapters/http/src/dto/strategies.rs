//! Strategies as the API shows them, and per-user log lines.

use chrono::{DateTime, NaiveDate, Utc};
use ordermon_application::StrategyPatch;
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::strategy::{Strategy, StrategyStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a strategy runs.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyStatusDoc {
    /// Running in the owner's monitor.
    Enabled,
    /// Stopped.
    Disabled,
}

/// `POST /api/v1/strategies`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStrategyRequest {
    /// Id, 1–64 of `[A-Za-z0-9_.-]`.
    #[schema(value_type = crate::dto::formats::StrategyId, example = "btc-twap-1")]
    pub id: StrategyId,
    /// Registry type: `price_alert`, `stop_loss_take_profit`, `twap`, `mean_reversion`.
    #[serde(rename = "type")]
    pub strategy_type: String,
    /// Display name (1–200 characters, not blank).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Instruments it trades or watches.
    #[schema(value_type = Vec<crate::dto::formats::InstrumentId>, max_items = 100)]
    pub instruments: Vec<InstrumentId>,
    /// Parameters, validated by the type (decimals as strings).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// `enabled` (default) or `disabled`.
    #[serde(default)]
    #[schema(value_type = Option<StrategyStatusDoc>)]
    pub status: Option<StrategyStatus>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl CreateStrategyRequest {
    /// The strategy to create for `user`.
    #[must_use]
    pub fn into_strategy(self, user: UserId, now: DateTime<Utc>) -> Strategy {
        Strategy {
            id: self.id,
            user_id: user,
            strategy_type: self.strategy_type,
            name: self.name,
            instruments: self.instruments,
            params: self.params,
            status: self.status.unwrap_or_default(),
            stats: Default::default(),
            created_at: now,
            updated_at: now,
            version: 0,
            sequence: 0,
        }
    }
}

/// `PATCH /api/v1/strategies/{id}`: every field optional. New params apply to
/// the running strategy without a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchStrategyRequest {
    /// New display name (1–200 characters, not blank).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// New parameters.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// Enable or disable.
    #[serde(default)]
    #[schema(value_type = Option<StrategyStatusDoc>)]
    pub status: Option<StrategyStatus>,
    /// New instruments.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::dto::formats::InstrumentId>>, max_items = 100)]
    pub instruments: Option<Vec<InstrumentId>>,
}

impl From<PatchStrategyRequest> for StrategyPatch {
    fn from(p: PatchStrategyRequest) -> Self {
        Self {
            name: p.name,
            params: p.params,
            status: p.status,
            instruments: p.instruments,
        }
    }
}

/// Running figures of a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StrategyStatsView {
    /// Orders submitted.
    pub orders: u64,
    /// Fills received.
    pub fills: u64,
    /// Realized PnL (string decimal).
    pub realized_pnl: String,
    /// Profitable round trips.
    pub wins: u64,
    /// Losing round trips.
    pub losses: u64,
    /// `wins / (wins + losses)`, absent before the first round trip.
    pub win_rate: Option<String>,
}

/// A strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StrategyView {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Registry type.
    #[serde(rename = "type")]
    pub strategy_type: String,
    /// Display name (1–200 characters, not blank).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Instruments.
    pub instruments: Vec<String>,
    /// Parameters.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Running or not.
    #[schema(value_type = StrategyStatusDoc)]
    pub status: StrategyStatus,
    /// Figures.
    pub stats: StrategyStatsView,
    /// Restarts after failures since the server started.
    pub restarts: u64,
    /// What the last failure said.
    pub last_error: Option<String>,
    /// When it last failed.
    pub last_restart_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: u64,
}

impl From<Strategy> for StrategyView {
    fn from(s: Strategy) -> Self {
        Self {
            stats: StrategyStatsView {
                orders: s.stats.orders,
                fills: s.stats.fills,
                realized_pnl: s.stats.realized_pnl.to_string(),
                wins: s.stats.wins,
                losses: s.stats.losses,
                win_rate: s.stats.win_rate().map(|r| r.round_dp(4).to_string()),
            },
            id: s.id.to_string(),
            user_id: s.user_id.to_string(),
            strategy_type: s.strategy_type,
            name: s.name,
            instruments: s.instruments.iter().map(ToString::to_string).collect(),
            params: s.params,
            status: s.status,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
            restarts: 0,
            last_error: None,
            last_restart_at: None,
        }
    }
}

impl StrategyView {
    /// Adds how the strategy has been running.
    #[must_use]
    pub fn with_run(mut self, run: ordermon_application::strategy_health::StrategyRun) -> Self {
        self.restarts = run.restarts;
        self.last_error = run.last_error;
        self.last_restart_at = run.last_restart_at;
        self
    }
}

/// `GET /api/v1/strategies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StrategyList {
    /// The user's strategies.
    pub items: Vec<StrategyView>,
}

/// One strategy type of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StrategyTypeView {
    /// Registry key.
    #[serde(rename = "type")]
    pub type_name: String,
    /// What it does and its params.
    pub description: String,
}

/// `GET /api/v1/users/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UserLogView {
    /// The user.
    pub user_id: String,
    /// The day (UTC).
    #[schema(value_type = String, example = "2026-11-22")]
    pub date: NaiveDate,
    /// A page of that day's lines, oldest first.
    pub lines: Vec<String>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
