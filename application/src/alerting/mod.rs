//! Alerting: rules over events and metrics, the alert lifecycle (pending →
//! firing → resolved, acknowledgement, silences, inhibition, escalation),
//! anomaly detection and failure prediction, and the notifications that go out
//! to receivers. Its own service ([`AlertingService`]), wired by the
//! composition root; the engine knows nothing of it.
//!
//! How it fits together:
//!
//! - [`observed`] turns every committed event into per-user series
//!   ([`series`], [`flow`]);
//! - [`eval`] decides the rules ([`rule`], built-ins in [`catalog`]) on them,
//!   with [`sampled`] for detectors ([`detect`]), baselines and predictions;
//! - [`book`] keeps the alerts' lifecycle, [`dispatch`] groups them into
//!   notifications along the routes ([`route`]), [`deliver`] sends those
//!   through the notifier port with retries;
//! - [`worker`] is the one task that owns all of it; [`service`] is the API.

pub mod book;
pub mod catalog;
pub mod config;
pub mod deliver;
pub mod detect;
pub mod dispatch;
pub mod eval;
pub mod flow;
pub mod measure;
pub mod observed;
pub mod route;
pub mod rule;
pub mod sampled;
pub mod seed;
pub mod series;
pub mod service;
pub mod signal;
pub mod status;
pub mod template;
pub mod worker;

pub use config::{
    AlertingConfig, AlertingConfigError, DeliveryConfig, EscalationConfig, InhibitRule,
};
pub use eval::SystemFigures;
pub use route::RouteConfig;
pub use rule::{BuiltinSettings, RuleConfig, RuleError};
pub use service::{AlertFilter, AlertingDeps, AlertingService, OverridePatch, RuleView};
pub use signal::{Signal, SignalScope};
pub use status::AlertingStatus;

/// Figures of the instance that alerting rules read (relay backlog, dead
/// letters, owners' queues), supplied by the composition root.
#[async_trait::async_trait]
pub trait SystemProbe: Send + Sync {
    /// The figures now; `None` for those this instance does not have.
    async fn figures(&self) -> SystemFigures;
}
