//! Slack incoming webhooks: a Block Kit message (a header with the title, a
//! section per alert, a context line naming the group) with a plain `text`
//! fallback for notifications and old clients.
//!
//! Slack answers `200 ok`; `429` with `Retry-After` when rate limited; and a
//! short error code in the body otherwise (`invalid_token`, `no_service`,
//! `channel_not_found`, `invalid_payload`…), which goes into the error text
//! (it is Slack's own word, never the URL).
//!
//! Slack's limits are kept: 50 blocks a message (alerts past
//! [`MAX_ALERT_SECTIONS`] are counted in an "and N more" line), 150
//! characters of header, 3000 per section.

use std::fmt;

use async_trait::async_trait;
use ordermon_domain::alert::{Alert, AlertState, Severity};
use ordermon_domain::ports::{Notification, Notifier, NotifyError};
use reqwest::Url;
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::config::SlackConfig;
use crate::error::{Field, NotifyConfigError};
use crate::http;
use crate::redact::{Scrubber, bounded};
use crate::render;

/// Alert sections per message: with the header, an "and N more" section
/// and the context, a message stays within Slack's 50 blocks.
pub(crate) const MAX_ALERT_SECTIONS: usize = 47;
const MAX_HEADER: usize = 150;
const MAX_SECTION: usize = 3000;

/// Delivers to a Slack incoming webhook.
pub struct SlackNotifier {
    name: String,
    client: reqwest::Client,
    url: Url,
    channel: Option<String>,
    username: Option<String>,
    scrubber: Scrubber,
}

impl SlackNotifier {
    /// Checks `config` and sets up the client of receiver `name`.
    ///
    /// # Errors
    /// [`NotifyConfigError`] naming the field: a URL that is not http(s), a
    /// zero timeout.
    pub fn new(name: &str, config: &SlackConfig) -> Result<Self, NotifyConfigError> {
        let f = Field { receiver: name };
        let url = http::check_url(f, "webhook_url", config.webhook_url.expose_secret())?;
        http::check_timeout(f, config.timeout)?;
        let mut scrubber = Scrubber::default();
        scrubber.add(config.webhook_url.expose_secret());
        scrubber.add(url.path());
        Ok(Self {
            name: name.to_owned(),
            client: http::client(f, "slack", config.timeout)?,
            url,
            channel: config.channel.clone(),
            username: config.username.clone(),
            scrubber,
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let message = payload(n, self.channel.as_deref(), self.username.as_deref());
        let body = serde_json::to_vec(&message)
            .map_err(|e| NotifyError::Permanent(format!("cannot encode the message: {e}")))?;
        let answer = http::post_json(
            &self.client,
            &self.url,
            HeaderMap::new(),
            body,
            &self.scrubber,
        )
        .await?;
        tracing::debug!(receiver = %self.name, notification = %n.id, status = answer.status.as_u16(), "slack answered");
        let text = answer.text(64);
        answer.check_status(slack_code(&text))
    }
}

/// Slack's error code when the body is one (`invalid_token`); any other body
/// is left out of errors.
fn slack_code(body: &str) -> Option<&str> {
    let plausible = !body.is_empty()
        && body.len() <= 64
        && body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plausible.then_some(body)
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("name", &self.name)
            .field("channel", &self.channel)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    async fn notify(&self, batch: &[Notification]) -> Result<(), NotifyError> {
        for n in batch {
            self.send(n).await?;
        }
        Ok(())
    }
}

/// The Slack message for `n`.
pub(crate) fn payload(n: &Notification, channel: Option<&str>, username: Option<&str>) -> Value {
    let title = n.title();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": bounded(&title, MAX_HEADER - 3), "emoji": true},
    })];
    blocks.extend(n.alerts.iter().take(MAX_ALERT_SECTIONS).map(|a| {
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": bounded(&section(a), MAX_SECTION - 3)},
        })
    }));
    let left_out = n.alerts.len().saturating_sub(MAX_ALERT_SECTIONS)
        + usize::try_from(n.truncated_alerts).unwrap_or(usize::MAX);
    if left_out > 0 {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("_…and {left_out} more alerts_")},
        }));
    }
    let context = format!(
        "group `{}` · {} · notification {}",
        escape(&n.group_key),
        kind_word(n),
        n.id
    );
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": bounded(&context, MAX_SECTION - 3)}],
    }));
    let mut message = json!({"text": fallback(n, &title), "blocks": blocks});
    if let Some(obj) = message.as_object_mut() {
        if let Some(c) = channel {
            obj.insert("channel".to_owned(), json!(c));
        }
        if let Some(u) = username {
            obj.insert("username".to_owned(), json!(u));
        }
    }
    message
}

fn kind_word(n: &Notification) -> &'static str {
    match n.kind {
        ordermon_domain::alert::NotificationKind::Update => "update",
        ordermon_domain::alert::NotificationKind::Repeat => "repeat",
        ordermon_domain::alert::NotificationKind::Escalation => "escalation",
    }
}

/// The plain-text fallback: the title and each alert's headline.
fn fallback(n: &Notification, title: &str) -> String {
    let mut out = title.to_owned();
    for a in n.alerts.iter().take(5) {
        out.push_str(&format!(
            "\n• {} {}",
            render::severity(a),
            render::headline(a)
        ));
    }
    if n.alerts.len() > 5 {
        out.push_str(&format!("\n• …and {} more", n.alerts.len() - 5));
    }
    bounded(&out, MAX_SECTION)
}

/// One alert's section: icon, severity, state and headline; description;
/// timing; key labels.
fn section(a: &Alert) -> String {
    let icon = match (a.state, a.severity) {
        (AlertState::Resolved, _) => ":white_check_mark:",
        (_, Severity::Critical) => ":red_circle:",
        (_, Severity::Warning) => ":large_orange_circle:",
        (_, Severity::Info) => ":large_blue_circle:",
    };
    let mut out = format!(
        "{icon} *{}* · {} · *{}*",
        render::severity(a),
        render::state(a),
        escape(render::headline(a))
    );
    if let Some(d) = render::description(a) {
        out.push('\n');
        out.push_str(&escape(d));
    }
    out.push_str(&format!("\n_{}_", escape(&render::timing(a))));
    let labels: Vec<String> = render::key_labels(a)
        .into_iter()
        .map(|(k, v)| format!("`{}={}`", escape(k), escape(v)))
        .collect();
    if !labels.is_empty() {
        out.push('\n');
        out.push_str(&labels.join(" "));
    }
    out
}

/// Slack's mrkdwn escaping: `&`, `<` and `>` only.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{alert, notification};

    #[test]
    fn message_has_header_sections_context_and_fallback() {
        let mut n = notification(vec![
            alert("alice", AlertState::Firing),
            alert("bob", AlertState::Resolved),
        ]);
        n.alerts[0]
            .annotations
            .insert("description".to_owned(), "fill <late> & lost".to_owned());
        let v = payload(&n, Some("#alerts"), None);
        assert_eq!(v["channel"], "#alerts");
        assert!(v.get("username").is_none());
        assert_eq!(
            v["text"].as_str().unwrap().lines().next(),
            Some(n.title().as_str())
        );
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], n.title());
        let first = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(
            first.starts_with(":red_circle: *CRITICAL* · firing · *order stuck for alice*"),
            "{first}"
        );
        assert!(first.contains("fill &lt;late&gt; &amp; lost"), "{first}");
        assert!(first.contains("`user_id=alice` `venue=SIM`"), "{first}");
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with(":white_check_mark:")
        );
        assert_eq!(blocks[3]["type"], "context");
        let context = blocks[3]["elements"][0]["text"].as_str().unwrap();
        assert!(context.contains(&n.id.to_string()), "{context}");
    }

    #[test]
    fn stays_within_fifty_blocks() {
        let alerts = (0..60)
            .map(|i| alert(&format!("u{i}"), AlertState::Firing))
            .collect();
        let mut n = notification(alerts);
        n.truncated_alerts = 2;
        let v = payload(&n, None, None);
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 50);
        assert_eq!(blocks[48]["text"]["text"], "_…and 15 more alerts_");
    }

    #[test]
    fn only_slack_codes_reach_errors() {
        assert_eq!(slack_code("invalid_token"), Some("invalid_token"));
        assert_eq!(
            slack_code("<html>https://hooks.slack.com/services/x</html>"),
            None
        );
        assert_eq!(slack_code(""), None);
    }
}
