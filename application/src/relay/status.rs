//! What the relay reports: its state for `/status`, the rows it set aside,
//! and why a step failed.

use chrono::{DateTime, Utc};
use ordermon_domain::ports::{BusError, StoreError};
use serde::Serialize;

use crate::lease_keeper::LeaseStatus;

/// Why one relay step failed (it is retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Reading or marking the outbox failed.
    #[error("outbox: {0}")]
    Store(#[from] StoreError),
    /// The bus did not confirm the batch.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// The relay's state for `/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayStatus {
    /// The bus (`memory`, `rabbitmq`, `kafka`, `redis`).
    pub bus: &'static str,
    /// Whether this instance relays now (under a lease: whether it holds it).
    pub running: bool,
    /// The `outbox-relay` lease, when relays compete for it.
    pub lease: Option<LeaseStatus>,
    /// Unsent outbox rows (refreshed about once a second).
    pub pending: u64,
    /// Age of the oldest unsent row, in seconds (0 when none).
    pub oldest_pending_seconds: f64,
    /// Rows published since start.
    pub published_total: u64,
    /// Failed relay steps since start.
    pub failures_total: u64,
    /// The last failure, if the last step failed.
    pub last_error: Option<String>,
    /// When the last batch was confirmed.
    pub last_published_at: Option<DateTime<Utc>>,
    /// Rows the broker refused for good and the relay set aside since start.
    pub set_aside_total: u64,
    /// The last row set aside.
    pub last_set_aside: Option<SetAside>,
}

/// An outbox row the broker refused for good (too large, malformed): the relay
/// marks it handled so the rows behind it go on. The event itself stays in the
/// event log; consumers and live streams never receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    /// The outbox row.
    pub outbox_id: i64,
    /// The event.
    pub event_id: String,
    /// Its topic.
    pub topic: String,
    /// What the broker said.
    pub error: String,
    /// When it was set aside.
    pub at: DateTime<Utc>,
}
