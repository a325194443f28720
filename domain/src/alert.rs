//! Alerts: identity by fingerprint, lifecycle pending → firing → resolved,
//! acknowledgement and silencing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AlertId, RuleName, UserId};

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
    /// Identifying labels (`rule`, `user_id`, `instrument_id`, …).
    pub labels: BTreeMap<String, String>,
    /// Human text (`summary`, `description`, …).
    pub annotations: BTreeMap<String, String>,
    /// The user it concerns, if any (tenant isolation).
    pub user_id: Option<UserId>,
    /// Lifecycle state.
    pub state: AlertState,
    /// Acknowledged by an operator: no repeat notifications.
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
}

impl Alert {
    /// A new pending alert (or firing at once when the rule has no `for` duration).
    #[must_use]
    pub fn raise(
        rule: RuleName,
        severity: Severity,
        mut labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        user_id: Option<UserId>,
        for_duration: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        labels.insert("rule".to_owned(), rule.as_str().to_owned());
        let state = if for_duration <= Duration::zero() {
            AlertState::Firing
        } else {
            AlertState::Pending
        };
        Self {
            id: AlertId::generate(),
            fingerprint: Fingerprint::of(&labels),
            rule,
            severity,
            labels,
            annotations,
            user_id,
            state,
            acknowledged: false,
            silenced: false,
            starts_at: now,
            ends_at: None,
            updated_at: now,
            version: 0,
        }
    }

    /// Promotes a pending alert to firing once the condition has held for
    /// `for_duration`. Returns true when the state changed.
    pub fn promote(&mut self, for_duration: Duration, now: DateTime<Utc>) -> bool {
        if self.state == AlertState::Pending && now - self.starts_at >= for_duration {
            self.state = AlertState::Firing;
            self.updated_at = now;
            return true;
        }
        false
    }

    /// Resolves the alert. Returns true when the state changed.
    pub fn resolve(&mut self, now: DateTime<Utc>) -> bool {
        if self.state == AlertState::Resolved {
            return false;
        }
        self.state = AlertState::Resolved;
        self.ends_at = Some(now);
        self.updated_at = now;
        true
    }

    /// Acknowledges the alert (stops repeat notifications). Returns true when it changed.
    pub fn acknowledge(&mut self, now: DateTime<Utc>) -> bool {
        if self.acknowledged || self.state == AlertState::Resolved {
            return false;
        }
        self.acknowledged = true;
        self.updated_at = now;
        true
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
        let mut a = Alert::raise(
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
        assert!(a.acknowledge(now));
        assert!(!a.acknowledge(now));
        assert!(a.resolve(now + Duration::seconds(40)));
        assert!(!a.resolve(now + Duration::seconds(41)));
        assert_eq!(a.ends_at, Some(now + Duration::seconds(40)));
    }

    #[test]
    fn zero_for_fires_at_once() {
        let a = Alert::raise(
            RuleName::new("kill_switch").unwrap(),
            Severity::Critical,
            BTreeMap::new(),
            BTreeMap::new(),
            None,
            Duration::zero(),
            Utc::now(),
        );
        assert_eq!(a.state, AlertState::Firing);
    }
}
