//! The alerting service's figures for `/status` and metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Counters the worker updates.
#[derive(Debug, Default)]
pub struct StatusCells {
    /// Unresolved alerts.
    pub active: AtomicU64,
    /// Events read from the commit feed.
    pub events: AtomicU64,
    /// Events missed because the worker fell behind.
    pub lagged: AtomicU64,
    /// Full evaluations.
    pub sweeps: AtomicU64,
    /// The last full evaluation, microseconds.
    pub last_sweep_us: AtomicU64,
    /// The slowest full evaluation, microseconds.
    pub max_sweep_us: AtomicU64,
    /// Time spent evaluating (full and event-driven), microseconds.
    pub busy_us: AtomicU64,
    /// Series with detector state.
    pub sampled_series: AtomicU64,
    /// The store has been read; every rule evaluates.
    pub seeded: AtomicBool,
}

impl StatusCells {
    pub(crate) fn record_sweep(&self, took: std::time::Duration, active: usize, series: usize) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sweeps.fetch_add(1, Ordering::Relaxed);
        self.busy_us.fetch_add(us, Ordering::Relaxed);
        self.last_sweep_us.store(us, Ordering::Relaxed);
        self.max_sweep_us.fetch_max(us, Ordering::Relaxed);
        self.active.store(active as u64, Ordering::Relaxed);
        self.sampled_series.store(series as u64, Ordering::Relaxed);
        metrics::gauge!("ordermon_alerting_sampled_series").set(series as f64);
    }

    pub(crate) fn record_busy(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.busy_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// `/status` → `components.alerting`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertingStatus {
    /// Whether alerting runs.
    pub enabled: bool,
    /// Rules loaded (built-in and configured).
    pub rules: usize,
    /// Receivers configured.
    pub receivers: Vec<String>,
    /// Unresolved alerts.
    pub active_alerts: u64,
    /// Events read from the commit feed.
    pub events: u64,
    /// Events missed because the worker fell behind.
    pub events_lagged: u64,
    /// Full evaluations so far.
    pub evaluations: u64,
    /// The last full evaluation, ms.
    pub last_evaluation_ms: f64,
    /// The slowest full evaluation, ms.
    pub max_evaluation_ms: f64,
    /// Time spent evaluating rules since start (full and event-driven), s.
    pub evaluation_seconds_total: f64,
    /// Series with detector state.
    pub sampled_series: u64,
    /// The store has been read and every rule evaluates.
    pub ready: bool,
    /// Notifications delivered.
    pub notifications_sent: u64,
    /// Delivery attempts that failed and will be retried.
    pub notifications_retried: u64,
    /// Notifications given up.
    pub notifications_failed: u64,
}
