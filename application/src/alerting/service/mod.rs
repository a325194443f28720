//! The alerting service: what the API and the composition root use. Reads go
//! to the store; changes to alerts go through the worker (the only writer of
//! alerts), silences and overrides are stored here and then handed to it.
//!
//! `start.rs` builds it and its tasks; `alerts.rs`, `silences.rs` and
//! `rules.rs` are what the API asks of it; this file keeps the handle
//! itself, the way to the worker and the figures for `/status`.

mod alerts;
mod rules;
mod silences;
mod start;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ordermon_domain::ids::UserId;
use ordermon_domain::ports::Clock;
use tokio::sync::{Notify, mpsc, oneshot};

use super::deliver::DeliveryStats;
use super::rule::Rule;
use super::status::{AlertingStatus, StatusCells};
use super::worker::Command;
use crate::committer::GroupCommitter;
use crate::engine::Scope;
use crate::error::AppError;
use crate::persistence::Persistence;

pub use self::alerts::AlertFilter;
pub use self::rules::{OverridePatch, RuleView};
pub use self::start::AlertingDeps;

/// Longest page of a listing.
pub const MAX_PAGE: u32 = 500;

/// The running alerting service.
pub struct AlertingService {
    tx: mpsc::Sender<Command>,
    persistence: Persistence,
    committer: GroupCommitter,
    clock: Arc<dyn Clock>,
    rules: Vec<Arc<Rule>>,
    silence_max: chrono::Duration,
    receivers: Vec<String>,
    enabled: bool,
    status: Arc<StatusCells>,
    delivery: Arc<DeliveryStats>,
    wake_delivery: Arc<Notify>,
}

impl std::fmt::Debug for AlertingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertingService")
            .field("rules", &self.rules.len())
            .field("receivers", &self.receivers)
            .finish_non_exhaustive()
    }
}

fn limit(l: Option<u32>) -> Result<u32, AppError> {
    match l {
        None => Ok(100),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(AppError::field("limit", "must be between 1 and 500")),
    }
}

fn visible(scope: &Scope, user: Option<&UserId>) -> bool {
    match (scope, user) {
        (Scope::All, _) => true,
        (Scope::User(me), Some(u)) => me == u,
        (Scope::User(_), None) => false,
    }
}

impl AlertingService {
    async fn ask(&self, cmd: Command) -> Result<(), AppError> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| AppError::Unavailable("alerting is stopped".to_owned()))
    }

    /// Waits until the worker has evaluated and stored everything before this
    /// call (tests and the benchmark use it; the API after its changes).
    pub async fn sync(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Sync(reply)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await;
        }
    }

    /// Evaluates every rule now and waits until what follows is stored (tests
    /// with a manual clock and the benchmark drive time with it).
    pub async fn evaluate_now(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Evaluate(reply)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;
        }
    }

    /// Records an execution report the engine refused (a disagreement with
    /// the venue); counted by the `reconciliation_mismatch` rule.
    pub fn report_mismatch(&self, user: UserId) {
        let at = self.clock.now();
        if self.tx.try_send(Command::Mismatch { user, at }).is_err() {
            tracing::warn!("alerting is busy; a reconciliation mismatch was not counted");
        }
    }

    /// Figures for `/status`.
    #[must_use]
    pub fn status(&self) -> AlertingStatus {
        let s = &self.status;
        let d = &self.delivery;
        AlertingStatus {
            enabled: self.enabled,
            rules: self.rules.len(),
            receivers: self.receivers.clone(),
            active_alerts: s.active.load(Ordering::Relaxed),
            events: s.events.load(Ordering::Relaxed),
            events_lagged: s.lagged.load(Ordering::Relaxed),
            evaluations: s.sweeps.load(Ordering::Relaxed),
            last_evaluation_ms: s.last_sweep_us.load(Ordering::Relaxed) as f64 / 1000.0,
            max_evaluation_ms: s.max_sweep_us.load(Ordering::Relaxed) as f64 / 1000.0,
            evaluation_seconds_total: s.busy_us.load(Ordering::Relaxed) as f64 / 1e6,
            sampled_series: s.sampled_series.load(Ordering::Relaxed),
            ready: s.seeded.load(Ordering::Relaxed),
            notifications_sent: d.sent.load(Ordering::Relaxed),
            notifications_retried: d.retried.load(Ordering::Relaxed),
            notifications_failed: d.failed.load(Ordering::Relaxed),
        }
    }

    /// Wakes the deliverer (a receiver is known to be back).
    pub fn wake_delivery(&self) {
        self.wake_delivery.notify_one();
    }
}
