//! `[engine]`: the engine's settings, its reservation pricing and the group committer.

use ordermon_application::committer::CommitConfig;
use ordermon_application::config_decimal;
use ordermon_application::{EngineConfig, MonitorConfig, VenueMode};
use ordermon_domain::risk::RiskParams;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{ConfigError, DatabaseKind, MonitorSettings};
/// `[engine.risk]`: reservation pricing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSettings {
    /// Band over the last price sizing market-order reservations (default `0.05`).
    #[serde(with = "config_decimal")]
    pub market_band: Decimal,
    /// Fee rate in reservations (default `0.001`).
    #[serde(with = "config_decimal")]
    pub fee_rate: Decimal,
    /// Cash collateral per unit of short notional on margin accounts (default `1`).
    #[serde(with = "config_decimal")]
    pub margin_ratio: Decimal,
}

impl Default for RiskSettings {
    fn default() -> Self {
        let d = RiskParams::default();
        Self {
            market_band: d.market_band,
            fee_rate: d.fee_rate,
            margin_ratio: d.margin_ratio,
        }
    }
}

impl From<&RiskSettings> for RiskParams {
    fn from(r: &RiskSettings) -> Self {
        Self {
            market_band: r.market_band,
            fee_rate: r.fee_rate,
            margin_ratio: r.margin_ratio,
        }
    }
}

/// `[engine.commit]`: the group committer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommitSettings {
    /// Most owner batches per transaction (default 256).
    pub max_batches: usize,
    /// Concurrent committing transactions (default 1 for SQLite and memory,
    /// 4 for PostgreSQL and MySQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Batches queued before owners wait (default 8192).
    pub queue: usize,
}

impl Default for CommitSettings {
    fn default() -> Self {
        let d = CommitConfig::default();
        Self {
            max_batches: d.max_batches,
            workers: None,
            queue: d.queue,
        }
    }
}

impl CommitSettings {
    /// The workers for a database: the configured number, else its default.
    #[must_use]
    pub fn workers_for(&self, kind: DatabaseKind) -> usize {
        self.workers.unwrap_or(match kind {
            DatabaseKind::Memory | DatabaseKind::Sqlite => 1,
            DatabaseKind::Postgres | DatabaseKind::MySql => 4,
        })
    }

    /// The committer's settings for a database.
    #[must_use]
    pub fn for_database(&self, kind: DatabaseKind) -> CommitConfig {
        CommitConfig {
            max_batches: self.max_batches,
            workers: self.workers_for(kind),
            queue: self.queue,
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// `paper` (default: the built-in venue fills against the simulated feed) or
    /// `external` (status comes from `POST /api/v1/executions`).
    pub venue: VenueMode,
    /// Commands an owner handles per cycle (default 256).
    pub max_commands_per_cycle: usize,
    /// Commands queued per owner before callers wait (default 1024).
    pub mailbox: usize,
    /// Reservation pricing.
    pub risk: RiskSettings,
    /// Group commit.
    pub commit: CommitSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        let d = EngineConfig::default();
        Self {
            venue: d.venue_mode,
            max_commands_per_cycle: d.max_commands_per_cycle,
            mailbox: d.mailbox,
            risk: RiskSettings::default(),
            commit: CommitSettings::default(),
        }
    }
}

impl EngineSettings {
    /// The engine's settings, with the monitors' from `[monitor]`.
    #[must_use]
    pub fn engine_config(&self, monitor: &MonitorSettings) -> EngineConfig {
        EngineConfig {
            venue_mode: self.venue,
            max_commands_per_cycle: self.max_commands_per_cycle,
            mailbox: self.mailbox,
            risk: RiskParams::from(&self.risk),
            monitor: MonitorConfig::from(monitor),
            ..EngineConfig::default()
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("engine.max_commands_per_cycle", self.max_commands_per_cycle),
            ("engine.mailbox", self.mailbox),
            ("engine.commit.max_batches", self.commit.max_batches),
            ("engine.commit.queue", self.commit.queue),
            ("engine.commit.workers", self.commit.workers.unwrap_or(1)),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError::invalid(key, "must be positive"));
            }
        }
        let r = &self.risk;
        for (key, v) in [
            ("engine.risk.market_band", r.market_band),
            ("engine.risk.fee_rate", r.fee_rate),
        ] {
            if v.is_sign_negative() {
                return Err(ConfigError::invalid(key, "must not be negative"));
            }
        }
        if r.margin_ratio <= Decimal::ZERO {
            return Err(ConfigError::invalid(
                "engine.risk.margin_ratio",
                "must be positive",
            ));
        }
        Ok(())
    }
}
