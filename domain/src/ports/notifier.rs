//! The notifier port: delivers alert notifications to people.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alert::Alert;

/// A group of alerts sent together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Receiver name from configuration.
    pub receiver: String,
    /// Grouping key (labels the alerts share).
    pub group_key: String,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Temporary failure; retry.
    #[error("notification failed, will retry: {0}")]
    Transient(String),
    /// Permanent failure (bad config, refused).
    #[error("notification refused: {0}")]
    Permanent(String),
}

/// A notification channel (webhook, Slack, DingTalk, email).
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Channel name.
    fn name(&self) -> &str;
    /// Sends one notification.
    ///
    /// # Errors
    /// See [`NotifyError`].
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}
