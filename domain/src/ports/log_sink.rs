//! The per-user log sink: one file per user per day, kept for a retention period.

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::UserId;

/// Why a log operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogSinkError {
    /// The underlying storage failed.
    #[error("log sink I/O error: {0}")]
    Io(String),
}

/// Where per-user log lines go. Synchronous: it is called from a tracing layer.
pub trait UserLogSink: Send + Sync + std::fmt::Debug {
    /// Appends one line to the user's log of the day of `at`.
    ///
    /// # Errors
    /// Storage failures.
    fn append(&self, user: &UserId, at: DateTime<Utc>, line: &str) -> Result<(), LogSinkError>;
    /// The user's lines of one day.
    ///
    /// # Errors
    /// Storage failures.
    fn read(&self, user: &UserId, date: NaiveDate) -> Result<Vec<String>, LogSinkError>;
    /// Deletes logs of days before `cutoff`; returns how many files went.
    ///
    /// # Errors
    /// Storage failures.
    fn purge_before(&self, cutoff: NaiveDate) -> Result<usize, LogSinkError>;
}
