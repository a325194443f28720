//! The notifier port: delivers alert notifications to people (webhook, Slack,
//! DingTalk, email). One implementation per configured receiver.

use std::time::Duration;

use async_trait::async_trait;

pub use crate::alert::notification::Notification;

/// Why a notification was not delivered. The text never holds a URL, a token
/// or a password: implementations strip them before building the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Temporary failure (receiver down, 5xx, 429, timeout): try again,
    /// not before `retry_after` when the receiver said so.
    #[error("notification failed, will retry: {message}")]
    Transient {
        /// What happened.
        message: String,
        /// The receiver's own `Retry-After` (or rate-limit window), if any.
        retry_after: Option<Duration>,
    },
    /// Permanent failure (refused, bad configuration): retrying will not help.
    #[error("notification refused: {0}")]
    Permanent(String),
}

impl NotifyError {
    /// A transient failure without a retry hint.
    #[must_use]
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// A notification channel: one configured receiver.
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// The receiver's name from configuration.
    fn name(&self) -> &str;

    /// The channel kind (`webhook`, `slack`, `dingtalk`, `email`), for metrics.
    fn kind(&self) -> &'static str;

    /// How many notifications one call may carry. Channels with a tight rate
    /// limit (DingTalk: 20 messages a minute) merge several into one message;
    /// the others take one at a time.
    fn max_batch(&self) -> usize {
        1
    }

    /// Delivers `batch` (at most [`Notifier::max_batch`] notifications): all of
    /// them or none.
    ///
    /// # Errors
    /// See [`NotifyError`].
    async fn notify(&self, batch: &[Notification]) -> Result<(), NotifyError>;
}
