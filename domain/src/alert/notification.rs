//! Notifications: what one receiver is told about one group of alerts, and the
//! durable record of its delivery. A notification is written before it is
//! sent, so a receiver that is down, or a restart, loses nothing; the record of
//! what was sent to each group is what decides whether the next one is due.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Alert, AlertState};
use crate::ids::NotificationId;

/// Why a notification was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The group's alerts changed: new firing alerts, or some resolved.
    Update,
    /// Nothing changed, but the group is still firing after `repeat_interval`.
    Repeat,
    /// A critical alert stayed unacknowledged past the escalation delay.
    Escalation,
}

/// A group of alerts sent to one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique id; receivers may deduplicate on it (sent as a header and in
    /// the payload).
    pub id: NotificationId,
    /// Receiver name from configuration.
    pub receiver: String,
    /// Readable group identity: the route and the values of its `group_by`
    /// labels, e.g. `{}/{rule="stuck_order"}:{user_id="alice"}`.
    pub group_key: String,
    /// The `group_by` labels and their values.
    pub group_labels: BTreeMap<String, String>,
    /// Why it is sent.
    pub kind: NotificationKind,
    /// The group's alerts as they are now (firing ones first).
    pub alerts: Vec<Alert>,
    /// Alerts of the group left out to keep the message bounded.
    #[serde(default)]
    pub truncated_alerts: u32,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
}

impl Notification {
    /// `firing` while any alert in it fires, else `resolved`.
    #[must_use]
    pub fn status(&self) -> AlertState {
        if self.alerts.iter().any(|a| a.state == AlertState::Firing) {
            AlertState::Firing
        } else {
            AlertState::Resolved
        }
    }

    /// Alerts in a state.
    pub fn alerts_in(&self, state: AlertState) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(move |a| a.state == state)
    }

    /// Labels every alert has with the same value.
    #[must_use]
    pub fn common_labels(&self) -> BTreeMap<String, String> {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations every alert has with the same value.
    #[must_use]
    pub fn common_annotations(&self) -> BTreeMap<String, String> {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// A one-line title: `[FIRING:2] stuck_order (user_id=alice)`.
    #[must_use]
    pub fn title(&self) -> String {
        let firing = self.alerts_in(AlertState::Firing).count();
        let head = match (self.kind, self.status()) {
            (NotificationKind::Escalation, _) => format!("[ESCALATED:{firing}]"),
            (_, AlertState::Firing) => format!("[FIRING:{firing}]"),
            _ => "[RESOLVED]".to_owned(),
        };
        let common = self.common_labels();
        let rule = common
            .get("rule")
            .cloned()
            .unwrap_or_else(|| "alerts".to_owned());
        let rest: Vec<String> = self
            .group_labels
            .iter()
            .filter(|(k, _)| k.as_str() != "rule")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if rest.is_empty() {
            format!("{head} {rule}")
        } else {
            format!("{head} {rule} ({})", rest.join(", "))
        }
    }
}

fn common<'a>(
    mut sets: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = sets.next() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

/// Where a notification's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// The receiver accepted it.
    Delivered,
    /// Refused for good (a permanent error), or given up after the retry limit.
    Failed,
}

impl DeliveryStatus {
    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// The durable record of one notification and its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// What is sent (its id is the record's id).
    pub notification: Notification,
    /// Short, stable id of the group (hash of receiver and group key), for
    /// looking up the last notification of a group.
    pub group_id: String,
    /// Delivery status.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Not to be tried before.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure (never holds a URL or a secret).
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The instance sending it right now, until `claimed_until`: other
    /// instances leave it alone meanwhile.
    pub claimed_by: Option<String>,
    /// End of the claim.
    pub claimed_until: Option<DateTime<Utc>>,
    /// Version for optimistic concurrency (claims are versioned writes).
    pub version: u64,
}

impl NotificationRecord {
    /// A new pending record (version 1), due at once.
    #[must_use]
    pub fn pending(notification: Notification, group_id: String) -> Self {
        let now = notification.created_at;
        Self {
            notification,
            group_id,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            delivered_at: None,
            claimed_by: None,
            claimed_until: None,
            version: 1,
        }
    }

    /// The record's id.
    #[must_use]
    pub fn id(&self) -> NotificationId {
        self.notification.id
    }

    /// True when an instance may try it at `now`: pending, due, and not
    /// claimed by anyone whose claim still runs.
    #[must_use]
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == DeliveryStatus::Pending
            && self.next_attempt_at <= now
            && self.claimed_until.is_none_or(|t| t <= now)
    }

    /// Claims it for `instance` for `lease` (the caller writes it with a
    /// version check, so only one instance wins).
    pub fn claim(&mut self, instance: &str, now: DateTime<Utc>, lease: Duration) {
        self.claimed_by = Some(instance.to_owned());
        self.claimed_until = Some(now + lease);
        self.version += 1;
    }

    /// Records a successful delivery.
    pub fn delivered(&mut self, now: DateTime<Utc>) {
        self.status = DeliveryStatus::Delivered;
        self.attempts = self.attempts.saturating_add(1);
        self.delivered_at = Some(now);
        self.last_error = None;
        self.claimed_by = None;
        self.claimed_until = None;
        self.version += 1;
    }

    /// Records a failed attempt: retried at `retry_at`, or failed for good
    /// when `retry_at` is `None`.
    pub fn attempt_failed(&mut self, error: String, retry_at: Option<DateTime<Utc>>) {
        self.attempts = self.attempts.saturating_add(1);
        self.last_error = Some(error);
        self.claimed_by = None;
        self.claimed_until = None;
        match retry_at {
            Some(t) => self.next_attempt_at = t,
            None => self.status = DeliveryStatus::Failed,
        }
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;
    use crate::ids::RuleName;

    fn alert(rule: &str, user: &str, state: AlertState) -> Alert {
        let mut labels = BTreeMap::new();
        labels.insert("user_id".to_owned(), user.to_owned());
        labels.insert("venue".to_owned(), "SIM".to_owned());
        let mut a = Alert::new(
            RuleName::new(rule).unwrap(),
            Severity::Warning,
            labels,
            BTreeMap::new(),
            None,
            Duration::zero(),
            Utc::now(),
        );
        a.state = state;
        a
    }

    fn notification(alerts: Vec<Alert>) -> Notification {
        let mut group_labels = BTreeMap::new();
        group_labels.insert("rule".to_owned(), "stuck_order".to_owned());
        group_labels.insert("user_id".to_owned(), "alice".to_owned());
        Notification {
            id: NotificationId::generate(),
            receiver: "ops".to_owned(),
            group_key: "{}:{rule=\"stuck_order\",user_id=\"alice\"}".to_owned(),
            group_labels,
            kind: NotificationKind::Update,
            alerts,
            truncated_alerts: 0,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn status_common_labels_and_title() {
        let n = notification(vec![
            alert("stuck_order", "alice", AlertState::Firing),
            alert("stuck_order", "bob", AlertState::Resolved),
        ]);
        assert_eq!(n.status(), AlertState::Firing);
        let common = n.common_labels();
        assert_eq!(common.get("venue").map(String::as_str), Some("SIM"));
        assert!(!common.contains_key("user_id"));
        assert_eq!(n.title(), "[FIRING:1] stuck_order (user_id=alice)");
        let resolved = notification(vec![alert("stuck_order", "a", AlertState::Resolved)]);
        assert_eq!(resolved.status(), AlertState::Resolved);
        assert!(resolved.title().starts_with("[RESOLVED]"));
    }

    #[test]
    fn delivery_record_lifecycle() {
        let n = notification(vec![]);
        // Due from the moment the notification was made, not before.
        let now = n.created_at;
        let mut r = NotificationRecord::pending(n, "g1".to_owned());
        assert!(!r.is_due(now - Duration::milliseconds(1)));
        assert!(r.is_due(now));
        r.claim("a", now, Duration::seconds(30));
        assert!(!r.is_due(now + Duration::seconds(1)));
        assert!(
            r.is_due(now + Duration::seconds(31)),
            "an abandoned claim runs out"
        );
        r.attempt_failed("HTTP 500".to_owned(), Some(now + Duration::seconds(2)));
        assert_eq!((r.attempts, r.status), (1, DeliveryStatus::Pending));
        assert!(!r.is_due(now + Duration::seconds(1)));
        assert!(r.is_due(now + Duration::seconds(2)));
        r.delivered(now + Duration::seconds(3));
        assert_eq!(r.status, DeliveryStatus::Delivered);
        assert!(!r.is_due(now + Duration::hours(1)));
        assert_eq!(r.version, 4);
        r.attempt_failed("refused".to_owned(), None);
        assert_eq!(r.status, DeliveryStatus::Failed);
    }
}
