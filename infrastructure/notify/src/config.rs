//! Receiver configuration: one [`ReceiverConfig`] per receiver, tagged by
//! `kind`. Unknown fields are refused (a typo must not silently drop a
//! setting); durations are text (`"10s"`); secrets are [`SecretString`]s that
//! serialize as `[REDACTED]` and print as `[REDACTED]` in `Debug`.
//!
//! ```toml
//! [alerting.receivers.ops]
//! kind = "webhook"
//! url = "https://hooks.example/ordermon"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use ordermon_domain::duration;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::NotifyConfigError;
use crate::redact;

/// One receiver: where and how its notifications are delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceiverConfig {
    /// A generic webhook receiving Alertmanager's webhook JSON (version 4).
    Webhook(WebhookConfig),
    /// A Slack incoming webhook (Block Kit message).
    Slack(SlackConfig),
    /// A DingTalk custom robot (markdown message, optionally signed).
    Dingtalk(DingTalkConfig),
    /// Email through an SMTP smarthost.
    Email(EmailConfig),
}

impl ReceiverConfig {
    /// The channel kind (`webhook`, `slack`, `dingtalk`, `email`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Slack(_) => "slack",
            Self::Dingtalk(_) => "dingtalk",
            Self::Email(_) => "email",
        }
    }

    /// Checks the configuration of receiver `name` by building its notifier
    /// (nothing is sent and nothing is connected to).
    ///
    /// # Errors
    /// [`NotifyConfigError`] naming the receiver and the field.
    pub fn validate(&self, name: &str) -> Result<(), NotifyConfigError> {
        crate::build(name, self).map(|_| ())
    }
}

/// A generic webhook: `POST`s Alertmanager's webhook JSON (version 4) with
/// ordermon's `notificationId` and `kind` added, and the
/// `X-Ordermon-Notification-Id` header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to post (`http` or `https`). A secret when it carries user info
    /// or a query; printed as is otherwise.
    #[serde(serialize_with = "redact::url_if_credentialed")]
    pub url: SecretString,
    /// Extra request headers (e.g. `Authorization`); their values are secrets.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "redact::secret_values"
    )]
    pub headers: BTreeMap<String, SecretString>,
    /// Also notify when a group resolves (and list resolved alerts).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// At most this many alerts per message (`0`: all); the rest are counted
    /// in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: usize,
    /// Bound on one delivery (connect, send, answer).
    #[serde(default = "default_timeout", with = "duration::serde")]
    pub timeout: Duration,
}

/// A Slack incoming webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL (`https://hooks.slack.com/services/…`): the
    /// URL itself is the credential.
    #[serde(serialize_with = "redact::secret")]
    pub webhook_url: SecretString,
    /// Overrides the webhook's channel (legacy webhooks only honour it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Overrides the webhook's user name (legacy webhooks only honour it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Bound on one delivery.
    #[serde(default = "default_timeout", with = "duration::serde")]
    pub timeout: Duration,
}

/// A DingTalk custom robot. DingTalk accepts 20 messages a minute per robot:
/// the notifier keeps its own sliding window so it never goes past
/// `rate_limit` per `rate_window`, and merges up to `max_batch` pending
/// notifications into one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingTalkConfig {
    /// The robot's URL (`https://oapi.dingtalk.com/robot/send?access_token=…`):
    /// the URL itself is the credential.
    #[serde(serialize_with = "redact::secret")]
    pub webhook_url: SecretString,
    /// The robot's signing secret (`SEC…`), when its security setting is
    /// "signature".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact::optional_secret"
    )]
    pub secret: Option<SecretString>,
    /// Mobile numbers to @-mention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_mobiles: Vec<String>,
    /// @-mention everyone in the group.
    #[serde(default)]
    pub at_all: bool,
    /// Messages allowed per `rate_window` (DingTalk's limit is 20 a minute).
    #[serde(default = "default_dingtalk_rate_limit")]
    pub rate_limit: u32,
    /// The sliding window of `rate_limit`.
    #[serde(default = "one_minute", with = "duration::serde")]
    pub rate_window: Duration,
    /// Notifications merged into one message at most (1–50).
    #[serde(default = "default_dingtalk_batch")]
    pub max_batch: usize,
    /// Bound on one delivery.
    #[serde(default = "default_timeout", with = "duration::serde")]
    pub timeout: Duration,
}

/// Email through an SMTP smarthost, as multipart/alternative text + HTML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `host:port` of the SMTP server (the port defaults to 587 for
    /// `starttls`, 465 for `tls`, 25 for `none`).
    pub smarthost: String,
    /// The sender, `ops@example.com` or `Ordermon <ops@example.com>`.
    pub from: String,
    /// The recipients (at least one).
    pub to: Vec<String>,
    /// SMTP AUTH user name (with `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SMTP AUTH password (with `username`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact::optional_secret"
    )]
    pub password: Option<SecretString>,
    /// How the connection is secured.
    #[serde(default)]
    pub tls: SmtpTls,
    /// The name sent in `EHLO` (default: this host's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello_name: Option<String>,
    /// Bound on each SMTP step (connect, each reply); a whole delivery is
    /// bounded at three times this.
    #[serde(default = "default_timeout", with = "duration::serde")]
    pub timeout: Duration,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (a server
    /// that does not offer it is refused, so nothing goes out in clear).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption at all: only for a relay on the same host or network.
    None,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

fn default_dingtalk_rate_limit() -> u32 {
    20
}

fn default_dingtalk_batch() -> usize {
    10
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const EXAMPLE: &str = r##"
        [ops]
        kind = "webhook"
        url = "https://hooks.example/am?token=hook-token-1"
        headers = { Authorization = "Bearer header-secret-2" }

        [plain]
        kind = "webhook"
        url = "https://hooks.example/am"

        [slack]
        kind = "slack"
        webhook_url = "https://hooks.slack.com/services/T0/B0/slack-secret-3"
        channel = "#alerts"

        [ding]
        kind = "dingtalk"
        webhook_url = "https://oapi.dingtalk.com/robot/send?access_token=ding-token-4"
        secret = "SECding-secret-5"
        at_mobiles = ["13800000000"]

        [mail]
        kind = "email"
        smarthost = "smtp.example.com:587"
        from = "Ordermon <ordermon@example.com>"
        to = ["ops@example.com"]
        username = "ordermon"
        password = "smtp-password-6"
        timeout = "30s"
    "##;

    const SECRETS: &[&str] = &[
        "hook-token-1",
        "header-secret-2",
        "slack-secret-3",
        "ding-token-4",
        "ding-secret-5",
        "smtp-password-6",
    ];

    fn example() -> BTreeMap<String, ReceiverConfig> {
        toml::from_str(EXAMPLE).unwrap()
    }

    #[test]
    fn reads_every_kind_with_defaults() {
        let all = example();
        let ReceiverConfig::Webhook(w) = &all["ops"] else {
            panic!("not a webhook: {:?}", all["ops"]);
        };
        assert!(w.send_resolved);
        assert_eq!((w.max_alerts, w.timeout), (0, Duration::from_secs(10)));
        assert_eq!(
            w.headers["Authorization"].expose_secret(),
            "Bearer header-secret-2"
        );
        let ReceiverConfig::Dingtalk(d) = &all["ding"] else {
            panic!("not dingtalk");
        };
        assert_eq!(
            (d.rate_limit, d.rate_window, d.max_batch),
            (20, one_minute(), 10)
        );
        assert!(!d.at_all);
        let ReceiverConfig::Email(e) = &all["mail"] else {
            panic!("not email");
        };
        assert_eq!(
            (e.tls, e.timeout),
            (SmtpTls::Starttls, Duration::from_secs(30))
        );
        assert_eq!(all["slack"].kind(), "slack");
    }

    #[test]
    fn serializes_and_debugs_without_secrets() {
        let all = example();
        let json = serde_json::to_string(&all).unwrap();
        let toml_text = toml::to_string(&all).unwrap();
        let debug = format!("{all:?}");
        for text in [&json, &toml_text, &debug] {
            for secret in SECRETS {
                assert!(!text.contains(secret), "{secret} leaked in {text}");
            }
            assert!(text.contains("REDACTED"), "{text}");
        }
        // What is not secret stays readable.
        assert!(
            toml_text.contains("url = \"https://hooks.example/am\""),
            "{toml_text}"
        );
        assert!(
            toml_text.contains("Authorization = \"[REDACTED]\""),
            "{toml_text}"
        );
        assert!(
            toml_text.contains("smarthost = \"smtp.example.com:587\""),
            "{toml_text}"
        );
        assert!(toml_text.contains("timeout = \"30s\""), "{toml_text}");
    }

    #[test]
    fn refuses_unknown_fields_and_kinds() {
        let typo = "kind = \"slack\"\nwebhook_url = \"https://x\"\nchanel = \"#a\"\n";
        let e = toml::from_str::<ReceiverConfig>(typo).unwrap_err();
        assert!(e.to_string().contains("chanel"), "{e}");
        let kind = "kind = \"pager\"\nurl = \"https://x\"\n";
        assert!(toml::from_str::<ReceiverConfig>(kind).is_err());
        let bare = "kind = \"webhook\"\nurl = \"https://x\"\ntimeout = 10\n";
        let e = toml::from_str::<ReceiverConfig>(bare).unwrap_err();
        assert!(e.to_string().contains("missing unit"), "{e}");
    }
}
