//! From alerts to notifications, as Alertmanager decides them: each alert is
//! routed to its receivers' groups (by the route's `group_by` labels); a new
//! group waits `group_wait`, then is flushed every `group_interval`. A flush
//! sends when the group's firing set changed or some of its alerts resolved,
//! and repeats an unchanged firing group after `repeat_interval`, leaving out
//! what an operator acknowledged. Silenced or inhibited alerts are left out.
//! Unacknowledged critical alerts escalate to a second receiver.
//!
//! What a group was last told is the newest notification record of the group,
//! so a restart takes it back from the store and neither forgets a group nor
//! sends what was sent already.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use ordermon_domain::alert::{
    Alert, AlertState, Fingerprint, Notification, NotificationKind, NotificationRecord,
};
use ordermon_domain::ids::NotificationId;

use super::config::EscalationConfig;
use super::route::{Route, RouteTree};

#[derive(Debug, Clone)]
struct Sent {
    at: DateTime<Utc>,
    firing: BTreeSet<Fingerprint>,
}

#[derive(Debug)]
struct Group {
    receiver: String,
    key: String,
    labels: BTreeMap<String, String>,
    route: Option<Route>,
    alerts: BTreeMap<Fingerprint, Alert>,
    next_flush: Option<DateTime<Utc>>,
    last: Option<Sent>,
}

/// The notification groups.
#[derive(Debug)]
pub struct Dispatcher {
    tree: RouteTree,
    groups: HashMap<String, Group>,
    max_alerts: usize,
    escalation: EscalationConfig,
}

/// FNV-1a 64 of the receiver and group key, as 16 hex digits.
#[must_use]
pub fn group_id(receiver: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in receiver.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn group_of(
    route: &Route,
    labels: &BTreeMap<String, String>,
) -> (String, BTreeMap<String, String>) {
    let chosen: BTreeMap<String, String> = match &route.group_by {
        None => labels.clone(),
        Some(names) => names
            .iter()
            .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
            .collect(),
    };
    let inner: Vec<String> = chosen.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    (format!("{}:{{{}}}", route.id, inner.join(",")), chosen)
}

fn chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Dispatcher {
    /// A dispatcher over the routing tree.
    #[must_use]
    pub fn new(tree: RouteTree, max_alerts: u32, escalation: EscalationConfig) -> Self {
        Self {
            tree,
            groups: HashMap::new(),
            max_alerts: usize::try_from(max_alerts).unwrap_or(usize::MAX).max(1),
            escalation,
        }
    }

    /// Groups held.
    #[must_use]
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Takes back what each group was last told (the newest record of each
    /// group). Call before routing the restored alerts.
    pub fn restore(&mut self, records: &[NotificationRecord]) {
        for r in records {
            if r.notification.kind == NotificationKind::Escalation {
                continue;
            }
            let firing = r
                .notification
                .alerts
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| a.fingerprint)
                .collect();
            self.groups.insert(
                r.group_id.clone(),
                Group {
                    receiver: r.notification.receiver.clone(),
                    key: r.notification.group_key.clone(),
                    labels: r.notification.group_labels.clone(),
                    route: None,
                    alerts: BTreeMap::new(),
                    next_flush: None,
                    last: Some(Sent {
                        at: r.notification.created_at,
                        firing,
                    }),
                },
            );
        }
    }

    /// The alerts the restored groups last reported firing, by fingerprint:
    /// those not active any more must be reported resolved.
    #[must_use]
    pub fn last_firing(&self) -> BTreeSet<Fingerprint> {
        self.groups
            .values()
            .filter_map(|g| g.last.as_ref())
            .flat_map(|s| s.firing.iter().copied())
            .collect()
    }

    /// Drops restored groups no alert was routed to (the routes changed, or
    /// nothing is left to report).
    pub fn forget_unrouted(&mut self) {
        self.groups.retain(|_, g| g.route.is_some());
    }

    /// Routes an alert that was raised or changed into its groups.
    pub fn observe(&mut self, alert: &Alert, now: DateTime<Utc>) {
        if alert.state == AlertState::Pending {
            return;
        }
        for route in self.tree.routes_for(&alert.labels) {
            let Some(receiver) = route.receiver.clone() else {
                continue;
            };
            let (key, labels) = group_of(route, &alert.labels);
            let id = group_id(&receiver, &key);
            let group = self.groups.entry(id).or_insert_with(|| Group {
                receiver,
                key,
                labels,
                route: None,
                alerts: BTreeMap::new(),
                next_flush: None,
                last: None,
            });
            if group.route.is_none() {
                group.route = Some(route.clone());
            }
            let known = group.alerts.contains_key(&alert.fingerprint)
                || group
                    .last
                    .as_ref()
                    .is_some_and(|s| s.firing.contains(&alert.fingerprint));
            if alert.state == AlertState::Resolved && !known {
                // Never reported firing here: nothing to resolve.
                continue;
            }
            group.alerts.insert(alert.fingerprint, alert.clone());
            if group.next_flush.is_none() {
                group.next_flush = Some(match &group.last {
                    // A restored group keeps its rhythm.
                    Some(s) => (s.at + chrono(route.group_interval)).max(now),
                    None => now + chrono(route.group_wait),
                });
            }
        }
    }

    /// When the next group is due, if any.
    #[must_use]
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.groups.values().filter_map(|g| g.next_flush).min()
    }

    /// Flushes the due groups: the notifications to send now.
    pub fn flush(&mut self, now: DateTime<Utc>) -> Vec<NotificationRecord> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (id, g) in &mut self.groups {
            if g.next_flush.is_none_or(|t| t > now) {
                continue;
            }
            let Some(route) = g.route.clone() else {
                empty.push(id.clone());
                continue;
            };
            let firing: Vec<&Alert> = g
                .alerts
                .values()
                .filter(|a| a.state == AlertState::Firing && !a.muted())
                .collect();
            let firing_set: BTreeSet<Fingerprint> = firing.iter().map(|a| a.fingerprint).collect();
            let resolved: Vec<&Alert> = g
                .alerts
                .values()
                .filter(|a| {
                    a.state == AlertState::Resolved
                        && g.last
                            .as_ref()
                            .is_some_and(|s| s.firing.contains(&a.fingerprint))
                })
                .collect();
            let last_firing = g.last.as_ref().map(|s| &s.firing);
            let changed = last_firing != Some(&firing_set)
                && !(last_firing.is_none() && firing_set.is_empty());
            let send = if (changed && !firing.is_empty()) || !resolved.is_empty() {
                let mut alerts: Vec<Alert> = firing.iter().map(|a| (*a).clone()).collect();
                alerts.extend(resolved.iter().map(|a| (*a).clone()));
                Some((NotificationKind::Update, alerts))
            } else if !changed
                && !firing.is_empty()
                && g.last
                    .as_ref()
                    .is_some_and(|s| now - s.at >= chrono(route.repeat_interval))
            {
                let unacked: Vec<Alert> = firing
                    .iter()
                    .filter(|a| !a.acknowledged)
                    .map(|a| (*a).clone())
                    .collect();
                (!unacked.is_empty()).then_some((NotificationKind::Repeat, unacked))
            } else {
                None
            };
            if let Some((kind, mut alerts)) = send {
                let truncated = alerts.len().saturating_sub(self.max_alerts);
                alerts.truncate(self.max_alerts);
                let n = Notification {
                    id: NotificationId::generate(),
                    receiver: g.receiver.clone(),
                    group_key: g.key.clone(),
                    group_labels: g.labels.clone(),
                    kind,
                    alerts,
                    truncated_alerts: u32::try_from(truncated).unwrap_or(u32::MAX),
                    created_at: now,
                };
                out.push(NotificationRecord::pending(n, id.clone()));
                g.last = Some(Sent {
                    at: now,
                    firing: firing_set,
                });
            } else if changed {
                // Fewer firing (muted away): remember, say nothing.
                if let Some(s) = &mut g.last {
                    s.firing = firing_set;
                }
            }
            g.alerts.retain(|_, a| a.state != AlertState::Resolved);
            if g.alerts.is_empty() {
                empty.push(id.clone());
            } else {
                g.next_flush = Some(now + chrono(route.group_interval));
            }
        }
        for id in empty {
            self.groups.remove(&id);
        }
        out
    }

    /// Escalation notifications for the given alerts that are due: firing
    /// past the delay, of an escalating severity, unacknowledged, unmuted and
    /// not escalated yet. The caller marks them escalated.
    #[must_use]
    pub fn escalations<'a>(
        &self,
        alerts: impl Iterator<Item = &'a Alert>,
        now: DateTime<Utc>,
    ) -> Vec<(Fingerprint, NotificationRecord)> {
        let Some(receiver) = &self.escalation.receiver else {
            return Vec::new();
        };
        let after = chrono(self.escalation.after);
        alerts
            .filter(|a| {
                a.state == AlertState::Firing
                    && !a.acknowledged
                    && !a.muted()
                    && a.escalated_at.is_none()
                    && self.escalation.severities.contains(&a.severity)
                    && a.fired_at.is_some_and(|t| now - t >= after)
            })
            .map(|a| {
                let key = format!("escalation:{{fingerprint={:?}}}", a.fingerprint.to_string());
                let mut labels = BTreeMap::new();
                labels.insert("fingerprint".to_owned(), a.fingerprint.to_string());
                let n = Notification {
                    id: NotificationId::generate(),
                    receiver: receiver.clone(),
                    group_key: key.clone(),
                    group_labels: labels,
                    kind: NotificationKind::Escalation,
                    alerts: vec![a.clone()],
                    truncated_alerts: 0,
                    created_at: now,
                };
                (
                    a.fingerprint,
                    NotificationRecord::pending(n, group_id(receiver, &key)),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;
    use ordermon_domain::alert::Severity;
    use ordermon_domain::ids::{RuleName, UserId};

    use super::*;
    use crate::alerting::route::RouteConfig;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap()
    }

    fn secs(s: i64) -> chrono::Duration {
        chrono::Duration::seconds(s)
    }

    fn dispatcher() -> Dispatcher {
        let route = RouteConfig {
            receiver: Some("ops".to_owned()),
            group_wait: Some(Duration::from_secs(1)),
            group_interval: Some(Duration::from_secs(60)),
            repeat_interval: Some(Duration::from_secs(3600)),
            ..RouteConfig::default()
        };
        let tree = RouteTree::new(&route, &["ops", "pager"]).unwrap();
        Dispatcher::new(
            tree,
            100,
            EscalationConfig {
                receiver: Some("pager".to_owned()),
                after: Duration::from_secs(600),
                severities: vec![Severity::Critical],
            },
        )
    }

    fn alert(rule: &str, user: &str, at: DateTime<Utc>) -> Alert {
        let mut labels = BTreeMap::new();
        labels.insert("user_id".to_owned(), user.to_owned());
        Alert::new(
            RuleName::new(rule).unwrap(),
            Severity::Critical,
            labels,
            BTreeMap::new(),
            Some(UserId::new(user).unwrap()),
            chrono::Duration::zero(),
            at,
        )
    }

    #[test]
    fn group_wait_then_update_repeat_and_resolve() {
        let mut d = dispatcher();
        let t = t0();
        let a = alert("stuck_order", "alice", t);
        d.observe(&a, t);
        assert!(d.flush(t).is_empty(), "group_wait");
        assert_eq!(d.next_due(), Some(t + secs(1)));
        let n = d.flush(t + secs(1));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].notification.kind, NotificationKind::Update);
        assert_eq!(
            n[0].notification.group_key,
            r#"0:{rule="stuck_order",user_id="alice"}"#
        );
        // Unchanged: nothing at the next interval; a repeat after an hour.
        assert!(d.flush(t + secs(61)).is_empty());
        let mut when = t + secs(61);
        let mut repeats = Vec::new();
        while when < t + secs(3700) {
            when += secs(60);
            repeats.extend(d.flush(when));
        }
        assert_eq!(repeats.len(), 1);
        assert_eq!(repeats[0].notification.kind, NotificationKind::Repeat);
        // Resolved: one resolve notification, then the group is gone.
        let mut r = a.clone();
        r.resolve(when, None);
        d.observe(&r, when);
        let n = d.flush(when + secs(60));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].notification.status(), AlertState::Resolved);
        assert_eq!(d.groups(), 0);
    }

    #[test]
    fn acknowledged_alerts_do_not_repeat_and_muted_ones_are_left_out() {
        let mut d = dispatcher();
        let t = t0();
        let mut a = alert("x", "alice", t);
        d.observe(&a, t);
        assert_eq!(d.flush(t + secs(1)).len(), 1);
        a.acknowledge("ops", t + secs(2)).unwrap();
        d.observe(&a, t + secs(2));
        for m in 1..=70 {
            assert!(
                d.flush(t + secs(1 + 60 * m)).is_empty(),
                "no repeat after ack"
            );
        }
        // A silenced alert in a new group sends nothing.
        let mut b = alert("y", "bob", t);
        b.set_silences(vec![ordermon_domain::ids::SilenceId::generate()], t);
        d.observe(&b, t);
        assert!(d.flush(t + secs(5)).is_empty());
    }

    #[test]
    fn a_restored_group_neither_resends_nor_forgets() {
        let t = t0();
        let mut d = dispatcher();
        let a = alert("x", "alice", t);
        d.observe(&a, t);
        let sent = d.flush(t + secs(1));
        // Restart: the record is what the store gives back.
        let mut d2 = dispatcher();
        d2.restore(&sent);
        assert_eq!(d2.last_firing().len(), 1);
        d2.observe(&a, t + secs(10));
        assert!(d2.flush(t + secs(10)).is_empty());
        assert!(d2.flush(t + secs(61)).is_empty(), "unchanged, no resend");
        // It resolved while we were down: reported at the group's next flush.
        let mut r = a.clone();
        r.resolve(t + secs(5), None);
        let mut d3 = dispatcher();
        d3.restore(&sent);
        d3.observe(&r, t + secs(10));
        d3.forget_unrouted();
        let n = d3.flush(t + secs(61));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].notification.status(), AlertState::Resolved);
    }

    #[test]
    fn unacknowledged_critical_alerts_escalate_once_due() {
        let d = dispatcher();
        let t = t0();
        let a = alert("x", "alice", t);
        assert!(d.escalations([&a].into_iter(), t + secs(599)).is_empty());
        let e = d.escalations([&a].into_iter(), t + secs(600));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].1.notification.receiver, "pager");
        assert_eq!(e[0].1.notification.kind, NotificationKind::Escalation);
        let mut acked = a.clone();
        acked.acknowledge("ops", t).unwrap();
        assert!(
            d.escalations([&acked].into_iter(), t + secs(900))
                .is_empty()
        );
    }
}
