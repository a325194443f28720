//! ordermon's notifiers: the domain's [`Notifier`] port for the four channels
//! the alerting pipeline delivers to — a generic webhook speaking
//! Alertmanager's webhook JSON, a Slack incoming webhook, a DingTalk robot
//! (signed, merged and held under its 20 messages a minute) and email over
//! SMTP.
//!
//! A receiver is configured as one [`ReceiverConfig`] (tagged by `kind`) and
//! turned into an `Arc<dyn Notifier>` by [`build`]. Every notifier sorts its
//! failures into [`NotifyError::Transient`] (try again, maybe after a
//! `retry_after`) and [`NotifyError::Permanent`]; retries, metrics and the
//! delivery record are the caller's.
//!
//! Secrets — the Slack and DingTalk webhook URLs (the URL is the credential),
//! the DingTalk signing secret, the SMTP password, webhook header values and a
//! webhook URL carrying a query or user info — are [`secrecy::SecretString`]s:
//! they serialize as `[REDACTED]`, never show in `Debug`, and never reach an
//! error text or a log line.

mod config;
mod dingtalk;
mod email;
mod error;
mod http;
mod redact;
mod render;
mod slack;
mod webhook;

use std::sync::Arc;

use ordermon_domain::ports::Notifier;
#[cfg(doc)]
use ordermon_domain::ports::NotifyError;

pub use config::{
    DingTalkConfig, EmailConfig, ReceiverConfig, SlackConfig, SmtpTls, WebhookConfig,
};
pub use dingtalk::DingTalkNotifier;
pub use email::EmailNotifier;
pub use error::NotifyConfigError;
pub use redact::REDACTED;
pub use slack::SlackNotifier;
pub use webhook::WebhookNotifier;

/// Builds the notifier of receiver `name` from its configuration (validating
/// it first).
///
/// # Errors
/// [`NotifyConfigError`] naming the receiver and the field when the
/// configuration is invalid, or when its client cannot be set up.
pub fn build(name: &str, config: &ReceiverConfig) -> Result<Arc<dyn Notifier>, NotifyConfigError> {
    Ok(match config {
        ReceiverConfig::Webhook(c) => Arc::new(WebhookNotifier::new(name, c)?),
        ReceiverConfig::Slack(c) => Arc::new(SlackNotifier::new(name, c)?),
        ReceiverConfig::Dingtalk(c) => Arc::new(DingTalkNotifier::new(name, c)?),
        ReceiverConfig::Email(c) => Arc::new(EmailNotifier::new(name, c)?),
    })
}
