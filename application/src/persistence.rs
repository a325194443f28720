//! The bundle of store and repository ports the application uses.

use std::sync::Arc;

use ordermon_domain::ports::{
    AccountRepository, AlertRepository, AlertRuleRepository, BarRepository, CredentialRepository,
    EventLog, FillRepository, HighWaterRepository, InstrumentRepository, LeaseStore,
    NotificationLog, OrderRepository, Outbox, PositionRepository, ProjectionScan, Retention,
    SilenceRepository, Store, StrategyRepository, UserRepository,
};

/// Every persistence port, usually all backed by one database.
#[derive(Clone)]
pub struct Persistence {
    /// Transactional writes.
    pub store: Arc<dyn Store>,
    /// Orders.
    pub orders: Arc<dyn OrderRepository>,
    /// Fills.
    pub fills: Arc<dyn FillRepository>,
    /// Positions.
    pub positions: Arc<dyn PositionRepository>,
    /// Accounts.
    pub accounts: Arc<dyn AccountRepository>,
    /// Users.
    pub users: Arc<dyn UserRepository>,
    /// Strategies.
    pub strategies: Arc<dyn StrategyRepository>,
    /// Instruments.
    pub instruments: Arc<dyn InstrumentRepository>,
    /// Event log.
    pub events: Arc<dyn EventLog>,
    /// Outbox.
    pub outbox: Arc<dyn Outbox>,
    /// Alerts.
    pub alerts: Arc<dyn AlertRepository>,
    /// Silences.
    pub silences: Arc<dyn SilenceRepository>,
    /// The notification queue and the log of what each group was told.
    pub notifications: Arc<dyn NotificationLog>,
    /// Per-user overrides of alert rules.
    pub alert_rules: Arc<dyn AlertRuleRepository>,
    /// Bars.
    pub bars: Arc<dyn BarRepository>,
    /// Portfolio high-water marks.
    pub high_water: Arc<dyn HighWaterRepository>,
    /// Bulk scans of the projections (replay).
    pub scan: Arc<dyn ProjectionScan>,
    /// What may be purged once old.
    pub retention: Arc<dyn Retention>,
    /// Password hashes and sign-in sessions.
    pub credentials: Arc<dyn CredentialRepository>,
    /// Leases shared by the instances (the outbox relay's, users').
    pub leases: Arc<dyn LeaseStore>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Persistence {
    /// Uses one backend for every port.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: Store
            + OrderRepository
            + FillRepository
            + PositionRepository
            + AccountRepository
            + UserRepository
            + StrategyRepository
            + InstrumentRepository
            + EventLog
            + Outbox
            + AlertRepository
            + SilenceRepository
            + NotificationLog
            + AlertRuleRepository
            + BarRepository
            + HighWaterRepository
            + ProjectionScan
            + Retention
            + CredentialRepository
            + LeaseStore
            + 'static,
    {
        Self {
            store: backend.clone(),
            orders: backend.clone(),
            fills: backend.clone(),
            positions: backend.clone(),
            accounts: backend.clone(),
            users: backend.clone(),
            strategies: backend.clone(),
            instruments: backend.clone(),
            events: backend.clone(),
            outbox: backend.clone(),
            alerts: backend.clone(),
            silences: backend.clone(),
            notifications: backend.clone(),
            alert_rules: backend.clone(),
            bars: backend.clone(),
            high_water: backend.clone(),
            scan: backend.clone(),
            retention: backend.clone(),
            credentials: backend.clone(),
            leases: backend,
        }
    }
}
