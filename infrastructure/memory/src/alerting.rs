//! The read side of the alerting model over the in-memory tables: alerts,
//! silences, the notification queue and log, and per-user rule overrides, with
//! the SQL backends' filters and orders (ids are UUIDv7, so id order is
//! creation order).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::alert::{
    Alert, AlertState, DeliveryStatus, Fingerprint, NotificationRecord, RuleOverride, Silence,
};
use ordermon_domain::ids::{AlertId, NotificationId, RuleName, SilenceId, UserId};
use ordermon_domain::ports::{
    AlertQuery, AlertRepository, AlertRuleRepository, NotificationLog, SilenceQuery,
    SilenceRepository, StoreError,
};

use crate::tables::Tables;
use crate::{MemoryStore, page_size};

/// True when an alert passes every filter of a query (except the page limit).
fn alert_matches(a: &Alert, q: &AlertQuery) -> bool {
    q.user_id
        .as_ref()
        .is_none_or(|u| a.user_id.as_ref() == Some(u))
        && (q.states.is_empty() || q.states.contains(&a.state))
        && (q.severities.is_empty() || q.severities.contains(&a.severity))
        && q.rule.as_ref().is_none_or(|r| *r == a.rule)
        && q.before.is_none_or(|before| a.id < before)
}

/// True when a silence passes every filter of a query (except the page limit).
fn silence_matches(s: &Silence, q: &SilenceQuery) -> bool {
    q.user_id
        .as_ref()
        .is_none_or(|u| s.user_id.as_ref() == Some(u))
        && q.ending_after.is_none_or(|t| s.ends_at > t)
        && q.before.is_none_or(|before| s.id < before)
}

/// The newest record's id of each group (receiver and group id).
fn newest_per_group(t: &Tables) -> BTreeMap<(&str, &str), NotificationId> {
    let mut newest = BTreeMap::new();
    // Ascending ids: the last one seen of a group is its newest.
    for (id, r) in &t.notifications {
        newest.insert((r.notification.receiver.as_str(), r.group_id.as_str()), *id);
    }
    newest
}

#[async_trait]
impl AlertRepository for MemoryStore {
    async fn get_alert(&self, id: AlertId) -> Result<Option<Alert>, StoreError> {
        Ok(self.with(|t| t.alerts.get(&id).cloned()))
    }

    async fn active_by_fingerprint(&self, fp: Fingerprint) -> Result<Option<Alert>, StoreError> {
        // The highest id is the latest occurrence.
        Ok(self.with(|t| {
            t.alerts
                .values()
                .rev()
                .find(|a| a.fingerprint == fp && a.state != AlertState::Resolved)
                .cloned()
        }))
    }

    async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let n = page_size(query.limit);
        Ok(self.with(|t| {
            t.alerts
                .values()
                .rev()
                .filter(|a| alert_matches(a, query))
                .take(n)
                .cloned()
                .collect()
        }))
    }
}

#[async_trait]
impl SilenceRepository for MemoryStore {
    async fn get_silence(&self, id: SilenceId) -> Result<Option<Silence>, StoreError> {
        Ok(self.with(|t| t.silences.get(&id).cloned()))
    }

    async fn list_silences(&self, query: &SilenceQuery) -> Result<Vec<Silence>, StoreError> {
        let n = page_size(query.limit);
        Ok(self.with(|t| {
            t.silences
                .values()
                .rev()
                .filter(|s| silence_matches(s, query))
                .take(n)
                .cloned()
                .collect()
        }))
    }
}

#[async_trait]
impl NotificationLog for MemoryStore {
    async fn get_notification(
        &self,
        id: NotificationId,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        Ok(self.with(|t| t.notifications.get(&id).cloned()))
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let n = page_size(limit);
        Ok(self.with(|t| {
            // A record waits behind an older pending one of its group.
            let mut seen = std::collections::HashSet::new();
            t.notifications
                .values()
                .filter(|r| {
                    let first = r.status != ordermon_domain::alert::DeliveryStatus::Pending
                        || seen.insert((r.notification.receiver.clone(), r.group_id.clone()));
                    first && r.is_due(now)
                })
                .take(n)
                .cloned()
                .collect()
        }))
    }

    async fn latest_per_group(&self) -> Result<Vec<NotificationRecord>, StoreError> {
        Ok(self.with(|t| {
            newest_per_group(t)
                .values()
                .filter_map(|id| t.notifications.get(id).cloned())
                .collect()
        }))
    }

    async fn list_notifications(
        &self,
        receiver: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let n = page_size(limit);
        Ok(self.with(|t| {
            t.notifications
                .values()
                .rev()
                .filter(|r| receiver.is_none_or(|x| r.notification.receiver == x))
                .take(n)
                .cloned()
                .collect()
        }))
    }

    async fn purge_notifications(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self.with(|t| {
            let doomed = purgeable_notifications(t, before);
            for id in &doomed {
                t.notifications.remove(id);
            }
            doomed.len() as u64
        }))
    }
}

/// Delivered or failed records created before `before`, except the newest of
/// each group: what `purge_notifications` deletes.
pub(crate) fn purgeable_notifications(t: &Tables, before: DateTime<Utc>) -> Vec<NotificationId> {
    let newest = newest_per_group(t);
    t.notifications
        .iter()
        .filter(|(id, r)| {
            r.status != DeliveryStatus::Pending
                && r.notification.created_at < before
                && newest
                    .get(&(r.notification.receiver.as_str(), r.group_id.as_str()))
                    .is_some_and(|newest| newest != *id)
        })
        .map(|(id, _)| *id)
        .collect()
}

#[async_trait]
impl AlertRuleRepository for MemoryStore {
    async fn list_rule_overrides(
        &self,
        user: Option<&UserId>,
    ) -> Result<Vec<RuleOverride>, StoreError> {
        Ok(self.with(|t| {
            t.rule_overrides
                .values()
                .filter(|o| user.is_none_or(|u| o.user_id == *u))
                .cloned()
                .collect()
        }))
    }

    async fn get_rule_override(
        &self,
        rule: &RuleName,
        user: &UserId,
    ) -> Result<Option<RuleOverride>, StoreError> {
        Ok(self.with(|t| t.rule_overrides.get(&(rule.clone(), user.clone())).cloned()))
    }
}
