//! The words every human-facing channel (Slack, DingTalk, email) uses for an
//! alert, so a page reads the same whichever way it arrives: severity, state,
//! the `summary`/`description` annotations and the labels worth showing.

use chrono::{DateTime, SecondsFormat, Utc};
use ordermon_domain::alert::{Alert, AlertState, Severity};

/// Labels most worth showing, first (when present), then the rest by name.
const FIRST_LABELS: &[&str] = &[
    "user_id",
    "instrument_id",
    "venue",
    "strategy_id",
    "order_id",
];

/// Labels never shown as "key labels": already said by the headline.
const HIDDEN_LABELS: &[&str] = &["rule", "severity", "alertname"];

/// Key labels shown per alert at most.
pub(crate) const MAX_KEY_LABELS: usize = 8;

/// `CRITICAL`, `WARNING`, `INFO`.
pub(crate) fn severity(a: &Alert) -> &'static str {
    match a.severity {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "INFO",
    }
}

/// `firing`, `resolved` (or `pending`).
pub(crate) fn state(a: &Alert) -> &'static str {
    a.state.as_str()
}

/// The alert's one-line headline: its `summary`, else its rule.
pub(crate) fn headline(a: &Alert) -> &str {
    annotation(a, "summary").unwrap_or_else(|| a.rule.as_str())
}

/// The `description` annotation, if any.
pub(crate) fn description(a: &Alert) -> Option<&str> {
    annotation(a, "description")
}

fn annotation<'a>(a: &'a Alert, name: &str) -> Option<&'a str> {
    a.annotations
        .get(name)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
}

/// Up to [`MAX_KEY_LABELS`] labels worth showing, the well-known ones first.
pub(crate) fn key_labels(a: &Alert) -> Vec<(&str, &str)> {
    let first = FIRST_LABELS
        .iter()
        .filter_map(|k| a.labels.get_key_value(*k));
    let rest = a
        .labels
        .iter()
        .filter(|(k, _)| !FIRST_LABELS.contains(&k.as_str()));
    first
        .chain(rest)
        .filter(|(k, _)| !HIDDEN_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .take(MAX_KEY_LABELS)
        .collect()
}

/// `since 2024-05-01 12:00:00 UTC` / `resolved at …`, with who acknowledged.
pub(crate) fn timing(a: &Alert) -> String {
    let mut out = match (a.state, a.ends_at) {
        (AlertState::Resolved, Some(end)) => format!("resolved at {}", human_time(end)),
        _ => format!("since {}", human_time(a.starts_at)),
    };
    if let Some(by) = &a.acknowledged_by {
        out.push_str(&format!(", acknowledged by {by}"));
    }
    out
}

/// `2024-05-01 12:00:00 UTC`.
pub(crate) fn human_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// RFC 3339 as Alertmanager writes it (`2024-05-01T12:00:00.123Z`).
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Escapes text for HTML bodies.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Notifications for the channels' unit tests.

    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use ordermon_domain::alert::{Alert, AlertState, Notification, NotificationKind, Severity};
    use ordermon_domain::ids::{NotificationId, RuleName};

    /// A firing critical alert for `user` with a summary and a description.
    pub(crate) fn alert(user: &str, state: AlertState) -> Alert {
        let labels: BTreeMap<String, String> = [
            ("user_id", user),
            ("venue", "SIM"),
            ("severity", "critical"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let annotations: BTreeMap<String, String> = [
            ("summary", format!("order stuck for {user}")),
            ("description", "no ack after 30s".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let start = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let mut a = Alert::new(
            RuleName::new("stuck_order").unwrap(),
            Severity::Critical,
            labels,
            annotations,
            None,
            chrono::Duration::zero(),
            start,
        );
        if state == AlertState::Resolved {
            a.resolve(start + chrono::Duration::minutes(5), None);
        }
        a
    }

    /// A notification of `alerts` grouped by rule and user.
    pub(crate) fn notification(alerts: Vec<Alert>) -> Notification {
        let group_labels: BTreeMap<String, String> =
            [("rule", "stuck_order"), ("user_id", "alice")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        Notification {
            id: NotificationId::generate(),
            receiver: "ops".to_owned(),
            group_key: "{}:{rule=\"stuck_order\",user_id=\"alice\"}".to_owned(),
            group_labels,
            kind: NotificationKind::Update,
            alerts,
            truncated_alerts: 0,
            created_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 1, 0).unwrap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::alert;
    use super::*;

    #[test]
    fn key_labels_put_well_known_ones_first_and_hide_the_rule() {
        let mut a = alert("alice", AlertState::Firing);
        a.labels.insert("aaa".to_owned(), "1".to_owned());
        let keys: Vec<&str> = key_labels(&a).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["user_id", "venue", "aaa"]);
        assert_eq!(headline(&a), "order stuck for alice");
        assert_eq!(severity(&a), "CRITICAL");
        assert_eq!(timing(&a), "since 2024-05-01 12:00:00 UTC");
        let r = alert("bob", AlertState::Resolved);
        assert_eq!(timing(&r), "resolved at 2024-05-01 12:05:00 UTC");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html_escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
