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

/// One page of a user's log of one day.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<String>,
    /// Where the next page starts, when there is more.
    pub next: Option<u64>,
}

/// Where per-user log lines go. Synchronous: it is called from a tracing layer.
pub trait UserLogSink: Send + Sync + std::fmt::Debug {
    /// Appends one line to the user's log of the day of `at`.
    ///
    /// # Errors
    /// Storage failures.
    fn append(&self, user: &UserId, at: DateTime<Utc>, line: &str) -> Result<(), LogSinkError>;
    /// Up to `limit` of the user's lines of one day, from position `from` (0,
    /// or a page's `next`); reads only what it returns.
    ///
    /// # Errors
    /// Storage failures.
    fn read_page(
        &self,
        user: &UserId,
        date: NaiveDate,
        from: u64,
        limit: usize,
    ) -> Result<LogPage, LogSinkError>;
    /// Every line of the user's log of one day (page by page).
    ///
    /// # Errors
    /// Storage failures.
    fn read(&self, user: &UserId, date: NaiveDate) -> Result<Vec<String>, LogSinkError> {
        let mut lines = Vec::new();
        let mut from = 0;
        loop {
            let page = self.read_page(user, date, from, 10_000)?;
            lines.extend(page.lines);
            match page.next {
                Some(next) if next > from => from = next,
                _ => return Ok(lines),
            }
        }
    }
    /// Deletes logs of days before `cutoff`; returns how many files went.
    ///
    /// # Errors
    /// Storage failures.
    fn purge_before(&self, cutoff: NaiveDate) -> Result<usize, LogSinkError>;
}
