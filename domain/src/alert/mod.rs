//! Alerts: identity by fingerprint, lifecycle pending → firing → resolved,
//! acknowledgement, silencing, inhibition and escalation; and the pieces of the
//! alerting model that are stored: silences, notifications and per-user rule
//! overrides, with the label matchers they select alerts by.

pub mod matcher;
pub mod notification;
pub mod rule_override;
pub mod silence;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AlertId, RuleName, SilenceId, UserId};

pub use matcher::{MatchOp, Matcher, MatcherError};
pub use notification::{DeliveryStatus, Notification, NotificationKind, NotificationRecord};
pub use rule_override::RuleOverride;
pub use silence::{NewSilence, Silence, SilenceError, SilenceState};

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = crate::user::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Self::Info),
            "warning" => Ok(Self::Warning),
            "critical" => Ok(Self::Critical),
            _ => Err(crate::user::UnknownName(s.to_owned())),
        }
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds but not yet for the rule's `for` duration.
    Pending,
    /// The condition has held long enough; notifications go out.
    Firing,
    /// The condition no longer holds (or an operator resolved it).
    Resolved,
}

impl AlertState {
    /// The snake-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl std::str::FromStr for AlertState {
    type Err = crate::user::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "firing" => Ok(Self::Firing),
            "resolved" => Ok(Self::Resolved),
            _ => Err(crate::user::UnknownName(s.to_owned())),
        }
    }
}

/// Why an operator's action on an alert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// The alert is resolved already.
    #[error("the alert is resolved")]
    Resolved,
}

/// An alert's identity: FNV-1a 64 of its sorted labels, as Alertmanager does, so
/// the same condition on the same labels is always the same alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// Computes the fingerprint of a label set (a `BTreeMap` is already sorted).
    #[must_use]
    pub fn of(labels: &BTreeMap<String, String>) -> Self {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(PRIME);
            }
        };
        for (k, v) in labels {
            eat(k.as_bytes());
            eat(&[0xff]);
            eat(v.as_bytes());
            eat(&[0xff]);
        }
        Self(h)
    }

    /// The raw value.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = std::num::ParseIntError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        u64::from_str_radix(&value, 16).map(Self)
    }
}

impl From<Fingerprint> for String {
    fn from(value: Fingerprint) -> Self {
        value.to_string()
    }
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Id of this occurrence.
    pub id: AlertId,
    /// Identity across occurrences.
    pub fingerprint: Fingerprint,
    /// The rule that raised it.
    pub rule: RuleName,
    /// Severity.
    pub severity: Severity,
    /// Identifying labels (`rule`, `severity`, `user_id`, `instrument_id`, …).
    pub labels: BTreeMap<String, String>,
    /// Human text (`summary`, `description`, …) with the values that fired.
    pub annotations: BTreeMap<String, String>,
    /// The user it concerns, if any (tenant isolation).
    pub user_id: Option<UserId>,
    /// Lifecycle state.
    pub state: AlertState,
    /// Acknowledged by an operator: no repeat notifications, no escalation.
    pub acknowledged: bool,
    /// Muted by a silence.
    pub silenced: bool,
    /// When the condition was first seen.
    pub starts_at: DateTime<Utc>,
    /// When it resolved.
    pub ends_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency.
    pub version: u64,
    /// When it started firing (after its `for` duration).
    #[serde(default)]
    pub fired_at: Option<DateTime<Utc>>,
    /// The value of the condition when it was raised or last changed state.
    #[serde(default)]
    pub value: Option<String>,
    /// Who acknowledged it.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// When.
    #[serde(default)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The operator who resolved it by hand (`None` when its condition cleared).
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// The silences muting it now.
    #[serde(default)]
    pub silenced_by: Vec<SilenceId>,
    /// Muted by another firing alert (an inhibition rule).
    #[serde(default)]
    pub inhibited: bool,
    /// When it was escalated to the escalation receiver.
    #[serde(default)]
    pub escalated_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// A new alert: pending, or firing at once when the rule has no `for`
    /// duration. Adds the `rule` label. Version 0: the caller sets the version
    /// it writes.
    #[must_use]
    pub fn new(
        rule: RuleName,
        severity: Severity,
        mut labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        user_id: Option<UserId>,
        for_duration: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        labels.insert("rule".to_owned(), rule.as_str().to_owned());
        let firing = for_duration <= Duration::zero();
        Self {
            id: AlertId::generate(),
            fingerprint: Fingerprint::of(&labels),
            rule,
            severity,
            labels,
            annotations,
            user_id,
            state: if firing {
                AlertState::Firing
            } else {
                AlertState::Pending
            },
            acknowledged: false,
            silenced: false,
            starts_at: now,
            ends_at: None,
            updated_at: now,
            version: 0,
            fired_at: firing.then_some(now),
            value: None,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            silenced_by: Vec::new(),
            inhibited: false,
            escalated_at: None,
        }
    }

    /// Promotes a pending alert to firing once the condition has held for
    /// `for_duration`. Returns true when the state changed.
    pub fn promote(&mut self, for_duration: Duration, now: DateTime<Utc>) -> bool {
        if self.state == AlertState::Pending && now - self.starts_at >= for_duration {
            self.state = AlertState::Firing;
            self.fired_at = Some(now);
            self.updated_at = now;
            return true;
        }
        false
    }

    /// Resolves the alert; `by` names the operator when it is resolved by
    /// hand. Returns true when the state changed.
    pub fn resolve(&mut self, now: DateTime<Utc>, by: Option<String>) -> bool {
        if self.state == AlertState::Resolved {
            return false;
        }
        self.state = AlertState::Resolved;
        self.ends_at = Some(now);
        self.resolved_by = by;
        self.updated_at = now;
        true
    }

    /// Acknowledges the alert: no repeat notifications and no escalation.
    /// Returns false when it was acknowledged already (nothing changes).
    ///
    /// # Errors
    /// [`AlertError::Resolved`] for a resolved alert.
    pub fn acknowledge(&mut self, by: &str, now: DateTime<Utc>) -> Result<bool, AlertError> {
        if self.state == AlertState::Resolved {
            return Err(AlertError::Resolved);
        }
        if self.acknowledged {
            return Ok(false);
        }
        self.acknowledged = true;
        self.acknowledged_by = Some(by.to_owned());
        self.acknowledged_at = Some(now);
        self.updated_at = now;
        Ok(true)
    }

    /// Sets the silences muting the alert. Returns true when they changed.
    pub fn set_silences(&mut self, mut ids: Vec<SilenceId>, now: DateTime<Utc>) -> bool {
        ids.sort_unstable();
        ids.dedup();
        if ids == self.silenced_by {
            return false;
        }
        self.silenced = !ids.is_empty();
        self.silenced_by = ids;
        self.updated_at = now;
        true
    }

    /// Sets the inhibition flag. Returns true when it changed.
    pub fn set_inhibited(&mut self, inhibited: bool, now: DateTime<Utc>) -> bool {
        if self.inhibited == inhibited {
            return false;
        }
        self.inhibited = inhibited;
        self.updated_at = now;
        true
    }

    /// Records the escalation. Returns false when it was escalated already.
    pub fn escalate(&mut self, now: DateTime<Utc>) -> bool {
        if self.escalated_at.is_some() {
            return false;
        }
        self.escalated_at = Some(now);
        self.updated_at = now;
        true
    }

    /// True when notifications about it are muted (silenced or inhibited).
    #[must_use]
    pub fn muted(&self) -> bool {
        self.silenced || self.inhibited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fingerprint_is_order_independent_and_label_sensitive() {
        let a = Fingerprint::of(&labels(&[("a", "1"), ("b", "2")]));
        let b = Fingerprint::of(&labels(&[("b", "2"), ("a", "1")]));
        let c = Fingerprint::of(&labels(&[("a", "1"), ("b", "3")]));
        // "a"="1b" must differ from "a1"="b": the separator prevents collisions.
        let d = Fingerprint::of(&labels(&[("a", "1b")]));
        let e = Fingerprint::of(&labels(&[("a1", "b")]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(d, e);
        let text = a.to_string();
        assert_eq!(text.len(), 16);
        assert_eq!(Fingerprint::try_from(text).unwrap(), a);
    }

    #[test]
    fn lifecycle() {
        let now = Utc::now();
        let rule = RuleName::new("stuck_order").unwrap();
        let mut a = Alert::new(
            rule,
            Severity::Warning,
            labels(&[("user_id", "alice")]),
            BTreeMap::new(),
            None,
            Duration::seconds(30),
            now,
        );
        assert_eq!(a.state, AlertState::Pending);
        assert_eq!(
            a.labels.get("rule").map(String::as_str),
            Some("stuck_order")
        );
        assert!(!a.promote(Duration::seconds(30), now + Duration::seconds(10)));
        assert!(a.promote(Duration::seconds(30), now + Duration::seconds(30)));
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(a.fired_at, Some(now + Duration::seconds(30)));
        assert_eq!(a.acknowledge("ops", now), Ok(true));
        assert_eq!(a.acknowledge("ops", now), Ok(false));
        assert_eq!(a.acknowledged_by.as_deref(), Some("ops"));
        assert!(a.resolve(now + Duration::seconds(40), None));
        assert!(!a.resolve(now + Duration::seconds(41), Some("ops".to_owned())));
        assert_eq!(a.ends_at, Some(now + Duration::seconds(40)));
        assert_eq!(a.resolved_by, None);
        assert_eq!(a.acknowledge("ops", now), Err(AlertError::Resolved));
    }

    #[test]
    fn zero_for_fires_at_once() {
        let a = Alert::new(
            RuleName::new("kill_switch").unwrap(),
            Severity::Critical,
            BTreeMap::new(),
            BTreeMap::new(),
            None,
            Duration::zero(),
            Utc::now(),
        );
        assert_eq!(a.state, AlertState::Firing);
        assert!(a.fired_at.is_some());
    }

    #[test]
    fn silences_inhibition_and_escalation_are_recorded_once() {
        let now = Utc::now();
        let mut a = Alert::new(
            RuleName::new("stuck_order").unwrap(),
            Severity::Critical,
            BTreeMap::new(),
            BTreeMap::new(),
            None,
            Duration::zero(),
            now,
        );
        let s1 = SilenceId::generate();
        assert!(a.set_silences(vec![s1, s1], now));
        assert!(a.silenced && a.muted());
        assert!(!a.set_silences(vec![s1], now));
        assert!(a.set_silences(vec![], now));
        assert!(!a.silenced && !a.muted());
        assert!(a.set_inhibited(true, now));
        assert!(!a.set_inhibited(true, now));
        assert!(a.muted());
        assert!(a.escalate(now));
        assert!(!a.escalate(now));
    }

    #[test]
    fn old_rows_without_the_new_fields_still_read() {
        let now = Utc::now();
        let a = Alert::new(
            RuleName::new("stuck_order").unwrap(),
            Severity::Warning,
            BTreeMap::new(),
            BTreeMap::new(),
            None,
            Duration::zero(),
            now,
        );
        let mut v = serde_json::to_value(&a).unwrap();
        for k in [
            "fired_at",
            "value",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "silenced_by",
            "inhibited",
            "escalated_at",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back.id, a.id);
        assert!(back.silenced_by.is_empty());
    }
}
