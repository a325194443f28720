//! The alert book: every unresolved alert of this instance, by fingerprint,
//! and its lifecycle. An evaluation of a subject hands in the conditions that
//! hold; the book raises new alerts (pending, or firing at once without a
//! `for`), promotes pending ones whose `for` has passed, and resolves the
//! subject's alerts whose condition is gone. Operators acknowledge and resolve
//! by hand; silences and inhibition set the mute flags. Every change is kept
//! until the service has committed it (stored, an event, on the bus).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use ordermon_domain::alert::matcher::all_match;
use ordermon_domain::alert::{Alert, AlertError, AlertState, Fingerprint, Silence};
use ordermon_domain::ids::{AlertId, SilenceId};

use super::config::InhibitRule;
use super::eval::{Hit, Subject, show};

/// One unresolved alert.
#[derive(Debug, Clone)]
struct Entry {
    alert: Alert,
    subject: Subject,
    for_duration: chrono::Duration,
}

/// Why an operator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// No unresolved alert has this id.
    #[error("no unresolved alert with this id")]
    NotFound,
    /// The alert is resolved.
    #[error(transparent)]
    Alert(#[from] AlertError),
}

/// The book.
#[derive(Debug, Default)]
pub struct AlertBook {
    active: HashMap<Fingerprint, Entry>,
    by_id: HashMap<AlertId, Fingerprint>,
    by_subject: HashMap<Subject, HashSet<Fingerprint>>,
    /// Users with unresolved or suppressed alerts (a cheap test before
    /// building a subject).
    users: HashMap<ordermon_domain::ids::UserId, usize>,
    /// Resolved by hand while the condition still held: not raised again
    /// until the condition clears once.
    suppressed: HashMap<Fingerprint, Subject>,
    /// Changes not yet committed: the alert as it is now and the version
    /// stored before the first uncommitted change.
    pending: BTreeMap<AlertId, (u64, Alert)>,
}

/// Records a change of `alert`: its version becomes the stored one plus
/// one, however many changes wait for the same commit (one commit, one
/// version, one event).
fn touch(pending: &mut BTreeMap<AlertId, (u64, Alert)>, alert: &mut Alert) {
    match pending.get_mut(&alert.id) {
        Some((stored, a)) => {
            alert.version = *stored + 1;
            *a = alert.clone();
        }
        None => {
            let stored = alert.version;
            alert.version = stored + 1;
            pending.insert(alert.id, (stored, alert.clone()));
        }
    }
}

impl AlertBook {
    /// Unresolved alerts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// True without unresolved alerts.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Every unresolved alert.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().map(|e| &e.alert)
    }

    /// True when evaluating `user` with no hits would change nothing: the
    /// user has no unresolved alert and none resolved by hand waits to clear.
    #[must_use]
    pub fn quiet(&self, user: &ordermon_domain::ids::UserId) -> bool {
        !self.users.contains_key(user)
            && !self
                .suppressed
                .values()
                .any(|s| matches!(s, Subject::User(u) if u == user))
    }

    /// One unresolved alert by id.
    #[must_use]
    pub fn get(&self, id: AlertId) -> Option<&Alert> {
        self.by_id
            .get(&id)
            .and_then(|fp| self.active.get(fp))
            .map(|e| &e.alert)
    }

    /// Takes back the unresolved alerts stored by an earlier run.
    pub fn restore(&mut self, alerts: Vec<Alert>, for_of: impl Fn(&Alert) -> chrono::Duration) {
        for alert in alerts {
            if alert.state == AlertState::Resolved {
                continue;
            }
            let subject = Subject::of_labels(&alert.labels);
            let for_duration = for_of(&alert);
            self.insert(Entry {
                alert,
                subject,
                for_duration,
            });
        }
    }

    fn insert(&mut self, e: Entry) {
        let fp = e.alert.fingerprint;
        if let Subject::User(u) = &e.subject {
            *self.users.entry(u.clone()).or_default() += 1;
        }
        self.by_id.insert(e.alert.id, fp);
        self.by_subject
            .entry(e.subject.clone())
            .or_default()
            .insert(fp);
        self.active.insert(fp, e);
    }

    fn remove(&mut self, fp: Fingerprint) -> Option<Entry> {
        let e = self.active.remove(&fp)?;
        self.by_id.remove(&e.alert.id);
        if let Subject::User(u) = &e.subject
            && let Some(n) = self.users.get_mut(u)
        {
            *n -= 1;
            if *n == 0 {
                self.users.remove(u);
            }
        }
        if let Some(set) = self.by_subject.get_mut(&e.subject) {
            set.remove(&fp);
            if set.is_empty() {
                self.by_subject.remove(&e.subject);
            }
        }
        Some(e)
    }

    /// Applies an evaluation of `subject`: `hits` hold now. Returns the
    /// alerts whose state changed (raised, fired, resolved).
    pub fn reconcile(
        &mut self,
        subject: &Subject,
        hits: Vec<Hit>,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        // The common case, every second for every user: nothing holds and
        // nothing was active.
        if hits.is_empty() && !self.by_subject.contains_key(subject) && self.suppressed.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut seen: HashSet<Fingerprint> = HashSet::with_capacity(hits.len());
        for hit in hits {
            let mut labels = hit.labels.clone();
            labels.insert("rule".to_owned(), hit.rule.to_string());
            let fp = Fingerprint::of(&labels);
            if !seen.insert(fp) || self.suppressed.contains_key(&fp) {
                continue;
            }
            let for_duration = chrono::Duration::from_std(hit.for_duration).unwrap_or_default();
            if let Some(e) = self.active.get_mut(&fp) {
                e.for_duration = for_duration;
                if e.alert.promote(for_duration, now) {
                    e.alert.value = Some(show(hit.value));
                    e.alert.annotations = hit.annotations();
                    touch(&mut self.pending, &mut e.alert);
                    out.push(e.alert.clone());
                }
                continue;
            }
            let mut alert = Alert::new(
                hit.rule.clone(),
                hit.severity,
                hit.labels.clone(),
                hit.annotations(),
                hit.user.clone(),
                for_duration,
                now,
            );
            alert.value = Some(show(hit.value));
            touch(&mut self.pending, &mut alert);
            out.push(alert.clone());
            self.insert(Entry {
                alert,
                subject: subject.clone(),
                for_duration,
            });
        }
        // The subject's alerts that no longer hold resolve.
        let gone: Vec<Fingerprint> = self
            .by_subject
            .get(subject)
            .map(|set| {
                set.iter()
                    .filter(|fp| !seen.contains(fp))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        for fp in gone {
            if let Some(mut e) = self.remove(fp)
                && e.alert.resolve(now, None)
            {
                touch(&mut self.pending, &mut e.alert);
                out.push(e.alert);
            }
        }
        // A suppressed condition that cleared may fire again later.
        self.suppressed
            .retain(|fp, s| s != subject || seen.contains(fp));
        out
    }

    /// Promotes pending alerts whose `for` has passed (between evaluations).
    pub fn promote_due(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        let mut out = Vec::new();
        let due: Vec<Fingerprint> = self
            .active
            .iter()
            .filter(|(_, e)| {
                e.alert.state == AlertState::Pending && now - e.alert.starts_at >= e.for_duration
            })
            .map(|(fp, _)| *fp)
            .collect();
        for fp in due {
            if let Some(e) = self.active.get_mut(&fp)
                && e.alert.promote(e.for_duration, now)
            {
                touch(&mut self.pending, &mut e.alert);
                out.push(e.alert.clone());
            }
        }
        out
    }

    /// Acknowledges an unresolved alert.
    ///
    /// # Errors
    /// [`BookError::NotFound`] when no unresolved alert has this id.
    pub fn acknowledge(
        &mut self,
        id: AlertId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Alert, BookError> {
        let fp = *self.by_id.get(&id).ok_or(BookError::NotFound)?;
        let e = self.active.get_mut(&fp).ok_or(BookError::NotFound)?;
        if e.alert.acknowledge(by, now)? {
            touch(&mut self.pending, &mut e.alert);
        }
        Ok(e.alert.clone())
    }

    /// Resolves an unresolved alert by hand; it is not raised again until its
    /// condition has cleared once.
    ///
    /// # Errors
    /// [`BookError::NotFound`] when no unresolved alert has this id.
    pub fn resolve(
        &mut self,
        id: AlertId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Alert, BookError> {
        let fp = *self.by_id.get(&id).ok_or(BookError::NotFound)?;
        let mut e = self.remove(fp).ok_or(BookError::NotFound)?;
        e.alert.resolve(now, Some(by.to_owned()));
        touch(&mut self.pending, &mut e.alert);
        self.suppressed.insert(fp, e.subject);
        Ok(e.alert)
    }

    /// Marks escalated alerts (their notification is decided by the caller).
    pub fn escalate(&mut self, fp: Fingerprint, now: DateTime<Utc>) -> Option<Alert> {
        let e = self.active.get_mut(&fp)?;
        if !e.alert.escalate(now) {
            return None;
        }
        touch(&mut self.pending, &mut e.alert);
        Some(e.alert.clone())
    }

    /// Recomputes the mute flags: the active silences that match each alert,
    /// and the inhibition rules whose source fires. Returns the alerts whose
    /// flags changed.
    pub fn apply_mutes(
        &mut self,
        silences: &[Silence],
        inhibit: &[InhibitRule],
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        // Sources of each inhibition rule: firing alerts matching it.
        let sources: Vec<Vec<(Fingerprint, &BTreeMap<String, String>)>> = inhibit
            .iter()
            .map(|r| {
                self.active
                    .iter()
                    .filter(|(_, e)| {
                        e.alert.state == AlertState::Firing
                            && all_match(&r.source_matchers, &e.alert.labels)
                    })
                    .map(|(fp, e)| (*fp, &e.alert.labels))
                    .collect()
            })
            .collect();
        let mut updates: Vec<(Fingerprint, Vec<SilenceId>, bool)> = Vec::new();
        for (fp, e) in &self.active {
            let labels = &e.alert.labels;
            let ids: Vec<SilenceId> = silences
                .iter()
                .filter(|s| s.mutes(labels, e.alert.user_id.as_ref(), now))
                .map(|s| s.id)
                .collect();
            let inhibited = inhibit.iter().zip(&sources).any(|(r, srcs)| {
                all_match(&r.target_matchers, labels)
                    && srcs.iter().any(|(sfp, sl)| {
                        sfp != fp
                            && r.equal.iter().all(|k| {
                                sl.get(k).map(String::as_str) == labels.get(k).map(String::as_str)
                            })
                    })
            });
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted != e.alert.silenced_by || inhibited != e.alert.inhibited {
                updates.push((*fp, ids, inhibited));
            }
        }
        let mut out = Vec::new();
        for (fp, ids, inhibited) in updates {
            if let Some(e) = self.active.get_mut(&fp) {
                let a = e.alert.set_silences(ids, now);
                let b = e.alert.set_inhibited(inhibited, now);
                if a || b {
                    touch(&mut self.pending, &mut e.alert);
                    out.push(e.alert.clone());
                }
            }
        }
        out
    }

    /// The changes not yet committed, as (alert now, stored version).
    #[must_use]
    pub fn uncommitted(&self) -> Vec<(Alert, u64)> {
        self.pending
            .values()
            .map(|(stored, a)| (a.clone(), *stored))
            .collect()
    }

    /// Forgets committed changes (the alert as committed is what is stored).
    pub fn committed(&mut self, done: &[(AlertId, u64)]) {
        for (id, version) in done {
            if self
                .pending
                .get(id)
                .is_some_and(|(_, a)| a.version == *version)
            {
                self.pending.remove(id);
            }
        }
    }

    /// The store holds `actual` for an alert (another writer, or a lost
    /// answer): the next write of it expects that.
    pub fn stored_is(&mut self, id: AlertId, actual: u64) {
        if let Some((stored, a)) = self.pending.get_mut(&id) {
            *stored = actual;
            a.version = actual + 1;
            if let Some(fp) = self.by_id.get(&id)
                && let Some(e) = self.active.get_mut(fp)
            {
                e.alert.version = actual + 1;
            }
        }
    }

    /// Uncommitted changes.
    #[must_use]
    pub fn uncommitted_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;
    use ordermon_domain::Decimal;
    use ordermon_domain::alert::{Matcher, NewSilence, Severity};
    use ordermon_domain::ids::{RuleName, UserId};

    use super::*;
    use crate::alerting::eval::Text;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap()
    }

    fn hit(rule: &str, user: &str, for_secs: u64) -> Hit {
        let mut labels = BTreeMap::new();
        labels.insert("user_id".to_owned(), user.to_owned());
        labels.insert("venue".to_owned(), "SIM".to_owned());
        let mut text = BTreeMap::new();
        text.insert("summary".to_owned(), "s".to_owned());
        Hit {
            rule: RuleName::new(rule).unwrap(),
            severity: Severity::Warning,
            labels,
            value: Decimal::ONE,
            user: Some(UserId::new(user).unwrap()),
            for_duration: Duration::from_secs(for_secs),
            text: Text::Fixed(text),
        }
    }

    fn alice() -> Subject {
        Subject::User(UserId::new("alice").unwrap())
    }

    #[test]
    fn pending_then_firing_then_resolved_with_each_change_recorded() {
        let mut b = AlertBook::default();
        let t = t0();
        let raised = b.reconcile(&alice(), vec![hit("stuck_order", "alice", 30)], t);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].state, AlertState::Pending);
        // Held again: no change until `for` has passed.
        assert!(
            b.reconcile(
                &alice(),
                vec![hit("stuck_order", "alice", 30)],
                t + chrono::Duration::seconds(10)
            )
            .is_empty()
        );
        assert!(b.promote_due(t + chrono::Duration::seconds(20)).is_empty());
        let fired = b.promote_due(t + chrono::Duration::seconds(30));
        assert_eq!(fired[0].state, AlertState::Firing);
        // Not committed yet: still the one version the commit will write.
        assert_eq!(fired[0].version, 1);
        // The condition clears: resolved.
        let resolved = b.reconcile(&alice(), vec![], t + chrono::Duration::seconds(40));
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert!(b.is_empty());
        // Three changes, one commit: version 1, nothing stored before.
        let changes = b.uncommitted();
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].0.version, changes[0].1), (1, 0));
        assert_eq!(changes[0].0.state, AlertState::Resolved);
        b.committed(&[(changes[0].0.id, 1)]);
        assert_eq!(b.uncommitted_len(), 0);
    }

    #[test]
    fn other_subjects_are_left_alone_and_duplicates_deduplicate() {
        let mut b = AlertBook::default();
        let t = t0();
        let bob = Subject::User(UserId::new("bob").unwrap());
        b.reconcile(
            &alice(),
            vec![hit("x", "alice", 0), hit("x", "alice", 0)],
            t,
        );
        b.reconcile(&bob, vec![hit("x", "bob", 0)], t);
        assert_eq!(b.len(), 2);
        b.reconcile(&bob, vec![], t);
        assert_eq!(b.len(), 1);
        assert_eq!(b.alerts().next().unwrap().labels["user_id"], "alice");
    }

    #[test]
    fn a_hand_resolved_alert_stays_down_until_its_condition_clears() {
        let mut b = AlertBook::default();
        let t = t0();
        let a = b
            .reconcile(&alice(), vec![hit("x", "alice", 0)], t)
            .remove(0);
        let acked = b.acknowledge(a.id, "ops", t).unwrap();
        assert!(acked.acknowledged);
        let r = b.resolve(a.id, "ops", t).unwrap();
        assert_eq!(r.resolved_by.as_deref(), Some("ops"));
        assert!(
            b.reconcile(&alice(), vec![hit("x", "alice", 0)], t)
                .is_empty(),
            "suppressed"
        );
        assert!(b.reconcile(&alice(), vec![], t).is_empty());
        let again = b.reconcile(&alice(), vec![hit("x", "alice", 0)], t);
        assert_eq!(again.len(), 1, "a new occurrence after it cleared");
        assert_ne!(again[0].id, a.id);
        assert_eq!(b.acknowledge(a.id, "ops", t), Err(BookError::NotFound));
    }

    #[test]
    fn silences_and_inhibition_set_the_flags() {
        let mut b = AlertBook::default();
        let t = t0();
        let stuck = b
            .reconcile(&alice(), vec![hit("stuck_order", "alice", 0)], t)
            .remove(0);
        let mut down = hit("venue_down", "alice", 0);
        down.labels.remove("user_id");
        down.user = None;
        b.reconcile(&Subject::Venues, vec![down], t);
        let rules = crate::alerting::config::default_inhibit_rules();
        let changed = b.apply_mutes(&[], &rules, t);
        assert_eq!(changed.len(), 1);
        assert!(changed[0].inhibited && changed[0].id == stuck.id);
        let s = Silence::create(
            NewSilence {
                matchers: vec![Matcher::eq("rule", "venue_down").unwrap()],
                starts_at: None,
                ends_at: t + chrono::Duration::hours(1),
                created_by: "ops".to_owned(),
                comment: String::new(),
                user_id: None,
            },
            chrono::Duration::days(1),
            t,
        )
        .unwrap();
        let changed = b.apply_mutes(std::slice::from_ref(&s), &rules, t);
        assert_eq!(changed.len(), 1);
        assert!(changed[0].silenced && changed[0].silenced_by == vec![s.id]);
        // A silenced source still inhibits (as in Alertmanager); nothing else changed.
        assert!(b.apply_mutes(&[s], &rules, t).is_empty());
    }
}
