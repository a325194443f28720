//! What every owner shares: ports, settings, the catalog, quotes and the global kill switch.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ordermon_domain::ids::UserId;

use ordermon_domain::ports::{Clock, ExecutionVenue};
use ordermon_domain::risk::RiskParams;
use serde::{Deserialize, Serialize};

use super::lanes::QuoteLanes;
use crate::catalog::InstrumentCatalog;
use crate::committer::GroupCommitter;
use crate::error::AppError;
use crate::market::QuoteBook;
use crate::persistence::Persistence;
use crate::strategy::StrategyRegistry;

/// Where orders go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VenueMode {
    /// The built-in paper venue trades against the simulated feed.
    #[default]
    Paper,
    /// Orders are only tracked; their status comes from `POST /api/v1/executions`.
    External,
}

/// Owner settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Paper or external.
    pub venue_mode: VenueMode,
    /// Commands an owner handles before it commits (its micro-batch).
    pub max_commands_per_cycle: usize,
    /// Mailbox size per owner (callers wait when it is full: backpressure).
    pub mailbox: usize,
    /// Reservation pricing.
    pub risk: RiskParams,
    /// Monitoring settings.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// Largest event a command may record, as JSON bytes (default 512 KiB,
    /// half of Kafka's default message limit): a command whose event would be
    /// larger is refused and changes nothing, so no event the relay cannot
    /// deliver is ever committed.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
}

fn default_max_event_bytes() -> usize {
    512 * 1024
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            venue_mode: VenueMode::Paper,
            max_commands_per_cycle: 256,
            mailbox: 1024,
            risk: RiskParams::default(),
            monitor: MonitorConfig::default(),
            max_event_bytes: default_max_event_bytes(),
        }
    }
}

/// Monitoring settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    /// How often the database is scanned for user and strategy status changes.
    pub scan_interval: Duration,
    /// How often monitors run timers and checks.
    pub tick_interval: Duration,
    /// A submitted order not acknowledged for this long is stuck.
    pub stuck_submit_after: Duration,
    /// A cancel not confirmed for this long is stuck.
    pub stuck_cancel_after: Duration,
    /// A strategy that has not completed a callback for this long is missing.
    pub heartbeat_timeout: Duration,
    /// Restarts of one strategy within a minute before it is suspended with backoff.
    pub max_restarts_per_minute: u32,
    /// Quote lanes strategies are called in (0: one per core).
    pub lanes: usize,
    /// The nice value of the lanes' threads (Linux; -20 to 19, lower runs
    /// first when cores are shared; 0 leaves them at the process's). Below
    /// the process's value it needs `CAP_SYS_NICE` or a nice limit; refused,
    /// the lanes keep the process's priority. See `owner::lane_priority`.
    pub lane_nice: i32,
}

impl MonitorConfig {
    /// The number of quote lanes: `lanes`, or one per core when 0.
    #[must_use]
    pub fn lane_count(&self) -> usize {
        if self.lanes > 0 {
            self.lanes
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            scan_interval: Duration::from_secs(10),
            tick_interval: Duration::from_secs(1),
            stuck_submit_after: Duration::from_secs(30),
            stuck_cancel_after: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(60),
            max_restarts_per_minute: 5,
            lanes: 0,
            lane_nice: -5,
        }
    }
}

/// Running figures of the monitors, for `/status`.
#[derive(Debug, Default)]
pub struct MonitorCounters {
    /// Quotes, ticks and order events fed to monitors.
    pub events: AtomicU64,
    /// Strategy restarts after a failure.
    pub restarts: AtomicU64,
    /// Strategies currently running.
    pub strategies: AtomicU64,
}

/// Shared by every owner.
pub(crate) struct Context {
    pub(crate) persistence: Persistence,
    /// Owners' start-up reads, batched.
    pub(crate) loads: crate::state_loads::StateLoads,
    pub(crate) committer: GroupCommitter,
    pub(crate) venue: OnceLock<Arc<dyn ExecutionVenue>>,
    pub(crate) quotes: Arc<QuoteBook>,
    pub(crate) catalog: Arc<InstrumentCatalog>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    pub(crate) global: Arc<crate::trading_switch::GlobalSwitch>,
    /// Set when instances share users: only owned users' owners run here.
    pub(crate) ownership: OnceLock<Arc<crate::ownership::UserOwnership>>,
    pub(crate) registry: Arc<StrategyRegistry>,
    pub(crate) lanes: QuoteLanes,
    /// Users whose monitor runs (the owner is the source of truth).
    pub(crate) monitored: super::monitored::MonitoredUsers,
    pub(crate) counters: MonitorCounters,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The fence a commit of `user`'s owner carries, when users are shared.
    pub(crate) fn fence(&self, user: &UserId) -> Option<ordermon_domain::ports::Fence> {
        self.ownership.get().map(|o| o.fence(user))
    }

    /// Why this instance may not run `user`'s owner, if it may not.
    pub(crate) fn refuse_owner(&self, user: &UserId) -> Option<AppError> {
        let o = self.ownership.get()?;
        if o.owns(user) {
            return None;
        }
        Some(AppError::OwnedElsewhere {
            user: user.to_string(),
            owner: o.owner_elsewhere(user),
        })
    }

    /// The venue orders are sent to, or `None` in external mode.
    pub(crate) fn venue(&self) -> Option<&Arc<dyn ExecutionVenue>> {
        match self.config.venue_mode {
            VenueMode::Paper => self.venue.get(),
            VenueMode::External => None,
        }
    }
}
