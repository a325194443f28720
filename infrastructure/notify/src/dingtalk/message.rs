//! The DingTalk robot message: one markdown message for a whole batch of
//! notifications (the robot takes 20 messages a minute, so a burst of groups
//! is merged rather than queued), each notification a heading with a line per
//! alert. Mentions must also appear as `@mobile` in the text for DingTalk to
//! highlight them.

use ordermon_domain::alert::{Alert, AlertState};
use ordermon_domain::ports::Notification;
use serde_json::{Value, json};

use crate::redact::bounded;
use crate::render;

/// DingTalk refuses markdown texts past about 20 000 bytes; this leaves room
/// for the mentions.
const MAX_TEXT: usize = 18_000;
/// Alert lines per notification; the rest are counted.
const MAX_ALERTS: usize = 20;
/// The title shows in the chat list; keep it short.
const MAX_TITLE: usize = 120;

/// The robot's markdown message for `batch`.
pub(crate) fn message(batch: &[Notification], at_mobiles: &[String], at_all: bool) -> Value {
    let title = match batch {
        [one] => one.title(),
        [first, ..] => format!("{} notifications: {}", batch.len(), first.title()),
        [] => "ordermon".to_owned(),
    };
    let sections: Vec<String> = batch.iter().map(section).collect();
    let mut text = bounded(&sections.join("\n\n---\n\n"), MAX_TEXT);
    if !at_mobiles.is_empty() {
        let mentions: Vec<String> = at_mobiles.iter().map(|m| format!("@{m}")).collect();
        text.push_str("\n\n");
        text.push_str(&mentions.join(" "));
    }
    json!({
        "msgtype": "markdown",
        "markdown": {"title": bounded(&title, MAX_TITLE), "text": text},
        "at": {"atMobiles": at_mobiles, "isAtAll": at_all},
    })
}

/// One notification: heading, alert lines, and the group.
fn section(n: &Notification) -> String {
    let mut lines = vec![format!("### {}", n.title())];
    lines.extend(n.alerts.iter().take(MAX_ALERTS).map(alert_line));
    let left_out = n.alerts.len().saturating_sub(MAX_ALERTS)
        + usize::try_from(n.truncated_alerts).unwrap_or(usize::MAX);
    if left_out > 0 {
        lines.push(format!("- …and {left_out} more alerts"));
    }
    lines.push(format!("> group {} · notification {}", n.group_key, n.id));
    lines.join("\n\n")
}

fn alert_line(a: &Alert) -> String {
    let mark = if a.state == AlertState::Resolved {
        "✅"
    } else {
        "🔴"
    };
    let mut line = format!(
        "- {mark} **{}** {}: {}",
        render::severity(a),
        render::state(a),
        render::headline(a)
    );
    if let Some(d) = render::description(a) {
        line.push_str(" — ");
        line.push_str(d);
    }
    let labels: Vec<String> = render::key_labels(a)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    line.push_str(&format!(" ({}", render::timing(a)));
    if !labels.is_empty() {
        line.push_str("; ");
        line.push_str(&labels.join(", "));
    }
    line.push(')');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{alert, notification};

    #[test]
    fn one_notification_is_one_markdown_message() {
        let n = notification(vec![alert("alice", AlertState::Firing)]);
        let v = message(std::slice::from_ref(&n), &["13800000000".to_owned()], false);
        assert_eq!(v["msgtype"], "markdown");
        assert_eq!(v["markdown"]["title"], n.title());
        let text = v["markdown"]["text"].as_str().unwrap();
        assert!(text.starts_with(&format!("### {}", n.title())), "{text}");
        assert!(
            text.contains("- 🔴 **CRITICAL** firing: order stuck for alice — no ack after 30s (since 2024-05-01 12:00:00 UTC; user_id=alice, venue=SIM)"),
            "{text}"
        );
        assert!(text.ends_with("@13800000000"), "{text}");
        assert_eq!(v["at"]["atMobiles"][0], "13800000000");
        assert_eq!(v["at"]["isAtAll"], false);
    }

    #[test]
    fn a_batch_is_merged_under_one_title() {
        let a = notification(vec![alert("alice", AlertState::Firing)]);
        let b = notification(vec![alert("bob", AlertState::Resolved)]);
        let v = message(&[a.clone(), b.clone()], &[], true);
        assert_eq!(
            v["markdown"]["title"],
            format!("2 notifications: {}", a.title())
        );
        let text = v["markdown"]["text"].as_str().unwrap();
        assert!(
            text.contains(&a.id.to_string()) && text.contains(&b.id.to_string()),
            "{text}"
        );
        assert!(
            text.contains("✅ **CRITICAL** resolved: order stuck for bob"),
            "{text}"
        );
        assert_eq!(text.matches("### ").count(), 2);
        assert_eq!(v["at"]["isAtAll"], true);
    }

    #[test]
    fn long_groups_are_bounded() {
        let alerts = (0..500)
            .map(|i| alert(&format!("user-{i}"), AlertState::Firing))
            .collect();
        let v = message(&[notification(alerts)], &[], false);
        let text = v["markdown"]["text"].as_str().unwrap();
        assert!(text.len() <= MAX_TEXT + 4, "{}", text.len());
        assert!(text.contains("…and 480 more alerts"), "{text}");
    }
}
